"""A scriptable agent CLI for the tests.

It reads its prompt (stdin, or a file after --instruction-file, or the last argument),
records it, and follows directives found in the prompt:

    @sleep <seconds>     sleep before answering
    @exit <code>         exit with that code
    @complete <text>     run `tt task complete $TINYTOWN_TASK_ID --result <text>` first
    @spawn-child         start a background child that sleeps (to test process groups)
    @ask <question>      end the output with `QUESTION: <question>` (a question to a
                         person), unless the prompt carries the answer already

$FAKE_AGENT_SLEEP, when set, replaces the seconds of `@sleep` (one worker's runs can
then last longer than another's).

Records go to $FAKE_AGENT_DIR: <agent>-<round>.prompt, and one line per run in
runs.log ("<agent> <round> <task-id> <pid>").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path


def read_prompt(argv: list[str]) -> str:
    if "--instruction-file" in argv:
        return Path(argv[argv.index("--instruction-file") + 1]).read_text()
    if "--prompt-arg" in argv:
        return argv[-1]
    return sys.stdin.read()


def main() -> None:
    prompt = read_prompt(sys.argv[1:])
    out = Path(os.environ.get("FAKE_AGENT_DIR")
               or Path(os.environ.get("TINYTOWN_TOWN_ROOT", ".")) / "records")
    out.mkdir(parents=True, exist_ok=True)
    agent = os.environ.get("TINYTOWN_AGENT_NAME", "?")
    rnd = os.environ.get("TINYTOWN_ROUND", "?")
    task = os.environ.get("TINYTOWN_TASK_ID", "-")
    (out / f"{agent}-{rnd}.prompt").write_text(prompt)
    (out / f"{agent}-{rnd}.argv").write_text("\n".join(sys.argv[1:]))
    with (out / "runs.log").open("a") as f:
        f.write(f"{agent} {rnd} {task} {os.getpid()}\n")
    if "@spawn-child" in prompt:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        (out / f"{agent}-{rnd}.child").write_text(str(child.pid))
    match = re.search(r"@sleep ([0-9.]+)", prompt)
    if match:
        (out / f"{agent}-{rnd}.sleeping").write_text(str(os.getpid()))
        time.sleep(float(os.environ.get("FAKE_AGENT_SLEEP") or match.group(1)))
    match = re.search(r"@complete (\S+)", prompt)
    if match and task != "-":
        subprocess.run(["tt", "task", "complete", task, "--result", match.group(1)], check=True)
    print(f"fake agent {agent} round {rnd} did: {prompt.strip().splitlines()[-1][:100]}")
    match = re.search(r"@ask (.+)", prompt)
    if match and "Their answer:" not in prompt:
        print(f"QUESTION: {match.group(1).strip()}")
    match = re.search(r"@exit (\d+)", prompt)
    sys.exit(int(match.group(1)) if match else 0)


if __name__ == "__main__":
    main()
