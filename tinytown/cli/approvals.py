"""`tt approve` and `tt reject`: a person's decision on a task or a mission that
awaits approval (its `approve` gate). The reference is a task first, then a mission."""

from __future__ import annotations

import click

from tinytown.cli.common import Context, emit, json_option, pass_ctx
from tinytown.core.models import Mission


def _line(verb: str, target: object) -> str:
    if isinstance(target, Mission):
        return f"mission {target.name} {verb}: {target.state.value}"
    return f"task {getattr(target, 'id', '?')} {verb}: {getattr(target, 'state', '?')}"


@click.command()
@click.argument("ref", metavar="TASK|MISSION")
@click.option("--note", help="Why (recorded with the approval in the events).")
@json_option
@pass_ctx
def approve(obj: Context, ref: str, note: str | None, as_json: bool) -> None:
    """Approve a task that awaits approval (it is completed and the tasks after it
    run), or a mission that does (its first tasks are dispatched)."""
    target = obj.town().approve(ref, note)
    emit(target, as_json, _line("approved", target))


@click.command()
@click.argument("ref", metavar="TASK|MISSION")
@click.option("--note", help="What to change: the agent's follow-up round gets it.")
@click.option("--fail", is_flag=True, help="Fail the task with the note instead.")
@json_option
@pass_ctx
def reject(obj: Context, ref: str, note: str | None, fail: bool, as_json: bool) -> None:
    """Reject a task that awaits approval: it goes back to its agent, in the same
    session, with the note ("changes requested: ..."), and awaits approval again once
    it passes its gates; with --fail it fails. A mission awaiting approval is cancelled."""
    target = obj.town().reject(ref, note, fail)
    emit(target, as_json, _line("rejected", target))


COMMANDS = [approve, reject]
