#!/usr/bin/env python3
"""Run the town's supervisor service in the foreground: supervisor.py.

The town is the nearest tinytown.toml above the current folder, or TINYTOWN_TOWN_ROOT.
"""

from tinytown.cli.main import main

if __name__ == "__main__":
    main(["supervisor", "--foreground"])
