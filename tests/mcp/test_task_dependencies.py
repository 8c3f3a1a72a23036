"""`after` on the MCP tool assign_task, and the retry_task and unblock_task tools."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import ClientSession

from tests.helpers import TownFixture
from tests.mcp.test_tools import call, refused, run, stdio
from tinytown.core.models import TaskState

pytestmark = pytest.mark.timeout(90)


def test_mcp_after_retry_and_unblock(town: TownFixture) -> None:
    assert town.tt("spawn", "w", "--no-start").code == 0
    seen: dict[str, Any] = {}

    async def body(session: ClientSession) -> None:
        parent = await call(session, "assign_task", description="p", agent="w")
        child = await call(session, "assign_task", description="c", agent="w",
                           after=[parent["id"][:8]])
        assert child["state"] == "blocked" and child["after"] == [parent["id"]]
        assert "0000dead" in await refused(session, "assign_task", description="x",
                                           agent="w", after=["0000dead"])
        await call(session, "fail_task", error="broke", task_id=parent["id"])
        assert "not blocked" in await refused(session, "unblock_task", task_id=parent["id"])
        retried = await call(session, "retry_task", task_id=parent["id"])
        assert retried["state"] == "assigned"
        await call(session, "fail_task", error="again", task_id=parent["id"])
        unblocked = await call(session, "unblock_task", task_id=child["id"][:8])
        assert unblocked["state"] == "assigned" and "after" not in unblocked
        seen["child"] = child["id"]

    run(stdio(town), body)
    assert town.town.task(seen["child"]).state == TaskState.ASSIGNED
