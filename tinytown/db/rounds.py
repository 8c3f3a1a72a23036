"""A round's Redis work in three steps, each one round trip or one transaction.

Read and written one at a time, a task's records cost a round about 27 round trips;
in these steps it makes five:

- `begin`: one Lua call clears the wake flag, checks the stop flag and the agent's
  state, moves the inbox head into the in-flight list and reads the task it names.
- `start`: one compare-and-set script on what `begin` read (a WATCH / MGET / MULTI
  when a record changed meanwhile): the agent goes `working` with its current task,
  the task goes `running`.
- `finish`: one WATCH / MGET / MULTI: the task's outcome and its report to the
  supervisor, the agent's counters and its return to `idle`, the round's context, the
  answer to a query, and the in-flight list dropped, all or nothing.

Around them: the replies a round gives itself, the notes it puts back, and the
hand-back after a Redis outage.

Each step takes the worker's `Fence` and is refused (`Fenced`, nothing written) when a
newer worker start holds the agent; callers other than a worker pass None.

The records are still parsed and written by the models in Python (Lua's cjson would
reorder their fields); the Lua step only reads the agent's `state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import AgentNotFound, Fenced, InvalidRecord, InvalidTransition
from tinytown.core.models import (
    NEEDS_CLI,
    Agent,
    AgentState,
    CheckRun,
    Message,
    MessageBody,
    Task,
    TaskState,
    utcnow,
)
from tinytown.core.usage_rules import Usage
from tinytown.db import (
    gate_store,
    graph,
    mission_store,
    question_store,
    review_gate,
    runtime,
    scripts,
    states,
    usage_store,
)
from tinytown.db.connection import text
from tinytown.db.fence import Fence, check, token, watching
from tinytown.db.store import EVENTS_MAXLEN, Store, event_entry
from tinytown.db.task_writes import (
    back_to_assigned,
    ensure_inboxes,
    mark_finished,
    queue_dispatch,
)
from tinytown.db.wakeup import enqueue_round


@dataclass
class Begun:
    """What `begin` found: verdict `stop`, `gone` (no valid record), `wait` or `take`."""

    verdict: str
    agent_json: str | None = None  # the record as read, for `start`'s compare-and-set
    agent: Agent | None = None  # the same, parsed (`start` moves it to `working`)
    task_json: str | None = None  # the task of a taken `task_assign`, as read
    messages: list[str] = field(default_factory=list)
    town_budget: str | None = None  # `tt budget set town`'s, as read (None: not set)
    town_budget_tokens: str | None = None  # `tt budget set town --tokens`'s, the same


def begin(store: Store, agent_id: str, max_batch: int, fence: Fence | None = None) -> Begun:
    """Clear the wake flag; unless stopped or not ready, move the inbox head (up to the
    first message that needs the agent CLI) to the in-flight list."""
    town = store.town
    for _ in range(3):
        got = scripts.run(
            store.r, scripts.BEGIN_ROUND,
            [keys.wake(town, agent_id), keys.stop_flag(town, agent_id),
             keys.agent(town, agent_id), keys.inbox(town, agent_id),
             keys.inflight(town, agent_id), keys.epoch(town, agent_id),
             keys.budget(town), keys.budget_tokens(town)],
            [max_batch, keys.task(town, ""), token(fence), *sorted(NEEDS_CLI)])
        if got[0] != "badkey":
            break
        store.set_aside(got[1])  # nothing was changed: set the key aside, begin again
    else:
        raise InvalidRecord(f"{got[1]} keeps being of the wrong Redis type")
    if got[0] == "fenced":
        raise Fenced("a newer worker serves the agent: the round does not begin")
    if got[0] == "stop":
        return Begun("stop")
    agent = store.parse_agent(agent_id, got[1] if len(got) > 1 else None)
    if agent is None:  # pruned, or a record that does not parse (taken messages go back)
        return_inflight(store.r, town, agent_id, fence)
        return Begun("gone")
    if got[0] != "take":
        return Begun(got[0], got[1], agent)
    return Begun("take", got[1], agent, got[2], list(got[5:]), got[3] or None,
                 got[4] or None)


def return_inflight(target: Any, town: str, agent_id: str, fence: Fence | None = None
                    ) -> None:
    """Put a round's messages back at the inbox head (`target`: client or pipeline);
    with a fence, only while the worker holds the agent (Fenced otherwise)."""
    lists = [keys.inflight(town, agent_id), keys.inbox(town, agent_id)]
    if fence is None:
        scripts.run(target, scripts.RETURN_INFLIGHT, lists, [])
    elif scripts.run(target, scripts.RETURN_INFLIGHT, [*lists, fence.key], [fence.token]) == -2:
        raise Fenced("a newer worker serves the agent: its in-flight list is not ours")


class CannotStart(Exception):
    """Raised when the agent left idle/starting (paused, closed) before its round began."""


def _read_pair(pipe: Pipeline, store: Store, agent_id: str, task_id: str | None,
               fence: Fence | None = None) -> tuple[Agent, Task | None]:
    """The agent and its task as read under WATCH (one MGET), checking the fence."""
    names = [keys.agent(store.town, agent_id)]
    if task_id is not None:
        names.append(keys.task(store.town, task_id))
    if fence is not None:
        names.append(fence.key)
    raws = pipe.mget(names)
    if fence is not None:
        fence.verify(text(raws.pop()))  # a wrong-typed epoch key reads as None: refused
    raw_agent, raw_task = raws[0], raws[1] if task_id is not None else None
    if raw_agent is None:
        raise AgentNotFound(f"no agent with id {agent_id}")
    return Agent.from_json(raw_agent), Task.from_json(raw_task) if raw_task else None


def start(store: Store, agent_id: str, task_id: str | None, reason: str,
          seen: Begun | None = None, fence: Fence | None = None
          ) -> tuple[Agent, Task | None] | None:
    """`working` with the task `running`; None when the task is gone or already finished.

    With `seen` (what `begin` read), one compare-and-set script writes both records if
    neither changed since; otherwise (or without it) a WATCH transaction does. Raises
    CannotStart when the agent is no longer idle or starting. `seen.agent` is moved to
    `working` in memory either way: use the agent this returns.
    """
    agent = seen.agent if seen is not None else None
    if seen is not None and agent is not None and (task_id is None or seen.task_json):
        task = Task.from_json(seen.task_json) if seen.task_json else None
        if task is None or task.id == task_id:
            old = _begin_work(agent, task)
            if old is None:
                return None
            entry = event_entry("state", agent.id, **(states.event_fields(agent, old, reason)
                                                       or {}))
            written = scripts.run(
                store.r, scripts.START_ROUND,
                [keys.agent(store.town, agent_id),
                 keys.task(store.town, task.id) if task else keys.agent(store.town, agent_id),
                 keys.events(store.town), keys.epoch(store.town, agent_id)],
                [seen.agent_json, agent.to_json(), seen.task_json or "",
                 task.to_json() if task else "", EVENTS_MAXLEN, token(fence),
                 *(x for pair in entry.items() for x in pair)])
            if written == 1:
                return agent, task
            if written == -1:
                raise Fenced("a newer worker serves the agent: the round does not start")
    return _start_watched(store, agent_id, task_id, reason, fence)


def _begin_work(agent: Agent, task: Task | None) -> AgentState | None:
    """Apply the start to the records in memory; the agent's old state, or None when
    the task is finished already."""
    if task is not None and (task.state.is_terminal
                             or task.state == TaskState.AWAITING_INPUT):
        return None  # cancelled meanwhile, or waits for an answer: nothing to run
    try:
        old = states.step(agent, AgentState.WORKING,
                          expect=(AgentState.IDLE, AgentState.STARTING))
    except InvalidTransition as exc:
        raise CannotStart(str(exc)) from None
    agent.current_task = task.id if task else None
    if task is not None:
        now = utcnow()
        task.state = TaskState.RUNNING
        task.started_at = task.started_at or now
        task.updated_at = now
    return old


def _start_watched(store: Store, agent_id: str, task_id: str | None, reason: str,
                   fence: Fence | None) -> tuple[Agent, Task | None] | None:
    watch = [keys.agent(store.town, agent_id)]
    if task_id is not None:
        watch.append(keys.task(store.town, task_id))

    def body(pipe: Pipeline) -> tuple[Agent, Task | None] | None:
        try:
            agent, task = _read_pair(pipe, store, agent_id, task_id, fence)
        except AgentNotFound:
            raise CannotStart("the agent's record is gone") from None
        if task_id is not None and task is None:
            return None  # gone meanwhile
        old = _begin_work(agent, task)
        if old is None:
            return None
        pipe.multi()
        if task is not None:
            store.put_task(task, pipe)
        pipe.set(watch[0], agent.to_json())
        states.record(store, pipe, agent, old, reason)
        return agent, task

    return store.transaction(body, *watching(fence, *watch))


@dataclass
class Outcome:
    """What the agent CLI's run came to, for `finish`."""

    number: int
    ok: bool
    output: str
    error: str
    context: str  # the round's entry in the agent's context list (JSON)
    context_rounds: int
    reply: Message | None = None  # the answer to a query
    session_id: str | None = None  # the CLI session the next round continues
    usage: Usage | None = None  # what the round cost (rounds=1)
    session_usage: dict[str, Any] | None = None  # the session's totals, as reported
    commits: list[str] = field(default_factory=list)  # made on the agent's branch
    secs: float = 0.0  # how long the CLI ran
    question: str | None = None  # a question to a person its result ended with
    check: CheckRun | None = None  # the task's check gate, run after the CLI
    diff: str | None = None  # the agent's branch against its base (a task to review)


