"""Markup is not text: the plain text, and the title, of a Markdown or HTML document, read by a real parser
(markdown-it-py for Markdown, the standard library's html.parser for HTML), so no `##`, `**`, `](url)` or tag
reaches a chunk, an embedding or a generated query.

What is kept: the text of headings (each a line of its own), paragraphs, list items, block quotes and table
cells (a row a paragraph, its cells separated by "; "); a link's text (never its URL); an image's alt text; the text
inside code spans and code blocks, without the fences or backticks (code is what people search technical
docs for). What is dropped: markup, URLs, HTML comments, and the contents of <script>, <style>, <template>,
<noscript>, <svg> and <head> (its <title> aside).

The title: Markdown's front matter `title:` (a YAML block between `---` lines at the very top), else its
first level-1 heading (`# Title` or a setext `Title` over `===`), which then leaves the text since every chunk
is embedded with its title; HTML's <title>, else its first <h1> (which then leaves the text). None when the
document has neither, and the caller picks one (the file name).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Optional

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
CELL_SEPARATOR = "; "


@dataclass(frozen=True)
class PlainDocument:
    """A document's text without its markup, and the title it gives itself (None: it gives none)."""

    title: Optional[str]
    text: str


def plain_document(text: str, suffix: str) -> PlainDocument:
    """A file's text as plain text, by its suffix: Markdown and HTML lose their markup, anything else is kept."""
    suffix = suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return markdown_to_text(text)
    if suffix in HTML_SUFFIXES:
        return html_to_text(text)
    return PlainDocument(None, text)


# ---------------------------------------------------------------- Markdown

_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _front_matter(text: str) -> tuple[Optional[dict], str]:
    """A YAML front-matter block (`---` on the first line, closed by `---` or `...`) and the text after it; a
    block that does not close or is not a YAML mapping is not front matter and stays text."""
    lines = text.lstrip("\ufeff").split("\n")
    if not lines or lines[0].rstrip() != "---":
        return None, text
    for end in range(1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            try:
                meta = yaml.safe_load("\n".join(lines[1:end]))
            except yaml.YAMLError:
                return None, text
            return (meta, "\n".join(lines[end + 1:])) if isinstance(meta, dict) else (None, text)
    return None, text


def _inline_text(token: Token) -> str:
    """An inline token's text: text and code spans as written, a link's text, an image's alt text; a soft line
    break is a space (a sentence wrapped over lines reads as one), inline HTML tags are dropped."""
    out = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type == "softbreak":
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "image":
            out.append(child.content)  # the alt text
    return "".join(out)


def markdown_to_text(text: str) -> PlainDocument:
    """A Markdown document's plain text and title (see the module's docstring)."""
    meta, body = _front_matter(text)
    title = meta.get("title") if meta else None
    title = str(title).strip() if isinstance(title, (str, int, float)) and str(title).strip() else None
    blocks: list[str] = []
    row: Optional[list[str]] = None
    heading: Optional[str] = None  # the tag of the heading being read
    for token in _MARKDOWN.parse(body):
        if token.type == "heading_open":
            heading = token.tag
        elif token.type == "heading_close":
            heading = None
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            blocks.append(CELL_SEPARATOR.join(c for c in row if c))
            row = None
        elif token.type == "inline":
            content = _inline_text(token).strip()
            if row is not None:
                row.append(content)
            elif heading == "h1" and title is None and content:
                title = content  # the first level-1 heading: the title, so not repeated in the text
            elif content:
                blocks.append(content)
        elif token.type in ("fence", "code_block"):
            blocks.append(token.content.rstrip("\n"))
        elif token.type == "html_block":
            blocks.append(html_to_text(token.content).text)
    return PlainDocument(title, "\n\n".join(b for b in blocks if b.strip()))


# ---------------------------------------------------------------- HTML

_SKIPPED = frozenset({"script", "style", "template", "noscript", "svg", "head"})
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details", "dialog", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "thead", "tfoot", "tr",
    "ul"})
_CELLS = frozenset({"td", "th"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
                   "wbr"})


class _TextOf(HTMLParser):
    """Collects the text of an HTML document: blocks become lines, table cells are separated, skipped elements
    (scripts, styles, the head) leave nothing but the <title>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []  # the open skipped elements
        self.title: Optional[str] = None
        self.in_title = False
        self.title_parts: list[str] = []
        self.h1: Optional[tuple[int, int]] = None  # the first <h1>'s span in parts
        self.h1_start: Optional[int] = None

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self.in_title = True
        elif tag in _SKIPPED and tag not in _VOID:
            self.skipping.append(tag)
        elif tag == "img" and not self.skipping:
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f" {alt} ")
        elif tag in _BLOCKS and not self.skipping:
            self.parts.append("\n\n")
            if tag == "h1" and self.h1 is None and self.h1_start is None:
                self.h1_start = len(self.parts)
        elif tag in _CELLS and not self.skipping:
            self.parts.append(CELL_SEPARATOR)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag in self.skipping and tag == self.skipping[-1]:
            self.skipping.pop()

    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = False
            if self.title is None:
                self.title = " ".join("".join(self.title_parts).split()) or None
        elif tag in _SKIPPED and tag in self.skipping:
            while self.skipping and self.skipping.pop() != tag:
                pass
        elif tag in _BLOCKS and not self.skipping:
            if tag == "h1" and self.h1_start is not None and self.h1 is None:
                self.h1 = (self.h1_start, len(self.parts))
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self.in_title:
            self.title_parts.append(data)
        elif not self.skipping:
            self.parts.append(data)


def _lines(text: str) -> str:
    """Lines with single spaces, a table row's leading separator dropped, blank lines collapsed."""
    lines = []
    for line in text.split("\n"):
        line = " ".join(line.split())
        line = line.removeprefix(CELL_SEPARATOR.strip()).strip()
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip()


def html_to_text(text: str) -> PlainDocument:
    """An HTML document's (or fragment's) plain text and title (see the module's docstring)."""
    parser = _TextOf()
    parser.feed(text)
    parser.close()
    parts, title = parser.parts, parser.title
    if title is None and parser.h1 is not None:
        start, end = parser.h1
        title = " ".join("".join(parts[start:end]).split()) or None
        if title:
            parts = parts[:start] + parts[end:]
    return PlainDocument(title, _lines("".join(parts)))
