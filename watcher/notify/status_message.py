"""What an incident's living status message says (the Slack app edits it in place).

Pure: a `StatusNews` in, plain lines out (the renderer redacts, escapes and assembles
them like every other message). The progress bar is the clean streak against the
window, in `BAR` cells: a person glancing at the channel sees how far the proof is.
"""

from __future__ import annotations

from collections.abc import Callable

from watcher.events import State
from watcher.notify.news import StatusNews
from watcher.times import format_duration

BAR = 20
FULL, EMPTY = "▰", "▱"


def progress_bar(clean: float, window: float, cells: int = BAR) -> str:
    """`▰▰▰▰▰▱▱▱…` with the share of `window` that `clean` covers, rounded down (full only when done)."""
    share = 0.0 if window <= 0 else min(1.0, max(0.0, clean / window))
    filled = int(share * cells)
    return FULL * filled + EMPTY * (cells - filled)


def status_lines(news: StatusNews, utc: Callable[[object], str]) -> tuple[str, list[str], str | None]:
    """(headline, detail lines, the last error's line to quote or None), unescaped and unredacted."""
    headline = f"*{news.incident}* {news.title}: {str(news.state).upper()}"
    lines: list[str] = []
    window = format_duration(news.window)
    if news.state is State.INVESTIGATING:
        lines.append(f"investigating since {utc(news.opened_at)}: no mitigation yet, so no streak clock")
    elif news.resolved_at is not None:
        lines.append(
            f"`{progress_bar(1, 1)}` resolved at {utc(news.resolved_at)}: "
            f"clean {window} from {utc(news.streak_start)}"
        )
    elif news.state is not State.CLOSED:
        clean = format_duration(round(news.clean_streak))
        bar = progress_bar(news.clean_streak, news.window)
        lines.append(f"`{bar}` clean {clean} of {window} since {utc(news.streak_start)}")
    if news.blind_sources:
        lines.append(f"cannot see {', '.join(news.blind_sources)}: it cannot resolve until they are back")
    sources = ", ".join(news.sources) or "no source yet"
    evidence = f"evidence: {news.lines:,} lines checked in {sources}"
    if news.verified_to is not None:
        evidence += f"; every line read up to {utc(news.verified_to)}"
    lines.append(evidence)
    lines += [f"impact: {line}" for line in news.impact]
    lines.append(f"{news.errors} error(s), {news.gaps} gap(s) since it opened; updated {utc(news.at)}")
    code = None
    e = news.last_error
    if e is not None:  # last: the line it quotes follows it
        lines.append(f"last error at {utc(e.at)} in {e.source} [{e.rule}]:")
        code = e.message
    return headline, lines, code
