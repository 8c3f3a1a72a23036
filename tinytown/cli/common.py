"""What every `tt` command module shares: the per-command Context, output helpers."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tinytown.core.errors import UsageError
from tinytown.core.models import utcnow, wire

if TYPE_CHECKING:
    from tinytown.core.settings import Settings
    from tinytown.ops.facade import Town

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """Built once per command: the --town path, and the Town opened on first use."""

    def __init__(self, town_path: str | None) -> None:
        self.town_path = town_path
        self._town: Town | None = None

    def town(self, note_start: bool = True) -> Town:
        """The town, connected. A command that finds its embedded Redis down starts it
        (the data lives there, reads included) and says so on stderr, since it then
        keeps running; `note_start=False` for the commands that start or stop the town."""
        if self._town is None:
            from tinytown.ops.facade import Town

            self._town = Town.from_settings(self.settings())
            if self._town.started_redis and note_start:
                say("tt: started the town's Redis (it was down); `tt down` stops it,"
                    " `tt up` brings the whole town back", err=True)
        return self._town

    def settings(self) -> Settings:
        """The town's settings, without connecting to its Redis."""
        from tinytown.core.settings import Settings, find_root

        start = Path(self.town_path) if self.town_path else Path.cwd()
        if self.town_path and not start.exists():
            raise UsageError(f"--town {self.town_path}: no such folder")
        return Settings.load(find_root(start))


pass_ctx = click.make_pass_decorator(Context)

# C0 and C1 control characters but newline and tab: ESC starts terminal sequences
# (clipboard writes, title changes, screen clears) that text from agents must not run
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """Text for a terminal: control characters shown as \\xNN, never executed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def say(text: str = "", err: bool = False, nl: bool = True) -> None:
    """click.echo for human-readable output: control characters made visible."""
    click.echo(visible(text), err=err, nl=nl)


if TYPE_CHECKING:
    _FloatParam = click.ParamType[float]
else:  # generic only in newer click releases
    _FloatParam = click.ParamType


class Seconds(_FloatParam):
    """A finite number of seconds, 0 or more: `nan`, `inf` and `1e309` are refused
    before anything is written (a wait with no end would block forever)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        from tinytown.core.validate import validate_timeout

        try:
            seconds = float(value)
            validate_timeout(seconds)
        except (ValueError, UsageError):
            self.fail(f"{value!r} is not a finite number of seconds, 0 or more", param, ctx)
        return seconds


SECONDS = Seconds()


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON documents.")(f)


def emit_json(value: Any) -> None:
    """`--json` output: records as their wire documents (a list for listings)."""
    click.echo(json.dumps(wire(value), indent=2))


def emit(value: Any, as_json: bool, line: str) -> None:
    """A command's answer: with `--json` the value as JSON, else one line for a person."""
    if as_json:
        emit_json(value)
    else:
        say(line)


def age(when: datetime | None) -> str:
    if when is None:
        return "-"
    secs = max(0.0, (utcnow() - when).total_seconds())
    if secs < 90:
        return f"{secs:.0f}s"
    if secs < 5400:
        return f"{secs / 60:.0f}m"
    if secs < 172800:
        return f"{secs / 3600:.0f}h"
    return f"{secs / 86400:.0f}d"


def print_table(title: str | None, columns: list[str], rows: list[list[str]],
                squeeze: int | None = None) -> None:
    """A table: drawn by rich on a terminal; for a pipe or a file the same columns as
    plain lines, one per row, without rich's import (~20 ms of a `tt status`).
    `squeeze`: on a terminal, a row stays one line: that column's cells are cut (with
    `…`) to what the others leave of the width, instead of wrapping."""
    rows = [[visible(cell) for cell in row] for row in rows]
    if not sys.stdout.isatty():
        rows = [[" ".join(cell.splitlines()) for cell in row] for row in rows]  # a line a row
        widths = [max(len(cell) for cell in column) for column in zip(columns, *rows, strict=True)]
        if title:
            click.echo(title)
        for row in (columns, *rows):
            cells = (f" {cell:<{w}} " for cell, w in zip(row, widths, strict=True))
            click.echo("".join(cells).rstrip())
        return
    from rich.console import Console
    from rich.table import Table

    width = max(100, _terminal_width())
    if squeeze is not None:
        rows = _squeezed(columns, rows, squeeze, width)
    table = Table(title=title, title_justify="left", box=None, header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold", no_wrap=squeeze is not None)
    for row in rows:
        table.add_row(*row)
    Console(width=width).print(table)


def _squeezed(columns: list[str], rows: list[list[str]], at: int, width: int
              ) -> list[list[str]]:
    others = sum(max(len(cell) for cell in column) + 2  # rich's padding: 1 a side
                 for i, column in enumerate(zip(columns, *rows, strict=True)) if i != at)
    room = max(len(columns[at]), width - others - 2)
    return [[cell if i != at or len(cell) <= room else cell[:room - 1] + "…"
             for i, cell in enumerate(row)] for row in rows]


def _terminal_width() -> int:
    return shutil.get_terminal_size((120, 24)).columns


def progress_line(what: str, elapsed: float) -> None:
    """Rewrite one status line in place (only used when stdout is a terminal)."""
    click.echo(f"\r{what}  {elapsed:5.0f}s ", nl=False)


def tags_option_value(value: str | None) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()] if value else []
