"""What an agent CLI's run came to, read from its own structured output.

Exit code 0 does not mean the work was done (denied tools, read-only modes and API
failures have all been seen ending in 0), and stdout mixed with stderr is not an
answer. Where a CLI reports its outcome in a structured form, the CLI module that
reads that format (tinytown.agent_clis) reads it: the agent's final answer, the error
it reports (in one line), its session id and its token usage. Here: the generic part,
`judge` and the usage-limit texts. Pure: no processes, no Redis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tinytown.agent_clis import registry
from tinytown.agent_clis.base import TEXT, CliReport, one_line

__all__ = ["CliReport", "RunFacts", "judge", "one_line", "read_report", "reset_time",
           "usage_limit"]


def read_report(fmt: str, stdout: str, stderr: str = "", usage_file: Path | None = None
                ) -> CliReport:
    """The report in a CLI's stdout, read by the CLI module of output format `fmt`
    (TEXT, or a format no module reads: the stdout itself, as the answer).
    `usage_file`: where the run was asked to write its token counts. A CLI that gives
    reports but gave none (it failed before): the last line of its stderr."""
    reader = registry.by_output(fmt) if fmt != TEXT else None
    if reader is None:
        return CliReport(found=False, result=stdout)
    report = reader.read_report(stdout, stderr, usage_file)
    if not report.found:
        report.hint = _last_line(stderr)
    return report


_SAYS_ERROR = re.compile(r"error|fail|denied|refus|invalid|❌", re.IGNORECASE)


def _last_line(text: str) -> str:
    """The last line that names an error, else the last line (Tinytown's own left out)."""
    lines = [x for x in text.splitlines() if x.strip() and not x.startswith("tinytown: ")]
    for line in reversed(lines):
        if _SAYS_ERROR.search(line):
            return one_line(line)
    return one_line(lines[-1]) if lines else ""


@dataclass(frozen=True)
class RunFacts:
    """What the process did, as the runner saw it."""

    exit_code: int | None
    timed_out: bool
    start_error: str | None  # it never started
    stdout: str
    log_tail: str  # stdout and stderr together, for the reader of a failure


def judge(run: RunFacts, report: CliReport, timeout: float, limit: int = 4000
          ) -> tuple[bool, str, str]:
    """(ok, the answer, the error): the CLI's own report decides where it gives one; a
    CLI without one succeeds on exit code 0, its answer the tail of its stdout."""
    if run.start_error:
        return False, "", run.start_error
    if run.timed_out:
        return False, "", (f"round timed out after {timeout:g}s (round_timeout_secs);"
                           f" output tail:\n{run.log_tail}")
    answer = (report.result if report.found else run.stdout.strip())[-limit:]
    if report.found and report.error is not None:
        return False, answer, report.error
    if run.exit_code != 0 and report.hint:
        return False, answer, f"agent CLI exited with code {run.exit_code}: {report.hint}"
    if run.exit_code != 0:
        return False, answer, (f"agent CLI exited with code {run.exit_code}; output tail:\n"
                               f"{run.log_tail}")
    return True, answer, ""



# What the CLIs say at a provider's rate or usage limit (seen against stubs; the texts
# and their sources are in tests/stubs/limits.md): these, and each CLI's `limit_text`
_LIMIT = r"usage limit|rate.?limit|\b429\b|quota|too many requests"
_RESET_ISO = re.compile(
    r"reset[s]?(?: at| on)?:?\s+(\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)",
    re.IGNORECASE)
_AFTER = re.compile(r"(?:retry|try again|resets?)(?: after| in)?:?\s+(\d+(?:\.\d+)?)\s*"
                    r"(ms|s|sec|secs|seconds|m|min|minutes|h|hours)\b", re.IGNORECASE)
_UNIT = {"ms": 0.001, "s": 1, "sec": 1, "secs": 1, "seconds": 1, "m": 60, "min": 60,
         "minutes": 60, "h": 3600, "hours": 3600}


def _limit() -> re.Pattern[str]:
    texts = [_LIMIT, *(c.limit_text for c in registry.loaded() if c.limit_text)]
    return re.compile("|".join(f"(?:{t})" for t in texts), re.IGNORECASE)


def usage_limit(report: CliReport, log_tail: str, now: datetime) -> tuple[bool, datetime | None]:
    """Whether the run ended at the provider's rate or usage limit, and when it resets
    (None: the CLI did not say)."""
    said = " ".join(x for x in (report.error or "", report.hint) if x)
    if not said or not _limit().search(said):
        return False, None
    text = " ".join(f"{said}\n{log_tail}".split())  # some CLIs wrap their lines at 80 columns
    return True, reset_time(text, now)


def reset_time(text: str, now: datetime) -> datetime | None:
    """When a limit resets, as a CLI or its provider wrote it (None: not said)."""
    if found := _RESET_ISO.search(text):
        try:
            when = datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=UTC)
        except ValueError:
            pass
    for cli in registry.loaded():
        if (said := cli.reset_time(text, now)) is not None:
            return said
    if found := _AFTER.search(text):
        return now + timedelta(seconds=float(found.group(1)) * _UNIT[found.group(2).lower()])
    return None
