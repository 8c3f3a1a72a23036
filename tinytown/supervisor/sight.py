"""When the supervisor could see Redis, and so how long a worker has really been silent.

A worker's beat is evidence of its death only for the time Redis could take the beat:
while Redis was down, frozen or restarting, every worker looks silent. The supervisor
notes each time it reached Redis; a failure, or a gap between two contacts longer than
its loop allows (a Redis that froze without dropping the connection), is a blind spell,
and a spell is not counted as silence. So a verdict waits only on what could not be
seen: a worker that went quiet while Redis answered is judged on time, whenever this
supervisor took the lead (no blanket pause after a failover or a new term), and after an
outage every worker gets a full limit to beat again.

Times are Unix seconds (the workers' beats are). Pure: the caller says when it reached
Redis and when Redis itself started.
"""

from __future__ import annotations

import time

KEEP_SECS = 3600.0  # spells older than this no longer matter to any verdict


class Sight:
    def __init__(self, max_gap: float) -> None:
        self.max_gap = max_gap  # between two contacts, more than this is a blind spell
        self.last_contact: float | None = None
        self._lost = False
        self._blind: list[tuple[float, float]] = []  # (from, to), oldest first

    def lost(self) -> None:
        """Redis did not answer: blind from the last contact until the next one."""
        self._lost = True

    def contact(self, now: float | None = None) -> bool:
        """Redis answered; True when this is the first contact or the first after a
        failure (the caller may then learn when Redis started: `blind(0, started)`)."""
        now = time.time() if now is None else now
        last, fresh = self.last_contact, self.last_contact is None or self._lost
        if last is not None and (self._lost or now - last > self.max_gap):
            self.blind(last, now)
        self._lost = False
        self.last_contact = now
        return fresh

    def blind(self, start: float, end: float) -> None:
        """Nothing could be seen between `start` and `end` (e.g. before Redis started)."""
        if end > start:
            self._blind.append((start, end))
        cut = end - KEEP_SECS
        self._blind = [(a, b) for a, b in self._blind if b >= cut]

    def silence(self, last_sign: float, now: float | None = None) -> float:
        """Seconds since `last_sign` of life during which Redis could be seen."""
        now = time.time() if now is None else now
        unseen = sum(max(0.0, min(b, now) - max(a, last_sign)) for a, b in _merged(self._blind))
        return max(0.0, now - last_sign - unseen)


def _merged(spells: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping spells as one (a Redis restart seen both ways is not subtracted twice)."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spells):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
