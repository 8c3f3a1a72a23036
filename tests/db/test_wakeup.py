"""The round job written by hand (`tinytown.db.wakeup`) against what Celery itself
writes, so a Celery or kombu upgrade that changes the protocol fails here instead of
leaving every town's workers deaf to `tt send` and `tt assign`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from tests.helpers import TownFixture
from tinytown.celery_app import make_app
from tinytown.core import keys
from tinytown.db.wakeup import ROUND_TASK, TASK_TASK, celery_message, queue_key

# differ from one message (or process) to the next, by design
VARYING = {("headers", "id"), ("headers", "root_id"), ("headers", "origin"),
           ("properties", "correlation_id"), ("properties", "delivery_tag"),
           ("properties", "reply_to")}


def _decoded(raw: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    for part, field in VARYING:
        assert field in message[part], f"Celery no longer sends {part}.{field}"
        message[part][field] = "<varies>"
    return message


def _as_celery_sends(town: TownFixture, name: str, args: list[Any], kwargs: dict[str, Any],
                     queue: str) -> dict[str, Any]:
    """The message Celery's own client puts in the queue's Redis list."""
    app = make_app(town.town.settings)
    app.send_task(name, args=args, kwargs=kwargs, queue=queue, ignore_result=True)
    app.close()
    raw = town.town.redis.rpop(queue_key(town.name, queue))
    assert isinstance(raw, str)
    return _decoded(raw)


def test_a_round_job_is_the_message_celery_would_send(town: TownFixture) -> None:
    queue = keys.agent_queue(town.name, "agent-1")
    celery = _as_celery_sends(town, ROUND_TASK, ["agent-1"], {}, queue)
    assert _decoded(celery_message(ROUND_TASK, ["agent-1"], queue)) == celery


def test_a_task_job_is_the_message_celery_would_send(town: TownFixture) -> None:
    queue = keys.role_queue(town.name, "reviewer")
    kwargs = {"task_id": "0d5c8a3e-8a5b-4a4e-9d55-3a8f6a1c2b7e"}
    celery = _as_celery_sends(town, TASK_TASK, [], kwargs, queue)
    assert _decoded(celery_message(TASK_TASK, [], queue, kwargs=kwargs)) == celery


def test_the_protocol_headers_are_those_of_as_task_v2(town: TownFixture) -> None:
    app = make_app(town.town.settings)
    made: Callable[..., Any] = app.amqp.as_task_v2
    celery = made("id-1", ROUND_TASK, args=["agent-1"], kwargs={}, ignore_result=True)
    ours = json.loads(celery_message(ROUND_TASK, ["agent-1"],
                                     keys.agent_queue(town.name, "agent-1")))
    app.close()
    assert set(ours["headers"]) == set(celery.headers)
    stable = set(celery.headers) - {field for _, field in VARYING}
    assert {k: ours["headers"][k] for k in stable} == \
        {k: json.loads(json.dumps(celery.headers[k])) for k in stable}
    body = json.loads(base64.b64decode(ours["body"]))
    assert body == json.loads(json.dumps(list(celery.body)))
