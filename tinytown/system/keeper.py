"""The keeper: the parent of an agent worker, so that nothing a round starts outlives it.

Several agent CLIs start their shell tools in a session of their own, and a daemon
double-forks: neither stays in the CLI's process group,
which is all a group kill reaches. So on Linux a worker process (`python -m
tinytown.worker`, `tt worker`, `tt spawn --foreground`) starts as two: the process
started becomes the keeper, a child subreaper (PR_SET_CHILD_SUBREAPER), and forks the
worker, which dies with it (PR_SET_PDEATHSIG). A process that a round leaves orphaned,
in whatever session or process group, is re-parented to the keeper instead of init:

- at each round's end (its CLI exited, timed out or was cut short) the worker ends
  every process under the keeper that is not under the worker itself (`end_strays`);
- when the worker exits, however it exits (SIGKILL included), the keeper ends
  everything left under it, then exits as the worker did (its code, or its signal).

Either way SIGTERM first, `GRACE` seconds, then SIGKILL. A child of the keeper counts
until it is reaped: a killed multithreaded CLI (a node program) is a zombie while its
other threads exit, and its tool's shell stays its child until the last one has gone;
a keeper that exited before then left that shell to init (issue 20, point 23). So the
keeper exits only when no process it adopted is left, reaped or alive. Spared: Tinytown's own
detached processes (a worker or supervisor that `tt spawn` started from inside a
round), which belong to the town and are stopped by it.

The keeper forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT sent to it (systemd, a
foreground `tt worker`, a test) to the worker, but not one a terminal sent to its whole
foreground group, which the worker got as well. Right after the fork it execs a small
Python of its own running this file (`python -I -S keeper.py`: the standard library's
`os`, `signal`, `sys` and `time`, about 4 MiB), so it keeps no copy of the worker's
modules and holds no Redis connection and no Celery state. The worker records its own
pid in its runtime hash: `tt kill`, `tt down`, recovery and restart signal the worker,
never the keeper; `ps -e` shows the keeper as `tt-keeper`, followed in `ps -f` by the
worker's command line.

Standard library only, and nothing imported that the keeper does not use.
"""

from __future__ import annotations

import os
import signal
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from typing import NoReturn

GRACE = 2.0  # seconds between SIGTERM and SIGKILL
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
WATCHED = {*FORWARDED, signal.SIGCHLD}
TOWN_PROCESSES = (b"tinytown.worker", b"tinytown.supervisor")
NAME = "tt-keeper"
_SI_KERNEL = 0x80  # si_code of a signal the kernel sent: a terminal's, to its whole group
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

_keeper: int | None = None  # set in the worker: its keeper's pid


# --- in the worker ----------------------------------------------------------------------


def keep() -> None:
    """Split this process into a keeper and a worker: returns in the worker (a child of
    this process); the keeper never returns. Does nothing where the system has no
    child subreapers (the worker's watchdog still kills the CLI's group)."""
    global _keeper
    if not _prctl(_PR_SET_CHILD_SUBREAPER, 1):
        return
    keeper = os.getpid()
    for stream in (sys.stdout, sys.stderr):  # what is buffered is written once, now
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    caught: list[int] = []  # by another thread (`tt`'s start-up timer) before the exec
    handlers = {sig: signal.signal(sig, lambda sig, _: caught.append(sig)) for sig in FORWARDED}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)  # kept pending for the keeper
    child = os.fork()
    if child == 0:  # the worker
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != keeper:  # the keeper died before the line above
            os._exit(1)
        _keeper = keeper
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        import gc

        gc.enable()  # `tt` starts with it off, and its timer to turn it on stayed behind
        return
    for number in caught:
        _forward(child, number)
    try:  # the signal mask, the pending signals and the subreaper flag stay
        os.execv(sys.executable, [sys.executable, "-I", "-S", os.path.abspath(__file__),
                                  str(child), *sys.orig_argv])
    except OSError:
        serve(child)  # no Python to exec: keep in this process


def keeper_pid() -> int | None:
    """The pid of this process's keeper, while it is alive and our parent."""
    return _keeper if _keeper is not None and os.getppid() == _keeper else None


def end_strays() -> list[int]:
    """At a round's end, in the worker: end every process the round left behind (they
    were re-parented to the keeper). Returns the pids signalled; [] without a keeper."""
    keeper = keeper_pid()
    if keeper is None:
        return []
    me = os.getpid()
    return end_processes(lambda: strays(keeper, spare=(me,)), GRACE)


