"""`after` over REST (`POST /v1/tasks`), and the retry and unblock routes."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import TownFixture
from tests.http.test_api import add_key, bearer, error_of, start_server
from tinytown.core.models import TaskState

pytestmark = pytest.mark.timeout(90)


def test_rest_after_retry_and_unblock(town: TownFixture) -> None:
    assert town.tt("spawn", "w", "--no-start").code == 0
    key = add_key(town, "ci", "write")
    server = start_server(town)
    try:
        with httpx.Client(base_url=server.base, headers=bearer(key), timeout=30) as api:
            parent = api.post("/v1/tasks", json={"agent": "w", "description": "p"}).json()
            made = api.post("/v1/tasks", json={"agent": "w", "description": "child",
                                               "after": [parent["id"][:8]]})
            assert made.status_code == 201, made.text
            child = made.json()
            assert child["state"] == "blocked" and child["after"] == [parent["id"]]
            queued = api.post("/v1/tasks", json={"role": "worker", "description": "r",
                                                 "after": [parent["id"]]}).json()
            assert queued["state"] == "blocked" and queued["role"] == "worker"
            metrics = api.get("/metrics")
            assert metrics.status_code == 200, metrics.text
            samples = {(m.name, tuple(m.labels.items())): m.value for family in
                       text_string_to_metric_families(metrics.text) for m in family.samples}
            assert samples[("tinytown_tasks", (("state", "blocked"),))] == 2
            error_of(api.post("/v1/tasks", json={"agent": "w", "description": "x",
                                                 "after": ["0000dead"]}), 404)
            assert api.post(f"/v1/tasks/{parent['id']}/fail", json={"error": "no"}
                            ).json()["state"] == "failed"
            shown = api.get(f"/v1/tasks/{child['id']}").json()
            assert shown["blocked_reason"] == f"{parent['id'][:8]} failed: no"
            error_of(api.post(f"/v1/tasks/{child['id']}/retry"), 409)  # blocked, not failed
            retried = api.post(f"/v1/tasks/{parent['id']}/retry", json={"to": "w"})
            assert retried.status_code == 200, retried.text
            assert retried.json()["state"] == "assigned"
            assert api.get(f"/v1/tasks/{child['id']}").json().get("blocked_reason") is None
            assert api.post(f"/v1/tasks/{parent['id']}/cancel").status_code == 200
            unblocked = api.post(f"/v1/tasks/{child['id'][:8]}/unblock")
            assert unblocked.status_code == 200, unblocked.text
            assert unblocked.json()["state"] == "assigned"
            error_of(api.post(f"/v1/tasks/{child['id']}/unblock"), 409)
    finally:
        server.stop()
    assert town.town.task(queued["id"]).state == TaskState.BLOCKED
