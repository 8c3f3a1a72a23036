"""The town's MCP tools and resources: each one `Town` call, for the agent a server
speaks for.

The same server runs over stdio (`tt mcp`, see `stdio.py`) and over streamable HTTP
(`/mcp` under `tt serve`, see `streamable_http.py`). What differs is who calls: a `Caller` says
which agent "me" is (its inbox, its task, the sender of its messages) and what it may
do (a scope: read < write < admin), and is worked out for each call by the transport's
`identify`. Over HTTP every write tool is audited (`audit`), refused ones included.

Answers are the wire format's JSON (records exactly as `tt ... --json` prints them). A
`TinytownError` is a tool error whose text is the error's one line, as `tt` says it:
never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from tinytown.core import keys
from tinytown.core.apikeys import ApiKey, Scope
from tinytown.core.errors import (
    AgentNotFound,
    NotPermitted,
    TaskNotFound,
    TinytownError,
    UsageError,
    one_line,
)
from tinytown.core.models import (
    Agent,
    AnyBody,
    Gates,
    MessageBody,
    Priority,
    Task,
    WireModel,
    wire,
)
from tinytown.ops import inquiries
from tinytown.ops.facade import Town

MAX_ACK = 100  # messages one ack_inbox call takes at most


@dataclass(frozen=True)
class Caller:
    """Who calls a tool: the agent it speaks for (None: the supervisor, the human
    conductor's mailbox, as for `tt`), what it may do, and, over HTTP, its key."""

    agent: str | None = None  # a name, nickname or id, resolved at each call
    scope: Scope = Scope.WRITE
    key: ApiKey | None = None  # over HTTP: the bearer key (its scope is the one that counts)
    task_id: str | None = None  # the task a round runs ($TINYTOWN_TASK_ID), for stdio

    def require(self, needed: Scope) -> None:
        """NotPermitted unless this caller may do what `needed` allows."""
        if self.key is not None:
            self.key.require(needed)
        elif not self.scope.allows(needed):
            raise NotPermitted(f"`tt mcp` runs with scope {self.scope.value}; this needs"
                               f" {needed.value} (start it with `--scope {needed.value}`)")


Identify = Callable[[Any], Caller]  # the transport's request (None over stdio) -> Caller
# a write tool's call and how it ended: None (answered), a TinytownError (refused), or
# anything else (a bug: the SDK answers "Error executing tool" and logs the traceback)
Audit = Callable[[Caller, str, BaseException | None], None]

KINDS: dict[str, Callable[[str], AnyBody]] = {
    "task": MessageBody.task, "query": MessageBody.query,
    "informational": MessageBody.informational,
}


def _answer(value: Any) -> CallToolResult:
    """A tool's answer: the JSON as text, and as structured content (an object)."""
    plain = wire(value)
    structured = plain if isinstance(plain, dict) else {"result": plain}
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(plain))],
                          structured_content=structured)


def _refusal(exc: TinytownError) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=one_line(exc))], is_error=True)


READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)


