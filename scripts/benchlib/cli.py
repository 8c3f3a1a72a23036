"""CLI start-up: `tt send`, `tt list --json` and `tt status` as separate processes,
each against a `python -c` doing the same with redis-py alone; plus the floors
(`python -c pass`, `import redis`) and where `tt status` spends its imports."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tinytown.core import keys

from .common import median, user_env

if TYPE_CHECKING:
    from .harness import Bench

Argv = list[str]


def raw_scripts(b: Bench) -> list[tuple[str, Argv, Argv]]:
    """(name, the `tt` command, its raw redis-py equivalent) of each timed command."""
    town = b.town
    s = str(b.sock)
    agent_pattern = keys.agent_pattern(town.name)
    inbox = "bench-raw:cli-inbox"
    connect = f"import redis; r = redis.Redis(unix_socket_path={s!r}, decode_responses=True)"
    raw_send = (
        "import json, uuid\nfrom datetime import datetime, timezone\n" + connect + "\n"
        f"m = {{'id': str(uuid.uuid4()), 'from': {keys.SUPERVISOR_ID!r}, 'to': "
        f"{b.target.id!r}, 'type': 'task', 'description': 'hello from the bench', "
        "'priority': 'normal', 'created_at': datetime.now(timezone.utc).isoformat()}\n"
        f"r.lpush({inbox!r}, json.dumps(m))\nprint('sent task', m['id'])\n")
    raw_list = (
        "import json\n" + connect + "\n"
        f"ks = sorted(set(r.scan_iter(match={agent_pattern!r}, count=1000)))\n"
        "print(json.dumps([json.loads(v) for v in r.mget(ks) if v], indent=2))\n")
    raw_status = (
        "import json\n" + connect + "\n"
        f"ks = sorted(set(r.scan_iter(match={agent_pattern!r}, count=1000)))\n"
        "agents = [json.loads(v) for v in r.mget(ks) if v]\n"
        "p = r.pipeline(transaction=False)\n"
        f"[p.llen({keys.inbox(town.name, '')!r} + a['id']) for a in agents]\n"
        "for a, n in zip(agents, p.execute()):\n"
        "    print(a['name'], a['state'], a.get('current_task') or '-', n)\n")
    return [
        ("tt send", [*b.tt, "send", "target", "hello from the bench"],
         [b.py, "-c", raw_send]),
        ("tt list --json", [*b.tt, "list", "--json"], [b.py, "-c", raw_list]),
        ("tt status", [*b.tt, "status"], [b.py, "-c", raw_status]),
    ]


def timed(argv: Argv, cwd: Path, env: dict[str, str]) -> float:
    """Wall time of one command, seconds; it must succeed."""
    t = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({done.returncode}): "
                           f"{done.stderr.strip()[-500:]}")
    return elapsed


def run(b: Bench) -> None:
    env = user_env()
    cwd = b.town.settings.root
    pairs = raw_scripts(b)
    floors = [("python -c pass", [b.py, "-c", "pass"]),
              ("python -c 'import redis'", [b.py, "-c", "import redis"])]
    runs = 6 if b.quick else 25
    samples: dict[str, list[float]] = {}
    for _, tt, raw in pairs:  # warm the page cache
        timed(tt, cwd, env)
        timed(raw, cwd, env)
    for i in range(runs):
        for name, tt, raw in pairs:
            first, second = ((name, tt), (name + " raw", raw))[:: 1 if i % 2 == 0 else -1]
            for label, argv in (first, second):
                samples.setdefault(label, []).append(timed(argv, cwd, env) * 1000)
        for name, argv in floors:
            samples.setdefault(name, []).append(timed(argv, cwd, env) * 1000)
    b.results.raw["cli_ms"] = samples
    b.results.raw["cli_import_ms"] = imports = import_breakdown(b, env)
    top = sorted(imports.items(), key=lambda kv: -kv[1])[:8]
    b.results.notes.append("`tt status` imports by package that pulls them in (ms, "
                           "-X importtime): " + ", ".join(f"{k} {v:.0f}" for k, v in top))
    for name, _, _ in pairs:
        b.results.add(f"CLI start-up, `{name}`, median of {runs}", "ms",
                      median(samples[name]), median(samples[name + " raw"]), "≤ 1.0×",
                      lambda v, r: r is not None and r <= 1.0,
                      baseline_name="python -c with redis-py")
    for name, _ in floors:
        b.results.add(f"floor: `{name}`", "ms", None, median(samples[name]), ratio=False)


def _owner(path: list[str], stdlib: set[str]) -> str:
    """The first third-party package on an import path, else tinytown, else stdlib."""
    for name in path:
        top = name.split(".")[0]
        if top not in stdlib and not top.startswith("_") and top != "tinytown":
            return top
    return "tinytown" if path[-1].startswith("tinytown") else "(stdlib)"


def _importtime_lines(stderr: str) -> list[tuple[int, str, float]]:
    """(depth, module, own ms) of each line `python -X importtime` wrote."""
    lines = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        own, _, name = line[len("import time:"):].split("|")
        if not own.strip().isdigit():
            continue  # the header
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        lines.append((depth, name.strip(), int(own) / 1000))
    return lines


def import_breakdown(b: Bench, env: dict[str, str]) -> dict[str, float]:
    """What `tt status` spends importing, by the package that pulled each module in.

    From `python -X importtime`: every module's own time goes to the first
    third-party package on its import path (so asyncio pulled in by redis counts as
    redis), else to tinytown, else to the standard library. Median of 3 runs.
    """
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    runs: list[dict[str, float]] = []
    for _ in range(3):
        err = subprocess.run(
            [b.py, "-X", "importtime", "-m", "tinytown.cli", "status"],
            cwd=b.town.settings.root, env=env, capture_output=True, text=True,
            timeout=60).stderr
        by: dict[str, float] = {}
        stack: list[str] = []
        for depth, name, ms in reversed(_importtime_lines(err)):  # parents first
            del stack[depth:]
            stack.append(name)
            key = _owner(stack, stdlib)
            by[key] = by.get(key, 0.0) + ms
        runs.append(by)
    names = set().union(*runs)
    out = {k: round(median([r.get(k, 0.0) for r in runs]), 1) for k in names}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