def _prctl(option: int, arg: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return int(ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


# --- the keeper ----------------------------------------------------------------------


def serve(child: int) -> NoReturn:
    """The keeper's life: forward signals, reap orphans until the worker exits, end what
    is left until every child but the town's own is reaped (nothing can be orphaned to
    it any more), exit as the worker did."""
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(NAME)
    except OSError:
        pass
    me = os.getpid()
    status: int | None = None

    def reap() -> None:
        nonlocal status
        while True:
            try:
                pid, st = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == child:
                status = st

    reap()
    while status is None:
        info = signal.sigwaitinfo(WATCHED)
        if info.si_signo == signal.SIGCHLD:
            reap()
        elif info.si_code != _SI_KERNEL:
            _forward(child, info.si_signo)

    def left() -> list[int]:
        reap()
        return strays(me)

    end_processes(left, GRACE)
    reap()
    _exit_as(status)


def _forward(child: int, sig: int) -> None:
    try:
        os.kill(child, sig)
    except ProcessLookupError:
        pass


def _exit_as(status: int) -> NoReturn:
    """Exit with the worker's code, or be killed by the signal that killed it."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        sig = -code
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(
                resource.RLIMIT_CORE)[1]))  # the worker dumped core, if any: not us
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
            os.kill(os.getpid(), sig)
        except (OSError, ValueError):
            pass
        code = 128 + sig
    os._exit(code)


# --- processes under a subreaper ----------------------------------------------------


def process_table() -> tuple[dict[int, int], set[int]]:
    """pid -> parent pid of every process, one pass over /proc; and which of them are
    zombies. Zombies are in the table: a multithreaded program (node)
    killed shows as a zombie while its other threads are still exiting, and its children
    are still its own until the last one has gone."""
    table: dict[int, int] = {}
    zombies: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table, zombies
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(b")") + 2:].split(b" ", 2)
        if len(fields) > 2:
            table[int(entry)] = int(fields[1])
            if fields[0] in (b"Z", b"X"):
                zombies.add(int(entry))
    return table, zombies


def child_pids(pid: int) -> set[int] | None:
    """The children of `pid`, from its threads' `children` files (a few microseconds);
    None where the kernel does not provide them."""
    found: set[int] = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                found.update(int(p) for p in f.read().split())
    except OSError:
        return None
    return found


def is_town_process(pid: int) -> bool:
    """Whether `pid` is a Tinytown worker or supervisor (`python -m tinytown.worker ...`,
    or the keeper of one), such as `tt spawn` starts detached: it belongs to the town,
    not to whoever started it."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return any(a == b"-m" and b in TOWN_PROCESSES for a, b in zip(argv, argv[1:], strict=False))


def strays(reaper: int, spare: Collection[int] = ()) -> list[int]:
    """Every live process below `reaper` (a child subreaper), and every child of its not
    yet reaped (a zombie still exiting may orphan more to it); but none below the `spare`
    children (their subtrees are left alone) nor in a Tinytown worker's or supervisor's
    subtree. Zombies are walked through: a dying CLI's children are still its own. With
    only spare children, one read of `reaper`'s children files."""
    children = child_pids(reaper)
    if children is not None and children <= set(spare):
        return []
    table, zombies = process_table()
    kids: dict[int, list[int]] = {}
    for pid, ppid in table.items():
        kids.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = [p for p in kids.get(reaper, []) if p not in spare]
    mine = set(todo)  # the reaper's own children: found even as zombies
    while todo:
        pid = todo.pop()
        if pid not in zombies and is_town_process(pid):
            continue
        if pid in mine or pid not in zombies:
            found.append(pid)
        todo.extend(kids.get(pid, []))
    return found


def end_processes(find: Callable[[], list[int]], grace: float) -> list[int]:
    """End the processes `find` returns: SIGTERM, up to `grace` seconds for them to exit,
    then SIGKILL until `find` returns none. `find` is asked again as they go (what they
    fork meanwhile, or leave orphaned, is found too); one that may not be signalled (of
    another user) is left alone. Returns every pid signalled."""
    signalled: set[int] = set()
    refused: set[int] = set()

    def remaining() -> list[int]:
        return [p for p in find() if p not in refused]

    def send(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
            signalled.add(pid)
        except ProcessLookupError:
            pass
        except PermissionError:
            refused.add(pid)

    pids = remaining()
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        for pid in pids:
            if pid not in signalled:
                send(pid, signal.SIGTERM)
        time.sleep(0.02)
        pids = remaining()
    for _ in range(500):  # a process that forks as fast as it is killed: give up in time
        if not pids:
            break
        for pid in pids:
            send(pid, signal.SIGKILL)
        time.sleep(0.01)
        pids = remaining()
    return sorted(signalled)


if __name__ == "__main__":  # the keeper, exec'd by `keep`: keeper.py CHILD WORKER-ARGV...
    serve(int(sys.argv[1]))
