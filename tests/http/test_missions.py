"""/v1/missions over real HTTP (`tt serve`): a plan as the JSON body, the mission in
waves, cancel, add a task; its errors as one line; /metrics' missions by state."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.http.test_api import Served, error_of, served  # noqa: F401 (a fixture)

PLAN = {"name": "web", "goal": "a site", "parallel": 2, "task": [
    {"name": "a", "text": "first", "agent": "quiet"},
    {"name": "b", "text": "second", "agent": "quiet", "after": ["a"]},
]}


def test_start_show_list_add_and_cancel(served: Served) -> None:  # noqa: F811
    r = served.post("/v1/missions", PLAN)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["state"] == "running" and doc["parallel"] == 2 and doc["goal"] == "a site"
    assert [[t["name"] for t in w] for w in doc["waves"]] == [["a"], ["b"]]
    assert [t["state"] for w in doc["waves"] for t in w] == ["assigned", "blocked"]
    assert [m["name"] for m in served.get("/v1/missions").json()] == ["web"]
    shown = served.get("/v1/missions/web").json()
    assert shown["waves"][1][0]["blocked_reason"] == "waiting for a"
    r = served.post("/v1/missions/web/tasks", {"text": "third", "agent": "quiet",
                                                "after": ["b"], "name": "c"})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "blocked" and r.json()["mission"] == "web"
    metrics = served.get("/metrics").text
    found = {s.labels["state"]: s.value for f in text_string_to_metric_families(metrics)
             if f.name == "tinytown_missions" for s in f.samples}
    assert found["running"] == 1 and found["done"] == 0
    r = served.post("/v1/missions/web/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    states = {t["state"] for w in served.get("/v1/missions/web").json()["waves"] for t in w}
    assert states == {"cancelled"}


def test_errors_are_one_line(served: Served) -> None:  # noqa: F811
    bad = {"name": "x", "task": [{"name": "a", "text": "t", "agent": "quiet",
                                  "after": ["zz"]}]}
    assert "comes after 'zz'" in error_of(served.post("/v1/missions", bad), 422)
    both = {"name": "x", "task": [{"name": "a", "text": "t", "agent": "quiet",
                                   "role": "worker"}]}
    assert "both a role and an agent" in error_of(served.post("/v1/missions", both), 422)
    gated = {"name": "x", "task": [{"name": "a", "text": "t", "agent": "quiet",
                                    "review": "nobody"}]}  # a review gate runs: its role
    assert "unknown role 'nobody'" in error_of(served.post("/v1/missions", gated), 422)
    assert "invalid request" in error_of(served.post("/v1/missions", {"name": "x"}), 422)
    assert "no mission named" in error_of(served.get("/v1/missions/nope"), 404)
    assert error_of(served.post("/v1/missions", PLAN, scope="read"), 403)
    assert served.post("/v1/missions", PLAN).status_code == 201
    assert "exists already" in error_of(served.post("/v1/missions", PLAN), 409)