def finish(store: Store, agent_id: str, task_id: str | None, outcome: Outcome,
           fence: Fence | None = None, released: list[Task] | None = None) -> Agent:
    """Record the round's outcome in one transaction; returns the agent as written.

    A task completed here releases the tasks that waited only for it in the same
    transaction (`graph.followers`; `released` gets them): re-recorded after a kill,
    the completion finds the task finished and releases nothing again.

    A task the CLI already finished itself (`tt task complete`) keeps its outcome; the
    supervisor gets a `task_done` / `task_failed` report either way (none for a task
    cancelled meanwhile). A task assigned to someone else is not touched here. A task
    whose agent asked a person (`ask_human` during the round, or `outcome.question`)
    is not ended: it stays `awaiting_input` until the answer (question_store.reply).

    A task with gates (`gate_store.decide`) may instead await approval, or go back to
    its agent for a fix round (the check failed): decided and written here, at once.
    """
    town = store.town
    agent_key = keys.agent(town, agent_id)
    watch = [agent_key] + ([keys.task(town, task_id)] if task_id else [])

    def body(pipe: Pipeline) -> Agent:
        agent, task = _read_pair(pipe, store, agent_id, task_id, fence)
        if task is not None and task.assigned_to not in (None, agent_id):
            task = None
        finished, opened = _settle(task, outcome)
        ended = _end_task(store, pipe, agent, task, outcome) if finished else None
        if finished and task is not None and task.state == TaskState.ASSIGNED:
            store.ensure_lists(keys.inbox(town, agent_id))  # its follow-up goes there
        _round_done(agent, task, outcome)
        mission = mission_store.watch(store, pipe, task) if task is not None else None
        old = agent.state
        if old == AgentState.WORKING:
            states.step(agent, AgentState.IDLE)
        pipe.multi()
        if task is not None:
            dispatched = _queue_task(store, pipe, agent, task, outcome, opened, ended)
            if finished or outcome.usage is not None:  # a release, or its cost counted
                dispatched += mission_store.queue_advance(store, pipe, mission, task,
                                                          queue_dispatch, dispatched)
            if released is not None:
                released[:] = dispatched
            _report(store, pipe, agent_id, task, outcome.error)
        if outcome.usage is not None:
            usage_store.queue_round(store, pipe, agent, task, outcome.number, outcome.usage)
        usage_store.queue_timing(store, pipe, outcome.secs, outcome.ok)
        pipe.set(agent_key, agent.to_json())
        states.record(store, pipe, agent, old, f"round {outcome.number} done")
        if outcome.reply is not None:
            queue_reply(store, pipe, outcome.reply)
        pipe.lpush(keys.context(town, agent_id), outcome.context)
        pipe.ltrim(keys.context(town, agent_id), 0, max(outcome.context_rounds, 1) - 1)
        pipe.delete(keys.inflight(town, agent_id))
        runtime.queue_cli_done(store, pipe, agent_id)
        return agent

    return store.transaction(body, *watching(fence, *watch))


