"""What an agent CLI's run came to, read from its own structured output.

Exit code 0 does not mean the work was done (denied tools, read-only modes and API
failures have all been seen ending in 0), and stdout mixed with stderr is not an
answer. Where a CLI reports its outcome in a structured form, this reads it: the
agent's final answer, the error it reports (in one line), its session id and its
token usage. Pure: no processes, no Redis.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tinytown.errors import one_line
from tinytown.presets import OutputFormat


@dataclass
class CliReport:
    """What the CLI said of its run; `found` is False when its output held no report
    (it crashed first, or printed something else): the exit code decides then."""

    found: bool
    result: str = ""
    error: str | None = None  # the error the CLI reports, one line
    session_id: str | None = None
    # normalized: input_tokens (uncached), cached_input_tokens, output_tokens, cost_usd;
    # empty when the CLI reported none
    usage: dict[str, Any] = field(default_factory=dict)
    hint: str = ""  # without a report: the last line the CLI wrote on stderr


def read_report(fmt: OutputFormat, stdout: str, stderr: str = "") -> CliReport:
    """The report in a CLI's stdout (TEXT: the stdout itself, as the answer); Gemini
    CLI writes the report of a failed run on stderr, after its stack trace. A CLI that
    gives reports but gave none (it failed before): the last line of its stderr."""
    report = _read(fmt, stdout, stderr)
    if not report.found and fmt != OutputFormat.TEXT:
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


def _read(fmt: OutputFormat, stdout: str, stderr: str) -> CliReport:
    if fmt == OutputFormat.CLAUDE:
        return _claude(stdout)
    if fmt == OutputFormat.CODEX:
        return _codex(stdout)
    if fmt == OutputFormat.GEMINI:
        report = _gemini(stdout)
        if not report.found and stderr:
            last = _last_object(stderr)
            if last is not None and "error" in last:  # the old format's report
                fallback = _gemini(json.dumps(last))
                report = fallback if fallback.found else report
        return report
    if fmt == OutputFormat.COPILOT:
        return _copilot(stdout)
    if fmt == OutputFormat.AIDER:
        return _aider(stdout)
    return CliReport(found=False, result=stdout)


def _last_object(text: str) -> dict[str, Any] | None:
    """The last JSON object in `text` that starts a line (pretty-printed or not)."""
    decoder = json.JSONDecoder()
    start = len(text)
    while (start := text.rfind("{", 0, start)) >= 0:
        if start == 0 or text[start - 1] == "\n":
            try:
                value, _ = decoder.raw_decode(text, start)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _objects(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects in stdout: the whole of it, or one per line (JSONL)."""
    text = stdout.strip()
    if not text:
        return []
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        return [whole]
    if isinstance(whole, list):
        return [x for x in whole if isinstance(x, dict)]
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else json.dumps(value)


def _claude(stdout: str) -> CliReport:
    """`--output-format json` (one result object) or `stream-json` (its last line is
    the result): `result`, `is_error`, `session_id`, `usage`, `total_cost_usd`."""
    objects = _objects(stdout)
    results = [o for o in objects if o.get("type") == "result"]
    if not results:
        return CliReport(found=False, result=stdout)
    last = results[-1]
    raw = last.get("usage") if isinstance(last.get("usage"), dict) else {}
    usage: dict[str, Any] = {}
    if raw:  # Anthropic: input_tokens leaves out what was read from, or written to, cache
        usage = {"input_tokens": _int(raw, "input_tokens") +
                 _int(raw, "cache_creation_input_tokens"),
                 "cached_input_tokens": _int(raw, "cache_read_input_tokens"),
                 "output_tokens": _int(raw, "output_tokens")}
    if isinstance(last.get("total_cost_usd"), int | float):
        usage["cost_usd"] = last["total_cost_usd"]
    result = _text(last.get("result"))
    failed = bool(last.get("is_error")) or last.get("subtype", "success") != "success"
    error = None
    if failed:
        error = one_line(result) or one_line(_text(last.get("errors"))) or \
            f"claude reported {last.get('subtype', 'an error')}"
    session = last.get("session_id") or next(
        (o.get("session_id") for o in objects if o.get("session_id")), None)
    return CliReport(True, result, error, _text(session) or None, usage)


