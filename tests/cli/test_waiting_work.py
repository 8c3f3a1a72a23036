"""Work for an agent that is not running is kept, and said to wait: a warning on
stderr for `tt assign` and `tt send` to a stopped, cold or errored agent, no endless
`--wait`, and a warning when the agent's CLI is not installed here."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.helpers import RedisServer, TownFixture, one_line_error, tt


def _stopped(town: TownFixture) -> None:
    town.tt("spawn", "gone", "--no-start")
    town.town.agent("gone").kill()  # no worker: stopped at once


def test_assign_and_send_to_a_stopped_agent_warn_and_keep(town: TownFixture) -> None:
    _stopped(town)
    r = town.tt("assign", "gone", "later")
    assert r.code == 0 and "gone is stopped" in r.err and "tt restart gone" in r.err, r
    s = town.tt("send", "gone", "hello")
    assert s.code == 0 and "gone is stopped" in s.err, s
    assert town.town.agent("gone").inbox_len() == 2


def test_waiting_on_a_stopped_agent_does_not_block_forever(town: TownFixture) -> None:
    _stopped(town)
    r = town.tt("assign", "gone", "later", "--wait", timeout=30)
    assert r.code == 1 and "tt restart gone" in r.err and "Traceback" not in r.err, r
    assert town.town.list_tasks(state="assigned")  # kept


def test_spawn_warns_when_the_cli_is_not_installed_here(town: TownFixture) -> None:
    r = town.tt("spawn", "nocli", "--cli", "surely-not-installed-cli --flag")
    assert r.code == 0, r
    assert "not installed here" in r.err and "surely-not-installed-cli" in r.err


def test_init_of_a_name_with_data_from_elsewhere_needs_join(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    name = f"shared-{uuid.uuid4().hex[:8]}"
    env = {"REDIS_URL": redis_server.url}
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    assert tt("init", "--name", name, cwd=first, env=env).code == 0
    assert tt("spawn", "x", "--no-start", cwd=first, env=env).code == 0
    refused = tt("init", "--name", name, cwd=second, env=env)
    assert "--join" in one_line_error(refused)
    assert not (second / "tinytown.toml").exists() and not (second / ".tt").exists()
    assert tt("init", "--name", name, "--join", cwd=second, env=env).code == 0
    assert "x" in tt("list", cwd=second, env=env).out
    (first / "tinytown.toml").unlink()  # the same folder may make its town again
    assert tt("init", "--name", name, cwd=first, env=env).code == 0
