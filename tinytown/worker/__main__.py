"""`python -m tinytown.worker --town ROOT AGENT_ID`: run one agent's worker."""

from tinytown.worker.app import main

main()