def _codex(stdout: str) -> CliReport:
    """`codex exec --json` events: `thread.started` (thread_id), `item.completed` with an
    `agent_message` (the answer is the last one), `turn.completed` (usage),
    `turn.failed` / `error` (the error). Codex prints its transient retries as `error`
    events too ("Reconnecting... 1/5 (…)") and then goes on: an `error` counts only when
    no completed turn follows it."""
    objects = _objects(stdout)
    if not any(isinstance(o.get("type"), str) for o in objects):
        return CliReport(found=False, result=stdout)
    session = None
    answer = ""
    error: str | None = None
    usage: dict[str, Any] = {}
    for event in objects:
        kind = event.get("type")
        raw_item = event.get("item")
        item: dict[str, Any] = raw_item if isinstance(raw_item, dict) else {}
        if kind == "thread.started":
            session = _text(event.get("thread_id")) or session
        elif kind == "item.completed" and item.get("type") == "agent_message":
            answer = _text(item.get("text"))
        elif kind == "turn.completed":
            error = None  # what went wrong before it was retried past
            raw = event.get("usage")  # OpenAI: cached input is part of input_tokens
            if isinstance(raw, dict):
                cached = _int(raw, "cached_input_tokens")
                usage = {"input_tokens": max(0, _int(raw, "input_tokens") - cached),
                         "cached_input_tokens": cached,
                         "output_tokens": _int(raw, "output_tokens")}
        elif kind == "turn.failed":
            err = event.get("error")
            error = one_line(_text(err.get("message") if isinstance(err, dict) else err))
        elif kind == "error":
            error = one_line(_text(event.get("message")))
    completed = any(o.get("type") == "turn.completed" for o in objects)
    if error is None and not completed and not answer:
        error = "codex ended without finishing its turn"
    return CliReport(True, answer, error or None, session, usage)


def _api_error(message: Any) -> str:
    """An error message in one line; one that is itself an API's JSON error body (Gemini
    passes the body on) as `<code> <status>: <message>`."""
    text = _text(message)
    try:
        body = json.loads(text)
    except ValueError:
        return one_line(text)
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict) and inner.get("message"):
        head = " ".join(str(inner[k]) for k in ("code", "status") if inner.get(k))
        return one_line(f"{head}: {inner['message']}" if head else _text(inner["message"]))
    return one_line(text)


_GEMINI_EVENTS = frozenset({"init", "message", "tool_use", "tool_result", "error", "result"})
_GEMINI_API_ERROR = re.compile(r"\[API Error: (.*?)\](?:\n|$)", re.DOTALL)


def _gemini_stream(events: list[dict[str, Any]]) -> CliReport:
    """`gemini --output-format stream-json` events: `init` (session_id), `message`
    (role assistant: the answer's pieces, `delta`), `tool_use`, `tool_result`, `error`
    (severity warning or error: the run goes on), then `result` (status success or error,
    `error` {type, message}, `stats`: per model input (cached included), cached and
    output tokens, and a total that counts the thoughts too). The answer is the text
    said after the last tool call (what the JSON report gives as `response`)."""
    session = next((_text(e.get("session_id")) for e in events if e.get("type") == "init"),
                   None) or None
    results = [e for e in events if e.get("type") == "result"]
    if not results:  # it ended before its report (killed, crashed): the exit code decides
        return CliReport(found=False, result="", session_id=session)
    answer, before_tool, said_error = "", "", ""
    for event in events:
        kind = event.get("type")
        if kind == "message" and event.get("role") == "assistant":
            answer += _text(event.get("content"))
        elif kind == "tool_use":
            before_tool, answer = answer or before_tool, ""
        elif kind == "error" and event.get("severity") == "error":
            said_error = _text(event.get("message"))
    last = results[-1]
    error = None
    if last.get("status") not in ("success", None) or last.get("error"):
        err = last.get("error")
        message = _text(err.get("message") if isinstance(err, dict) else err)
        if found := _GEMINI_API_ERROR.match(message):  # `[API Error: <the API's>]\n<advice>`
            message = found.group(1)
        error = _api_error(message) or one_line(said_error) or "gemini reported an error"
    usage: dict[str, Any] = {}
    raw = last.get("stats")
    stats: dict[str, Any] = raw if isinstance(raw, dict) else {}
    models = stats.get("models") if isinstance(stats.get("models"), dict) else None
    for tokens in (models.values() if models else [stats]):
        if isinstance(tokens, dict):
            given, cached = _int(tokens, "input_tokens"), _int(tokens, "cached")
            output = max(_int(tokens, "output_tokens"), _int(tokens, "total_tokens") - given)
            for key, value in (("input_tokens", given - cached), ("cached_input_tokens", cached),
                               ("output_tokens", output)):
                usage[key] = usage.get(key, 0) + max(0, value)
    return CliReport(True, answer or before_tool, error, session, usage)


