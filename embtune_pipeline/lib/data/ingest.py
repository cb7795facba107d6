"""Read corpora and (query, target) pair files into DataFrames, naming file and row on bad input.

`format: dir` (a folder of documents) reads every .txt, .md, .markdown, .html and .htm file under the folder,
subfolders included, skipping hidden files and folders (names starting with a dot); other files are ignored.
Each file is one document: its id is its path under the folder (`guide/setup.md`), so renaming or moving a file
makes it another document. Markdown and HTML lose their markup before chunking (lib.data.markup: headings, link
texts and code stay as plain text; URLs and tags go). The title is the one the document gives itself
(Markdown: front matter `title:`, else the first `# heading`, which then leaves the text; HTML: <title>, else
the first <h1>), else the file name without its suffix (`setup`). Text files are read as UTF-8.
"""

from __future__ import annotations

import csv
import inspect
import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import pandas as pd
import pyarrow.parquet as pq

from embtune_pipeline.lib.data.markup import plain_document
from embtune_pipeline.lib.errors import InputError, RowProblem, file_problem
from embtune_pipeline.lib.storage import write_atomically

DOC_COLUMNS = ["doc_id", "title", "text", "provenance"]
PAIR_COLUMNS = ["query_id", "query", "doc_id", "answer", "score", "provenance", "judge"]
JUDGE_FIELD = "judge"  # who judged a row of an eval-set file: "human" (the default), "human:<name>", "llm:<model>"
HUMAN = "human"

Row = tuple[str, dict]  # (row label, record)


def iter_records(path: Path, fmt: str) -> Iterator[Row | RowProblem]:
    """Yield (row label, record) per row, or a RowProblem for a row that cannot be parsed."""
    path = Path(path)
    if not path.is_file():
        raise file_problem(path, "file not found")
    if fmt == "jsonl":
        with path.open("rb") as f:
            for i, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8-sig" if i == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    yield RowProblem(str(path), f"line {i}", f"not valid UTF-8 (byte {e.start})")
                    continue
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    yield RowProblem(str(path), f"line {i}", f"malformed JSON ({e.msg} at column {e.colno})")
                    continue
                if not isinstance(rec, dict):
                    yield RowProblem(str(path), f"line {i}", f"expected a JSON object, got {type(rec).__name__}")
                    continue
                yield f"line {i}", rec
    elif fmt == "csv":
        yield from _csv_records(path)
    elif fmt == "parquet":
        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise file_problem(path, f"cannot read Parquet: {e}") from e
        for i, rec in enumerate(table.to_pylist(), start=1):
            yield f"row {i}", rec
    else:
        raise file_problem(path, f"unknown format {fmt!r} (expected jsonl, csv or parquet)")


def _csv_records(path: Path) -> Iterator[Row | RowProblem]:
    """CSV rows that cannot swallow one another. The dialect is strict (a quote must close a field), and a
    record over several lines whose lines read, each alone, as rows of the header's width is a stray quote: that
    row is a bad row and the lines it swallowed are read again as rows of their own. A lenient reader merged
    every row up to the next quote into one text. A byte that is not UTF-8 spoils its row, not the file."""
    with _open_csv(path) as f:
        lines = _CsvLines(path, f)
        header = _csv_header(lines)
        while True:
            values, error = lines.next_record()
            if values is None and error is None:
                return
            if not values and error is None:
                continue  # a blank line
            start, inner = lines.taken[0][0], [text for _, text, _ in lines.taken[1:]]
            if inner and _swallowed_rows(inner, len(header), broken=error is not None or len(values) != len(header)):
                yield RowProblem(str(path), f"line {start}", (
                    f"a quote opened in this row runs over the next {len(inner)} line(s), which read as rows of "
                    "their own: a stray quote? The row is set aside and those lines are read as rows; close the "
                    "quote, or write a quote inside a field as \"\""))
                lines.read_again(lines.taken[1:])
            elif error is not None:
                yield RowProblem(str(path), f"line {start}", (
                    f"unreadable CSV ({error}): a quote opened in this row is not closed where the field ends; "
                    "quote the whole field and write a quote inside it as \"\""))
            elif problem := lines.undecodable():
                yield problem
            elif len(values) != len(header):
                yield RowProblem(str(path), f"line {start}", f"expected {len(header)} fields, found {len(values)}")
            else:
                yield f"line {start}", dict(zip(header, values))


