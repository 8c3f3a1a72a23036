"""What a round does with an inbox, and how a task's outcome is recorded.

The rounds run in-process (`worker_in_process`: the real WorkerRuntime, Redis and agent
CLI, without a worker process); what needs Celery itself runs on real workers below."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.helpers import InProcessWorker, TownFixture, pid_gone, wait_until
from tinytown.core import keys
from tinytown.core.models import MessageType, Priority, Task, TaskState
from tinytown.worker.prompt import CONTEXT_END

Worker = Callable[..., InProcessWorker]


def _started(town: TownFixture, worker_in_process: Worker, name: str,
             cli: str | None = None) -> InProcessWorker:
    """An agent recorded without a worker, its runtime started in-process: idle."""
    town.town.spawn_agent(name, cli=cli, start=False)
    worker = worker_in_process(town, name)
    assert town.agent_state(name) == "idle"
    return worker


def test_round_answers_status_and_ping_without_the_cli(
    town: TownFixture, worker_in_process: Worker
) -> None:
    worker = _started(town, worker_in_process, "alice")
    handle = town.town.agent("alice")
    request = handle.send(MessageType.status_request())
    ping = handle.send(MessageType.ping(), priority=Priority.HIGH)
    worker.run_round()
    assert town.town.store.inbox_len(keys.SUPERVISOR_ID) == 2  # replies
    replies = {m.type: m for m in town.town.store.peek_inbox(keys.SUPERVISOR_ID)}
    assert replies["status_response"].correlation_id == request.id
    assert replies["status_response"].body.state.value == "idle"  # type: ignore[union-attr]
    assert replies["pong"].correlation_id == ping.id
    assert replies["pong"].sender == handle.id
    assert town.runs() == []  # the agent CLI never ran
    assert handle.state().rounds_completed == 0  # type: ignore[union-attr]


def test_urgent_first_and_notes_batched_into_the_next_prompt(
    town: TownFixture, worker_in_process: Worker
) -> None:
    handle = town.town.spawn_agent("alice", start=False)
    town.town.channel.send(handle.id, MessageType.informational("the build is green"))
    town.town.channel.send(handle.id, MessageType.task("normal work"))
    town.town.channel.send(handle.id, MessageType.task("urgent fix"), priority="urgent")
    worker_in_process(town, "alice").run_round()  # the worker looks at its inbox at start
    assert len(town.runs()) == 2  # two CLI runs
    first = (town.records / "alice-1.prompt").read_text()
    second = (town.records / "alice-2.prompt").read_text()
    assert "urgent fix" in first and "normal work" not in first
    assert "normal work" in second
    assert "the build is green" in second  # informational rides along with the next task
    assert town.agent_state("alice") == "idle"
    assert town.town.store.inbox_len(handle.id) == 0


def test_informational_alone_waits_without_running_the_cli(
    town: TownFixture, worker_in_process: Worker
) -> None:
    worker = _started(town, worker_in_process, "alice")
    handle = town.town.agent("alice")
    handle.send(MessageType.informational("fyi"))
    handle.send(MessageType.status_request())  # its answer proves a round ran
    worker.run_round()
    assert town.town.store.inbox_len(keys.SUPERVISOR_ID) == 1  # a round
    assert town.runs() == []
    assert [m.type for m in town.town.store.peek_inbox(handle.id)] == ["informational"]


def test_task_failure_records_exit_code_and_output(
    town: TownFixture, worker_in_process: Worker
) -> None:
    worker = _started(town, worker_in_process, "alice")
    task_id = town.town.assign("alice", Task("please fail @exit 3"))
    worker.run_round()
    assert town.task_state(task_id) == TaskState.FAILED
    task = town.town.store.require_task(task_id)
    assert "exited with code 3" in (task.result or "")
    assert "fake agent alice" in (task.result or "")
    reports = town.town.store.peek_inbox(keys.SUPERVISOR_ID)
    assert [m.type for m in reports] == ["task_failed"]
    assert town.agent_state("alice") == "idle"
    agent = town.town.resolve("alice")
    assert agent.tasks_completed == 0 and agent.rounds_completed == 1


def test_cli_completing_its_own_task_counts_once(
    town: TownFixture, worker_in_process: Worker
) -> None:
    worker = _started(town, worker_in_process, "alice")
    task_id = town.town.assign("alice", Task("do it @complete my-own-result"))
    worker.run_round()
    assert town.task_state(task_id) == TaskState.COMPLETED
    assert town.agent_state("alice") == "idle"
    assert town.town.resolve("alice").rounds_completed == 1  # the round's end
    assert town.town.store.require_task(task_id).result == "my-own-result"
    assert town.town.resolve("alice").tasks_completed == 1
    done = town.town.store.peek_inbox(keys.SUPERVISOR_ID)
    assert [m.type for m in done] == ["task_done"]
    assert done[0].body.result == "my-own-result"  # type: ignore[union-attr]


def test_shell_metacharacters_reach_the_cli_as_text(
    town: TownFixture, worker_in_process: Worker, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    nasty = f"$(touch {marker}); rm -rf ~ `touch {marker}` && touch {marker}"
    worker = _started(town, worker_in_process, "alice")
    task_id = town.town.assign("alice", Task(nasty))
    worker.run_round()
    assert town.task_state(task_id) == TaskState.COMPLETED
    assert nasty in (town.records / "alice-1.prompt").read_text()
    assert not marker.exists()


def test_missing_executable_fails_the_task_and_agent_stays_usable(
    town: TownFixture, worker_in_process: Worker
) -> None:
    worker = _started(town, worker_in_process, "ghost", cli="/nonexistent/agent-cli --go")
    task_id = town.town.assign("ghost", Task("anything"))
    worker.run_round()
    assert town.task_state(task_id) == TaskState.FAILED
    assert "cannot run '/nonexistent/agent-cli'" in (town.town.store.require_task(task_id).result
                                                   or "")
    assert town.agent_state("ghost") == "idle"
    second = town.town.assign("ghost", Task("again"))
    worker.run_round()
    assert town.task_state(second) == TaskState.FAILED
    assert worker.shutdowns == []  # a CLI that cannot start is the task's failure only


def test_round_time_limit_kills_the_process_group(
    town_factory: Callable[..., TownFixture], worker_in_process: Worker
) -> None:
    town = town_factory(round_timeout=1.5)
    worker = _started(town, worker_in_process, "slow")
    task_id = town.town.assign("slow", Task("@spawn-child @sleep 60"))
    worker.run_round()  # returns once the time limit ended the round
    assert town.task_state(task_id) == TaskState.FAILED
    assert "timed out after 1.5s" in (town.town.store.require_task(task_id).result or "")
    child = int((town.records / "slow-1.child").read_text())
    wait_until(lambda: pid_gone(child), 10, "the CLI's child to be killed")
    assert town.agent_state("slow") == "idle"


def test_duplicate_round_job_does_nothing(town: TownFixture, worker_in_process: Worker) -> None:
    worker = _started(town, worker_in_process, "alice")
    handle = town.town.agent("alice")
    task_id = town.town.assign("alice", Task("once"))
    worker.run_round()
    assert town.task_state(task_id) == TaskState.COMPLETED
    assert town.agent_state("alice") == "idle"
    for _ in range(3):  # duplicate round jobs: each finds nothing to do
        worker.run_round()
    handle.send(MessageType.status_request())  # queued behind the duplicates
    worker.run_round()
    assert town.town.store.inbox_len(keys.SUPERVISOR_ID) == 2  # the status reply
    assert len(town.runs()) == 1


def test_query_answer_goes_back_to_the_sender(
    town: TownFixture, worker_in_process: Worker
) -> None:
    worker = _started(town, worker_in_process, "alice")
    town.town.spawn_agent("bob", start=False)
    question = town.town.channel.send("alice", MessageType.query("what is 6x7?"), sender="bob")
    worker.run_round()
    assert town.town.store.inbox_len(town.town.resolve("bob").id)  # an answer
    answer = town.town.store.peek_inbox(town.town.resolve("bob").id)[0]
    assert answer.type == "informational" and answer.correlation_id == question.id
    assert "what is 6x7?" in (town.records / "alice-1.prompt").read_text()


def test_agent_environment_and_round_logs(town: TownFixture, worker_in_process: Worker) -> None:
    worker = _started(town, worker_in_process, "alice")
    handle = town.town.agent("alice")
    task_id = town.town.assign("alice", Task("env check"))
    worker.run_round()
    assert town.task_state(task_id) == TaskState.COMPLETED
    log = town.root / ".tt" / "logs" / "alice" / "round-1.log"
    assert "fake agent alice round 1" in log.read_text()
    runs = town.runs()
    assert runs[0][:3] == ["alice", "1", task_id]
    assert handle.id in (town.records / "alice-1.prompt").read_text()


# --- a round's end: max rounds, inherited context, `tt status --deep` ----------------


def test_max_rounds_counts_only_cli_runs(town: TownFixture, worker_in_process: Worker) -> None:
    r = town.tt("spawn", "alice", "--max-rounds", "2", "--no-start")
    assert r.code == 0, r.err
    worker = worker_in_process(town, "alice")
    assert town.agent_state("alice") == "idle"
    town.town.channel.send("alice", MessageType.ping())
    worker.run_round()
    assert town.town.store.inbox_len(keys.SUPERVISOR_ID) == 1  # pong
    ids = [town.tt("assign", "alice", f"job {i}").out.strip() for i in range(3)]
    worker.run_round()
    assert len(worker.shutdowns) == 1  # the second CLI run drained it: the worker exits
    assert town.agent_state("alice") == "draining"
    worker.shut_down()  # the worker process's worker_shutdown
    r = town.tt("wait", "alice", "--timeout", "30")
    assert r.code == 0
    assert town.agent_state("alice") == "cold"
    states = [town.town.store.require_task(i).state for i in ids]
    assert states == [TaskState.COMPLETED, TaskState.COMPLETED, TaskState.ASSIGNED]
    assert town.town.resolve("alice").rounds_completed == 2


def test_fork_inherits_parent_context_between_markers(
    town: TownFixture, worker_in_process: Worker
) -> None:
    assert town.tt("spawn", "parent", "--no-start").code == 0
    parent = worker_in_process(town, "parent")
    task_id = town.tt("assign", "parent", "design the schema SECRET-PLAN").out.strip()
    parent.run_round()
    assert town.task_state(task_id) == TaskState.COMPLETED
    r = town.tt("spawn", "child", "--parent", "parent", "--fork", "--json", "--no-start")
    assert r.code == 0, r.err
    worker = worker_in_process(town, "child")
    child_task = town.tt("assign", "child", "implement it").out.strip()
    worker.run_round()
    assert town.task_state(child_task) == TaskState.COMPLETED
    prompt = (town.records / "child-1.prompt").read_text()
    begin = prompt.index("===== BEGIN INHERITED CONTEXT from parent")
    end = prompt.index(CONTEXT_END)
    assert begin < prompt.index("SECRET-PLAN") < end < prompt.index("implement it")
    child = town.town.resolve("child")
    assert child.spawn_mode.value == "forkedcontext"
    assert child.parent_agent_id == town.town.resolve("parent").id
    second = town.tt("assign", "child", "more").out.strip()
    worker.run_round()
    assert town.task_state(second) == TaskState.COMPLETED
    assert "INHERITED CONTEXT" not in (town.records / "child-2.prompt").read_text()


def test_status_deep_shows_rounds_events_and_log_tail(
    town: TownFixture, worker_in_process: Worker
) -> None:
    assert town.tt("spawn", "alice", "--no-start").code == 0
    worker = worker_in_process(town, "alice")
    task_id = town.tt("assign", "alice", "deep look").out.strip()
    worker.run_round()
    assert town.task_state(task_id) == TaskState.COMPLETED
    assert town.agent_state("alice") == "idle"
    r = town.tt("status", "--deep")
    assert r.code == 0, r.err
    assert "alice: rounds 1, uptime" in r.out
    assert "fake agent alice round 1 did" in r.out  # the newest round log's tail
    assert "idle -> working" in r.out
    deep = json.loads(town.tt("status", "--deep", "--json").out)["deep"][0]
    assert deep["name"] == "alice" and deep["rounds"] == 1


# --- on real workers: what Celery itself leaves in Redis ------------------------------


def test_no_celery_result_keys_pile_up(town: TownFixture) -> None:
    town.town.spawn_agent("alice")
    ids = [town.town.assign("alice", Task(f"job {i}")) for i in range(3)]
    for task_id in ids:
        town.wait_task(task_id, TaskState.COMPLETED)
    town.wait_state("alice", "idle")
    meta = [k for k in town.town_keys() if "celery-task-meta" in k]
    assert meta == []


def test_key_layout_after_a_task(town: TownFixture) -> None:
    handle = town.town.spawn_agent("alice")
    task_id = town.town.assign("alice", Task("layout"))
    town.wait_task(task_id, TaskState.COMPLETED)
    town.wait_state("alice", "idle")
    wait_until(lambda: town.town.resolve("alice").rounds_completed == 1, 10, "round end")
    t, a = town.name, handle.id
    queue = keys.agent_queue(t, a)
    expected = {
        keys.agent(t, a), keys.task(t, task_id), keys.names(t), keys.events(t),
        keys.runtime(t, a), keys.epoch(t, a), keys.context(t, a),
        keys.inbox(t, keys.SUPERVISOR_ID), keys.usage(t), keys.rounds(t), keys.round_stats(t),
        f"tt:{t}:celery:_kombu.binding.{queue}",
        f"tt:{t}:celery:_kombu.binding.tt.{t}.control.pidbox",
        # kombu's own bookkeeping for the queue's binding
        f"tt:{t}:celery:_kombu.binding_permanent.{queue}",
        f"tt:{t}:celery:_kombu.binding_deadlines",
    }
    # a second round job (the worker's start-up look at its inbox, when the task came
    # first) may still be queued or unacked on a loaded machine: it finds nothing to do,
    # and Celery's keys for it go once it is acked
    try:
        wait_until(lambda: town.town_keys() == expected, 10, "the key layout at rest")
    except AssertionError:
        pass  # the assertion below shows the difference
    assert town.town_keys() == expected
    context = json.loads(town.town.redis.lindex(keys.context(t, a), 0))
    assert context["round"] == 1 and "layout" in context["prompt"]
