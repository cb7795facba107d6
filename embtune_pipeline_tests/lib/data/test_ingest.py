import json
from pathlib import Path

import pandas as pd
import pytest

from embtune_pipeline.lib.data.ingest import read_documents, read_pairs, settle_problems
from embtune_pipeline.lib.errors import InputError, RowProblem
from embtune_pipeline_tests.conftest import MARKUP, write_markup_docs


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


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


def test_a_folder_of_markdown_and_html_reaches_chunks_without_markup(tmp_path):
    from embtune_pipeline.lib.data.chunking import chunk_documents
    from embtune_pipeline.lib.models import load_tokenizer

    docs, problems = read_documents(write_markup_docs(tmp_path / "docs"), "dir")
    assert not problems
    # ids are paths under the folder (subfolders read, hidden folders not); titles are the documents' own
    assert docs["doc_id"].tolist() == ["battery.md", "guide/setup.md", "warranty.html"]
    assert docs["title"].tolist() == ["battery", "Jaguar X1 setup", "Warranty terms"]
    assert docs["provenance"].tolist() == [f"{tmp_path / 'docs'}:{d}" for d in docs["doc_id"]]
    chunks, _ = chunk_documents(docs, load_tokenizer("all-MiniLM-L6-v2"), 64, 8)
    assert len(chunks) > len(docs)  # several chunks each: every chunk was looked at, not just the first
    for text in list(chunks["title"]) + list(chunks["text"]):
        assert not [m for m in MARKUP if m in text], text
    setup = " ".join(chunks.loc[chunks["doc_id"] == "guide/setup.md", "text"])
    for kept in ("Resetting the device", "pairing guide", "Jaguar X1 pairs with one phone",
                 "jaguar-cli reset --factory", "amber; resetting now", "the help page"):
        assert kept in setup, kept
    assert "Jaguar X1 setup" not in setup  # the heading that is the title is not repeated in the text
    warranty = " ".join(chunks.loc[chunks["doc_id"] == "warranty.html", "text"])
    assert "two years" in warranty and "color" not in warranty and "track(" not in warranty


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


def _csv_with(tmp_path, rows: list[str]) -> Path:
    f = tmp_path / "docs.csv"
    f.write_text("id,title,text\n" + "".join(r + "\n" for r in rows))
    return f


def test_a_stray_quote_never_swallows_rows_silently(tmp_path):
    """Found by a probe: a quote closed 40 lines later merged 40 rows into one text (110 of 150 kept), and a
    quote never closed kept 60 of 150, both with exit 0 under bad_rows: error. Only the row with the quote is a
    bad row: the lines it swallowed are read as rows of their own."""
    rows = [f"{i},Title {i},Text of document {i}." for i in range(1, 151)]
    closed_later = rows.copy()
    closed_later[59] = '60,Title 60,"Text of document 60 with a stray quote.'
    closed_later[99] = '100,Title 100,Text of document 100."'
    docs, problems = read_documents(_csv_with(tmp_path, closed_later), "csv")
    assert len(docs) == 149 and len(problems) == 1 and "runs over the next 40 line(s)" in problems[0].problem
    with pytest.raises(InputError, match=r"line 61: a quote opened in this row runs over the next 40 line"):
        settle_problems(problems, "error", None)  # bad_rows: error fails, naming the line
    never_closed = rows.copy()
    never_closed[89] = '90,Title 90,"Text of document 90 never closed.'
    docs, problems = read_documents(_csv_with(tmp_path, never_closed), "csv")
    assert len(docs) == 149 and [p.row for p in problems] == ["line 91"]
    into_next = rows.copy()
    into_next[9] = '10,"Title 10" and more,Text of document 10.'
    docs, problems = read_documents(_csv_with(tmp_path, into_next), "csv")
    assert len(docs) == 149 and [p.row for p in problems] == ["line 11"]
    assert problems[0].problem.startswith("unreadable CSV (',' expected after '\"')")
    untidy = rows[:50]  # among the swallowed lines, a short row and a blank line
    untidy[9], untidy[14], untidy[19], untidy[29] = '10,Title 10,"stray', "15,Title 15", "", '30,Title 30,end"'
    docs, problems = read_documents(_csv_with(tmp_path, untidy), "csv")
    assert len(docs) == 47 and [p.row for p in problems] == ["line 11", "line 16"]  # 49 rows, 1 blank line


