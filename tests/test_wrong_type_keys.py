"""A key of the wrong Redis type loses nothing: the round's scripts check types before
they change anything, and the key is moved aside (kept) so the work goes on."""

from __future__ import annotations

from tests.conftest import TownFixture
from tinytown import keys


def test_a_wrong_typed_inflight_key_does_not_lose_the_task(town: TownFixture) -> None:
    assert town.tt("spawn", "typed").code == 0
    town.wait_state("typed", "idle", timeout=30)
    agent_id = town.town.resolve("typed").id
    town.town.redis.set(keys.inflight(town.name, agent_id), "x")
    r = town.tt("assign", "typed", "still runs", "--wait", "--timeout", "30")
    assert r.code == 0, r
    aside = [k for k in town.town_keys() if k.startswith(f"tt:{town.name}:deadletter:inflight:")]
    assert len(aside) == 1 and town.town.redis.get(aside[0]) == "x"
    assert town.agent_state("typed") == "idle"