def _settle(task: Task | None, outcome: Outcome) -> tuple[bool, bool]:
    """Whether the round ends the task, and whether it asks a person instead (its
    result's last line was a question: the task, in memory, then awaits the answer). A
    task asked about during the round (`ask_human`) is neither: it waits already; nor
    is one answered before the round ended (the round the answer queued goes on); nor
    one at a gate (`at_gate`: a second recording of the round changes nothing)."""
    if task is None or task.state.is_terminal or task.state.at_gate or task.state == \
            TaskState.AWAITING_INPUT:
        return False, False
    if task.state == TaskState.ASSIGNED and task.answer is not None:
        return False, False  # answered while this round ran: the answer's round runs it
    if outcome.ok and outcome.question is not None:
        question_store.open_question(task, outcome.question)
        return False, True
    return True, False


@dataclass
class _Ended:
    """What a round's end does beyond its task, planned in the watching phase."""
    follow: graph.Followers | None = None  # the tasks that waited for it
    gate: review_gate.Plan | None = None  # a review task's verdict on the task it reviews
    review: str | None = None  # the review task's text: the task goes to its reviewer


def _queue_task(store: Store, pipe: Pipeline, agent: Agent, task: Task, outcome: Outcome,
                opened: bool, ended: _Ended | None) -> list[Task]:
    """The task as the round leaves it: written when it changed, its question opened or
    its ending (gates included) queued; returns the tasks dispatched (a review task: a
    cold reviewer of its role wakes for it, as for a release)."""
    dispatched: list[Task] = []
    if ended is not None and ended.review is not None:
        dispatched.append(review_gate.queue_into_review(store, pipe, task, ended.review,
                                                        queue_dispatch))
    elif ended is not None or opened or outcome.usage is not None or outcome.commits:
        store.put_task(task, pipe)
    if opened:
        question_store.queue_opened(store, pipe, task)
    if ended is not None:
        dispatched += _queue_ended(store, pipe, agent.id, task, outcome.check, ended)
    return dispatched


