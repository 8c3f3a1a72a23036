"""The architecture, checked: layers and processes as folders, and who may import what.

    cli -> ops -> db -> system -> core;   worker/, supervisor/, host/ -> db -> system -> core

`core/` is records, rules and configuration (no sockets, no processes; reading tinytown.toml
is its one read); `system/` is this machine (processes, private files, logs, git); both
may read the agent CLI table (`agent_clis/`), whose modules import only `core.errors`.

Only `tinytown/db/` imports redis; only the processes (`worker/`, `supervisor/`, `host/`) and the
control plane (`celery_app`, `ops/control`) import Celery. No module imports another
that imports it back, function-local imports included; inside `ops/` and `worker/`
imports under TYPE_CHECKING count too (a type-only import back is still a module that
knows the one that uses it: the ops modules take a `TownContext`, never the `Town`).
Only the CLI imports `tinytown/http/` (`tt serve`, a client of the Town API: http ->
ops), and only that layer loads the web stack.
Only the CLI (`tt mcp`) and the HTTP layer (`/mcp`) import `tinytown/mcp/` (the MCP
tools, mcp -> ops), and only that layer imports the MCP SDK.
The agent CLI modules (`tinytown/agent_clis/`) import nothing of the package but
their interface (`agent_clis.base`) and the error tree, as a plug-in would, and write
no files: what a CLI needs written (its MCP configuration) they return, and the worker
writes it.
No two engine modules share a name, and no module of the interfaces (`cli/`, `http/`,
named by topic and mirroring each other) is named like an engine module.
ruff's TID251 enforces the third-party part while editing; this test enforces all of it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tinytown"
CONTROL_PLANE = {"tinytown.celery_app", "tinytown.ops.control_plane"}

LAYERS = ("core", "system", "agent_clis", "db", "ops", "worker", "supervisor", "host", "cli",
          "http", "mcp")
BASE = {"core", "system", "agent_clis"}  # what every layer above them may use
# what each layer may import from the package, besides itself; "top" is what sits in
# tinytown/ itself (the control plane celery_app, demo_agent)
ALLOWED = {
    "core": {"agent_clis"},  # settings, presets, outcomes read the CLI table
    "agent_clis": {"core"},  # core.errors only (test_a_cli_module_uses_only_its_interface)
    "system": {"core", "agent_clis"},  # cli_health asks each CLI for its version
    "top": {"core"},
    "db": {"core", "system"},
    "ops": BASE | {"db", "control"},
    "worker": BASE | {"db", "control"},
    "supervisor": BASE | {"db", "control"},
    "host": BASE | {"db", "control"},
    "mcp": BASE | {"ops"},  # the MCP tools: each one Town call
    "http": BASE | {"ops", "mcp"},  # `tt serve`: a client of the Town API, like the CLI; /mcp
    # the CLI runs a worker or supervisor in the foreground (`tt worker`): their entry;
    # `tt serve` runs the HTTP layer, `tt mcp` the MCP tools over stdio
    "cli": BASE | {"ops", "entry", "http", "mcp"},
}
WEB_STACK = {"fastapi", "starlette", "pydantic", "uvicorn", "prometheus_client"}
MCP_SDK = {"mcp", "mcp_types"}
ENTRY_POINTS = {"tinytown.worker.agent_worker", "tinytown.supervisor.service",
                "tinytown.host.host_worker"}
EXEMPT = {"tinytown.__main__"}  # the `tt` entry point: imports the CLI


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in LAYERS:
        return parts[1]
    return "top"


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


TYPE_ONLY_COUNTS = ("ops", "worker")  # layers whose type-only imports count for cycles


def imports(module: str, type_only: bool = False) -> set[str]:
    """Every module this one imports at run time (top level or inside functions), and
    with `type_only` those under TYPE_CHECKING too."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child) and not type_only:
                todo.extend(getattr(child, "orelse", []))
                continue
            todo.append(child)
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.add(child.module)
                found.update(f"{child.module}.{alias.name}" for alias in child.names
                             if f"{child.module}.{alias.name}" in MODULES)
    return found


def own_imports(module: str, type_only: bool = False) -> set[str]:
    """The package's modules among its imports (packages' __init__ left out)."""
    return {m for m in imports(module, type_only) if m in MODULES and m != "tinytown"
            and not MODULES[m].name == "__init__.py"}


def test_the_layout_is_read_as_it_should_be() -> None:
    assert layer("tinytown.db.store") == "db" and layer("tinytown.core.models") == "core"
    assert layer("tinytown.system.keeper") == "system" and layer("tinytown.celery_app") == "top"
    assert "tinytown.db.store" in own_imports("tinytown.ops.facade")
    assert "tinytown.ops.hosting" in own_imports("tinytown.ops.control_plane")  # function-local
    assert "celery" not in imports("tinytown.ops.control_plane")  # TYPE_CHECKING
    assert "celery" in imports("tinytown.ops.control_plane", type_only=True)


