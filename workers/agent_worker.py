#!/usr/bin/env python3
"""Run one agent's Celery worker in the foreground: agent_worker.py AGENT.

The town is the nearest tinytown.toml above the current folder, or TINYTOWN_TOWN_ROOT.
"""

import sys

from tinytown.cli.main import main

if __name__ == "__main__":
    main(["worker", *sys.argv[1:]])