def _queue_ended(store: Store, pipe: Pipeline, agent_id: str, task: Task,
                 check: CheckRun | None, ended: _Ended) -> list[Task]:
    """A task's round end, queued: its gates' events and follow-up; its ending event;
    its releases and, for a review task, its verdict (returns the tasks dispatched)."""
    gate_store.queue_round_gates(store, pipe, task, agent_id, check)
    if task.state.is_terminal:
        store.add_event(f"task_{task.state.value}", task.assigned_to, pipe=pipe, task=task.id)
    out = ended.follow.queue(store, pipe, queue_dispatch) if ended.follow is not None else []
    return out + (ended.gate.queue(store, pipe, queue_dispatch) if ended.gate else [])


def _end_task(store: Store, pipe: Pipeline, agent: Agent, task: Task | None,
              outcome: Outcome) -> _Ended | None:
    """The task's outcome in memory, and (read under WATCH) what it does to the tasks
    that wait for it and, for a review task, to the task it reviews (its verdict; none:
    the review fails, saying so); or the text of its review, when that gate is next."""
    if task is None:
        return None
    decision = gate_store.decide(task, outcome.ok, outcome.output, outcome.error,
                                 outcome.check)
    gate_store.apply(task, decision, outcome.check)
    if decision.state == TaskState.IN_REVIEW:
        return _Ended(review=review_gate.review_text(task, agent.name, agent.branch,
                                                     outcome.diff))
    if not decision.state.is_terminal:  # awaiting approval, or a fix round: no release
        return _Ended()
    mark_finished(task, decision.state, decision.text)
    verdict = review_gate.judge_review(task) if task.reviews else None
    if task.state == TaskState.COMPLETED:
        agent.tasks_completed += 1
    gate = review_gate.watch(store, pipe, task, verdict) if task.reviews else None
    follow = graph.followers(store, pipe, task)
    ensure_inboxes(store, follow.released)
    return _Ended(follow, gate)


def _round_done(agent: Agent, task: Task | None, outcome: Outcome) -> None:
    """The agent's counters, session and usage after a round; the task's usage."""
    now = utcnow()
    agent.rounds_completed += 1
    agent.current_task = None
    agent.last_active_at = now
    agent.last_heartbeat = now
    if outcome.session_id:
        agent.session_id = outcome.session_id
    if outcome.session_usage is not None:
        agent.session_usage = outcome.session_usage
    if outcome.usage is not None:
        agent.usage = (agent.usage or Usage()) + outcome.usage
        if task is not None:
            task.usage = (task.usage or Usage()) + outcome.usage
    if outcome.commits and task is not None:
        task.branch = agent.branch
        task.commits = [*task.commits, *outcome.commits]