def _csv_header(lines: "_CsvLines") -> list[str]:
    header, error = lines.next_record()
    if error is not None:
        raise file_problem(lines.path, f"unreadable CSV header ({error})")
    if header is None:
        raise file_problem(lines.path, "empty CSV file (no header row)")
    if problem := lines.undecodable():
        raise InputError([problem])
    return header


def _swallowed_rows(inner: list[str], fields: int, broken: bool) -> bool:
    """Whether the lines a multi-line record runs over are rows a stray quote swallowed: most of them parse, each
    alone, as a row of the header's width, whatever the columns hold. A record that reads well (the right width,
    no error) is a valid CSV field, so it takes at least two such lines to overturn it: prose over several lines
    rarely has the row's width on most of them, but one line may."""
    rows = sum(len(next(csv.reader([text]), [])) == fields for text in inner)
    return rows * 2 > len(inner) and (broken or rows >= 2)


_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a byte that is not UTF-8
_Line = tuple[int, str, Optional[int]]  # (line number, text, offset of the first byte that is not UTF-8)


class _CsvLines:
    """The physical lines of a CSV file, read by a strict csv.reader one record at a time; the lines of the last
    record are kept (`taken`) so they can be named, or handed out again."""

    def __init__(self, path: Path, f):
        self.path = str(path)
        self._file = f
        self._number = 0
        self._again: list[_Line] = []
        self.taken: list[_Line] = []
        self._reader = csv.reader(self, strict=True)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self._again:
            line = self._again.pop()
        else:
            text = self._file.readline()
            if not text:
                raise StopIteration
            self._number += 1
            bad = _NOT_UTF8.search(text)
            line = (self._number, text, len(text[:bad.start()].encode("utf-8", "surrogateescape")) if bad else None)
        self.taken.append(line)
        return line[1]

    def next_record(self) -> tuple[Optional[list[str]], Optional[csv.Error]]:
        """The next record's fields (None at the end), or the error that stopped it."""
        self.taken = []
        try:
            return next(self._reader, None), None
        except csv.Error as e:
            return None, e

    def undecodable(self) -> Optional[RowProblem]:
        """The first line of the last record holding a byte that is not UTF-8, as a problem."""
        number, byte = next(((n, byte) for n, _, byte in self.taken if byte is not None), (0, None))
        return RowProblem(self.path, f"line {number}", f"not valid UTF-8 (byte {byte})") if byte is not None else None

    def read_again(self, lines: list[_Line]) -> None:
        self._again.extend(reversed(lines))


def _open_csv(path: Path):
    """Text lines as the csv module wants them (newline=""); a byte that is not UTF-8 is kept as a surrogate so
    its row can be named, and a BOM is not part of the first column."""
    csv.field_size_limit(sys.maxsize)  # long documents are fine; the default cap is 128 KiB a field
    return Path(path).open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def _columns_of(path: Path, fmt: str) -> Optional[list[str]]:
    """The declared columns of a CSV or Parquet file (JSONL rows each carry their own keys)."""
    if not Path(path).is_file():
        raise file_problem(path, "file not found")
    if fmt == "csv":
        with _open_csv(path) as f:
            return _csv_header(_CsvLines(path, f))
    if fmt == "parquet":
        try:
            return pq.read_schema(path).names
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise file_problem(path, f"cannot read Parquet: {e}") from None
    return None


def require_columns(path: Path, fmt: str, required: list[str]) -> None:
    cols = _columns_of(path, fmt)
    if cols is None:
        return
    missing = [c for c in required if c not in cols]
    if missing:
        raise file_problem(path, f"missing column(s) {missing}; the file has {cols}")


def _text(value) -> str:
    return "" if value is None else str(value)


def settle_problems(problems: list[RowProblem], policy: str, quarantine_file: Optional[Path], hint: str = "") -> int:
    """Fail on problems (policy 'error') or add them to the quarantine file, which keeps what earlier reads set
    aside (a row once there is there once); returns the count set aside by this read."""
    if not problems:
        return 0
    if policy == "error" or quarantine_file is None:
        raise InputError(problems, hint or "set corpus.bad_rows: quarantine to set such rows aside instead")
    quarantine_file = Path(quarantine_file)
    held = quarantine_file.read_text(encoding="utf-8").splitlines() if quarantine_file.exists() else []
    lines = list(dict.fromkeys([line for line in held if line.strip()] + [json.dumps(p.to_dict()) for p in problems]))
    write_atomically(quarantine_file, lambda tmp: tmp.write_text("".join(f"{line}\n" for line in lines),
                                                                 encoding="utf-8"))
    return len(problems)


