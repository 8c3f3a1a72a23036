"""`python -m tinytown.cli ...`: the same command as `tt`."""

from tinytown.cli.main import main

main()
