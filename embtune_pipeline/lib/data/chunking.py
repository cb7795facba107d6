"""Split documents into token-bounded, overlapping chunks with a content hash each."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import pandas as pd

CHUNK_COLUMNS = ["chunk_id", "doc_id", "chunk_index", "title", "text", "chunk_hash", "alias_doc_ids"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_text(text: str) -> str:
    """NFC, no control characters, single spaces inside lines, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(" ", text)
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" ?\n ?", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def embedding_text(title: str, text: str) -> str:
    """What a model sees of a chunk: the document title, then the chunk text."""
    return f"{title}\n{text}" if title else text


def chunk_texts(chunks: pd.DataFrame) -> list[str]:
    """What each chunk is embedded as (its title, then its text): the one rule mining, training and every
    evaluation share."""
    return [embedding_text(t, x) for t, x in zip(chunks["title"], chunks["text"])]


def text_hash(text: str) -> str:
    """The key of a text everywhere (chunks, queries, cached vectors)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def content_hash(title: str, text: str) -> str:
    """A chunk's hash is the hash of exactly what a model sees, so cached vectors are shared by identical texts."""
    return text_hash(embedding_text(title, text))


def snapshot_id(chunk_hashes) -> str:
    """A corpus snapshot is named by its content: the hash of its sorted chunk hashes."""
    h = hashlib.sha256()
    for c in sorted(chunk_hashes):
        h.update(c.encode())
    return h.hexdigest()[:16]


def token_windows(text: str, tokenizer, max_tokens: int, overlap: int) -> list[str]:
    """Windows of at most max_tokens tokens, overlapping by `overlap`, cut on token boundaries of the text."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                    verbose=False)  # a whole document, longer than the model reads, is what gets windowed
    offsets = enc["offset_mapping"]
    if len(offsets) <= max_tokens:
        return [text]
    stride = max_tokens - overlap
    windows = []
    for start in range(0, len(offsets), stride):
        end = min(start + max_tokens, len(offsets))
        piece = text[offsets[start][0]: offsets[end - 1][1]].strip()
        if piece:
            windows.append(piece)
        if end == len(offsets):
            break
    return windows


def chunk_documents(docs: pd.DataFrame, tokenizer, chunk_tokens: int, overlap: int) -> tuple[pd.DataFrame, int]:
    """Normalize and chunk every document; exact-duplicate chunks collapse into the first (ids kept as aliases).

    Returns the chunks and the number of duplicates collapsed. The title counts against each chunk's budget,
    since every chunk is embedded with it.
    """
    rows, by_hash = [], {}
    duplicates = 0
    for doc in docs.itertuples(index=False):
        title = normalize_text(doc.title or "").replace("\n", " ")
        text = normalize_text(doc.text or "")
        title_tokens = len(tokenizer(title, add_special_tokens=False, verbose=False)["input_ids"]) if title else 0
        budget = max(chunk_tokens - title_tokens - 1, max(overlap + 8, chunk_tokens // 4))
        pieces = token_windows(text, tokenizer, budget, min(overlap, budget // 2)) if text else [""]
        for i, piece in enumerate(pieces):
            h = content_hash(title, piece)
            if h in by_hash:
                first = rows[by_hash[h]]
                if doc.doc_id != first["doc_id"] and doc.doc_id not in first["alias_doc_ids"]:
                    first["alias_doc_ids"].append(doc.doc_id)
                duplicates += 1
                continue
            by_hash[h] = len(rows)
            rows.append({"chunk_id": f"{doc.doc_id}#{i}", "doc_id": doc.doc_id, "chunk_index": i, "title": title,
                         "text": piece, "chunk_hash": h, "alias_doc_ids": []})
    return pd.DataFrame(rows, columns=CHUNK_COLUMNS), duplicates


def chunk_doc_ids(chunks: pd.DataFrame) -> list[list[str]]:
    """Per chunk, every document it stands for (its own and those whose identical chunk it absorbed)."""
    return [[d, *list(a)] for d, a in zip(chunks["doc_id"], chunks["alias_doc_ids"])]
