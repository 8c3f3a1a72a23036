"""Which agent CLIs there are: the modules of this package (each defines `CLI`), then
plug-ins, the entry points of the group `tinytown.agent_clis` (each loads to an
`AgentCli` instance or subclass).

Loading entry points reads every installed distribution's metadata, which costs
import time: the plug-ins are scanned only when a name is not built in (or when
everything is listed, for `tt doctor`), once per process.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tinytown.agent_clis.base import TEXT, AgentCli, Preset

GROUP = "tinytown.agent_clis"
BUILT_IN = "built in"
_SUPPORT = {"base", "registry"}  # modules of the package that are not CLIs



@dataclass(frozen=True)
class Found:
    """A CLI and where it came from: BUILT_IN, or `<distribution> <version>`."""

    cli: AgentCli
    origin: str


def _modules() -> list[str]:
    """The names of this package's CLI modules (a file each)."""
    return sorted(p.stem for p in Path(__file__).parent.glob("*.py")
                  if p.stem not in _SUPPORT and not p.stem.startswith("_"))


def _load(module: str) -> AgentCli | None:
    cli = getattr(importlib.import_module(f"{__package__}.{module}"), "CLI", None)
    return cli if isinstance(cli, AgentCli) else None


@cache
def builtin() -> dict[str, AgentCli]:
    """The built-in CLIs by name, in their `order`."""
    found = [cli for module in _modules() if (cli := _load(module)) is not None]
    found.sort(key=lambda c: (c.order, c.name))
    return {c.name: c for c in found}


# plug-ins that did not load: entry point name -> why (for `tt doctor`)
BROKEN: dict[str, str] = {}


@cache
def plugins() -> dict[str, Found]:
    """The plug-ins' CLIs by name (one named like a built-in CLI is left out: the
    built-in one wins). One that fails to load is logged, kept in BROKEN, left out."""
    import logging
    from importlib.metadata import entry_points

    log = logging.getLogger("tinytown")
    out: dict[str, Found] = {}
    for point in entry_points(group=GROUP):
        dist = point.dist
        origin = f"{dist.name} {dist.version}" if dist is not None else point.value
        try:
            loaded = point.load()
            cli = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:  # a broken plug-in must not stop the town
            BROKEN[point.name] = f"plug-in {origin} ({point.value}) does not load: {exc}"
            log.warning("agent CLI %s", BROKEN[point.name])
            continue
        if not isinstance(cli, AgentCli) or not cli.name:
            BROKEN[point.name] = (f"plug-in {origin} ({point.value}) is not an AgentCli"
                                  " with a name")
            log.warning("agent CLI %s", BROKEN[point.name])
            continue
        if cli.name in builtin() or cli.name in out:
            log.warning("agent CLI plug-in %s (%s): %r is taken, left out", origin,
                        point.value, cli.name)
            continue
        out[cli.name] = Found(cli, origin)
    return out


def everything() -> list[Found]:
    """Every CLI, built in then plug-ins (this scans the plug-ins)."""
    return [*(Found(c, BUILT_IN) for c in builtin().values()), *plugins().values()]


def _search(match: object, key: str) -> Found | None:
    for cli in builtin().values():
        if _matches(cli, key, match):
            return Found(cli, BUILT_IN)
    for found in plugins().values():
        if _matches(found.cli, key, match):
            return found
    return None


def _matches(cli: AgentCli, key: str, match: object) -> bool:
    if key == "preset":
        return match in cli.presets
    return bool(getattr(cli, key) == match)


def preset(name: str) -> tuple[AgentCli, Preset] | None:
    """The CLI that has a preset `name`, and the preset (plug-ins scanned only when no
    built-in CLI has one). The module named like it is tried first: `tt spawn --cli
    claude` loads one CLI module, not all of them."""
    module = name.replace("-", "_")
    if module.isidentifier() and module in _modules():
        cli = _load(module)
        if cli is not None and name in cli.presets:
            return cli, cli.presets[name]
    found = _search(name, "preset")
    return (found.cli, found.cli.presets[name]) if found else None


def of(name: str) -> Found | None:
    """The CLI a `--cli` name (a preset's) belongs to, and where it came from."""
    return _search(name, "preset")


def by_output(fmt: str) -> AgentCli | None:
    """The CLI whose reader reads output format `fmt`."""
    found = _search(fmt, "output_format") if fmt else None
    return found.cli if found else None


def by_mcp(mode: str) -> AgentCli | None:
    """The CLI that provides MCP mode `mode`."""
    found = _search(mode, "mcp_mode") if mode else None
    return found.cli if found else None


def loaded() -> list[AgentCli]:
    """The CLIs known without scanning for plug-ins: the built-in ones, and the plug-ins
    when something already scanned them."""
    clis = list(builtin().values())
    if plugins.cache_info().currsize:
        clis += [f.cli for f in plugins().values()]
    return clis


def known_output(name: str) -> bool:
    """Whether `name` is an output format some CLI reads (plug-ins scanned if need be)."""
    return name == TEXT or by_output(name) is not None


def known_mcp(name: str) -> bool:
    """Whether `name` is an MCP mode some CLI provides ("none": no MCP server)."""
    return name == "none" or by_mcp(name) is not None