def _gemini(stdout: str) -> CliReport:
    """`gemini --output-format json`: `response` (the answer), `error` ({type,
    message}), `session_id`, `stats` (per-model token counts); or its stream-json
    events (`_gemini_stream`)."""
    events = _objects(stdout)
    if any(e.get("type") in _GEMINI_EVENTS for e in events):
        return _gemini_stream(events)
    objects = [o for o in events if {"response", "error", "stats"} & o.keys()]
    if not objects:
        return CliReport(found=False, result=stdout)
    last = objects[-1]
    err = last.get("error")
    error = None
    if err:
        error = _api_error(err.get("message") if isinstance(err, dict) else err) or \
            "gemini reported an error"
    usage: dict[str, Any] = {}
    stats = last.get("stats")
    models = stats.get("models") if isinstance(stats, dict) else None
    if isinstance(models, dict):  # per model: prompt (cached included), candidates, thoughts
        for model in models.values():
            tokens = model.get("tokens") if isinstance(model, dict) else None
            if isinstance(tokens, dict):
                cached = _int(tokens, "cached")
                for key, value in (("input_tokens", _int(tokens, "prompt") - cached),
                                   ("cached_input_tokens", cached),
                                   ("output_tokens", _int(tokens, "candidates") +
                                    _int(tokens, "thoughts"))):
                    usage[key] = usage.get(key, 0) + max(0, value)
    session = last.get("session_id") or last.get("sessionId")
    return CliReport(True, _text(last.get("response")), error, _text(session) or None, usage)


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


def copilot_usage(doc: Any) -> dict[str, Any]:
    """Token counts from the file `copilot --usage-output-file` writes: per model,
    `usage {inputTokens, outputTokens, cacheReadTokens, cacheWriteTokens}` (no cost)."""
    models = doc.get("modelMetrics") if isinstance(doc, dict) else None
    usage: dict[str, Any] = {}
    for model in (models or {}).values() if isinstance(models, dict) else ():
        raw = model.get("usage") if isinstance(model, dict) else None
        if isinstance(raw, dict):
            for key, value in (("input_tokens", _int(raw, "inputTokens") +
                                _int(raw, "cacheWriteTokens")),
                               ("cached_input_tokens", _int(raw, "cacheReadTokens")),
                               ("output_tokens", _int(raw, "outputTokens"))):
                usage[key] = usage.get(key, 0) + value
    return usage


def _copilot(stdout: str) -> CliReport:
    """`copilot --output-format json` events: `assistant.message` (the answer is the last
    one with text), `session.error` (the error), `result` (sessionId, exitCode)."""
    objects = _objects(stdout)
    results = [o for o in objects if o.get("type") == "result"]
    if not results:
        return CliReport(found=False, result=stdout)
    answer = ""
    error: str | None = None
    for event in objects:
        raw = event.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if event.get("type") == "assistant.message" and _text(data.get("content")).strip():
            answer = _text(data.get("content"))
        elif event.get("type") == "session.error":
            error = one_line(_text(data.get("message"))) or "copilot reported an error"
    last = results[-1]
    if error is None and last.get("exitCode") not in (0, None):
        error = f"copilot ended with exit code {last.get('exitCode')}"
    return CliReport(True, answer, error, _text(last.get("sessionId")) or None)


_AIDER_ERROR = re.compile(r"^litellm\.(\w+Error): (?:\w+Error: )?(?:\w+Exception - )?(.+)$",
                          re.MULTILINE)


_AIDER_TOKENS = re.compile(
    r"^Tokens: ([\d.]+)(k?) sent(?:, ([\d.]+)(k?) cache hit)?, ([\d.]+)(k?) received\."
    r"(?: Cost: \$([\d.]+) message)?", re.MULTILINE)


def _aider(stdout: str) -> CliReport:
    """aider prints its model API's errors as lines on stdout and still exits 0
    (`litellm.BadRequestError: OpenAIException - <message>`): such a line is the
    error; otherwise the exit code decides. Its usage is a line per model request:
    `Tokens: 2.4k sent, 16 received. Cost: $0.0061 message, $0.0061 session.`"""
    usage: dict[str, Any] = {}
    for m in _AIDER_TOKENS.finditer(stdout):
        for key, number, kilo in (("input_tokens", m.group(1), m.group(2)),
                                  ("cached_input_tokens", m.group(3), m.group(4)),
                                  ("output_tokens", m.group(5), m.group(6))):
            if number:
                usage[key] = usage.get(key, 0) + round(float(number) * (1000 if kilo else 1))
        if m.group(7):
            usage["cost_usd"] = usage.get("cost_usd", 0.0) + float(m.group(7))
    found = _AIDER_ERROR.search(stdout)
    if found is None:
        return CliReport(found=False, result=stdout, usage=usage)
    return CliReport(True, stdout, one_line(f"{found.group(1)}: {found.group(2)}"), usage=usage)