@pytest.mark.parametrize("module", sorted(set(MODULES) - EXEMPT))
def test_each_module_imports_only_what_its_layer_may(module: str) -> None:
    mine = layer(module)
    for target in sorted(own_imports(module)):
        theirs = layer(target)
        if theirs == mine and target not in CONTROL_PLANE:
            continue
        kind = ("control" if target in CONTROL_PLANE else
                "entry" if target in ENTRY_POINTS else theirs)
        assert kind in ALLOWED[mine], f"{module} ({mine}) must not import {target} ({theirs})"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_data_layer_imports_redis(module: str) -> None:
    if layer(module) == "db":
        return
    third_party = {m.split(".")[0] for m in imports(module)}
    assert "redis" not in third_party, f"{module} imports redis: go through tinytown.db"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_processes_and_the_control_plane_import_celery(module: str) -> None:
    if layer(module) in ("worker", "supervisor", "host") or module in CONTROL_PLANE:
        return
    third_party = {m.split(".")[0] for m in imports(module)}
    assert not third_party & {"celery", "kombu"}, f"{module} imports Celery"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_http_layer_imports_the_web_stack(module: str) -> None:
    """FastAPI, pydantic, uvicorn and prometheus-client cost every `tt` call that loads
    them: only `tt serve` does, through tinytown/http/."""
    if layer(module) == "http":
        return
    third_party = {m.split(".")[0] for m in imports(module)}
    assert not third_party & WEB_STACK, f"{module} imports {third_party & WEB_STACK}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_mcp_layer_imports_the_mcp_sdk(module: str) -> None:
    """The MCP SDK (and the web stack it brings) is loaded by `tt mcp` and `tt serve`
    only, through tinytown/mcp/; the MCP layer itself loads no web stack of its own."""
    third_party = {m.split(".")[0] for m in imports(module)}
    if layer(module) == "mcp":
        assert not third_party & WEB_STACK, f"{module} imports {third_party & WEB_STACK}"
        return
    assert not third_party & MCP_SDK, f"{module} imports the MCP SDK: go through tinytown.mcp"


def test_no_import_cycles() -> None:
    graph = {m: own_imports(m, type_only=layer(m) in TYPE_ONLY_COUNTS) for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


CORE_NEVER = {"subprocess", "socket", "multiprocessing", "signal", "shutil"}
PROCESS_CALLS = {"system", "popen", "fork", "kill", "execv", "execvp", "spawnv", "startfile"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) == "core"))
def test_core_starts_no_process_and_opens_no_socket(module: str) -> None:
    """core/ is records, rules and configuration: whatever runs git, starts a process or
    talks to a socket is in system/ (or above), so core can be used and tested as data."""
    third_party = {m.split(".")[0] for m in imports(module)}
    assert not third_party & CORE_NEVER, f"{module} imports {third_party & CORE_NEVER}"
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "os":
                assert node.func.attr not in PROCESS_CALLS, f"{module} calls os.{node.func.attr}"


AGENT_CLIS = sorted(m for m in MODULES if m.startswith("tinytown.agent_clis."))
WRITES = {"write_text", "write_bytes", "mkdir", "symlink_to", "touch", "unlink", "chmod"}


@pytest.mark.parametrize("module", AGENT_CLIS)
def test_a_cli_module_uses_only_its_interface_and_writes_nothing(module: str) -> None:
    outside = {m for m in own_imports(module) if not m.startswith("tinytown.agent_clis.")
               and m != "tinytown.core.errors"}  # the error tree: core, imports nothing
    assert not outside, f"{module} imports {outside}: a CLI module knows only agent_clis.base"
    tree = ast.parse(MODULES[module].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else \
                node.func.id if isinstance(node.func, ast.Name) else ""
            assert name not in WRITES | {"open"}, \
                f"{module} calls {name}: return what to write (McpSetup), the worker writes it"


def test_no_ops_module_imports_the_town_facade() -> None:
    """The ops modules take a `TownContext`; `Town` is a facade over them, and nothing
    of ops/ reaches back into it, not even for a type."""
    for module in MODULES:
        if layer(module) == "ops" and module != "tinytown.ops.facade":
            assert "tinytown.ops.facade" not in imports(module, type_only=True), module


MAX_LINES = 500


def test_no_module_is_over_500_lines() -> None:
    """Small modules (issue 21): a module past 500 lines is split by concept, its old
    name re-exporting what moved (as tinytown/core/models.py does)."""
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


INTERFACES = ("cli", "http")  # named by topic (`tt tasks`, /v1/tasks): they may mirror each other


def test_no_two_modules_share_a_name_across_the_engine_layers() -> None:
    """One name, one module: `tinytown.db.hosts` next to `tinytown.ops.hosts` makes every
    reader (and every import) ask which one. The interfaces are named by topic and may
    share a topic with each other, but not with a module of the engine (core, system,
    db, ops, worker, supervisor, host, agent_clis, mcp and the top level). Nor is an
    engine module named like a package (`tinytown.mcp.http` beside `tinytown.http`)."""
    engine: dict[str, list[str]] = {}
    interface: dict[str, list[str]] = {}
    for module, path in MODULES.items():
        if path.name in ("__init__.py", "__main__.py"):
            continue
        (interface if layer(module) in INTERFACES else engine).setdefault(
            path.stem, []).append(module)
    twice = {name: found for name, found in engine.items() if len(found) > 1}
    assert not twice, f"engine modules that share a name: {twice}"
    packages = {p.parent.name for p in PACKAGE.rglob("__init__.py")}
    like_a_package = {name: found for name, found in engine.items() if name in packages}
    assert not like_a_package, f"engine modules named like a package: {like_a_package}"
    shared = {name: engine[name] + found for name, found in interface.items() if name in engine}
    assert not shared, f"interface modules named like an engine module: {shared}"


def test_no_module_outside_agent_clis_names_an_agent_cli() -> None:
    """What Tinytown knows about one agent CLI lives in its module under agent_clis/:
    no other module names one (in code, help texts or comments)."""
    import re

    names = re.compile(r"\b(claude|codex|gemini|copilot|aider|auggie|opencode|qwen|cline"
                       r"|cursor)\b", re.IGNORECASE)
    root = Path(__file__).resolve().parents[1] / "tinytown"
    found = [f"{path.relative_to(root)}:{number}"
             for path in sorted(root.rglob("*.py")) if "agent_clis" not in path.parts
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if names.search(line)]
    assert found == []
