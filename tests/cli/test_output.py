"""The CLI's output layer (issue case 9): no character a log line carries can steer the terminal."""

from __future__ import annotations

import io
import re

from rich.console import Group
from rich.table import Table
from rich.text import Text

from watcher.cli.console import printable
from watcher.cli.safe_console import SafeConsole

HOSTILE = "a\x1b]0;pwned\x07\x1b[2J\x9b31m b\u202ec\u2028d\x7f\r"


def shown(*renderables: object, markup: bool = False, terminal: bool = False) -> str:
    buf = io.StringIO()
    console = SafeConsole(file=buf, width=60, force_terminal=terminal, highlight=False, emoji=False)
    console.print(*renderables, markup=markup)
    return buf.getvalue()


def steering(text: str) -> list[str]:
    """The characters of `text` that act on a terminal, but rich's own styling (ESC [ ... m)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return [
        c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 or c in "\u202e\u2028"
    ]


class TestPrintable:
    def test_controls_are_written_as_escapes_and_text_is_kept(self) -> None:
        """ESC, BEL, CSI, DEL, CR, bidi overrides and line separators become visible escapes."""
        assert printable(HOSTILE) == "a\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m b\\u202ec\\u2028d\\x7f\\x0d"
        assert printable("caf\u00e9 \u2603\tok\n") == "caf\u00e9 \u2603\tok\n"


class TestSafeConsole:
    def test_str_text_tables_and_groups_all_come_out_printable(self) -> None:
        """Whatever a view builds from log text, nothing steers the terminal, even with colours on."""
        table = Table()
        table.add_column("source")
        table.add_row(HOSTILE)
        table.add_row(Text.assemble((HOSTILE, "red"), " ok"))
        for terminal in (False, True):
            out = shown(HOSTILE, Text(HOSTILE, style="bold"), table, Group(Text(HOSTILE)), terminal=terminal)
            assert steering(out) == [], terminal
            assert "\\x1b]0;pwned" in out

    def test_a_table_cell_shows_the_whole_escaped_text(self) -> None:
        """Escapes are laid out as text: a cell is measured with them, nothing is cut off."""
        table = Table()
        table.add_column("x")
        table.add_row("e\x1b[31mvil")
        assert "e\\x1b[31mvil" in shown(table)

    def test_markup_still_works_and_escaped_brackets_stay_literal(self) -> None:
        """The consoles' markup is unchanged; a log's `[` escaped by the caller stays text."""
        out = shown("[red]ConfigError[/red]: x\x1b\\[1m]", markup=True, terminal=True)
        assert "\x1b[31m" in out and "x\\x1b[1m]" in out and steering(out) == []