# ---------------------------------------------------------------- documents


def read_documents(
    path: Optional[Path],
    fmt: str,
    id_column: str = "id",
    title_column: Optional[str] = "title",
    text_column: str = "text",
    modules: Optional[list[str]] = None,
    max_chars: int = 0,
) -> tuple[pd.DataFrame, list[RowProblem]]:
    """All documents of a corpus, plus the rows that could not be used (malformed, empty, duplicate id, a text
    that is not text, a document over `max_chars` characters; 0 sets no limit)."""
    if fmt == "python-docs":
        return python_docs_corpus(modules), []
    if fmt == "dir":
        rows = _dir_rows(Path(path))
        source = str(path)
    else:
        file = Path(path) / "corpus.jsonl" if fmt == "beir" else Path(path)
        file_fmt = "jsonl" if fmt == "beir" else fmt
        if fmt == "beir":
            id_column, title_column, text_column = id_column or "_id", "title", "text"
        require_columns(file, file_fmt, [id_column, text_column])
        rows = iter_records(file, file_fmt)
        source = str(file)

    records, problems, seen, missing, rows_read = [], [], {}, {}, 0
    for item in rows:
        if isinstance(item, RowProblem):
            problems.append(item)
            continue
        label, rec = item
        rows_read += 1
        if fmt != "dir":
            absent = next((c for c in (id_column, text_column) if c not in rec), None)
            if absent:
                missing[absent] = missing.get(absent, 0) + 1
                problems.append(RowProblem(source, label, f"missing field {absent!r}"))
                continue
        doc_id = _text(rec.get(id_column if fmt != "dir" else "id")).strip()
        wrong = [(c, v) for c in (title_column, text_column if fmt != "dir" else "text")
                 if c and (v := rec.get(c)) is not None and not isinstance(v, str)]
        if wrong:
            column, value = wrong[0]
            problems.append(RowProblem(source, label, f"field {column!r} holds {type(value).__name__} "
                                       f"{_short(value)}, not text"))
            continue
        title = _text(rec.get(title_column)) if title_column else ""
        text = _text(rec.get(text_column if fmt != "dir" else "text"))
        if max_chars and len(text) > max_chars:
            problems.append(RowProblem(source, label, f"document {doc_id!r} has {len(text):,} characters, over "
                                       f"corpus.max_document_chars ({max_chars:,}): split it, or raise the limit"))
            continue
        if not doc_id:
            problems.append(RowProblem(source, label, f"empty id in field {id_column!r}"))
            continue
        if not text.strip() and not title.strip():
            problems.append(RowProblem(source, label, f"empty text for document {doc_id!r}"))
            continue
        if doc_id in seen:
            problems.append(RowProblem(source, label, f"duplicate id {doc_id!r} (first seen at {seen[doc_id]})"))
            continue
        seen[doc_id] = label
        records.append((doc_id, title, text, f"{source}:{label}"))
    for column, count in missing.items():
        if count == rows_read:  # not a bad row: the wrong column name, said once
            raise file_problem(source, f"no row has the field {column!r} ({count} rows read): set the corpus "
                                       "column names in settings (id_column, text_column)")
    return pd.DataFrame(records, columns=DOC_COLUMNS), problems


