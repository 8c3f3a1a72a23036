"""A plan's `review = "reviewer"` runs (tt plan check and tt mission start take it): the
task carries the gate, its mission counts it as at work while it is in review, and the
verdict's completion releases the mission's next task in the same transaction."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import TownFixture
from tinytown.core.models import AgentState, Gates, MissionState, TaskState
from tinytown.db import rounds

PLAN = """\
[[task]]
name = "a"
text = "build it"
agent = "bob"
review = "reviewer"
max_review_rounds = 2

[[task]]
name = "b"
text = "then this"
agent = "bob"
after = ["a"]
"""


def test_a_reviewed_mission_task(town: TownFixture) -> None:
    t = town.town
    bob = t.spawn_agent("bob", start=False).id
    t.store.update_agent(bob, lambda a: setattr(a, "state", AgentState.IDLE))
    t.start_mission("m", PLAN)
    ids = t.mission("m")["tasks"]
    a = t.task(ids["a"])
    assert a.gates == Gates(review="reviewer", max_review_rounds=2)
    rounds.finish(t.store, bob, a.id, rounds.Outcome(
        number=1, ok=True, output="built", error="", context=json.dumps({}), context_rounds=1))
    assert t.task(a.id).state == TaskState.IN_REVIEW
    status = t.mission("m")
    assert status["state"] == MissionState.RUNNING.value  # in review: still at work
    assert t.task(ids["b"]).state == TaskState.BLOCKED
    t.review_verdict(a.id, True, "good")
    assert t.task(a.id).state == TaskState.COMPLETED
    assert t.task(ids["b"]).state == TaskState.ASSIGNED  # the mission released it at once
    r = town.tt("plan", "check", "--no-town", str(_write(town)))
    assert r.code == 0, r.err


def _write(town: TownFixture) -> Path:
    path = town.root / "plan.toml"
    path.write_text(PLAN)
    return path
