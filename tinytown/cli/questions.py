"""`tt reply`, and the open questions `tt inbox` shows: what agents asked a person."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from tinytown.cli.common import Context, age, emit, json_option, pass_ctx, print_table, say
from tinytown.ops.facade import Town


@click.command()
@click.argument("task_id")
@click.argument("answer")
@json_option
@pass_ctx
def reply(obj: Context, task_id: str, answer: str, as_json: bool) -> None:
    """Answer the question a task's agent asked (`tt inbox` lists them): its agent goes
    on in the same session. ANSWER `-` reads it from standard input."""
    if answer == "-":
        answer = sys.stdin.read()
    task = obj.town().reply(task_id, answer)
    emit(task, as_json, f"answered task {task.id}: it is {task.state.value} again")


def show_questions(town: Town, found: list[dict[str, Any]]) -> None:
    """The open questions as a table (the whole question when piped)."""
    cut = 80 if sys.stdout.isatty() else None
    rows = [[q["task"][:8], q["agent_name"],
             age(datetime.fromisoformat(q["asked_at"]) if q["asked_at"] else None),
             _cut(" ".join(q["question"].split()), cut)] for q in found]
    print_table(None, ["TASK", "AGENT", "ASKED", "QUESTION"], rows)
    say(f"answer with: tt reply {found[0]['task'][:8]} \"...\"")


def _cut(text: str, width: int | None) -> str:
    return text if width is None or len(text) <= width else text[:width - 1] + "…"


COMMANDS = [reply]
