"""The results table and the report: printed, and written as JSON and Markdown.

Each figure is one row (Tinytown, its baseline, the ratio, the target, whether it
holds); meta records the machine, the versions and how busy the machine was, so a
run can be judged later (BENCHMARKS.md quotes these).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import REPO, log
from .procs import system_cpu

if TYPE_CHECKING:
    from .harness import Bench

Check = Callable[[float | None, float | None], bool]


class Results:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.raw: dict[str, Any] = {}
        self.notes: list[str] = []

    def add(self, figure: str, unit: str, tinytown: float | None, baseline: float | None,
            target: str = "report", check: Check | None = None, ratio: bool = True,
            baseline_name: str = "") -> None:
        r = (tinytown / baseline) if ratio and tinytown is not None and baseline else None
        holds = None if check is None else bool(check(tinytown, r))
        self.rows.append({"figure": figure, "unit": unit, "tinytown": tinytown,
                          "baseline": baseline, "ratio": r, "target": target, "holds": holds,
                          "baseline_name": baseline_name})
        shown = "-" if holds is None else ("yes" if holds else "NO")
        log(f"{figure}: tinytown {fmt(tinytown)} {unit}, baseline {fmt(baseline)} {unit}, "
            f"ratio {fmt(r, 2)}, target {target}: {shown}")

    def table(self, markdown: bool = False) -> str:
        head = ["figure", "Tinytown", "baseline", "ratio", "target", "holds?"]
        rows = []
        for row in self.rows:
            unit = f" {row['unit']}" if row["unit"] else ""
            rows.append([
                row["figure"],
                fmt(row["tinytown"]) + (unit if row["tinytown"] is not None else ""),
                fmt(row["baseline"]) + (unit if row["baseline"] is not None else ""),
                (fmt(row["ratio"], 2) + "×") if row["ratio"] is not None else "-",
                row["target"],
                "-" if row["holds"] is None else ("yes" if row["holds"] else "**no**"
                                                  if markdown else "NO"),
            ])
        if markdown:
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            return "\n".join(lines)
        widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(len(head))]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [line.format(*head), line.format(*["-" * w for w in widths])]
        out += [line.format(*r) for r in rows]
        return "\n".join(out)


def fmt(value: float | None, digits: int | None = None) -> str:
    if value is None:
        return "-"
    if digits is None:
        a = abs(value)
        digits = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3
    return f"{value:.{digits}f}"


def _machine() -> dict[str, Any]:
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1), "cpu": cpu,
            "kernel": platform.release()}


def _sources_sha1() -> str:
    """Which Tinytown sources ran: every .py and .lua file of the package, subpackages
    included (its code lives in tinytown/db, ops, worker, ... since the split by layer)."""
    import tinytown

    root = Path(tinytown.__file__).parent
    digest = hashlib.sha1()
    for path in sorted(p for ext in ("*.py", "*.lua") for p in root.rglob(ext)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def meta(bench: Bench) -> dict[str, Any]:
    import celery
    import kombu
    import redis

    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    busy0, total0 = bench.cpu_start
    busy1, total1 = system_cpu()
    return {
        "date": bench.started.strftime("%Y-%m-%d %H:%M UTC"),
        "load": {"loadavg_start": bench.load_start,
                 "loadavg_end": Path("/proc/loadavg").read_text().split()[:3],
                 "machine_busy_pct_during_run": round(
                     (busy1 - busy0) / max(1, total1 - total0) * 100, 1)},
        "mode": "quick" if bench.quick else "full",
        "machine": _machine(),
        "versions": {"python": platform.python_version(), "redis_server": bench.redis_version,
                     "celery": celery.__version__, "kombu": kombu.__version__,
                     "redis_py": redis.__version__, "tinytown": version("tinytown"),
                     "commit": commit, "tinytown_sources_sha1": _sources_sha1()},
    }


def report(bench: Bench, args: argparse.Namespace, elapsed: float) -> None:
    """Print the table (and notes); write --json and --md."""
    results = bench.results
    if not results.rows:
        return
    info = meta(bench) if bench.redis_version is not None else {}
    info["elapsed_s"] = round(elapsed, 1)
    print()
    print(f"Tinytown benchmarks ({info.get('mode')}), {info.get('date')}, "
          f"{info.get('machine', {}).get('cores')} cores, "
          f"{info.get('machine', {}).get('memory_gib')} GiB; {elapsed:.0f}s; machine "
          f"busy {info.get('load', {}).get('machine_busy_pct_during_run')}% "
          "(all processes, this run included)")
    print(results.table())
    if bench.other_load:
        results.notes.append(
            "CPU used by other programs on this machine meanwhile, % of the machine, by "
            "phase: " + ", ".join(f"{k} {v:g}" for k, v in bench.other_load.items()))
    for note in results.notes:
        print(f"note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"meta": info, "rows": results.rows, "notes": results.notes,
             "raw": results.raw}, indent=2) + "\n")
    if args.md:
        Path(args.md).write_text(results.table(markdown=True) + "\n")
