from embtune_pipeline.lib.data.markup import html_to_text, markdown_to_text, plain_document


def test_markdown_loses_its_markup_and_keeps_its_words():
    doc = markdown_to_text(
        "# Models\n\nSome **bold**, _emphasis_, `code()` and a [link](https://x.org/a \"t\") with a\n"
        "wrapped line.\n\n## Pre-trained Bi-Encoders (Retrieval)\n\n- one [ref link][r]\n- two\n\n"
        "> a quote\n\n```python\nprint(1)\n```\n\n    indented code\n\n![a diagram](d.png)\n\n"
        "<div class=\"note\">an <em>html</em> block</div>\n<!-- hidden -->\n\n[r]: https://x.org/r\n")
    assert doc.title == "Models"
    assert doc.text.split("\n\n") == [
        "Some bold, emphasis, code() and a link with a wrapped line.", "Pre-trained Bi-Encoders (Retrieval)",
        "one ref link", "two", "a quote", "print(1)", "indented code", "a diagram", "an html block"]


def test_a_markdown_title_is_front_matter_then_the_first_level_one_heading_else_none():
    doc = markdown_to_text("---\ntitle: Setting up\ntags: [a]\n---\n# Setup\n\nText.\n")
    assert (doc.title, doc.text) == ("Setting up", "Setup\n\nText.")  # the h1 is text when it is not the title
    assert markdown_to_text("Setup\n=====\n\nText.\n") == markdown_to_text("# Setup\n\nText.\n")
    assert markdown_to_text("## Only a section\n\nText.\n").title is None
    not_front_matter = markdown_to_text("---\n\nText after a rule.\n")
    assert (not_front_matter.title, not_front_matter.text) == (None, "Text after a rule.")
    assert markdown_to_text("```\n# not a heading\n```\n").title is None  # a parser, not a regex


def test_html_loses_tags_scripts_and_styles_and_keeps_link_texts():
    doc = html_to_text(
        "<!doctype html><html><head><title>Terms &amp; care</title><style>p{}</style></head><body>"
        "<h1>Warranty</h1><p>Two <b>years</b>, see <a href='https://x'>the terms</a> &lt;here&gt;.</p>"
        "<script>var s = '<p>no</p>';</script><table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr>"
        "</table><img src='i.png' alt='a chart'></body></html>")
    assert doc.title == "Terms & care"
    assert doc.text == "Warranty\n\nTwo years, see the terms <here>.\n\nA; B\n\n1; 2\n\na chart"
    h1_only = html_to_text("<h1>Battery</h1><p>Charge it.</p>")
    assert (h1_only.title, h1_only.text) == ("Battery", "Charge it.")


def test_plain_text_is_kept_as_it_is():
    assert plain_document("# not markup in a .txt", ".txt").text == "# not markup in a .txt"
    assert plain_document("# Title\n\nx", ".MD").title == "Title"
