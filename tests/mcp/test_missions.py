"""The mission tools over `tt mcp` (stdio, the official client SDK): start_mission with
a plan's tasks, mission_status, add_mission_task, and their refusals as one line."""

from __future__ import annotations

from mcp import ClientSession

from tests.helpers import TownFixture
from tests.mcp.test_tools import call, refused, run, stdio

TASKS = [{"name": "a", "text": "first", "agent": "bob"},
         {"name": "b", "text": "second", "role": "worker", "after": ["a"]}]


def test_start_status_and_add(town: TownFixture) -> None:
    assert town.tt("spawn", "bob", "--no-start").code == 0

    async def body(session: ClientSession) -> None:
        started = await call(session, "start_mission", name="m", tasks=TASKS, budget=3,
                             goal="g")
        assert started["state"] == "running" and started["budget_usd"] == 3
        assert [[t["name"] for t in w] for w in started["waves"]] == [["a"], ["b"]]
        added = await call(session, "add_mission_task", mission="m", text="c", agent="bob",
                           after=["b"], name="c")
        assert added["state"] == "blocked" and added["mission"] == "m"
        status = await call(session, "mission_status", name="m")
        assert [t["name"] for w in status["waves"] for t in w] == ["a", "b", "c"]
        assert "comes after 'zz'" in await refused(
            session, "start_mission", name="n",
            tasks=[{"name": "a", "text": "x", "agent": "bob", "after": ["zz"]}])
        assert "no mission named" in await refused(session, "mission_status", name="nope")

    run(stdio(town), body)
