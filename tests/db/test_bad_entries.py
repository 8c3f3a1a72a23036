"""Inbox elements that are not messages (written by another program, or damaged) are
kept in the dead letters by every reader that takes them out of an inbox, never
dropped and never a traceback."""

from __future__ import annotations

from tests.helpers import TownFixture
from tinytown.core import keys
from tinytown.core.models import MessageType

GARBAGE = "{not a message"


def _inbox_with_garbage_first(town: TownFixture, name: str) -> str:
    agent_id = town.town.spawn_agent(name, start=False).id
    town.town.redis.rpush(keys.inbox(town.name, agent_id), GARBAGE)
    town.town.channel.send(agent_id, MessageType.task("the real one"))
    return agent_id


def test_reclaim_moves_the_messages_and_dead_letters_the_rest(town: TownFixture) -> None:
    source = _inbox_with_garbage_first(town, "gone")
    target = town.town.spawn_agent("heir", start=False).id
    town.town.agent(source).kill()  # no worker: stopped at once
    r = town.tt("reclaim", "--from", "gone", "--to", "heir")
    assert r.code == 0, r
    assert "Traceback" not in r.err
    moved = town.town.agent(target).inbox()
    assert [m.body.to_dict().get("description") for m in moved] == ["the real one"]
    assert town.town.redis.lrange(keys.deadletter(town.name), 0, -1) == [GARBAGE]
    assert town.town.agent(source).inbox_len() == 0


def test_receiving_skips_to_the_first_message_and_keeps_the_rest(town: TownFixture) -> None:
    agent_id = _inbox_with_garbage_first(town, "reader")
    got = town.town.channel.try_receive(agent_id)
    assert got is not None and got.body.to_dict()["description"] == "the real one"
    assert town.town.redis.lrange(keys.deadletter(town.name), 0, -1) == [GARBAGE]


def test_a_blocking_receive_does_the_same(town: TownFixture) -> None:
    agent_id = _inbox_with_garbage_first(town, "waiter")
    got = town.town.channel.receive(agent_id, timeout=2)
    assert got is not None and got.body.to_dict()["description"] == "the real one"
    assert town.town.redis.lrange(keys.deadletter(town.name), 0, -1) == [GARBAGE]
    assert town.town.channel.receive(agent_id, timeout=0.2) is None
