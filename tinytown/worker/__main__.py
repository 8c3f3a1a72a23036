"""`python -m tinytown.worker --town ROOT AGENT_ID`: run one agent's worker.

The process splits into the worker's keeper and the worker (`tinytown.system.keeper`) first,
before anything is imported or connected: the keeper stays small and holds nothing.
"""

from tinytown.system.keeper import keep

keep()

from tinytown.worker.agent_worker import main  # noqa: E402  (in the worker only)

main()
