"""The rich Console behind `out` and `err` (watcher.cli.console says why it escapes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Span, Text

from watcher.cli.console import ESCAPED, printable


def _printable_text(text: Text) -> Text:
    """`text` through `printable`, its styles kept on the same characters."""
    plain = text.plain
    safe = printable(plain)
    if safe == plain:
        return text
    at = [0]
    for c in plain:
        at.append(at[-1] + len(ESCAPED.get(ord(c), c)))
    return Text(
        safe,
        text.style,
        justify=text.justify,
        overflow=text.overflow,
        no_wrap=text.no_wrap,
        end=text.end,
        tab_size=text.tab_size,
        spans=[Span(at[s.start], at[s.end], s.style) for s in text.spans],
    )


class SafeConsole(Console):
    """A rich Console that shows every character it is given instead of letting it act.

    Text is made printable before it is laid out (so it wraps with its escapes), and
    every segment once more on the way out, whatever renderable produced it.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Every str becomes Text here (printed, or a table cell measured): made printable first."""
        return super().render_str(printable(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        if isinstance(renderable, Text):
            renderable = _printable_text(renderable)
        for segment in super().render(renderable, options):
            # Control segments are rich's own cursor moves (status --watch); styles are added later.
            yield segment if segment.control else segment._replace(text=printable(segment.text))