class Tools:
    """The tools of one town, bound to how callers are identified and audited."""

    def __init__(self, town: Town, identify: Identify, audit: Audit | None = None) -> None:
        self.town = town
        self.identify = identify
        self.audit = audit

    # --- plumbing ---------------------------------------------------------------------

    def caller(self, ctx: Context | None) -> Caller:
        request = None
        if ctx is not None:
            try:
                request = ctx.request_context.request
            except ValueError:  # called outside a request (not by the SDK)
                request = None
        return self.identify(request)

    def run(self, ctx: Context, tool: str, needed: Scope,
            call: Callable[[Caller], Any]) -> CallToolResult:
        """`call` for the caller if its scope allows `needed`; a refusal carries the
        error's one line. A write (allowed or not) is audited when there is an audit."""
        caller = self.caller(ctx)
        failure: BaseException | None = None
        try:
            caller.require(needed)
            return _answer(call(caller))
        except TinytownError as exc:
            failure = exc
            return _refusal(exc)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if needed != Scope.READ and self.audit is not None:
                self.audit(caller, tool, failure)

    def me(self, caller: Caller) -> Agent:
        return self.town.resolve(caller.agent or keys.SUPERVISOR_ID)

    def my_task_id(self, caller: Caller, task_id: str | None) -> str:
        """`task_id`, else the round's task, else the agent's current task."""
        if task_id:
            return task_id
        if caller.task_id:
            return caller.task_id
        me = self.me(caller)
        current = self.town.current_task(me.id)
        if current is None:
            raise UsageError(f"{me.name} has no current task: give task_id")
        return current.id

    # --- the tools ----------------------------------------------------------------------

    def whoami(self, ctx: Context) -> CallToolResult:
        """Who this server speaks for: your agent record (wire format), what you may do
        here (scope: read, write or admin) and the task complete_task and fail_task
        finish by default (null: none)."""

        def call(caller: Caller) -> dict[str, Any]:
            me = self.me(caller)
            task = caller.task_id or me.current_task
            return {"agent": me, "scope": (caller.key.scope if caller.key else caller.scope),
                    "task": self.town.task(task) if task else None}

        return self.run(ctx, "whoami", Scope.READ, call)

    def list_agents(self, ctx: Context) -> CallToolResult:
        """The town's agents (wire-format records, oldest first): name, nickname, role,
        state, current task, ..."""
        return self.run(ctx, "list_agents", Scope.READ, lambda c: self.town.list_agents())

    def send_message(self, ctx: Context, to: str, text: str,
                     kind: Literal["task", "query", "informational"] = "task",
                     priority: Literal["low", "normal", "high", "urgent"] = "normal",
                     ) -> CallToolResult:
        """Send a message from you to another agent's inbox (`to`: its name, nickname or
        id; `supervisor` is the human conductor) and wake it. `task`: work for it to do;
        `query`: a question (its answer comes back to your inbox); `informational`:
        something it should know. Returns the message sent."""

        def call(caller: Caller) -> Any:
            if not text.strip():
                raise UsageError("the message is empty")
            return self.town.channel.send(to, KINDS[kind](text), priority=Priority(priority),
                                          sender=self.me(caller).id)

        return self.run(ctx, "send_message", Scope.WRITE, call)

    def read_inbox(self, ctx: Context) -> CallToolResult:
        """Your pending messages, next to be taken first, without taking them (peek).
        ack_inbox takes them off once handled."""
        return self.run(ctx, "read_inbox", Scope.READ,
                        lambda c: self.town.channel.peek(self.me(c).id))

    def ack_inbox(self, ctx: Context, count: int = 1) -> CallToolResult:
        """Take the next `count` messages (1 to 100) off your inbox, acknowledging them:
        they will not be handed to you again. Returns the messages taken (fewer when
        the inbox holds fewer)."""

        def call(caller: Caller) -> list[Any]:
            if not 1 <= count <= MAX_ACK:
                raise UsageError(f"count must be 1 to {MAX_ACK}")
            me = self.me(caller).id
            taken = []
            for _ in range(count):
                message = self.town.channel.try_receive(me)
                if message is None:
                    break
                taken.append(message)
            return taken

        return self.run(ctx, "ack_inbox", Scope.WRITE, call)

    def assign_task(self, ctx: Context, description: str, agent: str | None = None,
                    role: str | None = None, after: list[str] | None = None,
                    gates: dict[str, Any] | None = None) -> CallToolResult:
        """Give a task to an agent (`agent`: name, nickname or id), or queue it for
        whichever agent of a role is free (`role`); one of the two. `after`: task ids
        it waits for (it is `blocked` until they are all completed, then dispatched,
        their results in its prompt). `gates`, passed in this order: {"check": "a
        command run in the agent's worktree after each round; failing, a fix round",
        "max_fix_rounds": 3, "review": "a role whose agent reviews the work (approve, or
        changes back to its author)", "max_review_rounds": 3, "approve": true (a person
        approves it; agents cannot)}. Returns the task (its id is how complete_task,
        wait and `tt task show` name it)."""

        def call(caller: Caller) -> Task:
            if (agent is None) == (role is None):
                raise UsageError("give `agent` or `role` (one of them)")
            task = Task(description, gates=_gates(gates))
            if role is not None:
                return self.town.assign_to_role(role, task, after=after or ())[0]
            assert agent is not None
            return self.town.task(self.town.assign(agent, task, after=after or ()))

        return self.run(ctx, "assign_task", Scope.WRITE, call)

    def complete_task(self, ctx: Context, result: str, task_id: str | None = None
                      ) -> CallToolResult:
        """Mark a task completed with `result` (what was done). Without task_id: the
        task you are working on now. Returns the task."""
        return self.run(ctx, "complete_task", Scope.WRITE, lambda c: self.town.complete_task(
            self.my_task_id(c, task_id), result))

    def fail_task(self, ctx: Context, error: str, task_id: str | None = None
                  ) -> CallToolResult:
        """Mark a task failed with `error` (why). Without task_id: the task you are
        working on now. Returns the task."""
        return self.run(ctx, "fail_task", Scope.WRITE, lambda c: self.town.fail_task(
            self.my_task_id(c, task_id), error))

    def ask_human(self, ctx: Context, question: str) -> CallToolResult:
        """Ask a person a question about the task you are working on, when you cannot go
        on without their answer. Your task waits (awaiting_input); end your turn right
        after this call: the answer arrives as your next message, in this session."""

        def call(caller: Caller) -> dict[str, Any]:
            me = self.me(caller)
            if me.id == keys.SUPERVISOR_ID:
                raise UsageError("ask_human is for an agent working on a task")
            task = inquiries.ask(self.town.context, self.my_task_id(caller, None), me.id,
                                 question)
            return {"message": inquiries.ANSWER_SENT, "task": task.id,
                    "state": task.state.value}

        return self.run(ctx, "ask_human", Scope.WRITE, call)

    def review_verdict(self, ctx: Context, verdict: Literal["approve", "request_changes"],
                       notes: str = "", task: str | None = None) -> CallToolResult:
        """Answer a review you were given: `verdict` approve or request_changes, `notes`
        (for changes: what the author should change). `task`: the review task (or the
        task under review); without it, the task you are working on now. Only the agent
        the review task is assigned to may answer it. Returns the reviewed task."""

        def call(caller: Caller) -> Task:
            return self.town.review_verdict(self.my_task_id(caller, task),
                                            verdict == "approve", notes,
                                            by=self.me(caller).id)

        return self.run(ctx, "review_verdict", Scope.WRITE, call)

    def retry_task(self, ctx: Context, task_id: str, to: str | None = None,
                   role: str | None = None) -> CallToolResult:
        """Run a failed or cancelled task again: for its agent, or for agent `to`, or
        for `role`. The tasks blocked on it wait for it again. Returns the task."""
        return self.run(ctx, "retry_task", Scope.WRITE,
                        lambda c: self.town.retry_task(task_id, to=to, role=role))

    def unblock_task(self, ctx: Context, task_id: str) -> CallToolResult:
        """Let a task blocked by a failed or cancelled dependency go on without it
        (dispatched when nothing else it waits for is unfinished). Returns the task."""
        return self.run(ctx, "unblock_task", Scope.WRITE,
                        lambda c: self.town.unblock_task(task_id))

    def list_backlog(self, ctx: Context) -> CallToolResult:
        """The backlog: tasks nobody was given yet (oldest first), to claim_backlog."""
        return self.run(ctx, "list_backlog", Scope.READ, lambda c: self.town.backlog())

    def claim_backlog(self, ctx: Context, task_id: str) -> CallToolResult:
        """Take a backlog task (its id or a prefix of 4+ characters) for yourself,
        atomically: it arrives in your inbox as an assignment. Returns the task."""
        return self.run(ctx, "claim_backlog", Scope.WRITE,
                        lambda c: self.town.backlog_claim(task_id, self.me(c).id))

    def spawn_helper(self, ctx: Context, name: str, cli: str | None = None,
                     role: str | None = None) -> CallToolResult:
        """Start a new agent (admin scope): `name`, its agent CLI (default: the role's or
        the town's) and role; you are recorded as its parent. Returns its record."""

        def call(caller: Caller) -> Agent:
            me = self.me(caller)
            parent = me.id if me.id != keys.SUPERVISOR_ID else None
            return self.town.spawn_agent(name, cli=cli, role=role, parent=parent).record()

        return self.run(ctx, "spawn_helper", Scope.ADMIN, call)

    def start_mission(self, ctx: Context, name: str, tasks: list[dict[str, Any]],
                      goal: str | None = None, budget: float | None = None,
                      parallel: int | None = None) -> CallToolResult:
        """Start mission `name` from a plan: `tasks` as a plan file's [[task]] tables,
        each {"name", "text", "agent" or "role", "after": [names]}; `budget` in USD,
        `parallel`: at most that many tasks at work at once. Returns its status."""

        def call(caller: Caller) -> dict[str, Any]:
            plan = {"task": tasks, **{k: v for k, v in (("goal", goal), ("budget", budget),
                                                         ("parallel", parallel)) if v is not None}}
            self.town.start_mission(name, plan)
            return self.town.mission(name)

        return self.run(ctx, "start_mission", Scope.WRITE, call)

    def mission_status(self, ctx: Context, name: str) -> CallToolResult:
        """A mission's state, its conductor, and its tasks in waves: each one's name,
        state, agent, cost, branch, dependencies and the tail of its result (the whole
        result through the task resource)."""
        return self.run(ctx, "mission_status", Scope.READ, lambda c: self.town.mission(name))

    def add_mission_task(self, ctx: Context, mission: str, text: str, agent: str | None = None,
                         role: str | None = None, after: list[str] | None = None,
                         name: str | None = None) -> CallToolResult:
        """Add a task to a mission (you must be its conductor): for `agent` (a name,
        nickname or id) or for whichever agent of `role` is free; `after`: tasks of the
        mission it waits for (their names in the mission or ids); `name`: its name in
        the mission (default task-N). Returns the task."""
        return self.run(ctx, "add_mission_task", Scope.WRITE, lambda c: self.town.add_mission_task(
            mission, text, agent, role, after or [], name, by=self.me(c).id))

    def add_mission_dependency(self, ctx: Context, mission: str, task: str, after: list[str]
                               ) -> CallToolResult:
        """Make a task of the mission that has not started yet also wait for `after`
        (tasks of the mission: names or ids); a cycle is refused (you must be its
        conductor). Returns the task."""
        return self.run(ctx, "add_mission_dependency", Scope.WRITE,
                        lambda c: self.town.add_mission_dependency(mission, task, after,
                                                                   by=self.me(c).id))

    def finish_mission(self, ctx: Context, mission: str, status: Literal["done", "failed"],
                       summary: str) -> CallToolResult:
        """End the mission you conduct: `done` (refused while a task of it is not
        completed: the answer names them) or `failed` (its unfinished tasks are
        cancelled); `summary`: what came of it. Returns the mission."""
        return self.run(ctx, "finish_mission", Scope.WRITE, lambda c: self.town.finish_mission(
            mission, status, summary, by=self.me(c).id))

    # --- resources ------------------------------------------------------------------------

    def agent_resource(self, ref: str) -> str:
        """An agent's record (wire format): name, nickname, id or id prefix."""
        return self._read(lambda: self.town.resolve(ref))

    def task_resource(self, id: str) -> str:
        """A task's record (wire format): its id or a prefix of 4+ characters."""
        return self._read(lambda: self.town.task(id))

    def _read(self, read: Callable[[], WireModel]) -> str:
        try:
            return json.dumps(read().to_wire())
        except (AgentNotFound, TaskNotFound) as exc:
            raise ResourceNotFoundError(one_line(exc)) from None
        except TinytownError as exc:
            raise ResourceError(one_line(exc)) from None


