import pandas as pd

from embtune_pipeline.lib.data.chunking import (
    chunk_doc_ids,
    chunk_documents,
    normalize_text,
    snapshot_id,
    token_windows,
)
from embtune_pipeline.lib.models import load_tokenizer


def test_normalize_text():
    assert normalize_text("  a\u00a0 b\r\n\r\n\r\n\r\nc\x00d ") == "a b\n\nc d"


def test_token_windows_overlap_and_cover_the_text():
    tok = load_tokenizer("all-MiniLM-L6-v2")
    text = " ".join(f"word{i}" for i in range(100))
    windows = token_windows(text, tok, max_tokens=40, overlap=10)
    assert len(windows) > 2
    assert all(len(tok(w, add_special_tokens=False)["input_ids"]) <= 40 for w in windows)
    assert windows[0].split()[0] == "word0" and windows[-1].split()[-1] == "word99"
    # consecutive windows share text (the overlap)
    assert set(windows[0].split()) & set(windows[1].split())


def test_duplicates_collapse_and_keep_their_document_ids():
    tok = load_tokenizer("all-MiniLM-L6-v2")
    docs = pd.DataFrame({"doc_id": ["a", "b", "c"], "title": ["", "", ""],
                         "text": ["same text here", "same  text here", "other"], "provenance": ["", "", ""]})
    chunks, dups = chunk_documents(docs, tok, 32, 4)
    assert dups == 1 and len(chunks) == 2
    assert chunk_doc_ids(chunks) == [["a", "b"], ["c"]]


def test_snapshot_id_depends_on_content_not_order():
    assert snapshot_id(["x", "y"]) == snapshot_id(["y", "x"]) != snapshot_id(["x", "z"])
