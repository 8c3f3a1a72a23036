"""The test suite ends every process it started, however it ends: a pytest stopped by
SIGTERM (with or without xdist), or whose xdist worker crashed, leaves no redis-server,
worker or agent CLI behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.helpers import SESSION_MARK, SESSION_OWNER, wait_until
from tests.helpers import session_pids as _session_pids

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parent.parent


def session_pids(mark: str) -> list[int]:
    """The subject session's processes: its mark, or a folder of its own."""
    return _session_pids(mark, (Path(tempfile.gettempdir()) / f"tt-{mark[:12]}",))


def _names(pids: list[int]) -> list[str]:
    names = []
    for pid in pids:
        try:
            names.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                         .decode(errors="replace")[:120])
        except OSError:
            pass
    return names


@pytest.mark.parametrize("workers,stop", [("0", "sigterm"), ("1", "sigterm"),
                                          ("1", "worker-crash")])
def test_a_stopped_session_leaves_no_process(tmp_path: Path, workers: str, stop: str) -> None:
    mark = uuid.uuid4().hex
    ready = tmp_path / "ready"
    env = {**os.environ, SESSION_MARK: mark, "TT_SUBJECT_READY": str(ready)}
    env.pop(SESSION_OWNER, None)  # a session of its own: it ends what it starts
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", workers,
         "tests/support/sigterm_subject.py"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        wait_until(ready.exists, 90, "the subject test to hold its processes")
        held = _names(session_pids(mark))
        assert any("redis-server" in n for n in held), held
        assert any("tinytown.worker" in n for n in held), held
        if stop == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:  # the xdist worker running the test dies; its controller goes on
            os.kill(int(ready.read_text()), signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)
        wait_until(lambda: not session_pids(mark), 15,
                   f"no process of the session left: {_names(session_pids(mark))}"
                   f"\n{out.decode(errors='replace')[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in session_pids(mark):  # whatever the test failed on
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(Path(tempfile.gettempdir()) / f"tt-{mark[:12]}", ignore_errors=True)
