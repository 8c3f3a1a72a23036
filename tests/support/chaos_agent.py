"""A stand-in agent CLI for the chaos test (tests/scenarios/test_mission_chaos.py).

Usage: `chaos_agent.py RECORDS SEED` (the prompt on stdin). Each run works a short
random time (seeded by SEED, the task and the round, so a seed replays the same
durations), appends a line to a file of its task's own in
its working folder (the agent's git worktree) and commits it, as an agent would. It
logs `start` and `end` lines to RECORDS/chaos.log ("<what> <agent> <round>
<task-id> <pid>"): a task's work may be run again after a kill (rounds are
at-least-once), and the test reads here how often it ran.

A prompt with `@linger` leaves a file uncommitted, logs `linger` and keeps working for
two minutes (the mission-cancel test stops it).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path


def log(out: Path, what: str, agent: str, rnd: str, task: str) -> None:
    with (out / "chaos.log").open("a") as f:
        f.write(f"{what} {agent} {rnd} {task} {os.getpid()}\n")


def main() -> None:
    prompt = sys.stdin.read()
    out, seed = Path(sys.argv[1]), sys.argv[2]
    out.mkdir(parents=True, exist_ok=True)
    agent = os.environ.get("TINYTOWN_AGENT_NAME", "?")
    rnd = os.environ.get("TINYTOWN_ROUND", "?")
    task = os.environ.get("TINYTOWN_TASK_ID", "-")
    log(out, "start", agent, rnd, task)
    if "@linger" in prompt:  # leave work uncommitted and keep at it (a cancel stops it)
        work = Path("work")
        work.mkdir(exist_ok=True)
        (work / f"{task[:8]}.txt").write_text(f"{agent} round {rnd}: half done\n")
        log(out, "linger", agent, rnd, task)
        time.sleep(120)
        sys.exit(0)
    rng = random.Random(f"{seed}:{task}:{agent}:{rnd}")
    time.sleep(rng.uniform(0.2, 1.2))
    work = Path("work")
    work.mkdir(exist_ok=True)
    with (work / f"{task[:8]}.txt").open("a") as f:
        f.write(f"{agent} round {rnd}\n")
    subprocess.run(["git", "add", "-A", "work"], check=True, capture_output=True)
    subprocess.run(["git", "commit", "-q", "-m", f"{task[:8]}: {agent} round {rnd}"],
                   check=True, capture_output=True)
    log(out, "end", agent, rnd, task)
    print(f"done {task[:8]}")


if __name__ == "__main__":
    main()