def _report(store: Store, pipe: Pipeline, agent_id: str, task: Task, error: str) -> None:
    """A finished task's report to the supervisor mailbox (none if it was cancelled)."""
    if task.state == TaskState.COMPLETED:
        body: Any = MessageBody.task_done(task.id, task.result or "")
    elif task.state == TaskState.FAILED:
        body = MessageBody.task_failed(task.id, task.result or error)
    else:
        return
    store.push_message(Message(sender=agent_id, to=keys.SUPERVISOR_ID, body=body), pipe)


def queue_reply(store: Store, pipe: Pipeline, reply: Message) -> None:
    """Queue on `pipe`: an answer into its recipient's inbox, waking it (the supervisor
    mailbox has no worker to wake)."""
    store.push_message(reply, pipe)
    if reply.to != keys.SUPERVISOR_ID:
        enqueue_round(pipe, store.town, reply.to)


def answer(store: Store, replies: list[Message], fence: Fence | None = None) -> None:
    """Replies a round gives by itself (pong, status_response), in one MULTI."""
    if replies:
        def body(pipe: Pipeline) -> None:
            check(fence, pipe)
            pipe.multi()
            for reply in replies:
                queue_reply(store, pipe, reply)

        _fenced_multi(store, fence, body)


def put_back_notes(store: Store, agent_id: str, notes: list[Message],
                   fence: Fence | None = None) -> None:
    """A round that ran no CLI: its notes go back to the inbox head, in order, for the
    next CLI run, and the in-flight list is dropped, in one MULTI."""
    def body(pipe: Pipeline) -> None:
        check(fence, pipe)
        pipe.multi()
        for m in reversed(notes):
            pipe.lpush(keys.inbox(store.town, agent_id), m.to_json())
        pipe.delete(keys.inflight(store.town, agent_id))

    _fenced_multi(store, fence, body)


def _fenced_multi(store: Store, fence: Fence | None, body: Any) -> None:
    """One MULTI of `body`'s writes; under WATCH of the epoch when fenced."""
    if fence is not None:
        store.transaction(body, fence.key)
    else:
        pipe = store.r.pipeline()
        body(pipe)
        pipe.execute()


def after_outage(store: Store, agent_id: str, fence: Fence | None = None) -> None:
    """Redis came back after a round lost it: the round's messages go back to the
    inbox, the agent back to `idle`, its running tasks to `assigned`, and a round job
    is queued (a task that already finished is not run again)."""
    return_inflight(store.r, store.town, agent_id, fence)
    agent = store.require_agent(agent_id)
    if agent.state == AgentState.WORKING:
        states.transition(store, agent_id, AgentState.IDLE,
                          reason="Redis outage during a round",
                          change=lambda a: setattr(a, "current_task", None), fence=fence)
    for task in store.list_tasks():
        if task.assigned_to == agent_id and task.state == TaskState.RUNNING:
            store.update_task(task.id, back_to_assigned)
    enqueue_round(store.r, store.town, agent_id, force=True)


def cut_short(store: Store, agent_id: str, task_id: str | None, fence: Fence | None = None
              ) -> None:
    """A round Tinytown itself stopped (`tt down`, a stopping worker) has no outcome:
    in one transaction its messages go back to the inbox head, its task back to
    `assigned` (a task finished meanwhile keeps its outcome), the agent back to `idle`
    with no current task; the worker's shutdown then records its final state."""
    agent_key = keys.agent(store.town, agent_id)
    watch = [agent_key] + ([keys.task(store.town, task_id)] if task_id else [])

    def body(pipe: Pipeline) -> None:
        agent, task = _read_pair(pipe, store, agent_id, task_id, fence)
        old = agent.state
        agent.current_task = None
        if old == AgentState.WORKING:
            states.step(agent, AgentState.IDLE)
        pipe.multi()
        if task is not None and task.state == TaskState.RUNNING:
            back_to_assigned(task)
            task.updated_at = utcnow()
            store.put_task(task, pipe)
        pipe.set(agent_key, agent.to_json())
        states.record(store, pipe, agent, old, "round cut short: the worker is stopping")
        return_inflight(pipe, store.town, agent_id)
        runtime.queue_cli_done(store, pipe, agent_id)

    store.transaction(body, *watching(fence, *watch))
