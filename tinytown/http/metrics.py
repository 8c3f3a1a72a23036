"""/metrics: the town in Prometheus's text format, read from Redis at each scrape.

A collector of our own on a registry of our own: nothing is counted in this process,
so any number of `tt serve` give the same numbers, and a restart loses none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from tinytown.core.apikeys import Scope
from tinytown.core.models import Agent, AgentState, MissionState, TaskState
from tinytown.core.usage_rules import ROUND_BUCKETS, TOKEN_FIELDS
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import responses
from tinytown.ops.facade import Town

router = APIRouter(tags=["metrics"])


class TownCollector(Collector):
    def __init__(self, town: Town) -> None:
        self.town = town

    def collect(self) -> Iterator[Metric]:
        town = self.town
        agents = town.list_agents()
        tasks = Counter(t.state for t in town.list_tasks())
        by_state = Counter(a.state for a in agents)
        gauge = GaugeMetricFamily("tinytown_agents", "Agents by state", labels=["state"])
        for state in AgentState:
            gauge.add_metric([state.value], by_state[state])
        yield gauge
        gauge = GaugeMetricFamily("tinytown_tasks", "Tasks by state", labels=["state"])
        for task_state in TaskState:
            gauge.add_metric([task_state.value], tasks[task_state])
        yield gauge
        yield _missions(town)
        yield from _per_agent(town, agents)
        spent = town.budgets()["town"]["spent_usd"]
        yield CounterMetricFamily("tinytown_town_cost_usd",
                                  "What the town's rounds cost (USD, where known)", spent)
        yield from _rounds(town)
        health = town.health()
        yield GaugeMetricFamily("tinytown_supervisor_leader",
                                "1 while a supervisor leads the town", int(health.leader
                                                                           is not None))


def _missions(town: Town) -> Metric:
    by_state = Counter(m.state for m in town.missions())
    gauge = GaugeMetricFamily("tinytown_missions", "Missions by state", labels=["state"])
    for state in MissionState:
        gauge.add_metric([state.value], by_state[state])
    return gauge


def _per_agent(town: Town, workers: list[Agent]) -> Iterator[Metric]:
    rounds = CounterMetricFamily("tinytown_agent_rounds_completed",
                                 "Rounds (agent CLI runs) an agent completed", labels=["agent"])
    done = CounterMetricFamily("tinytown_agent_tasks_completed",
                               "Tasks an agent completed", labels=["agent"])
    cost = CounterMetricFamily("tinytown_agent_cost_usd",
                               "What an agent's rounds cost (USD, where known)",
                               labels=["agent"])
    tokens = CounterMetricFamily("tinytown_agent_tokens", "Tokens of an agent's rounds",
                                 labels=["agent", "kind"])
    inbox = GaugeMetricFamily("tinytown_agent_inbox_messages", "Messages waiting in an"
                              " agent's inbox", labels=["agent"])
    lens = town.inbox_lens(workers)
    for agent in workers:
        rounds.add_metric([agent.name], agent.rounds_completed)
        done.add_metric([agent.name], agent.tasks_completed)
        if agent.usage is not None:
            cost.add_metric([agent.name], agent.usage.cost_usd)
            for kind in TOKEN_FIELDS:
                tokens.add_metric([agent.name, kind.removesuffix("_tokens")],
                                  getattr(agent.usage, kind))
        inbox.add_metric([agent.name], lens.get(agent.id, 0))
    yield from (rounds, done, cost, tokens, inbox)


def _rounds(town: Town) -> Iterator[Metric]:
    """Every round's duration (a histogram kept in Redis by each round's finish) and the
    rounds whose CLI failed."""
    stats = town.round_timings()
    buckets = [(str(float(bound)), stats.get(f"le_{bound}", 0)) for bound in ROUND_BUCKETS]
    buckets.append(("+Inf", stats.get("count", 0)))
    histogram = HistogramMetricFamily("tinytown_round_duration_seconds",
                                      "How long rounds' agent CLIs ran")
    histogram.add_metric([], buckets, stats.get("sum_ms", 0) / 1000)
    yield histogram
    yield CounterMetricFamily("tinytown_round_failures",
                              "Rounds whose agent CLI failed (an error, a timeout)",
                              stats.get("failed", 0))


def registry_for(town: Town) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TownCollector(town))
    return registry


@router.get("/metrics", dependencies=[needs(Scope.READ)], response_class=Response,
            responses={**responses(), 200: {"content": {"text/plain": {}},
                                            "description": "Prometheus text format"}})
def metrics(request: Request, town: Annotated[Town, Depends(town_of)]) -> Response:
    """Agents and tasks by state, each agent's rounds, tasks, tokens, cost and inbox, the
    town's cost, and whether a supervisor leads."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(request.app.state.registry), media_type=content_type)