def _short(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


DIR_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")


def dir_files(root: Path) -> list[Path]:
    """The files a `format: dir` corpus reads: every .txt, .md, .markdown, .html and .htm file (any case) under
    the folder, subfolders included, except hidden ones (a name, or a folder on the way, starting with a dot:
    .git, .github, .venv), in path order."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in DIR_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _dir_rows(root: Path) -> Iterator[Row]:
    """One document per file (dir_files): its id is its path under the folder (guide/setup.md), its text the
    file's (UTF-8; a byte that is not UTF-8 becomes U+FFFD) with Markdown and HTML markup removed (lib.data.markup),
    its title the one the document gives itself (Markdown: front matter `title:` or the first `# heading`; HTML:
    <title> or the first <h1>), else the file name without its suffix. A bad row names the file."""
    if not root.is_dir():
        raise file_problem(root, "corpus directory not found")
    files = dir_files(root)
    if not files:
        raise file_problem(root, f"no {', '.join(DIR_SUFFIXES)} files in the corpus directory (hidden ones are "
                                 "not read)")
    for p in files:
        doc = plain_document(p.read_text(encoding="utf-8", errors="replace"), p.suffix)
        rel = p.relative_to(root).as_posix()
        yield rel, {"id": rel, "title": doc.title or p.stem, "text": doc.text}


DEMO_MODULES = [
    "json", "csv", "pathlib", "os.path", "shutil", "re", "datetime", "collections", "itertools", "functools",
    "statistics", "random", "string", "textwrap", "hashlib", "base64", "gzip", "zipfile", "tarfile", "sqlite3",
    "logging", "argparse", "subprocess", "threading", "queue", "heapq", "bisect", "decimal", "fractions",
    "urllib.parse", "html", "uuid", "tempfile", "glob", "fnmatch", "difflib", "calendar", "math", "secrets",
    "copy", "pprint", "enum", "dataclasses", "contextlib", "inspect", "typing", "operator", "shlex", "struct",
]


def python_docs_corpus(modules: Optional[list[str]] = None) -> pd.DataFrame:
    """A demo corpus every machine has: the docstrings of the standard library (PSF licence).

    One document per module and per public function, class and method with a docstring of some substance.
    """
    import importlib

    records, seen = [], set()
    for name in modules or DEMO_MODULES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except ImportError:
            continue
        for qualname, obj in _documented(module, name):
            doc = inspect.getdoc(obj) or ""
            if len(doc.split()) < 12 or qualname in seen:
                continue
            seen.add(qualname)
            records.append((qualname, qualname, doc, f"python-docs:{qualname}"))
    return pd.DataFrame(records, columns=DOC_COLUMNS)


def _documented(module, name: str):
    yield name, module
    for attr, obj in sorted(vars(module).items()):
        if attr.startswith("_") or getattr(obj, "__module__", None) not in (module.__name__, name):
            continue
        if inspect.isfunction(obj) or inspect.isbuiltin(obj):
            yield f"{name}.{attr}", obj
        elif inspect.isclass(obj):
            yield f"{name}.{attr}", obj
            for meth_name, meth in sorted(vars(obj).items()):
                if not meth_name.startswith("_") and (inspect.isfunction(meth) or inspect.ismethoddescriptor(meth)):
                    yield f"{name}.{attr}.{meth_name}", meth


# ---------------------------------------------------------------- pairs


@dataclass(frozen=True)
class PairsSource:
    """Where a pairs file is and how to read it (the settings' click_logs, qa_pairs, eval_set sections give
    one each): the lib reads files from this plain value, never from the settings object."""

    path: Path
    format: str  # beir, jsonl, parquet or csv
    split: str = "train"
    query_column: str = "query"
    doc_id_column: Optional[str] = "doc_id"
    answer_column: Optional[str] = None
    score_column: Optional[str] = None


def read_pairs(
    path: Path,
    fmt: str,
    split: str = "train",
    query_column: str = "query",
    doc_id_column: Optional[str] = "doc_id",
    answer_column: Optional[str] = None,
    score_column: Optional[str] = None,
) -> tuple[pd.DataFrame, list[RowProblem]]:
    """(query, target) rows of a click log, Q&A file or eval file; BEIR reads queries.jsonl + qrels/<split>.tsv."""
    if fmt == "beir":
        return _read_beir_pairs(Path(path), split)
    required = [query_column, score_column] + [c for c in (doc_id_column, answer_column) if c]
    require_columns(path, fmt, [c for c in required if c])
    records, problems = [], []
    for item in iter_records(Path(path), fmt):
        if isinstance(item, RowProblem):
            problems.append(item)
            continue
        label, rec = item
        where = f"{path}:{label}"
        query = _text(rec.get(query_column)).strip()
        doc_id = _text(rec.get(doc_id_column)).strip() if doc_id_column else ""
        answer = _text(rec.get(answer_column)).strip() if answer_column else ""
        if not query:
            problems.append(RowProblem(str(path), label, f"empty query in field {query_column!r}"))
            continue
        if not doc_id and not answer:
            wanted = " or ".join(repr(c) for c in (doc_id_column, answer_column) if c)
            problems.append(RowProblem(str(path), label, f"no target: field {wanted} is missing or empty"))
            continue
        score = rec.get(score_column) if score_column else 1
        try:
            score = int(float(score))
        except (TypeError, ValueError):
            problems.append(RowProblem(str(path), label, f"score {score!r} is not a number"))
            continue
        judge = _text(rec.get(JUDGE_FIELD)).strip() or HUMAN
        records.append((query_id_for(query), query, doc_id or None, answer or None, score, where, judge))
    return pd.DataFrame(records, columns=PAIR_COLUMNS), problems


QUERY_LOG_COLUMNS = ["query_id", "query", "provenance"]


def read_query_log(path: Path, column: str = "query") -> tuple[pd.DataFrame, list[RowProblem]]:
    """Real queries without judgments (a search log): one query a line in a text file, or a column of a CSV,
    JSONL or Parquet file. Repeats are kept once (the first row says where it came from)."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    fmt = {"json": "jsonl", "jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}.get(suffix, "text")
    rows, problems = [], []
    if fmt == "text":
        if not path.is_file():
            raise file_problem(path, "file not found")
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as e:
            raise file_problem(path, f"not valid UTF-8 (byte {e.start})") from None
        rows = [(f"line {i}", line.strip()) for i, line in enumerate(lines, start=1) if line.strip()]
    else:
        require_columns(path, fmt, [column])
        for item in iter_records(path, fmt):
            if isinstance(item, RowProblem):
                problems.append(item)
                continue
            label, rec = item
            query = _text(rec.get(column)).strip()
            if query:
                rows.append((label, query))
            else:
                problems.append(RowProblem(str(path), label, f"empty query in field {column!r}"))
    out = pd.DataFrame([(query_id_for(q), q, f"{path}:{label}") for label, q in rows], columns=QUERY_LOG_COLUMNS)
    return out.drop_duplicates("query_id").reset_index(drop=True), problems


