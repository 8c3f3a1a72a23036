"""Message latency: a ping to the agent and its pong back, against raw Redis (LPUSH →
BLPOP in another process) and Celery's own hop (apply_async → task body)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tinytown.core import keys
from tinytown.core.models import MessageType

from .common import alternate, median

if TYPE_CHECKING:
    from .harness import Bench

Pair = tuple[float, float]  # (one way, round trip), seconds


def tt_ping_one(b: Bench) -> Pair:
    channel = b.town.channel
    t = time.time()
    sent = channel.send(b.disp.id, MessageType.ping())
    while True:
        reply = channel.receive("supervisor", timeout=10)
        if reply is None:
            raise RuntimeError("no pong within 10 s")
        if reply.correlation_id == sent.id:
            break
    back = time.time()
    return reply.created_at.timestamp() - t, back - t


def raw_ping_one(b: Bench) -> Pair:
    payload = json.dumps({"id": str(uuid.uuid4()), "from": keys.SUPERVISOR_ID,
                          "to": b.disp.id, "type": "ping", "priority": "normal",
                          "created_at": datetime.now(UTC).isoformat(),
                          "correlation_id": None})
    t = time.time()
    b.r.lpush("bench-raw:inbox", payload)
    item = b.r.blpop(["bench-raw:replies"], 10)
    back = time.time()
    if item is None:
        raise RuntimeError("no echo within 10 s")
    return float(item[1].split(" ", 1)[0]) - t, back - t


def celery_hop_one(b: Bench) -> Pair:
    stamps = "bench-baseline:stamps"
    t = time.time()
    b.bl.stamp.apply_async(args=[stamps], queue="bench.disp")
    item = b.r.blpop([stamps], 10)
    back = time.time()
    if item is None:
        raise RuntimeError("the stamp task did not run within 10 s")
    return float(item[1]) - t, back - t


def run(b: Bench) -> None:
    # no helper empties an inbox: drop the supervisor's (pongs of earlier phases) here
    b.town.redis.delete(keys.inbox(b.town.name, keys.SUPERVISOR_ID))
    n = 40 if b.quick else 300
    pairs: dict[str, list[Pair]] = {"tt": [], "raw": [], "hop": []}
    sides = {"tt": tt_ping_one, "raw": raw_ping_one, "hop": celery_hop_one}

    def sampler(name: str) -> Callable[[int], float]:
        def one(i: int) -> float:
            pairs[name].append(sides[name](b))
            return 0.0

        return one

    alternate("message", [sampler(k) for k in sides], n, 10 if b.quick else 25, 3, 0.01)
    tt_pairs, raw_pairs = pairs["tt"][3:], pairs["raw"][3:]  # drop the warm-up
    hop_ms = [a * 1000 for a, _ in pairs["hop"][3:]]
    rtt = []
    for _ in range(200):
        t = time.perf_counter()
        b.r.ping()
        rtt.append(time.perf_counter() - t)
    ms = 1000
    one_t = [a * ms for a, _ in tt_pairs]
    one_r = [a * ms for a, _ in raw_pairs]
    rt_t = [c * ms for _, c in tt_pairs]
    rt_r = [c * ms for _, c in raw_pairs]
    ping_ms = median(rtt) * ms
    b.results.raw["message_ms"] = {"tinytown_one_way": one_t, "raw_one_way": one_r,
                                   "tinytown_round_trip": rt_t, "raw_round_trip": rt_r,
                                   "redis_ping_ms": ping_ms, "celery_hop": hop_ms}
    b.results.add("Redis round trip (PING, redis-py), p50", "ms", None, ping_ms, ratio=False)
    b.results.add("message latency p50 (send → in the agent's round)", "ms",
                  median(one_t), median(one_r),
                  f"report (= {median(one_t) / ping_ms:.0f} Redis round trips)",
                  baseline_name="LPUSH → BLPOP in another process")
    b.results.add("message round trip p50 (ping → pong back)", "ms",
                  median(rt_t), median(rt_r), "report")
    b.results.add("Celery's own hop p50 (apply_async → task body starts)", "ms",
                  None, median(hop_ms), "report (floor under a round)", ratio=False)
