"""`tt serve`, `tt auth` and `tt mcp`: the town over HTTP, the API keys it takes, and
its MCP tools over stdio.

Only `tt serve` loads the web stack (FastAPI, pydantic, uvicorn, prometheus-client) and
only `tt serve` and `tt mcp` the MCP SDK, inside the command: `tt auth` and every other
command do not pay for them.
"""

from __future__ import annotations

import click

from tinytown.cli.common import (
    Context,
    age,
    emit,
    emit_json,
    json_option,
    pass_ctx,
    print_table,
    say,
)


@click.command()
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Where to listen; anything but loopback needs an API key to exist.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="0: any free port (the start-up line names it).")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Serve HTTPS: certificate"
              " (PEM; a chain is fine).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="The certificate's key (PEM).")
@pass_ctx
def serve(obj: Context, address: str, port: int, tls_cert: str | None,
          tls_key: str | None) -> None:
    """Serve the town's REST API (/v1), its dashboard (/), /metrics, /healthz and /readyz."""
    from tinytown.http.server import serve as run

    run(obj.town(), address, port, tls_cert, tls_key)


@click.command()
@click.option("--agent", metavar="AGENT", help="The agent the tools speak for (whose inbox,"
              " whose task, who sends; default: $TINYTOWN_AGENT_ID, else"
              " $TINYTOWN_AGENT_NAME, else the supervisor).")
@click.option("--scope", type=click.Choice(["read", "write", "admin"]), default="write",
              show_default=True, envvar="TINYTOWN_MCP_SCOPE", help="What the tools may do:"
              " read: whoami, list_agents, read_inbox, list_backlog; write: also send,"
              " ack, assign, complete, fail, claim; admin: also spawn_helper.")
@pass_ctx
def mcp(obj: Context, agent: str | None, scope: str) -> None:
    """Serve the town's MCP tools over stdio (for an agent CLI or any MCP client).

    Runs with your rights, like `tt`: no API key. The task complete_task and fail_task
    finish by default is $TINYTOWN_TASK_ID, else the agent's current task.
    """
    from tinytown.core.apikeys import Scope
    from tinytown.mcp.stdio import caller_from_env, serve_stdio

    serve_stdio(obj.town(), caller_from_env(agent, Scope(scope)))


@click.group()
def auth() -> None:
    """API keys for `tt serve` (stored hashed: a key is shown once, when made)."""


@auth.command(name="add")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write", "admin"]), default="read",
              show_default=True, help="read: GETs; write: assign, send, complete, pause...;"
              " admin: also spawn, kill, restart, prune.")
@json_option
@pass_ctx
def auth_add(obj: Context, name: str, scope: str, as_json: bool) -> None:
    """Make a key; prints it (only this once) on stdout."""
    record, key = obj.town().add_api_key(name, scope)
    if as_json:
        emit_json({**record.to_dict(), "key": key})
        return
    say(key)
    say(f"tt: key {record.name!r} ({record.scope.value}): store it now, it is not shown"
        " again; send it as `Authorization: Bearer <key>`", err=True)


@auth.command(name="list")
@json_option
@pass_ctx
def auth_list(obj: Context, as_json: bool) -> None:
    """The town's keys: name, scope, made, last used (never the keys)."""
    records = obj.town().api_keys()
    if as_json:
        emit_json([r.to_dict() for r in records])
        return
    if not records:
        say("no API keys (make one with `tt auth add NAME --scope read`)")
        return
    print_table(None, ["NAME", "SCOPE", "CREATED", "LAST USED"],
                [[r.name, r.scope.value, age(r.created_at) + " ago",
                  age(r.last_used_at) + " ago" if r.last_used_at else "never"]
                 for r in records])


@auth.command(name="revoke")
@click.argument("name")
@json_option
@pass_ctx
def auth_revoke(obj: Context, name: str, as_json: bool) -> None:
    """Delete a key: every `tt serve` of the town refuses it from the next request."""
    record = obj.town().revoke_api_key(name)
    emit(record.to_dict(), as_json, f"revoked key {record.name!r} ({record.scope.value})")


COMMANDS = [serve, auth, mcp]