def _int(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    return int(value) if isinstance(value, int | float) and value == value else 0


# What the CLIs say at a provider's rate or usage limit (seen against stubs; the texts
# and their sources are in tests/stubs/limits.md)
_LIMIT = re.compile(
    r"usage limit|rate.?limit|\b429\b|quota|resource.?exhausted|too many requests|"
    r"hit your .{0,40}limit|out of usage|limiting requests|rate limited you",
    re.IGNORECASE)
_EPOCH = re.compile(r"limit reached\|(\d{9,11})")  # the older `…usage limit reached|<epoch>`
_RESET_ISO = re.compile(
    r"reset[s]?(?: at| on)?:?\s+(\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)",
    re.IGNORECASE)
_REGAIN = re.compile(r"regain access on (\d{4}-\d\d-\d\d) at (\d\d:\d\d) UTC")
# Claude Code: `resets 8:13am (Europe/Berlin)`, `resets Jan 1, 2030, 12am (UTC)`
_CLAUDE_WHEN = re.compile(
    r"resets (?:([A-Z][a-z]{2}) (\d{1,2})(?:, (\d{4}))?, )?(\d{1,2})(?::(\d\d))?(am|pm)"
    r" \(([^)]+)\)")
# Codex: `try again at Jan 1st, 2030 12:00 AM`, `try again at 8:16 AM` (local time)
_CODEX_WHEN = re.compile(
    r"try again at (?:([A-Z][a-z]{2}) (\d{1,2})(?:st|nd|rd|th), (\d{4}) )?(\d{1,2}):(\d\d)"
    r" (AM|PM)")
_AFTER = re.compile(r"(?:retry|try again|resets?)(?: after| in)?:?\s+(\d+(?:\.\d+)?)\s*"
                    r"(ms|s|sec|secs|seconds|m|min|minutes|h|hours)\b", re.IGNORECASE)
_DELAY = re.compile(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"')
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UNIT = {"ms": 0.001, "s": 1, "sec": 1, "secs": 1, "seconds": 1, "m": 60, "min": 60,
         "minutes": 60, "h": 3600, "hours": 3600}


def usage_limit(report: CliReport, log_tail: str, now: datetime) -> tuple[bool, datetime | None]:
    """Whether the run ended at the provider's rate or usage limit, and when it resets
    (None: the CLI did not say)."""
    said = " ".join(x for x in (report.error or "", report.hint) if x)
    if not said or not _LIMIT.search(said):
        return False, None
    text = " ".join(f"{said}\n{log_tail}".split())  # aider wraps its lines at 80 columns
    return True, reset_time(text, now)


def reset_time(text: str, now: datetime) -> datetime | None:
    """When a limit resets, as a CLI or its provider wrote it (None: not said)."""
    if found := _EPOCH.search(text):
        return datetime.fromtimestamp(int(found.group(1)), UTC)
    if found := _RESET_ISO.search(text):
        try:
            when = datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=UTC)
        except ValueError:
            pass
    if found := _REGAIN.search(text):
        return datetime.fromisoformat(f"{found.group(1)}T{found.group(2)}+00:00")
    if found := _CLAUDE_WHEN.search(text):
        mon, day, year, hour, minute, half, zone = found.groups()
        return _clock(now, mon, day, year, int(hour), int(minute or 0), half, zone)
    if found := _CODEX_WHEN.search(text):
        mon, day, year, hour, minute, half = found.groups()
        return _clock(now, mon, day, year, int(hour), int(minute), half, None)
    if found := _DELAY.search(text):
        return now + timedelta(seconds=float(found.group(1)))
    if found := _AFTER.search(text):
        return now + timedelta(seconds=float(found.group(1)) * _UNIT[found.group(2).lower()])
    return None


def _clock(now: datetime, mon: str | None, day: str | None, year: str | None, hour: int,
           minute: int, half: str, zone: str | None) -> datetime | None:
    """A wall-clock time in `zone` (None: this machine's), 12-hour; without a date, its
    next occurrence."""
    try:
        tz: tzinfo = ZoneInfo(zone) if zone else datetime.now().astimezone().tzinfo or UTC
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    hour = hour % 12 + (12 if half.lower() == "pm" else 0)
    local = now.astimezone(tz)
    try:
        if mon and day and mon in _MONTHS:
            when = local.replace(year=int(year) if year else local.year,
                                 month=_MONTHS.index(mon) + 1, day=int(day), hour=hour,
                                 minute=minute, second=0, microsecond=0)
        else:
            when = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if when <= local:
                when += timedelta(days=1)
    except ValueError:
        return None
    return when.astimezone(UTC)
