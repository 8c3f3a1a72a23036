"""Terminal escape sequences in text from agents and users (clipboard writes, title
changes, screen clears) are shown, never executed, in human-readable output; --json
stays exact."""

from __future__ import annotations

import json

import pytest

from tests.helpers import TownFixture

EVIL = "evil \x1b]52;c;aGk=\x07 \x1b[2J\x9b done"


@pytest.fixture
def marked(town: TownFixture) -> str:
    town.tt("spawn", "esc", "--no-start", "--nickname", "Es\x1b[31mc")
    return town.tt("assign", "esc", EVIL).out.strip()


@pytest.mark.parametrize("args", [("task", "list"), ("inbox", "esc"), ("list",),
                                  ("status",), ("events",), ("history",)],
                         ids=lambda a: " ".join(a))
def test_human_output_shows_escapes(town: TownFixture, marked: str,
                                    args: tuple[str, ...]) -> None:
    r = town.tt(*args)
    assert r.code == 0, r
    assert "\x1b" not in r.out and "\x07" not in r.out and "\x9b" not in r.out


def test_task_show_and_its_json(town: TownFixture, marked: str) -> None:
    shown = town.tt("task", "show", marked)
    assert "\x1b" not in shown.out and "\\x1b]52" in shown.out
    exact = json.loads(town.tt("task", "show", marked, "--json").out)
    assert exact["description"] == EVIL


def test_logs_show_escapes_unless_raw(town: TownFixture, marked: str) -> None:
    folder = town.root / ".tt" / "logs" / "esc"
    folder.mkdir(parents=True)
    (folder / "round-1.log").write_bytes(EVIL.encode())
    shown = town.tt("logs", "esc")
    assert shown.code == 0 and "\x1b" not in shown.out and "\\x1b[2J" in shown.out
    assert town.tt("logs", "esc", "--raw").out == EVIL
