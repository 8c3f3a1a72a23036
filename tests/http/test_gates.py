"""Gates over real HTTP (`tt serve`): a task assigned with gates, approve and reject of
tasks and missions (409 when nothing awaits approval), and /metrics' new states."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.http.test_api import Served, error_of, served  # noqa: F401 (a fixture)
from tinytown.core.models import TaskState

GATED = {"name": "web", "approve": True, "task": [
    {"name": "a", "text": "first", "agent": "quiet", "approve": True, "check": "true"},
]}


def _metric(served: Served, family: str) -> dict[str, float]:  # noqa: F811
    text = served.get("/metrics").text
    return {s.labels["state"]: s.value for f in text_string_to_metric_families(text)
            if f.name == family for s in f.samples}


def test_gates_approve_and_reject_over_http(served: Served) -> None:  # noqa: F811
    r = served.post("/v1/tasks", {"description": "ship", "agent": "quiet",
                                  "gates": {"check": "pytest -q", "approve": True}})
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["gates"] == {"check": "pytest -q", "approve": True}
    assert "not awaiting approval" in error_of(
        served.post(f"/v1/tasks/{task['id']}/approve", {}), 409)
    store = served.town.town.store
    store.update_task(task["id"], lambda t: setattr(t, "state", TaskState.AWAITING_APPROVAL))
    assert _metric(served, "tinytown_tasks")["awaiting_approval"] == 1
    r = served.post(f"/v1/tasks/{task['id'][:8]}/reject", {"note": "smaller, please"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "assigned"
    assert r.json()["follow_up"] == "Changes requested: smaller, please"
    store.update_task(task["id"], lambda t: setattr(t, "state", TaskState.AWAITING_APPROVAL))
    assert served.post(f"/v1/tasks/{task['id']}/approve", {}, scope="read").status_code == 403
    r = served.post(f"/v1/tasks/{task['id']}/approve", {"note": "fine"})
    assert r.status_code == 200 and r.json()["state"] == "completed"
    approved = [e for e in store.read_events(100) if e["kind"] == "approved"]
    assert approved[-1]["by"] == "api" and approved[-1]["note"] == "fine"

    r = served.post("/v1/missions", GATED)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "awaiting_approval"
    assert [t["state"] for w in r.json()["waves"] for t in w] == ["blocked"]
    assert _metric(served, "tinytown_missions")["awaiting_approval"] == 1
    r = served.post("/v1/missions/web/approve", {"note": "go"})
    assert r.status_code == 200 and r.json()["state"] == "running"
    shown = served.get("/v1/missions/web").json()
    assert [t["state"] for w in shown["waves"] for t in w] == ["assigned"]
    assert "not awaiting approval" in error_of(served.post("/v1/missions/web/reject", {}), 409)
    second = {**GATED, "name": "web2"}
    assert served.post("/v1/missions", second).status_code == 201
    r = served.post("/v1/missions/web2/reject", {"note": "no"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert "no mission named" in error_of(served.post("/v1/missions/nope/approve", {}), 404)