@pytest.mark.parametrize("header, row, opened, closed", [
    # ids with a space: the old check wanted an id-like first field on every swallowed line
    ("id,title,text", "doc {i},Title {i},Text of document {i}.",
     'doc 60,Title 60,"Text of document 60 with a stray quote.', "doc 100,Title 100,Text of document 100.\""),
    # the id column last, the quote in the first column
    ("title,text,id", "Title {i},Text of document {i}.,doc {i}",
     '"Title 60 stray,Text of document 60.,doc 60', 'Title 100",Text of document 100.,doc 100'),
    # two columns, text first
    ("text,id", "Text of document {i}.,{i}", '"Text of document 60 with a stray quote.,60',
     'Text of document 100.",100'),
])
def test_a_stray_quote_is_one_bad_row_whatever_the_ids_and_column_order(tmp_path, header, row, opened, closed):
    """The probe of issue 32: 40 rows merged into one 37,000-character document, exit 0, nothing quarantined."""
    lines = [row.format(i=i) for i in range(1, 151)]
    lines[59], lines[99] = opened, closed
    f = tmp_path / "docs.csv"
    f.write_text(header + "\n" + "".join(line + "\n" for line in lines))
    id_column = "id"
    docs, problems = read_documents(f, "csv", id_column, "title" if "title" in header else None, "text")
    assert len(docs) + len(problems) == 150  # rows kept + quarantined = rows in
    assert [p.row for p in problems] == ["line 61"] and "stray quote" in problems[0].problem
    assert docs["text"].str.len().max() < 60  # no document holds swallowed rows
    assert docs["provenance"].iloc[59].endswith("docs.csv:line 62")  # row 61 comes next, read where it is
    assert docs["text"].iloc[59] == "Text of document 61."
    with pytest.raises(InputError) as err:
        settle_problems(problems, "error", None)
    assert len(err.value.problems) == 1 and f"{f}, line 61: " in str(err.value)


def test_a_byte_that_is_not_utf8_spoils_its_row_not_the_corpus(tmp_path):
    """A single \\xff refused the whole corpus, naming the wrong line and an unclosed quote as the cause."""
    f = tmp_path / "docs.csv"
    f.write_bytes(b"id,title,text\n1,One,first\n2,Two,caf\xff\n3,Three,\"over\ntwo lines\"\n4,Four,\"x\ny\xfe\"\n")
    docs, problems = read_documents(f, "csv")
    assert docs["doc_id"].tolist() == ["1", "3"] and docs["text"].iloc[1] == "over\ntwo lines"
    assert [(p.row, p.problem) for p in problems] == [("line 3", "not valid UTF-8 (byte 9)"),
                                                      ("line 7", "not valid UTF-8 (byte 1)")]
    header = tmp_path / "header.csv"
    header.write_bytes(b"id,t\xffext\n1,one\n")
    with pytest.raises(InputError, match=r"header\.csv, line 1: not valid UTF-8 \(byte 4\)"):
        read_documents(header, "csv", text_column="t")


def test_broken_qrels_and_truncated_parquet_are_named_not_raw_errors(jaguar_beir, tmp_path):
    qrels = jaguar_beir / "qrels" / "test.tsv"
    lines = qrels.read_bytes().splitlines(keepends=True)
    qrels.write_bytes(b"".join(lines[:2]) + b"q\xe90\tdoc\t1\n" + b"".join(lines[2:]))
    pairs, problems = read_pairs(jaguar_beir, "beir", split="test")
    assert len(pairs) == len(lines) - 1
    assert [(p.file, p.row, p.problem) for p in problems] == [(str(qrels), "line 3", "not valid UTF-8 (byte 1)")]
    whole = tmp_path / "whole.parquet"
    pd.DataFrame({"id": [str(i) for i in range(500)], "text": ["some text"] * 500}).to_parquet(whole)
    truncated = tmp_path / "docs.parquet"
    truncated.write_bytes(whole.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"docs\.parquet, -: cannot read Parquet"):
        read_documents(truncated, "parquet")
    with pytest.raises(InputError, match=r"docs\.parquet, -: cannot read Parquet"):
        read_pairs(truncated, "parquet")


def test_quarantine_adds_to_what_it_holds(tmp_path):
    """It was rewritten at every read: rows set aside by an earlier read vanished."""
    q = tmp_path / "quarantine" / "corpus" / "abc.jsonl"
    first = [RowProblem("docs.csv", "line 2", "empty text"), RowProblem("docs.csv", "line 5", "duplicate id")]
    assert settle_problems(first, "quarantine", q) == 2
    assert settle_problems([first[1], RowProblem("docs.csv", "line 9", "empty id")], "quarantine", q) == 2
    assert [json.loads(line)["row"] for line in q.read_text().splitlines()] == ["line 2", "line 5", "line 9"]


