"""`tt doctor`: is this machine ready for the town's agents?

For every preset (of the built-in CLI modules and of plug-ins) and configured CLI:
where it came from, installed, version, credentials (names only), known problems. For
the town: Redis reachable, a supervisor leading, workers per host. Ready when Redis
answers and every CLI the town's agents use (and the default CLI) is ready here.
"""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path
from typing import Any

from tinytown.agent_clis import registry
from tinytown.core.errors import TinytownError
from tinytown.core.presets import resolve_cli
from tinytown.core.settings import Settings
from tinytown.core.urls import redact, redis_url
from tinytown.ops.context import TownContext, worker_status
from tinytown.ops.control_plane import supervisor_status
from tinytown.ops.hosting import report as host_report
from tinytown.system.cli_health import CliHealth, check


def cli_report(settings: Settings, used: set[str]) -> list[dict[str, Any]]:
    """Every preset (built in and of plug-ins), every [agent_clis] entry and every CLI
    in `used`, checked here, each with where it came from (`origin`): "built in", the
    plug-in's distribution and version, "tinytown.toml" (an entry of the user's own) or
    "command" (a raw command line). A plug-in that does not load is listed too."""
    origins = {name: found.origin for found in registry.everything()
               for name in found.cli.presets}
    names = list(dict.fromkeys([*origins, *settings.agent_clis, *sorted(used)]))
    out = []
    for name in names:
        try:
            health = check(resolve_cli(settings, name))
        except TinytownError as exc:  # an entry that does not parse
            health = CliHealth(name, "?", problems=[str(exc)])
        origin = origins.get(name) or ("tinytown.toml" if name in settings.agent_clis
                                       else "command")
        out.append({**health.to_dict(), "used": name in used, "origin": origin,
                    "configured": name in settings.agent_clis})
    for name, why in registry.BROKEN.items():
        if name not in origins:
            out.append({**CliHealth(name, "?", problems=[why]).to_dict(), "used": name in used,
                        "origin": "plug-in", "configured": False})
    return out


def town_report(town: TownContext | None, settings: Settings, error: str | None
                ) -> dict[str, Any]:
    """The town's side: Redis, the supervisor, the live workers by host, the host daemons
    (`tt host`), the CLIs used."""
    report: dict[str, Any] = {"town": settings.town, "root": str(settings.root),
                              "redis": {"url": redact(redis_url(settings)),
                                        "reachable": town is not None, "error": error}}
    used = {settings.agent.default_cli}
    if town is not None:
        agents = [a for a in town.store.list_agents() if a.agent_type.value == "worker"]
        live = [a for a in agents if not a.state.is_terminal]
        used |= {a.cli for a in live}
        hosts: Counter[str] = Counter()
        for agent in live:
            alive, hostname = worker_status(town, agent)
            if alive:
                hosts[hostname.partition("@")[2] or socket.gethostname()] += 1
        report["stale_worktrees"] = [
            {"agent": a.name, "path": a.workspace, "branch": a.branch} for a in agents
            if a.branch and a.workspace and not Path(a.workspace).is_dir()]
        report["supervisor"] = supervisor_status(town)
        report["workers_by_host"] = dict(hosts)
        report["live_agents"] = len(live)
        report["host_daemons"] = [{k: h[k] for k in ("name", "machine", "state", "load")}
                                  for h in host_report(town)]
    clis = cli_report(settings, used)
    report["clis"] = clis
    report["ready"] = town is not None and all(c["ready"] for c in clis if c["used"])
    return report


def diagnose_clis(folder: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Outside a town (a user checks before `tt init`): the CLIs only, with the default
    settings a new town has; ready when the default CLI is. `no_town`: the folder from
    which no tinytown.toml was found."""
    import os

    defaults = Settings.from_mapping(folder, {"town": {"name": "town"}},
                                     dict(os.environ) if env is None else env)
    clis = cli_report(defaults, {defaults.agent.default_cli})
    return {"town": None, "root": None, "no_town": str(folder), "redis": None, "clis": clis,
            "ready": all(c["ready"] for c in clis if c["used"])}


def diagnose(settings: Settings) -> dict[str, Any]:
    """The whole report; Redis out of reach is part of it, not an exception."""
    from tinytown.core.errors import RedisUnreachable

    try:
        town = TownContext.connect(settings)
        town.store.r.ping()
    except RedisUnreachable as exc:
        return town_report(None, settings, str(exc))
    try:
        return town_report(town, settings, None)
    finally:
        town.close()
