"""The prompt an agent CLI gets for one round. Pure text building, no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tinytown.core.models import Agent, Message, Task

CONTEXT_BEGIN = "===== BEGIN INHERITED CONTEXT from {parent} ({parent_id}) ====="
CONTEXT_END = "===== END INHERITED CONTEXT ====="
CONTEXT_CHARS = 2000  # of each inherited prompt and output
DEPENDENCY_CHARS = 4096  # of each dependency's result in a dependent task's prompt
DEPENDENCIES_CHARS = 16384  # of all of them together


@dataclass
class RoundInput:
    agent: Agent
    town: str
    actionable: Message
    task: Task | None = None
    notes: list[Message] = field(default_factory=list)
    inherited: list[dict[str, str]] = field(default_factory=list)
    parent_name: str = ""
    sender_names: dict[str, str] = field(default_factory=dict)
    dependencies: list[Task] = field(default_factory=list)  # the tasks it waited for


def _note_line(m: Message, who: str) -> str:
    body = m.body.to_dict()
    body.pop("type")
    text = body.get("summary") or body.get("result") or body.get("error")
    if text is None:
        text = json.dumps(body) if body else ""
    return f"- [{m.type} from {who}] {text}"


def _dependencies(r: RoundInput) -> list[str]:
    """What the tasks this one waited for came to (their results' tails, bounded, and
    their branches), so the agent builds on them."""
    if not r.dependencies:
        return []
    out = ["## The tasks this one waited for (done before it)"]
    left = DEPENDENCIES_CHARS
    for i, dep in enumerate(r.dependencies):
        if left <= 0:
            rest = " ".join(d.id for d in r.dependencies[i:])
            out += [f"({len(r.dependencies) - i} more: `tt task show ID` for {rest})", ""]
            break
        who = r.sender_names.get(dep.assigned_to or "", dep.assigned_to or "nobody")
        title = dep.description.strip().splitlines()[0][:120] if dep.description.strip() else ""
        out.append(f"### Task {dep.id} ({dep.state.value}, by {who}): {title}")
        if dep.branch:
            last = f", last commit {dep.commits[-1][:12]}" if dep.commits else ""
            out.append(f"Branch: {dep.branch} ({len(dep.commits)} commit(s){last})")
        result = (dep.result or "").strip()
        shown = result[-min(DEPENDENCY_CHARS, left):]
        left -= len(shown)
        if len(shown) < len(result):
            shown = "[...]" + shown
        out += ["Result:" if shown else "Result: (none given)", *([shown] if shown else []), ""]
    return out


def _answered(task: Task) -> list[str]:
    """The question the agent asked a person about this task and their answer (the
    round after `tt reply` carries it; the CLI's session goes on)."""
    if task.answer is None or task.question is not None:
        return []
    asked = task.questions[-1].get("question", "") if task.questions else ""
    return ["## Your question and the answer", "You asked a person:", asked, "",
            "Their answer:", task.answer, "", "Go on with the task with this answer.", ""]


def _follow_up(task: Task) -> list[str]:
    """A task sent back to its agent (a failed check, a review's requested changes, a
    rejection): what to do now."""
    if not task.follow_up:
        return []
    return ["## Follow-up: this task is not done yet", task.follow_up, ""]


def _when_done(task: Task) -> str:
    gates = task.gates
    if gates is None or not gates.any:
        return ("When you finish, your output is kept as the task's result; to set it"
                f" yourself run: tt task complete {task.id} --result \"...\"")
    then = [f"the check `{gates.check}` runs in your worktree"] if gates.check else []
    then += [f"an agent of role {gates.review} reviews your branch"] if gates.review else []
    then += ["a person approves it"] if gates.approve else []
    return ("When you finish, your output is kept as the task's result; then "
            + " and ".join(then) + " before it is completed (do not complete it yourself).")


def build_prompt(r: RoundInput) -> str:
    a = r.agent
    out = [
        f"You are {a.name} (\"{a.display_nickname}\"), a {a.role_id or 'worker'} agent in the"
        f" Tinytown town {r.town!r}. Your agent id is {a.id}."
    ]
    if a.current_scope:
        out.append(f"Your scope: {a.current_scope}")
    if r.inherited:
        out += ["", CONTEXT_BEGIN.format(parent=r.parent_name, parent_id=a.parent_agent_id)]
        for entry in r.inherited:
            out += [
                f"--- parent round {entry.get('round', '?')}: prompt ---",
                entry.get("prompt", "")[-CONTEXT_CHARS:],
                f"--- parent round {entry.get('round', '?')}: output ---",
                entry.get("output", "")[-CONTEXT_CHARS:],
            ]
        out.append(CONTEXT_END)
    if r.notes:
        out += ["", "## Messages since your last round"]
        out += [_note_line(m, r.sender_names.get(m.sender, m.sender)) for m in r.notes]
    m = r.actionable
    who = r.sender_names.get(m.sender, m.sender)
    out.append("")
    if r.task is not None:
        out += [
            f"## Your task (id {r.task.id})",
            r.task.description,
            "",
            *_dependencies(r),
            *_answered(r.task),
            *_follow_up(r.task),
            _when_done(r.task),
            "If you cannot go on without a person's answer, call the ask_human tool (or"
            " end your output with one line `QUESTION: your question`) and end your turn.",
        ]
    elif m.type == "task":
        out += [f"## Task from {who}", str(getattr(m.body, "description", ""))]
    elif m.type == "query":
        out += [f"## Question from {who}", str(getattr(m.body, "question", "")),
                "", "Your output is sent back to them as the answer."]
    else:
        body = m.body.to_dict()
        out += [f"## Message ({m.type}) from {who}", json.dumps(body, indent=2)]
    return "\n".join(out) + "\n"