def test_a_quoted_text_over_several_lines_is_still_one_document(tmp_path):
    docs, problems = read_documents(_csv_with(tmp_path, [
        '1,Reset,"Hold the button.\nThe light blinks, then stops.\nDone, ""really"" done."', "2,Pair,Use the code."]),
        "csv")
    assert problems == [] and docs["doc_id"].tolist() == ["1", "2"]
    assert docs["text"].iloc[0].count("\n") == 2 and '"really"' in docs["text"].iloc[0]
    # one further line that happens to have the row's width is no proof of a stray quote: a valid field reads
    docs, problems = read_documents(_csv_with(tmp_path, ['1,Address,"Acme Ltd\nSpringfield, IL, USA"', "2,T,x"]),
                                    "csv")
    assert problems == [] and docs["text"].tolist() == ["Acme Ltd\nSpringfield, IL, USA", "x"]


def test_text_that_is_not_text_is_a_named_row_problem(tmp_path):
    """Parquet float or list text became "0.0" / "['The', ...]" documents."""
    pd.DataFrame({"id": ["a", "b"], "text": [0.0, None]}).to_parquet(tmp_path / "floats.parquet")
    pd.DataFrame({"id": ["c", "d"], "text": [["The", "list"], None]}).to_parquet(tmp_path / "lists.parquet")
    for name, kind in (("floats", "float 0.0"), ("lists", "list ['The', 'list']")):
        docs, problems = read_documents(tmp_path / f"{name}.parquet", "parquet")
        assert docs.empty and len(problems) == 2
        assert problems[0].row == "row 1" and problems[0].problem.startswith(f"field 'text' holds {kind}")
        assert problems[0].problem.endswith("not text") and "empty text" in problems[1].problem


def test_a_document_over_the_size_limit_is_named(tmp_path):
    f = write_rows(tmp_path / "docs.jsonl", [{"id": "big", "text": "x" * 5_000}, {"id": "ok", "text": "fine"}])
    docs, problems = read_documents(f, "jsonl", max_chars=1_000)
    assert docs["doc_id"].tolist() == ["ok"]
    assert "document 'big' has 5,000 characters, over corpus.max_document_chars (1,000)" in problems[0].problem


def test_a_field_missing_from_every_row_is_one_message(tmp_path):
    f = write_rows(tmp_path / "docs.jsonl", [{"id": str(i), "body": "text"} for i in range(150)])
    with pytest.raises(InputError) as e:
        read_documents(f, "jsonl")
    assert len(e.value.problems) == 1 and "no row has the field 'text' (150 rows read)" in str(e.value)


def test_a_data_dir_that_is_a_file_is_a_named_settings_error(tmp_path):
    from embtune_pipeline.settings import SettingsError, load_settings

    (tmp_path / "data").write_text("not a folder")
    settings = tmp_path / "settings.yaml"
    settings.write_text("data_dir: ./data\ncorpus: {format: python-docs}\n")
    with pytest.raises(SettingsError, match=r"data_dir: .*data is a file"):
        load_settings(settings)


def test_a_query_log_is_a_text_file_or_a_column_and_repeats_count_once(tmp_path):
    from embtune_pipeline.lib.data.ingest import read_query_log

    text = tmp_path / "searches.txt"
    text.write_text("reset jaguar\n\n  jaguar battery  \nReset Jaguar?\n")
    log, problems = read_query_log(text)
    assert log["query"].tolist() == ["reset jaguar", "jaguar battery"] and not problems
    assert log["provenance"].tolist() == [f"{text}:line 1", f"{text}:line 3"]
    csv = tmp_path / "searches.csv"
    csv.write_text("user,search\nu1,reset jaguar\nu2,\n")
    log, problems = read_query_log(csv, "search")
    assert log["query"].tolist() == ["reset jaguar"]
    assert [(p.row, p.problem) for p in problems] == [("line 3", "empty query in field 'search'")]
    with pytest.raises(InputError, match=r"missing column\(s\) \['query'\]"):
        read_query_log(csv)
    with pytest.raises(InputError, match="file not found"):
        read_query_log(tmp_path / "none.txt")
