"""A postmortem draft read back by a real markdown parser (markdown-it-py: CommonMark with GFM tables).

A parser does not fail on bad markdown, it renders it as something else: a table row
with a stray `|` gets a cell too many (dropped), a row that is not a table row becomes a
paragraph of pipes. So "renders without errors" is checked as: every line that looks like
a table row is a row of a parsed table, and every row has its table's number of cells.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

HEADINGS = [
    "1. Summary",
    "2. Impact",
    "3. Timeline",
    "4. Root cause",
    "5. What went well",
    "6. What went wrong",
    "7. Action items",
]
"""The runbook's seven sections, as the draft's h2 headings."""


def check_markdown(text: str) -> list[str]:
    """The h1 and h2 headings of `text`; AssertionError when a table does not parse as written."""
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    md.render(text)
    headings = [
        tokens[i + 1].content
        for i, t in enumerate(tokens)
        if t.type == "heading_open" and t.tag in ("h1", "h2")
    ]
    table_lines = [n for n, line in enumerate(text.splitlines()) if line.startswith("|")]
    parsed_lines: list[int] = []
    for table in _tables(tokens):
        assert table[0].map is not None
        first, end = table[0].map
        parsed_lines += range(first, end)
        widths = _row_widths(table)
        assert len(set(widths)) == 1, f"table at line {first + 1} has rows of {widths} cells"
        source_rows = [ln for ln in text.splitlines()[first:end] if not _delimiter(ln)]
        assert len(source_rows) == len(widths), f"table at line {first + 1}: rows lost"
    assert table_lines == parsed_lines, "a line starting with | is not part of a table"
    return headings


def _delimiter(line: str) -> bool:
    """`| --- | ---: |`: the row under a table's header."""
    return "-" in line and set(line) <= set("|-: ")


def _tables(tokens: list[Token]) -> list[list[Token]]:
    tables: list[list[Token]] = []
    current: list[Token] | None = None
    for t in tokens:
        if t.type == "table_open":
            current = [t]
        elif current is not None:
            current.append(t)
            if t.type == "table_close":
                tables.append(current)
                current = None
    return tables


def _row_widths(table: list[Token]) -> list[int]:
    widths: list[int] = []
    for t in table:
        if t.type == "tr_open":
            widths.append(0)
        elif t.type in ("th_open", "td_open"):
            widths[-1] += 1
    return widths
