"""Delivering messages: the one home of "a message into an inbox, and its wake-up"."""

from __future__ import annotations

from tinytown.core import keys
from tinytown.core.models import Message
from tinytown.db.connection import TownPipeline
from tinytown.db.store import Store
from tinytown.db.wakeup import enqueue_round


def deliver(store: Store, messages: list[Message], pipe: TownPipeline | None = None) -> None:
    """Each message at its priority's end of its inbox, a `sent` event and a round job
    for its recipient (the supervisor mailbox has no worker), in one MULTI; queued on
    `pipe` instead when given."""
    # before the MULTI: a foreign key would fail it halfway
    store.ensure_lists(*{keys.inbox(store.town, m.to) for m in messages})
    target = pipe if pipe is not None else store.r.pipeline()
    for message in messages:
        store.push_message(message, target)
        store.add_event("sent", message.sender, pipe=target, to=message.to, type=message.type,
                        message=message.id)
        if message.to != keys.SUPERVISOR_ID:
            enqueue_round(target, store.town, message.to)
    if pipe is None and messages:
        target.execute()