def query_id_for(query: str) -> str:
    import hashlib

    return "q" + hashlib.sha256(normalize_query(query).encode()).hexdigest()[:12]


def normalize_query(query: str) -> str:
    """The form used to compare queries: lower case, single spaces, no trailing punctuation."""
    return re.sub(r"\s+", " ", query.lower()).strip().rstrip("?.! ")


def _read_beir_pairs(root: Path, split: str) -> tuple[pd.DataFrame, list[RowProblem]]:
    qrels_file = root / "qrels" / f"{split}.tsv"
    queries_file = root / "queries.jsonl"
    for f in (qrels_file, queries_file):
        if not f.is_file():
            raise file_problem(f, "file not found")
    queries, problems = {}, []
    for item in iter_records(queries_file, "jsonl"):
        if isinstance(item, RowProblem):
            problems.append(item)
            continue
        label, rec = item
        if "_id" not in rec or not _text(rec.get("text")).strip():
            problems.append(RowProblem(str(queries_file), label, "a query needs '_id' and a non-empty 'text'"))
            continue
        queries[str(rec["_id"])] = (_text(rec["text"]).strip(), label)
    records = []
    with qrels_file.open("rb") as f:
        for i, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if i == 1 else "utf-8")
            except UnicodeDecodeError as e:
                problems.append(RowProblem(str(qrels_file), f"line {i}", f"not valid UTF-8 (byte {e.start})"))
                continue
            parts = line.rstrip("\r\n").split("\t")
            if i == 1 and parts[0] == "query-id":
                continue
            if not line.strip():
                continue
            if len(parts) != 3:
                problems.append(RowProblem(str(qrels_file), f"line {i}",
                                           f"expected 3 tab-separated fields, found {len(parts)}"))
                continue
            qid, doc_id, score = parts
            if qid not in queries:
                problems.append(RowProblem(str(qrels_file), f"line {i}",
                                           f"query id {qid!r} is not in {queries_file.name}"))
                continue
            try:
                score = int(float(score))
            except ValueError:
                problems.append(RowProblem(str(qrels_file), f"line {i}", f"score {score!r} is not a number"))
                continue
            records.append((qid, queries[qid][0], doc_id, None, score, f"{qrels_file}:line {i}", HUMAN))
    return pd.DataFrame(records, columns=PAIR_COLUMNS), problems
