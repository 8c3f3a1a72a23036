"""GET /v1/questions and POST /v1/tasks/{ref}/reply against a real `tt serve`, a real
worker (alice, the fake agent CLI, whose output ends with `QUESTION: ...` for `@ask`)
and keys of each scope; /metrics counts the tasks awaiting input."""

from __future__ import annotations

import pytest

from tests.http.test_api import Served, served
from tinytown.core.models import MAX_MESSAGE_BYTES, TaskState

pytestmark = pytest.mark.timeout(120)
__all__ = ["served"]  # the fixture, for the tests here


def test_questions_and_reply_over_rest(served: Served) -> None:
    town = served.town
    task_id = town.town.assign("alice", "pick a colour\n@ask red or blue?")
    town.wait_task(task_id, TaskState.AWAITING_INPUT, timeout=30)

    r = served.get("/v1/questions")
    assert r.status_code == 200, r.text
    [q] = r.json()
    assert (q["task"], q["agent_name"], q["question"]) == (task_id, "alice", "red or blue?")
    assert q["agent"] == town.town.resolve("alice").id and q["asked_at"]
    assert q["description"] == "pick a colour" and q["mission"] is None
    assert served.get("/v1/questions", scope=None).status_code == 401
    metrics = served.get("/metrics").text
    assert 'tinytown_tasks{state="awaiting_input"} 1.0' in metrics

    path = f"/v1/tasks/{task_id[:8]}/reply"
    assert served.post(path, {"answer": "blue"}, scope="read").status_code == 403
    assert served.post(path, {"answer": ""}).status_code == 422
    assert served.post(path, {"answer": "x" * (MAX_MESSAGE_BYTES + 1)}).status_code == 422
    assert served.post(path, {"reply": "blue"}).status_code == 422
    assert served.post("/v1/tasks/0000dead/reply", {"answer": "x"}).status_code == 404
    assert town.task_state(task_id) == TaskState.AWAITING_INPUT  # nothing was written

    r = served.post(path, {"answer": "blue"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == task_id and r.json()["answer"] == "blue"
    second = served.post(path, {"answer": "red"})
    assert second.status_code == 409 and "not awaiting input" in second.json()["error"]
    town.wait_task(task_id, TaskState.COMPLETED, timeout=30)
    assert served.get("/v1/questions").json() == []
    prompts = [p.read_text() for p in sorted(town.records.glob("alice-*.prompt"))]
    assert any("red or blue?" in p and "Their answer:\nblue\n" in p for p in prompts)
    assert not any("Their answer:\nred" in p for p in prompts)
