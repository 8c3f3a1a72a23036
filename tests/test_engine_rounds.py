"""What a round does with an inbox, and how a task's outcome is recorded."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import TownFixture, pid_gone, wait_until
from tinytown import keys
from tinytown.db.wakeup import enqueue_round
from tinytown.models import MessageType, Priority, Task, TaskState


def _task_state(town: TownFixture, task_id: str) -> TaskState:
    return town.town.store.require_task(task_id).state


def _wait_task(town: TownFixture, task_id: str, *states: TaskState, timeout: float = 20) -> None:
    wait_until(lambda: _task_state(town, task_id) in states, timeout,
               f"task {task_id[:8]} to be {'/'.join(states)}")


def test_round_answers_status_and_ping_without_the_cli(town: TownFixture) -> None:
    handle = town.town.spawn_agent("alice")
    town.wait_state("alice", "idle")
    request = handle.send(MessageType.status_request())
    ping = handle.send(MessageType.ping(), priority=Priority.HIGH)
    wait_until(lambda: town.town.store.inbox_len(keys.SUPERVISOR_ID) == 2, 10, "replies")
    replies = {m.type: m for m in town.town.store.peek_inbox(keys.SUPERVISOR_ID)}
    assert replies["status_response"].correlation_id == request.id
    assert replies["status_response"].body.state.value == "idle"  # type: ignore[union-attr]
    assert replies["pong"].correlation_id == ping.id
    assert replies["pong"].sender == handle.id
    assert town.runs() == []  # the agent CLI never ran
    assert handle.state().rounds_completed == 0  # type: ignore[union-attr]


def test_urgent_first_and_notes_batched_into_the_next_prompt(town: TownFixture) -> None:
    handle = town.town.spawn_agent("alice", start=False)
    town.town.channel.send(handle.id, MessageType.informational("the build is green"))
    town.town.channel.send(handle.id, MessageType.task("normal work"))
    town.town.channel.send(handle.id, MessageType.task("urgent fix"), priority="urgent")
    from tinytown.ops.launcher import start_worker

    start_worker(town.town.settings, handle.state())  # type: ignore[arg-type]
    wait_until(lambda: len(town.runs()) == 2, 20, "two CLI runs")
    first = (town.records / "alice-1.prompt").read_text()
    second = (town.records / "alice-2.prompt").read_text()
    assert "urgent fix" in first and "normal work" not in first
    assert "normal work" in second
    assert "the build is green" in second  # informational rides along with the next task
    town.wait_state("alice", "idle")
    assert town.town.store.inbox_len(handle.id) == 0


def test_informational_alone_waits_without_running_the_cli(town: TownFixture) -> None:
    handle = town.town.spawn_agent("alice")
    town.wait_state("alice", "idle")
    handle.send(MessageType.informational("fyi"))
    handle.send(MessageType.status_request())  # its answer proves a round ran
    wait_until(lambda: town.town.store.inbox_len(keys.SUPERVISOR_ID) == 1, 10, "a round")
    assert town.runs() == []
    assert [m.type for m in town.town.store.peek_inbox(handle.id)] == ["informational"]


def test_task_failure_records_exit_code_and_output(town: TownFixture) -> None:
    town.town.spawn_agent("alice")
    task_id = town.town.assign("alice", Task("please fail @exit 3"))
    _wait_task(town, task_id, TaskState.FAILED)
    task = town.town.store.require_task(task_id)
    assert "exited with code 3" in (task.result or "")
    assert "fake agent alice" in (task.result or "")
    reports = town.town.store.peek_inbox(keys.SUPERVISOR_ID)
    assert [m.type for m in reports] == ["task_failed"]
    town.wait_state("alice", "idle")
    agent = town.town.resolve("alice")
    assert agent.tasks_completed == 0 and agent.rounds_completed == 1


def test_cli_completing_its_own_task_counts_once(town: TownFixture) -> None:
    town.town.spawn_agent("alice")
    task_id = town.town.assign("alice", Task("do it @complete my-own-result"))
    _wait_task(town, task_id, TaskState.COMPLETED)
    town.wait_state("alice", "idle")
    wait_until(lambda: town.town.resolve("alice").rounds_completed == 1, 10, "round end")
    assert town.town.store.require_task(task_id).result == "my-own-result"
    assert town.town.resolve("alice").tasks_completed == 1
    done = town.town.store.peek_inbox(keys.SUPERVISOR_ID)
    assert [m.type for m in done] == ["task_done"]
    assert done[0].body.result == "my-own-result"  # type: ignore[union-attr]


def test_shell_metacharacters_reach_the_cli_as_text(town: TownFixture, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    nasty = f"$(touch {marker}); rm -rf ~ `touch {marker}` && touch {marker}"
    town.town.spawn_agent("alice")
    task_id = town.town.assign("alice", Task(nasty))
    _wait_task(town, task_id, TaskState.COMPLETED)
    assert nasty in (town.records / "alice-1.prompt").read_text()
    assert not marker.exists()


def test_missing_executable_fails_the_task_and_agent_stays_usable(town: TownFixture) -> None:
    town.town.spawn_agent("ghost", cli="/nonexistent/agent-cli --go")
    task_id = town.town.assign("ghost", Task("anything"))
    _wait_task(town, task_id, TaskState.FAILED)
    assert "cannot run '/nonexistent/agent-cli'" in (town.town.store.require_task(task_id).result
                                                   or "")
    town.wait_state("ghost", "idle")
    second = town.town.assign("ghost", Task("again"))
    _wait_task(town, second, TaskState.FAILED)


def test_round_time_limit_kills_the_process_group(town_factory: object) -> None:
    town: TownFixture = town_factory(round_timeout=1.5)  # type: ignore[operator]
    town.town.spawn_agent("slow")
    task_id = town.town.assign("slow", Task("@spawn-child @sleep 60"))
    _wait_task(town, task_id, TaskState.FAILED, timeout=30)
    assert "timed out after 1.5s" in (town.town.store.require_task(task_id).result or "")
    child = int((town.records / "slow-1.child").read_text())
    wait_until(lambda: pid_gone(child), 10, "the CLI's child to be killed")
    town.wait_state("slow", "idle")


def test_duplicate_round_job_does_nothing(town: TownFixture) -> None:
    handle = town.town.spawn_agent("alice")
    task_id = town.town.assign("alice", Task("once"))
    _wait_task(town, task_id, TaskState.COMPLETED)
    town.wait_state("alice", "idle")
    for _ in range(3):
        enqueue_round(town.town.redis, town.name, handle.id, force=True)
    handle.send(MessageType.status_request())  # queued behind the duplicates
    wait_until(lambda: town.town.store.inbox_len(keys.SUPERVISOR_ID) == 2, 10, "status reply")
    assert len(town.runs()) == 1


def test_query_answer_goes_back_to_the_sender(town: TownFixture) -> None:
    town.town.spawn_agent("alice")
    town.town.spawn_agent("bob", start=False)
    question = town.town.channel.send("alice", MessageType.query("what is 6x7?"), sender="bob")
    wait_until(lambda: town.town.store.inbox_len(town.town.resolve("bob").id), 20, "an answer")
    answer = town.town.store.peek_inbox(town.town.resolve("bob").id)[0]
    assert answer.type == "informational" and answer.correlation_id == question.id
    assert "what is 6x7?" in (town.records / "alice-1.prompt").read_text()


def test_agent_environment_and_round_logs(town: TownFixture) -> None:
    handle = town.town.spawn_agent("alice")
    task_id = town.town.assign("alice", Task("env check"))
    _wait_task(town, task_id, TaskState.COMPLETED)
    log = town.root / ".tt" / "logs" / "alice" / "round-1.log"
    assert "fake agent alice round 1" in log.read_text()
    runs = town.runs()
    assert runs[0][:3] == ["alice", "1", task_id]
    assert handle.id in (town.records / "alice-1.prompt").read_text()


def test_no_celery_result_keys_pile_up(town: TownFixture) -> None:
    town.town.spawn_agent("alice")
    ids = [town.town.assign("alice", Task(f"job {i}")) for i in range(3)]
    for task_id in ids:
        _wait_task(town, task_id, TaskState.COMPLETED)
    town.wait_state("alice", "idle")
    meta = [k for k in town.town_keys() if "celery-task-meta" in k]
    assert meta == []


def test_key_layout_after_a_task(town: TownFixture) -> None:
    handle = town.town.spawn_agent("alice")
    task_id = town.town.assign("alice", Task("layout"))
    _wait_task(town, task_id, TaskState.COMPLETED)
    town.wait_state("alice", "idle")
    wait_until(lambda: town.town.resolve("alice").rounds_completed == 1, 10, "round end")
    t, a = town.name, handle.id
    queue = keys.agent_queue(t, a)
    expected = {
        keys.agent(t, a), keys.task(t, task_id), keys.names(t), keys.events(t),
        keys.runtime(t, a), keys.context(t, a), keys.inbox(t, keys.SUPERVISOR_ID),
        f"tt:{t}:celery:_kombu.binding.{queue}",
        f"tt:{t}:celery:_kombu.binding.tt.{t}.control.pidbox",
        # kombu's own bookkeeping for the queue's binding
        f"tt:{t}:celery:_kombu.binding_permanent.{queue}",
        f"tt:{t}:celery:_kombu.binding_deadlines",
    }
    assert town.town_keys() == expected
    context = json.loads(town.town.redis.lindex(keys.context(t, a), 0))
    assert context["round"] == 1 and "layout" in context["prompt"]
