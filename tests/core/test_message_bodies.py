"""One name per idea for what a message carries: its body (`MessageBody`, one class per
kind), whose type is only the wire's `type` tag; `MessageType` stays the public alias."""

from __future__ import annotations

import tinytown
from tinytown.core.message_bodies import AnyBody, MessageBody, TaskBody
from tinytown.core.models import Message


def test_the_public_names_are_one_class() -> None:
    assert tinytown.MessageBody is MessageBody
    assert tinytown.MessageType is MessageBody  # the spec's name, kept for users
    assert {"MessageBody", "MessageType"} <= set(tinytown.__all__)
    for name in tinytown.__all__:
        assert getattr(tinytown, name) is not None


def test_a_body_decodes_by_its_type_tag() -> None:
    body: AnyBody = MessageBody.task("Build the API")
    assert isinstance(body, TaskBody) and body.type == "task"
    sent = Message(sender="a" * 32, to="b" * 32, body=body)
    back = Message.from_json(sent.to_json())
    assert isinstance(back.body, TaskBody) and back.type == "task"
    assert back.body.description == "Build the API"
