"""The steps of a round, in the order `worker/pipeline.py` runs them.

Each step takes the round's `RoundContext`, does one job, sets what it found on the
context for the steps after it, and returns whether the round goes on. A step that
ends the round has done what ending there means (the agent held, the work handed
back, the outcome recorded), so the pipeline only stops. The before/after work a task
queue keeps as middleware (dramatiq's: the budget check, the usage-limit hold, MCP
setup, usage, commits) are steps here like the others, so the order they run in is
written down once, in `PIPELINE`, instead of being implied by nested calls.

A newer worker holding the agent is the one thing no step decides: `run` raises
`Fenced`, and the lifecycle (`WorkerRuntime.run_round`) hands off.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import msgspec

from tinytown.core import keys
from tinytown.core.asking import question_in
from tinytown.core.errors import Fenced
from tinytown.core.models import Agent, Message, MessageBody, SpawnMode, Task, utcnow
from tinytown.core.outcomes import RunFacts, judge, read_report, usage_limit
from tinytown.core.presets import CliCommand, with_prompt_limit
from tinytown.core.usage_rules import Usage, of_round, since_session_start
from tinytown.db import dependency_store, graph, holds, review_gate, rounds, runtime
from tinytown.db.task_writes import RESULT_LIMIT
from tinytown.system.launching import detached, worker_argv
from tinytown.system.private import private_dir
from tinytown.system.processes import kill_group
from tinytown.system.workspace import GitError
from tinytown.system.workspace import diff as branch_diff
from tinytown.worker import checking, commits, mcp_setup, sessions, usage_gates
from tinytown.worker.prompt import RoundInput, build_prompt
from tinytown.worker.runner import RunResult, run_cli
from tinytown.worker.state import RoundContext, WorkerContext

log = logging.getLogger("tinytown.worker")


def budget(r: RoundContext) -> bool:
    """Budget and holds: an agent whose budget (or its town's) is spent runs no CLI:
    it is held, paused with the reason, and its work waits."""
    w = r.worker
    over = usage_gates.over_budget(w.store, w.settings, r.agent, r.begun.town_budget,
                             r.begun.town_budget_tokens)
    if over is None:
        return True
    if not holds.hold(w.store, w.agent_id, over, fence=w.state.fence):
        w.return_inflight()
    return False


def start(r: RoundContext) -> bool:
    """The agent `working`, its task `running`; the round's number and CLI command."""
    w = r.worker
    try:
        started = rounds.start(w.store, w.agent_id, r.task_id,
                               reason=f"round {r.agent.rounds_completed + 1}",
                               seen=r.begun, fence=w.state.fence)
    except rounds.CannotStart:  # paused or closed between our check and now
        w.return_inflight()
        return False
    if started is None:  # its task was cancelled or is gone: nothing to run
        r.ran = False
        return False
    r.agent, r.task = started
    r.number = number(w, r.agent)
    r.command = w.command(r.agent.cli)
    r.usage_file = w.logs / f"round-{r.number}.usage.json"
    return True


def number(w: WorkerContext, agent: Agent) -> int:
    """The round's number: past the agent's completed rounds and past every round
    this host has a log of. A round that ended at a usage limit, was cut short or
    lost its worker completed nothing, but its log stays: the next run of its work
    is a round of its own, in a log of its own."""
    state = w.state
    if state.last_round is None:
        numbers = (re.fullmatch(r"round-(\d+)\.log", p.name) for p in
                   (w.logs.iterdir() if w.logs.is_dir() else ()))
        state.last_round = max((int(n.group(1)) for n in numbers if n), default=0)
    state.last_round = max(agent.rounds_completed, state.last_round) + 1
    return state.last_round


def session(r: RoundContext) -> bool:
    """Which CLI session the run continues, forks or starts (`worker/sessions.py`)."""
    w, agent, command, usage_file = r.worker, r.agent, r.command, r.usage_file
    r.planned = sessions.plan(command, agent, _parent(w, agent),
                              _state_dir(w, agent, command), str(usage_file))
    return True


def prompt(r: RoundContext) -> bool:
    """What the CLI reads (`worker/prompt.py`); a fork the CLI made itself needs no
    transcript of the parent's."""
    r.prompt = build_prompt(_round_input(r))
    return True


def workspace(r: RoundContext) -> bool:
    """The agent's branch head before the run: the commit step counts from it."""
    r.before = commits.head(r.agent, r.worker.state.worktree)
    return True


def mcp(r: RoundContext) -> bool:
    """The run's environment, and its argv with Tinytown's MCP server configured for
    the agent (`worker/mcp_setup.py`; `[agent] mcp = false`: none)."""
    w, agent, task = r.worker, r.agent, r.task
    env = dict(w.env)
    env.update({
        "TINYTOWN_AGENT_ID": agent.id, "TINYTOWN_AGENT_NAME": agent.name,
        "TINYTOWN_ROUND": str(r.number),
    })
    if task is not None:
        env["TINYTOWN_TASK_ID"] = task.id
    argv = r.planned.argv
    if w.settings.agent.mcp:
        argv = mcp_setup.configure(r.command, argv, env, w.settings.root, agent,
                                   task.id if task else None, w.state_dir_of(agent.id))
    r.run_env, r.argv = env, argv
    return True


def run(r: RoundContext) -> bool:
    """Run the CLI; a session that is gone is started anew rather than failed for
    good. Raises `Fenced` when a newer worker holds the agent: nothing is recorded."""
    w, agent, command = r.worker, r.agent, r.command
    r.result = _run_cli(r)
    if sessions.lost(command, r.planned, r.result.exit_code, r.result.output_tail) and \
            not (w.state.cut_short or r.fenced or w.state.task_cancelled):  # a new session
        log.warning("%s: session %s is gone: this round starts a new one", agent.name,
                    r.planned.session)
        r.planned = sessions.plan(command, _without_session(agent), None,
                                  _state_dir(w, agent, command), str(r.usage_file))
        mcp(r)
        r.result = _run_cli(r)
    if r.fenced:
        raise Fenced("a newer worker start holds the agent")
    if w.state.stale.is_set():
        raise Fenced("a newer worker start holds the agent: this round records nothing")
    return True


def commit(r: RoundContext) -> bool:
    """Commit what the round changed on the agent's branch (`worker/commits.py`)."""
    state = r.worker.state
    r.commits = commits.commit_round(r, wip=state.cut_short or r.result.timed_out or
                                     state.task_cancelled)
    return True


def cut_short(r: RoundContext) -> bool:
    """Stopped by Tinytown (`tt down`, a SIGTERM): no outcome, the work waits."""
    w = r.worker
    if not w.state.cut_short:
        return True
    rounds.cut_short(w.store, w.agent_id, r.task_ref, w.state.fence)
    return False


def report(r: RoundContext) -> bool:
    """What the run came to, from the CLI's own report: `judge`'s verdict, and whether
    it ended at the provider's usage limit."""
    command, result = r.command, r.result
    usage_file = r.usage_file
    report = read_report(command.output, result.stdout, result.output_tail, usage_file)
    verdict = judge(RunFacts(result.exit_code, result.timed_out, result.error,
                             result.stdout, result.output_tail),
                    report, r.worker.settings.agent.round_timeout_secs)
    # a limit counts only when the run ended on it (not one the CLI retried past)
    r.limited, r.resets = (False, None) if verdict[0] or result.timed_out else \
        usage_limit(report, result.output_tail, utcnow())
    r.report, r.verdict = report, verdict
    return True


def usage(r: RoundContext) -> bool:
    """The round's usage (and, for a CLI that reports a session's totals, those),
    added to what this job's rounds cost: a limited round's counts too."""
    w, result, reported = r.worker, r.result, r.report.usage
    if result.error:  # it never started: nothing was spent
        r.used, r.totals = Usage(rounds=1), None
    else:
        totals = None
        if r.command.usage_totals and reported:
            totals = reported
            continued = r.planned.session is not None and not r.planned.forked
            reported = since_session_start(reported, r.agent.session_usage if continued
                                           else None)
        price = w.settings.prices.get(r.command.name)
        r.used, r.totals = of_round(reported, msgspec.to_builtins(price) if price else
                                    None), totals
    w.state.job_usage = (w.state.job_usage or Usage()) + r.used
    return True


def limit(r: RoundContext) -> bool:
    """A run that ended at the usage limit is not a failure: the work waits for the
    reset, the agent (and its account's others) held until then (`worker/usage_gates.py`)."""
    if not r.limited:
        return True
    usage_gates.at_usage_limit(r)
    return False


def check(r: RoundContext) -> bool:
    """The check gate (`worker/checking.py`): after a round of a task that has one,
    whose CLI ended well and whose work is committed, its command runs in the agent's
    worktree; `record` decides on what it came to, in the round's one transaction."""
    task = r.task
    if task is None or task.gates is None or not task.gates.check or not r.verdict[0]:
        return True
    r.check = checking.run_check(r, task.gates.check)
    w = r.worker
    if w.state.stale.is_set():
        raise Fenced("a newer worker start holds the agent: this round records nothing")
    if w.state.cut_short:  # stopped while the check ran: no outcome, the work waits
        rounds.cut_short(w.store, w.agent_id, r.task_ref, w.state.fence)
        return False
    return True


def record(r: RoundContext) -> bool:
    """The outcome, in one transaction (`db/rounds.finish`): the task's end, a query's
    answer, the session left, the agent's counters; max rounds reached: it drains."""
    w, m, number = r.worker, r.message, r.number
    ok, output, error = r.verdict
    session_id = sessions.left(r.command, r.planned, r.report, w.state_dir_of(w.agent_id))
    if session_id:
        with (w.logs / f"round-{number}.log").open("a") as log_file:
            log_file.write(f"\ntinytown: the CLI's session is {session_id}\n")
    reply = None
    if r.task is None and m.type == "query":
        answer = MessageBody.informational((output if ok else error)[-RESULT_LIMIT:])
        reply = Message(sender=w.agent_id, to=m.sender, body=answer, correlation_id=m.id)
    outcome = rounds.Outcome(
        number=number, ok=ok, output=output, error=error, reply=reply,
        context=json.dumps({"round": number, "prompt": r.prompt[-2000:],
                            "output": output[-2000:]}),
        context_rounds=w.settings.agent.context_rounds, session_id=session_id,
        usage=r.used, session_usage=r.totals, commits=r.commits, secs=r.result.secs,
        question=question_in(output) if ok and r.task is not None else None,
        check=r.check,
        diff=_review_diff(r) if ok and (r.check is None or r.check.passed) else None,
    )
    released: list[Task] = []
    after = rounds.finish(w.store, w.agent_id, r.task_ref, outcome, w.state.fence, released)
    if released:  # the tasks that waited for this one are queued: wake a cold agent of theirs
        dependency_store.wake_released(w.store, w.settings, released, lambda a: _start_worker(w, a))
    max_rounds = after.extra.get("max_rounds")  # set by `tt spawn --max-rounds`
    if max_rounds and after.rounds_completed >= int(max_rounds):
        r.drain = f"max rounds ({max_rounds}) reached"
    return True


def _review_diff(r: RoundContext) -> str | None:
    """The agent's branch against its base, for a task that goes to a reviewer when the
    round ends well (None otherwise, or when git cannot say: the review says so)."""
    task, agent, path = r.task, r.agent, r.worker.state.worktree
    if task is None or not review_gate.needs_review(task) or not (agent.branch and path):
        return None
    try:
        return branch_diff(path, agent.base or "HEAD", "HEAD")
    except GitError as exc:
        log.warning("%s: no diff for the review of task %s: %s", agent.name, task.id[:8], exc)
        return f"(the diff could not be read: {exc})"


# --- preparing the CLI's run ------------------------------------------------------


def _parent(w: WorkerContext, agent: Agent) -> Agent | None:
    if agent.spawn_mode != "forkedcontext" or not agent.parent_agent_id or \
            agent.rounds_completed:
        return None
    return w.store.get_agent(agent.parent_agent_id)


def _state_dir(w: WorkerContext, agent: Agent, command: CliCommand) -> Path:
    """A folder of the agent's own that lasts across rounds (a CLI's chat history),
    made only for a CLI whose command line names it."""
    path = w.state_dir_of(agent.id)
    if any("{state}" in a for a in (*command.session_args, *command.fresh_args)):
        private_dir(path)
    return path


def _start_worker(w: WorkerContext, agent: Agent) -> None:
    """Start another agent's worker from here, detached (a cold agent woken by a task
    this round's completion released, with no host daemon to start it)."""
    detached(worker_argv(w.settings.root, runtime.launching(w.store, agent.id), agent.id),
             w.settings.logs_dir / agent.name / "worker.log", w.settings.root)


def _round_input(r: RoundContext) -> RoundInput:
    """What the prompt is built from; a fork the CLI made itself needs no transcript."""
    w, agent, m, notes = r.worker, r.agent, r.message, r.notes
    inherited: list[dict[str, str]] = []
    parent_name = ""
    if agent.spawn_mode == "forkedcontext" and agent.parent_agent_id and \
            agent.rounds_completed == 0 and not r.planned.forked:
        raw = w.store.recent_context(agent.parent_agent_id, w.settings.agent.context_rounds)
        inherited = [json.loads(x) for x in raw]
        parent = w.store.get_agent(agent.parent_agent_id)
        parent_name = parent.name if parent else "?"
    names = {keys.SUPERVISOR_ID: "supervisor"}
    for sender in {m.sender, *(n.sender for n in notes)} - names.keys():
        found = w.store.get_agent(sender)
        names[sender] = found.name if found else sender
    done_before = graph.read_results(w.store, r.task) if r.task is not None else []
    for dep in done_before:
        if dep.assigned_to and dep.assigned_to not in names:
            found = w.store.get_agent(dep.assigned_to)
            names[dep.assigned_to] = found.name if found else dep.assigned_to[:8]
    return RoundInput(agent=agent, town=w.settings.town, actionable=m, task=r.task,
                      notes=notes, inherited=inherited, parent_name=parent_name,
                      sender_names=names, dependencies=done_before)


def _run_cli(r: RoundContext) -> RunResult:
    """One run of the CLI, its process group recorded (and guarded by the watchdog)
    while it runs; a newer worker found holding the agent as it starts: it is killed
    and `r.fenced` set."""
    w, agent, number, prompt_text = r.worker, r.agent, r.number, r.prompt
    state = w.state

    def started(pid: int) -> None:
        w.watchdog.guard(pid)  # its process group dies with this worker
        state.cli_task = r.task_ref
        state.cli_group = pid
        if state.cut_short:  # the shutdown began just before the CLI did
            threading.Thread(target=kill_group, args=(pid,), daemon=True).start()
        assert state.fence is not None
        if not runtime.cli_started(w.store, state.fence, w.agent_id, pid, number):
            r.fenced = True  # the round raises Fenced once the CLI is gone
            threading.Thread(target=kill_group, args=(pid,), daemon=True).start()
        # written once the CLI runs: not on the way from a message to its CLI
        prompt_log.write_text(prompt_text)

    state.task_cancelled = False  # this run's own (the heartbeat sets it)
    prompt_log = w.logs / f"round-{number}.prompt"
    log_path = w.logs / f"round-{number}.log"
    too_large = with_prompt_limit(r.command, prompt_text)
    if too_large is not None:
        prompt_log.write_text(prompt_text)
        return RunResult(None, "", error=too_large)
    with log_path.open("a") as log_file:  # the round log says which session it works in
        log_file.write(f"tinytown: round {number} of {agent.name}; {r.planned.describe()}\n")
    began = time.monotonic()
    try:
        result = run_cli(
            replace(r.command, argv=r.argv), prompt_text,
            cwd=state.worktree or w.settings.root, env=r.run_env,
            log_path=log_path,
            timeout=w.settings.agent.round_timeout_secs, on_start=started,
        )
    finally:
        state.cli_group = state.cli_task = None
        w.watchdog.release()
    result.secs = time.monotonic() - began
    if result.error:  # it never started
        prompt_log.write_text(prompt_text)
    return result


def _without_session(agent: Agent) -> Agent:
    """The agent as if it had no session to continue (a copy, for planning the run)."""
    return msgspec.structs.replace(agent, session_id=None, spawn_mode=SpawnMode.FRESH)
