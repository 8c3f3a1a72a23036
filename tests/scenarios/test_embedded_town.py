"""The default set-up end to end: embedded Redis, supervisor started on demand, real
agents with the shipped demo CLI, and `tt down` leaving no process behind."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import pid_gone, tt, wait_until
from tinytown.core import keys


def test_embedded_town_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "town"
    root.mkdir()
    assert tt("init", "--name", "e2e", cwd=root).code == 0
    try:
        for name in ("backend", "qa"):
            r = tt("spawn", name, "--cli", "demo", cwd=root)
            assert r.code == 0, r.err
        ids = [tt("assign", name, f"work for {name}", cwd=root).out.strip()
               for name in ("backend", "qa")]

        def tasks() -> dict[str, str]:
            return {t["id"]: t["state"] for t in
                    json.loads(tt("task", "list", "--json", cwd=root).out)}

        wait_until(lambda: set(tasks().values()) == {"completed"}, 60, "both tasks")
        for task_id in ids:
            doc = json.loads(tt("task", "show", task_id, "--json", cwd=root).out)
            assert "demo agent, no model involved" in doc["result"]
        status = json.loads(tt("status", "--json", cwd=root).out)
        assert status["supervisor"].startswith("leader ")  # started on demand
        assert status["redis"] == f"unix://{root / '.tt' / 'redis.sock'}"
        from tinytown.ops.facade import Town

        town = Town.connect(root)
        pids = [int(town.redis.hget(keys.runtime("e2e", a.id), "pid")) for a in town.list_agents()]
        pids.append(int(status["supervisor"].split()[1].split("@")[0]))
        pids.append(int((root / ".tt" / "redis.pid").read_text()))
        town.redis.close()
    finally:
        down = tt("down", cwd=root)
    assert down.code == 0, down.err
    for pid in pids:
        wait_until(lambda pid=pid: pid_gone(pid), 15, f"process {pid} to exit")
    assert not (root / ".tt" / "redis.sock").exists()
    # the data persisted: the next command starts Redis again and finds the agents stopped
    agents = json.loads(tt("list", "--json", cwd=root).out)
    assert {a["state"] for a in agents} == {"stopped"}
    tt("down", cwd=root)
