"""Record what opencode, Qwen Code and Cline CLI print, run by their presets' command
lines against the OpenAI stub, into tests/stubs/samples/ (for their readers' tests in
tests/agent_clis/test_new_cli_readers.py). Run it again after scripts/install-clis brings
newer versions:

    python -m tests.stubs.make_new_samples

Per CLI: `<cli>-success.jsonl` (a shell tool writes a file, then the answer),
`<cli>-error-400.jsonl` (the API refuses every request), each with a `.stderr` beside it
when the CLI wrote anything there; `new-clis-runs.json` says the version, the command
line and the exit code of each.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.stubs._base import ApiError, Text, ToolCall
from tests.stubs.openai import OpenAIStub
from tests.stubs.realcli import (
    Sandbox,
    cline_providers,
    find_cli,
    opencode_config,
    opencode_env,
    qwen_env,
    qwen_settings,
)

SAMPLES = Path(__file__).parent / "samples"

Setup = Callable[[Sandbox, str], dict[str, str]]


def _opencode(box: Sandbox, url: str) -> dict[str, str]:
    opencode_config(box, url)
    return opencode_env()


def _qwen(box: Sandbox, url: str) -> dict[str, str]:
    qwen_settings(box)
    return qwen_env(url)


def _cline(box: Sandbox, url: str) -> dict[str, str]:
    cline_providers(box, url)
    return {}


# name, the preset's argv after the binary, setup
CLIS: list[tuple[str, list[str], Setup]] = [
    ("opencode", ["run", "--auto", "--format", "json"], _opencode),
    ("qwen", ["--yolo", "--output-format", "stream-json"], _qwen),
    ("cline", ["--auto-approve", "true", "--json", " "], _cline),
]


def main() -> None:
    runs = []
    for name, args, setup in CLIS:
        binary, why = find_cli(name)
        if binary is None:
            print(f"{name}: {why}")
            continue
        version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout.strip().splitlines()[0]
        for case, script in (
            ("success", [ToolCall("printf 'made by the agent' > out.txt"),
                         Text("FINAL-ANSWER: out.txt written")]),
            ("error-400", [ApiError(400, "the stub refuses this request", times=None)]),
        ):
            box = Sandbox()
            try:
                with OpenAIStub() as stub:
                    stub.push(*script)
                    env = setup(box, stub.api_url)
                    run = box.run([binary, *args], "Write out.txt", env, timeout=180)
            finally:
                box.cleanup()
            (SAMPLES / f"{name}-{case}.jsonl").write_text(run.stdout)
            stderr = SAMPLES / f"{name}-{case}.stderr"
            if run.stderr.strip():
                stderr.write_text(run.stderr)
            elif stderr.exists():
                stderr.unlink()
            runs.append({"cli": name, "version": version, "case": case,
                         "argv": [name, *args], "exit": run.returncode,
                         "seconds": round(run.seconds, 1)})
            print(f"{name} {case}: exit {run.returncode}")
    (SAMPLES / "new-clis-runs.json").write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
