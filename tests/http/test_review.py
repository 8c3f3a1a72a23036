"""The review gate over REST: `review` on `POST /v1/tasks`, and a verdict by hand
(`POST /v1/tasks/{ref}/verdict`)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import TownFixture
from tests.http.test_api import add_key, bearer, error_of, start_server
from tinytown.db import rounds

pytestmark = pytest.mark.timeout(90)


def test_rest_review_and_verdict(town: TownFixture) -> None:
    assert town.tt("spawn", "w", "--no-start").code == 0
    key = add_key(town, "ci", "write")
    server = start_server(town)
    try:
        with httpx.Client(base_url=server.base, headers=bearer(key), timeout=30) as api:
            error_of(api.post("/v1/tasks", json={"agent": "w", "description": "x",
                                                 "gates": {"review": "nobody"}}), 422)
            made = api.post("/v1/tasks", json={"agent": "w", "description": "build it",
                                               "gates": {"review": "reviewer",
                                                         "max_review_rounds": 2}})
            assert made.status_code == 201, made.text
            task = made.json()
            assert task["gates"] == {"review": "reviewer", "max_review_rounds": 2}
            assert "not in review" in error_of(api.post(
                f"/v1/tasks/{task['id']}/verdict", json={"verdict": "approve"}), 409)
            rounds.finish(town.town.store, task["assigned_to"], task["id"], rounds.Outcome(
                number=1, ok=True, output="built", error="", context=json.dumps({}),
                context_rounds=1))
            shown = api.get(f"/v1/tasks/{task['id']}").json()
            assert shown["state"] == "in_review" and shown["review_rounds"] == 1
            review = api.get(f"/v1/tasks/{shown['review_task']}").json()
            assert review["reviews"] == task["id"] and review["role"] == "reviewer"
            answered = api.post(f"/v1/tasks/{task['id'][:8]}/verdict",
                                json={"verdict": "request_changes", "notes": "add a test"})
            assert answered.status_code == 200, answered.text
            back = answered.json()
            assert back["state"] == "assigned"
            assert back["review_history"][0]["notes"] == "add a test"
    finally:
        server.stop()
