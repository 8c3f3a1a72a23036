"""MCP and gates: assign_task takes `gates`; there is no approve or reject tool (the
MCP server is the agents', and an agent must not approve its own task)."""

from __future__ import annotations

from mcp import ClientSession

from tests.helpers import TownFixture
from tests.mcp.test_tools import agents, as_agent, call, refused, run  # noqa: F401


def test_assign_task_with_gates_and_no_approval_tools(agents: TownFixture) -> None:  # noqa: F811
    town = agents

    async def body(session: ClientSession) -> None:
        names = {t.name for t in (await session.list_tools()).tools}
        assert "assign_task" in names and not names & {"approve", "reject"}
        task = await call(session, "assign_task", description="gated", agent="bob",
                          gates={"check": "make test", "max_fix_rounds": 1, "approve": True})
        assert task["gates"] == {"check": "make test", "max_fix_rounds": 1, "approve": True}
        assert "unknown gate 'reviewer'" in await refused(
            session, "assign_task", description="x", agent="bob", gates={"reviewer": "r"})
        assert "max_fix_rounds" in await refused(
            session, "assign_task", description="x", agent="bob",
            gates={"check": "true", "max_fix_rounds": -1})

    run(as_agent(town, "bob"), body)
    gated = [t for t in town.town.list_tasks() if t.gates is not None]
    assert len(gated) == 1 and gated[0].gates and gated[0].gates.max_fix_rounds == 1
