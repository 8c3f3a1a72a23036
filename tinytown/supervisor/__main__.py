"""`python -m tinytown.supervisor --town ROOT`: run the town's supervisor service."""

from tinytown.supervisor.service import main

main()
