"""`tt send`, `inbox`: messages between agents (and you)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from tinytown.cli.common import (
    Context,
    age,
    emit,
    emit_json,
    json_option,
    pass_ctx,
    print_table,
    say,
)
from tinytown.core.errors import UsageError
from tinytown.core.models import AckKind, AnyBody, Message, MessageBody, Priority, Task


def _ack(text: str) -> AnyBody:
    kind, _, reason = text.partition(":")
    kind = kind.strip().lower()
    try:
        ack = AckKind(kind)
    except ValueError:
        raise UsageError(
            f"--ack takes one of {', '.join(k.value for k in AckKind)}"
            " (rejected may add ': reason')"
        ) from None
    return MessageBody.confirmation(ack, reason.strip() if ack == AckKind.REJECTED else None)


@click.command()
@click.argument("agent")
@click.argument("message")
@click.option("--query", "kind", flag_value="query", help="Send a question (query).")
@click.option("--info", "kind", flag_value="info", help="Send information (informational).")
@click.option("--ack", "kind", flag_value="ack", help="Send a confirmation; MESSAGE is its kind.")
@click.option("--urgent", is_flag=True, help="Same as --priority urgent.")
@click.option("--priority", type=click.Choice([p.value for p in Priority]), default=None)
@click.option("--from", "sender", help="Sender (default: $TINYTOWN_AGENT_ID, else supervisor).")
@json_option
@pass_ctx
def send(
    obj: Context, agent: str, message: str, kind: str | None, urgent: bool,
    priority: str | None, sender: str | None, as_json: bool,
) -> None:
    """Put a message in an agent's inbox (plain text is a task message).

    MESSAGE `-` reads the message from standard input.
    """
    if message == "-":
        message = sys.stdin.read()
    if not message.strip():
        raise UsageError("the message is empty")
    if urgent and priority and priority != "urgent":
        raise UsageError("--urgent contradicts --priority " + priority)
    body: AnyBody
    if kind == "query":
        body = MessageBody.query(message)
    elif kind == "info":
        body = MessageBody.informational(message)
    elif kind == "ack":
        body = _ack(message)
    else:
        body = MessageBody.task(message)
    prio = Priority.URGENT if urgent else Priority(priority or "normal")
    sent = obj.town().channel.send(agent, body, priority=prio, sender=sender)
    emit(sent, as_json, f"sent {sent.type} {sent.id} ({prio.value})")


def _describe(m: Message, tasks: dict[str, Task]) -> str:
    """A message's content as text: what a task message says, not its JSON."""
    from tinytown.core import models as mt

    b = m.body
    if isinstance(b, mt.TaskDoneBody):
        return f"task {b.task_id[:8]} done: {b.result}"
    if isinstance(b, mt.TaskFailedBody):
        return f"task {b.task_id[:8]} failed: {b.error}"
    if isinstance(b, mt.TaskAssignBody):
        found = tasks.get(b.task_id)
        return f"task {b.task_id[:8]}: {found.description if found else '(no such task)'}"
    if isinstance(b, mt.ConfirmationBody):
        reason = b.ack_type.reason if isinstance(b.ack_type.reason, str) else None
        return b.ack_type.type.value + (f": {reason}" if reason else "")
    if isinstance(b, mt.StatusResponseBody):
        return b.state.value + (f", task {b.current_task[:8]}" if b.current_task else "")
    if isinstance(b, mt.CustomBody):
        return f"{b.kind}: {b.payload}"
    body = b.to_dict()
    body.pop("type", None)
    if not body:
        return ""
    if len(body) == 1:
        value = next(iter(body.values()))
        return value if isinstance(value, str) else json.dumps(value)
    return json.dumps(body)


@click.command()
@click.argument("agent", required=False)
@click.option("--all", "all_", is_flag=True, help="Every agent's inbox, and the supervisor's.")
@click.option("--questions", "only_questions", is_flag=True,
              help="Only the open questions agents asked a person (`tt reply` answers them).")
@json_option
@pass_ctx
def inbox(obj: Context, agent: str | None, all_: bool, only_questions: bool,
          as_json: bool) -> None:
    """Show pending messages without consuming them; with no AGENT (outside an agent),
    the questions agents asked you first (`tt reply` answers them). --json prints the
    messages (--questions --json: the questions)."""
    town = obj.town()
    if all_ and agent:
        raise UsageError("give an AGENT or --all, not both")
    if only_questions:
        if agent or all_:
            raise UsageError("--questions lists the town's open questions: no AGENT or --all")
        _questions(town, as_json)
        return
    from tinytown.core.models import Agent as AgentModel

    mine = not all_ and not agent and not os.environ.get("TINYTOWN_AGENT_ID")
    if all_:
        targets = [AgentModel.supervisor(), *town.list_agents()]
    else:
        ref = agent or os.environ.get("TINYTOWN_AGENT_ID") or "supervisor"
        targets = [town.resolve(ref)]
    from tinytown.ops.handles import AgentHandle

    messages = [m for a in targets for m in AgentHandle(town, a.id).inbox()]
    if as_json:  # the messages, as ever; the questions: --questions --json
        emit_json(messages)
        return
    questions = town.questions() if mine else []
    if questions:
        from tinytown.cli.questions import show_questions

        show_questions(town, questions)
        say()
    names = {a.id: a.name for a in [AgentModel.supervisor(), *town.list_agents()]}
    if not messages:
        say("no pending messages")
        return
    assigned = {str(getattr(m.body, "task_id", "")) for m in messages if m.type == "task_assign"}
    tasks = {t.id: t for t in (town.store.get_task(i) for i in assigned) if t is not None}
    cut = 80 if sys.stdout.isatty() else None  # a pipe or a file gets the whole text
    rows = [
        [names.get(m.to, m.to[:8]), m.id[:8], m.type, m.priority.value,
         names.get(m.sender, m.sender[:8]), age(m.created_at), _cut(_describe(m, tasks), cut)]
        for m in messages
    ]
    print_table(None, ["TO", "ID", "TYPE", "PRIORITY", "FROM", "AGE", "CONTENT"], rows)


def _cut(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[:width - 1] + "…"


COMMANDS = [send, inbox]


def _questions(town: Any, as_json: bool) -> None:
    questions = town.questions()
    if as_json:
        emit_json(questions)
    elif not questions:
        say("no open questions")
    else:
        from tinytown.cli.questions import show_questions

        show_questions(town, questions)
