"""Record what the real Claude Code and Gemini CLI print, run against the stubs, into
tests/stubs/samples/ (for the presets' parsers and for humans). Run it again after
scripts/install-clis brings newer versions:

    python -m tests.stubs.make_samples

Each sample is the CLI's own output, pretty-printed when it is JSON (Claude Code prints
it on one line, Gemini CLI indented); samples/claude-gemini-runs.json says for each one
the version, the command line, the environment variables set (names), the exit code,
the stream it came from, how long the run took and what reached the stub.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.stubs._base import ApiError, Text, ToolCall
from tests.stubs.anthropic import AnthropicStub
from tests.stubs.gemini import GeminiStub
from tests.stubs.realcli import (
    CLAUDE_ARGS,
    GEMINI_ARGS,
    Run,
    Sandbox,
    claude_env,
    find_cli,
    gemini_env,
    gemini_settings,
    last_json_object,
)

SAMPLES = Path(__file__).parent / "samples"


class Recorder:
    def __init__(self) -> None:
        self.index: dict[str, Any] = {}

    def save(self, name: str, run: Run, env: dict[str, str], version: str,
             stream: str = "stdout", stub: Any = None) -> None:
        text = run.stdout if stream == "stdout" else run.stderr
        value = last_json_object(text)
        path = SAMPLES / name
        if name.endswith(".json"):
            if value is None:
                raise SystemExit(f"{name}: no JSON on {stream}\n{run.describe()}")
            path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        else:
            path.write_text(text)
        self.index[name] = {
            "version": version,
            "argv": [Path(run.argv[0]).name, *run.argv[1:]],
            "env": sorted(env),  # besides PATH HOME TMPDIR LANG SHELL NO_COLOR
            "exit_code": run.returncode,
            "stream": stream,
            "seconds": round(run.seconds, 2),
            "stub_requests": [f"{r.kind} {r.status} {r.method} {r.path}"
                              for r in stub.requests] if stub else [],
        }
        print(f"{name}: exit {run.returncode}, {run.seconds:.1f}s")


def claude_samples(rec: Recorder, binary: str) -> None:
    box = Sandbox()
    version = box.run([binary, "--version"], None, {}).stdout.strip()

    def run(name: str, replies: list[Any], prompt: str, *args: str, stream: str = "stdout",
            drop: tuple[str, ...] = (), **extra: str) -> Run:
        with AnthropicStub() as stub:
            stub.push(*replies)
            env = claude_env(stub.base_url, **extra)
            for key in drop:
                env.pop(key)
            result = box.run([binary, *CLAUDE_ARGS, *args], prompt, env)
            rec.save(name, result, env, version, stream, stub)
            return result

    first = run("claude-success.json",
                [ToolCall("printf hello > out.txt"), Text("Wrote out.txt.")],
                "Write hello into out.txt")
    sid = first.json()["session_id"]
    run("claude-resume.json", [Text("Resumed.")], "Next task", "--resume", sid)
    run("claude-fork.json", [Text("Forked.")], "Forked task", "--resume", sid, "--fork-session")
    run("claude-resume-unknown.txt", [], "x", "--resume", str(uuid.uuid4()), stream="stderr")
    run("claude-error-400.json", [ApiError(400, "messages.0: bad request from the stub")], "hi")
    run("claude-error-429.json",
        [ApiError(429, "Number of request tokens has exceeded your rate limit",
                  headers={"retry-after": "0"}, times=None)],
        "hi", CLAUDE_CODE_MAX_RETRIES="1")
    run("claude-error-529.json", [ApiError(529, "Overloaded", times=None)], "hi",
        CLAUDE_CODE_MAX_RETRIES="0")
    if os.geteuid() == 0:
        run("claude-root-refused.txt", [], "hi", stream="stderr", drop=("IS_SANDBOX",))
    box.cleanup()


def gemini_samples(rec: Recorder, binary: str) -> None:
    box = Sandbox()
    version = box.run([binary, "--version"], None, {}).stdout.strip()

    def run(name: str, replies: list[Any], prompt: str, *args: str, stream: str = "stdout",
            settings: bool = True, **extra: str) -> Run:
        with GeminiStub() as stub:
            stub.push(*replies)
            env = gemini_env(stub.base_url, **extra)
            if settings:
                gemini_settings(box, maxAttempts=1)
            else:
                (box.home / ".gemini" / "settings.json").unlink(missing_ok=True)
            result = box.run([binary, *GEMINI_ARGS, *args], prompt, env)
            rec.save(name, result, env, version, stream, stub)
            return result

    chosen = str(uuid.uuid4())
    run("gemini-success.json", [ToolCall("printf hello > out.txt"), Text("Wrote out.txt.")],
        "Write hello into out.txt", "--session-id", chosen)
    run("gemini-resume.json", [Text("Resumed.")], "Next task", "--resume", chosen)
    run("gemini-session-exists.txt", [], "x", "--session-id", chosen, stream="stderr")
    model = {"GEMINI_MODEL": "gemini-2.5-pro"}
    run("gemini-error-400.json", [ApiError(400, "Request contains an invalid argument.")], "hi",
        stream="stderr", **model)
    run("gemini-error-429.json",
        [ApiError(429, "Resource has been exhausted (e.g. check quota).", times=None)], "hi",
        stream="stderr", **model)
    run("gemini-error-no-auth-setting.json", [], "hi", stream="stderr", settings=False)
    box.cleanup()


def main() -> int:
    SAMPLES.mkdir(exist_ok=True)
    rec = Recorder()
    index_path = SAMPLES / "claude-gemini-runs.json"
    if index_path.exists():
        rec.index = json.loads(index_path.read_text())
    done = 0
    for name, make in (("claude", claude_samples), ("gemini", gemini_samples)):
        binary, why = find_cli(name)
        if binary is None:
            print(f"{name}: skipped: {why}", file=sys.stderr)
            continue
        make(rec, binary)
        done += 1
    index_path.write_text(json.dumps(dict(sorted(rec.index.items())), indent=2) + "\n")
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