TOOLS: list[tuple[str, ToolAnnotations]] = [
    ("whoami", READ), ("list_agents", READ), ("send_message", WRITE), ("read_inbox", READ),
    ("ack_inbox", WRITE), ("assign_task", WRITE), ("complete_task", WRITE),
    ("fail_task", WRITE), ("ask_human", WRITE), ("review_verdict", WRITE), ("retry_task", WRITE),
    ("unblock_task", WRITE),
    ("list_backlog", READ), ("claim_backlog", WRITE),
    ("spawn_helper", WRITE), ("start_mission", WRITE), ("mission_status", READ),
    ("add_mission_task", WRITE), ("add_mission_dependency", WRITE), ("finish_mission", WRITE),
]


def build(town: Town, identify: Identify, audit: Audit | None = None) -> MCPServer[Any]:
    """The MCP server of `town`: every tool and the two resources."""
    from importlib.metadata import version

    tools = Tools(town, identify, audit)
    server: MCPServer[Any] = MCPServer(
        "tinytown", title=f"Tinytown: town {town.name}", version=version("tinytown"),
        instructions="Tools to work inside a Tinytown town: whoami, your inbox"
                     " (read_inbox, ack_inbox), messages to other agents (send_message),"
                     " tasks (assign_task, complete_task, fail_task, retry_task,"
                     " unblock_task, the backlog), a question to a person (ask_human),"
                     " missions (mission_status; for a mission's conductor"
                     " add_mission_task, add_mission_dependency, finish_mission).",
        log_level="WARNING")
    for name, hints in TOOLS:
        server.add_tool(getattr(tools, name), name=name, annotations=hints,
                        structured_output=False)
    server.resource("tinytown://agent/{ref}", name="agent", mime_type="application/json",
                    description="An agent's record (wire format) by name, nickname or id"
                    )(tools.agent_resource)
    server.resource("tinytown://task/{id}", name="task", mime_type="application/json",
                    description="A task's record (wire format) by id or a prefix of 4+"
                    )(tools.task_resource)
    return server


def _gates(given: dict[str, Any] | None) -> Gates | None:
    """assign_task's `gates`, checked (UsageError naming what is wrong)."""
    if not given:
        return None
    unknown = set(given) - {"check", "max_fix_rounds", "review", "max_review_rounds",
                            "approve"}
    if unknown:
        raise UsageError(f"unknown gate {sorted(unknown)[0]!r}: gates are check,"
                         " max_fix_rounds, review, max_review_rounds and approve")
    try:
        gates = msgspec.convert(given, Gates)
    except msgspec.ValidationError as exc:
        raise UsageError(f"gates: {exc}") from None
    if not 0 <= gates.max_fix_rounds <= 100:
        raise UsageError("gates: max_fix_rounds is a whole number from 0 to 100")
    return gates
