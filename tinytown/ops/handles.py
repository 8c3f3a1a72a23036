"""`AgentHandle` (operations on one agent, by id) and `Channel` (messages between
agents), as `Town.agent()`, `Town.spawn_agent()` and `Town.channel` hand them out.

Both take the `Town` they come from (anything with a `context`) and work through the
ops modules on its context.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from tinytown import ops
from tinytown.core import keys
from tinytown.core.errors import AgentNotFound
from tinytown.core.models import Agent, AgentState, AgentType, AnyBody, Message, Priority, Task
from tinytown.core.validate import validate_timeout
from tinytown.db.delivery import deliver
from tinytown.ops import assignments
from tinytown.ops.context import TownContext
from tinytown.ops.polling import poll
from tinytown.ops.references import resolve

if TYPE_CHECKING:
    from tinytown.db.connection import TownPipeline
    from tinytown.ops.context import HasContext


class AgentHandle:
    """Operations on one agent, by id (it survives renames and restarts)."""

    def __init__(self, town: HasContext, agent_id: str) -> None:
        self.town = town
        self._id = agent_id

    @property
    def id(self) -> str:
        return self._id

    @property
    def _ctx(self) -> TownContext:
        return self.town.context

    def state(self) -> Agent | None:
        """The agent's current record, or None once it has been pruned."""
        if self._id == keys.SUPERVISOR_ID:
            return Agent.supervisor()
        return self._ctx.store.get_agent(self._id)

    def record(self) -> Agent:
        """The agent's current record; AgentNotFound once it has been pruned."""
        agent = self.state()
        if agent is None:
            raise AgentNotFound(f"agent {self._id} no longer exists")
        return agent

    def inbox_len(self) -> int:
        return self._ctx.store.inbox_len(self._id)

    def inbox(self) -> list[Message]:
        return self._ctx.store.peek_inbox(self._id)

    def assign(self, task: Task | str) -> str:
        return assignments.assign(self._ctx, self._id, task)

    def send(
        self,
        message_type: AnyBody,
        priority: Priority | str = Priority.NORMAL,
        sender: str | None = None,
    ) -> Message:
        return Channel(self.town).send(self._id, message_type, priority=priority,
                                       sender=sender)

    # control plane: see tinytown.ops.control_plane
    def interrupt(self) -> Agent:
        return ops.control_plane.interrupt(self._ctx, self._id)

    def resume(self) -> Agent:
        return ops.control_plane.resume(self._ctx, self._id)

    def close(self) -> Agent:
        return ops.control_plane.close(self._ctx, self._id)

    def kill(self) -> Agent:
        return ops.control_plane.kill(self._ctx, self._id)

    def restart(self) -> Agent:
        return ops.control_plane.restart(self._ctx, self._id)

    def wait(
        self,
        timeout: float | None = None,
        on_poll: Callable[[Agent, float], None] | None = None,
    ) -> Agent:
        """Block until the agent is stopped, error or cold; returns the final record."""
        return wait_for(self, lambda a: a.state.is_terminal, timeout, on_poll, "a terminal state")

    def wait_for_state(self, *states: AgentState, timeout: float | None = None) -> Agent:
        return wait_for(self, lambda a: a.state in states, timeout, None,
                        "/".join(s.value for s in states))


def wait_for(
    handle: AgentHandle,
    done: Callable[[Agent], bool],
    timeout: float | None,
    on_poll: Callable[[Agent, float], None] | None,
    what: str,
) -> Agent:
    validate_timeout(timeout)
    return poll(handle.record, done, timeout, on_poll,
                lambda a: f"agent {a.name!r} is still {a.state.value} after {timeout:g}s"
                          f" (waiting for {what})")


class Channel:
    """Messages between agents: inbox writes (with a round job) and reads."""

    def __init__(self, town: HasContext) -> None:
        self.town = town

    @property
    def _ctx(self) -> TownContext:
        return self.town.context

    def _default_sender(self) -> str:
        env_id = os.environ.get("TINYTOWN_AGENT_ID")
        if env_id:
            return resolve(self._ctx, env_id).id
        env_name = os.environ.get("TINYTOWN_AGENT_NAME")
        if env_name:
            return resolve(self._ctx, env_name).id
        return keys.SUPERVISOR_ID

    def send(
        self,
        to: str,
        message_type: AnyBody,
        *,
        priority: Priority | str = Priority.NORMAL,
        sender: str | None = None,
        correlation_id: str | None = None,
    ) -> Message:
        """Deliver to `to` (an agent id or reference) and wake its worker."""
        recipient = resolve(self._ctx, to)
        sender_id = resolve(self._ctx, sender).id if sender else self._default_sender()
        message = Message(
            sender=sender_id,
            to=recipient.id,
            body=message_type,
            priority=Priority(priority),
            correlation_id=correlation_id,
        )
        self.deliver(message)
        if recipient.agent_type == AgentType.WORKER:
            assignments.work_arrived(self._ctx, recipient, "the message")
        return message

    def deliver(self, message: Message, pipe: TownPipeline | None = None) -> None:
        """Put the message in its inbox with a `sent` event and a round job, in one MULTI
        (or queued on `pipe`)."""
        deliver(self._ctx.store, [message], pipe)

    def broadcast(
        self,
        message_type: AnyBody,
        *,
        priority: Priority | str = Priority.NORMAL,
        sender: str | None = None,
    ) -> list[Message]:
        """Send to every live worker agent of the town, in one transaction."""
        sender_id = resolve(self._ctx, sender).id if sender else self._default_sender()
        sent = [
            Message(sender=sender_id, to=agent.id, body=message_type, priority=Priority(priority))
            for agent in self._ctx.store.list_agents()
            if not agent.state.is_terminal and agent.id != sender_id
        ]
        deliver(self._ctx.store, sent)
        return sent

    def receive(self, agent_ref: str, timeout: float) -> Message | None:
        """Take the next message from an inbox, waiting up to `timeout` seconds."""
        return self._ctx.store.blocking_pop(resolve(self._ctx, agent_ref).id, timeout)

    def try_receive(self, agent_ref: str) -> Message | None:
        return self._ctx.store.pop_message(resolve(self._ctx, agent_ref).id)

    def inbox_len(self, agent_ref: str) -> int:
        return self._ctx.store.inbox_len(resolve(self._ctx, agent_ref).id)

    def peek(self, agent_ref: str) -> list[Message]:
        return self._ctx.store.peek_inbox(resolve(self._ctx, agent_ref).id)
