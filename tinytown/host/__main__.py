"""`python -m tinytown.host --town ROOT [--name N] [--max-agents N] [--labels a,b]`."""

from tinytown.host.host_worker import main

main()
