import json

import pandas as pd
import pytest

from embtune_pipeline.lib.errors import InputError
from embtune_pipeline.lib.ingest import read_documents, read_pairs, settle_problems


def test_jsonl_reads_documents(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps({"id": "a", "title": "T", "text": "alpha"}) + "\n\n" +
                 json.dumps({"id": "b", "text": "beta"}) + "\n")
    docs, problems = read_documents(f, "jsonl")
    assert problems == []
    assert docs["doc_id"].tolist() == ["a", "b"]
    assert docs["provenance"].iloc[1].endswith("c.jsonl:line 3")


def test_bad_rows_are_named_by_file_and_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text("\n".join([
        json.dumps({"id": "a", "text": "ok"}),
        '{"id": "b", "text": ',                       # malformed
        json.dumps({"id": "c", "text": "  "}),          # empty text
        json.dumps({"id": "a", "text": "again"}),       # duplicate id
        json.dumps({"id": "d"}),                        # missing field
    ]) + "\n")
    docs, problems = read_documents(f, "jsonl")
    assert docs["doc_id"].tolist() == ["a"]
    found = {(p.row, p.problem.split(" (")[0].split(" for ")[0]) for p in problems}
    assert found == {("line 2", "malformed JSON"), ("line 3", "empty text"),
                     ("line 4", "duplicate id 'a'"), ("line 5", "missing field 'text'")}
    with pytest.raises(InputError) as err:
        settle_problems(problems, "error", None)
    message = str(err.value)
    assert f"{f}, line 2: malformed JSON" in message
    assert "duplicate id 'a' (first seen at line 1)" in message


def test_quarantine_keeps_the_rows_aside(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps({"id": "a", "text": ""}) + "\n")
    _, problems = read_documents(f, "jsonl")
    q = tmp_path / "quarantine" / "corpus.jsonl"
    assert settle_problems(problems, "quarantine", q) == 1
    assert json.loads(q.read_text())["row"] == "line 1"


def test_missing_column_and_missing_file(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("id,body\n1,hello\n")
    with pytest.raises(InputError, match=r"missing column\(s\) \['text'\]"):
        read_documents(f, "csv")
    with pytest.raises(InputError, match="file not found"):
        read_documents(tmp_path / "nope.jsonl", "jsonl")


def test_csv_parquet_and_custom_columns(tmp_path):
    df = pd.DataFrame({"key": ["x", "y"], "heading": ["H1", "H2"], "body": ["one", "two"]})
    df.to_parquet(tmp_path / "c.parquet")
    docs, _ = read_documents(tmp_path / "c.parquet", "parquet", "key", "heading", "body")
    assert docs[["doc_id", "title", "text"]].values.tolist() == [["x", "H1", "one"], ["y", "H2", "two"]]
    (tmp_path / "c.csv").write_text("key,body\nx,one\ny,two,extra\n")
    docs, problems = read_documents(tmp_path / "c.csv", "csv", "key", None, "body")
    assert docs["doc_id"].tolist() == ["x"]
    assert problems[0].row == "line 3" and "expected 2 fields" in problems[0].problem


def test_directory_of_text_and_markdown(tmp_path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.md").write_text("# Jaguar setup\n\nPlug it in.")
    (tmp_path / "docs" / "sub" / "b.txt").write_text("Plain text.")
    (tmp_path / "docs" / "ignored.png").write_bytes(b"\x89PNG")
    docs, _ = read_documents(tmp_path / "docs", "dir")
    assert docs["doc_id"].tolist() == ["a.md", "sub/b.txt"]
    assert docs["title"].tolist() == ["Jaguar setup", "b"]


def test_python_docs_demo_corpus_is_built_from_stdlib():
    docs, problems = read_documents(None, "python-docs", modules=["json"])
    assert not problems and "json.dumps" in set(docs["doc_id"])


def test_pairs_from_beir_and_from_files(jaguar_beir, tmp_path):
    pairs, problems = read_pairs(jaguar_beir, "beir", split="test")
    assert not problems and len(pairs) > 0 and pairs["doc_id"].notna().all()
    f = tmp_path / "clicks.csv"
    f.write_text("query,doc_id\nreset jaguar,jaguar-x1-reset\n,jaguar-x1-reset\n")
    pairs, problems = read_pairs(f, "csv")
    assert pairs["query"].tolist() == ["reset jaguar"]
    assert problems[0].row == "line 3" and "empty query" in problems[0].problem


def test_encoding_problems_are_named_by_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "bom first"}\n{"id": "b", "text": "caf\xe9"}\n')
    docs, problems = read_documents(f, "jsonl")
    assert docs["doc_id"].tolist() == ["a"]
    assert problems[0].row == "line 2" and problems[0].problem.startswith("not valid UTF-8")
    c = tmp_path / "c.csv"
    c.write_bytes(b"\xef\xbb\xbfid,text\nx," + b"long " * 40000 + b"\n")  # BOM, and a field over 128 KiB
    docs, problems = read_documents(c, "csv")
    assert docs["doc_id"].tolist() == ["x"] and not problems


def test_a_missing_score_column_is_one_clear_error(tmp_path):
    f = tmp_path / "clicks.csv"
    f.write_text("query,doc_id\nq,d\n")
    with pytest.raises(InputError, match=r"missing column\(s\) \['clicked'\]"):
        read_pairs(f, "csv", score_column="clicked")
