"""`tt mcp`: the town's MCP tools over stdio, for an agent's CLI (or any local MCP
client) to launch.

It runs with the rights of whoever starts it, like `tt`: no API key, a scope chosen on
the command line (`--scope`, write by default: admin tools such as spawn_helper need
`--scope admin`). Who "me" is comes from `--agent`, else $TINYTOWN_AGENT_ID, else
$TINYTOWN_AGENT_NAME (a worker sets both for its rounds), else the supervisor; the
round's task from $TINYTOWN_TASK_ID.
"""

from __future__ import annotations

import logging
import os
import sys

from tinytown.core.apikeys import Scope
from tinytown.mcp.tools import Caller, build
from tinytown.ops.facade import Town


def caller_from_env(agent: str | None, scope: Scope, env: dict[str, str] | None = None
                    ) -> Caller:
    """The caller `tt mcp` speaks for: `agent`, else the agent the environment names."""
    env = dict(os.environ) if env is None else env
    ref = agent or env.get("TINYTOWN_AGENT_ID") or env.get("TINYTOWN_AGENT_NAME") or None
    return Caller(agent=ref, scope=scope, task_id=env.get("TINYTOWN_TASK_ID") or None)


def serve_stdio(town: Town, caller: Caller) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin."""
    # stdout is the protocol's: the SDK points fd 1 at stderr while it serves. Logs go
    # to stderr, plain (set before the server is made, whose own set-up then leaves it)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="tt mcp: %(levelname)s %(name)s: %(message)s")
    build(town, lambda _request: caller).run("stdio")
