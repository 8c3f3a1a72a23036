"""Work for an agent that is not running is kept, and said to wait: a warning on
stderr for `tt assign` and `tt send` to a stopped, cold or errored agent, no endless
`--wait`, and a warning when the agent's CLI is not installed here."""

from __future__ import annotations

from tests.conftest import TownFixture


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
    assert r.code == 124 and "tt restart gone" in r.err and "Traceback" not in r.err, r
    assert town.town.list_tasks(state="assigned")  # kept


def test_spawn_warns_when_the_cli_is_not_installed_here(town: TownFixture) -> None:
    r = town.tt("spawn", "nocli", "--cli", "surely-not-installed-cli --flag")
    assert r.code == 0, r
    assert "not installed here" in r.err and "surely-not-installed-cli" in r.err
