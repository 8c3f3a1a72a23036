"""Every Redis key a town uses, built in one place.

Layout (``<town>`` is the town's name, ids are lowercase UUIDs):

    tt:<town>:agent:<agent-id>     string  one Agent as JSON              (wire format)
    tt:<town>:inbox:<agent-id>     list    pending Messages, head first   (wire format)
    tt:<town>:task:<task-id>       string  one Task as JSON               (wire format)
    tt:<town>:names                hash    agent name -> agent id (uniqueness guard)
    tt:<town>:root                 string  host:folder where `tt init` made the town
    tt:<town>:inflight:<agent-id>  list    messages taken by a running round
    tt:<town>:stop:<agent-id>      string  stop flag set by `tt kill`
    tt:<town>:wake:<agent-id>      string  a round job is already queued (coalescing)
    tt:<town>:runtime:<agent-id>   hash    worker pid, host, CLI process group, round
    tt:<town>:epoch:<agent-id>     string  fencing token of the worker start serving it
    tt:<town>:context:<agent-id>   list    recent rounds' prompt/output (for --fork)
    tt:<town>:events               stream  state changes and other town events
    tt:<town>:usage                hash    the town's tokens and cost, summed over rounds
    tt:<town>:rounds               stream  each round's usage (agent, role, task, tokens, cost)
    tt:<town>:roundstats           hash    rounds' durations: count, failed, sum_ms, le_<secs>
    tt:<town>:budget               string  the town's budget in USD (`tt budget set town`)
    tt:<town>:holds                zset    agents paused at a usage limit, by resume time
    tt:<town>:supervisor:leader    string  leader lock of the supervisor service ("pid@host")
    tt:<town>:supervisors          hash    running supervisor processes ("pid@host" -> since)
    tt:<town>:supervisor:starting  string  a supervisor is being launched (short expiry)
    tt:<town>:hosts                set     names of the host daemons that registered
    tt:<town>:host:<name>          hash    one host daemon: machine, pid, capacity, labels,
                                           CLIs installed, beat, agents, draining
    tt:<town>:deadletter           list    messages that did not parse, kept for a human
    tt:<town>:deadletter:<key>:<t> any     a key of the wrong type, moved out of the way
    tt:<town>:backlog              list    ids of unassigned tasks waiting to be claimed
    tt:<town>:rolepending          zset    ids of tasks queued for a role, not yet taken
                                           (score: when last offered; re-offered)
    tt:<town>:dependents:<task-id> set     ids of the `blocked` tasks that wait for this
                                           task (their `after` names it); dropped once
                                           it is completed (tinytown/db/graph.py)
    tt:<town>:celery:*             ...     Celery/kombu keys (queues, bindings,
                                           pidbox, results) via kombu's global_keyprefix
    tt:<town>:apikeys              hash    `tt serve` API keys: sha256 of the key -> record
    tt:<town>:apikeys:used         hash    API key name -> when it was last used
    tt:<town>:down:agents          set     ids of the agents `tt down` stopped while they
                                           were live: what `tt up` starts again
    tt:<town>:mission:<name>       string  one Mission as JSON (tinytown/db/mission_store.py)
    tt:<town>:missions             set     the names of the town's missions
    tt:<town>:questions            zset    ids of the tasks awaiting a person's answer
                                           (score: when asked; tinytown/db/question_store.py)
    tt:<town>:questions:due        zset    the same, until the supervisor has reported
                                           the question as unanswered for too long

Legacy, un-isolated keys that `tt migrate` moves: tt:agent:<id>, tt:inbox:<id>,
tt:task:<id>.
"""

from __future__ import annotations

SUPERVISOR_ID = "00000000-0000-0000-0000-000000000001"


def prefix(town: str) -> str:
    return f"tt:{town}:"


def agent(town: str, agent_id: str) -> str:
    return f"tt:{town}:agent:{agent_id}"


def agent_pattern(town: str) -> str:
    return f"tt:{town}:agent:*"


def inbox(town: str, agent_id: str) -> str:
    return f"tt:{town}:inbox:{agent_id}"


def task(town: str, task_id: str) -> str:
    return f"tt:{town}:task:{task_id}"


def task_pattern(town: str) -> str:
    return f"tt:{town}:task:*"


def root(town: str) -> str:
    """The folder (host:path) `tt init` made the town in: another init of the same name
    elsewhere must say --join."""
    return f"tt:{town}:root"


def names(town: str) -> str:
    return f"tt:{town}:names"


def inflight(town: str, agent_id: str) -> str:
    return f"tt:{town}:inflight:{agent_id}"


def stop_flag(town: str, agent_id: str) -> str:
    return f"tt:{town}:stop:{agent_id}"


def wake(town: str, agent_id: str) -> str:
    return f"tt:{town}:wake:{agent_id}"


def runtime(town: str, agent_id: str) -> str:
    return f"tt:{town}:runtime:{agent_id}"


def epoch(town: str, agent_id: str) -> str:
    """The agent's fencing token: incremented by each worker start that takes it over."""
    return f"tt:{town}:epoch:{agent_id}"


def context(town: str, agent_id: str) -> str:
    return f"tt:{town}:context:{agent_id}"


def events(town: str) -> str:
    return f"tt:{town}:events"


def usage(town: str) -> str:
    return f"tt:{town}:usage"


def rounds(town: str) -> str:
    return f"tt:{town}:rounds"


def round_stats(town: str) -> str:
    """Every round's duration, as a cumulative histogram (and failures), for /metrics."""
    return f"tt:{town}:roundstats"


def budget(town: str) -> str:
    return f"tt:{town}:budget"


def budget_tokens(town: str) -> str:
    """The town's token budget (`tt budget set town --tokens N`), a decimal integer."""
    return f"tt:{town}:budget_tokens"


def holds(town: str) -> str:
    """Agents paused at a usage limit, scored by when the supervisor resumes them."""
    return f"tt:{town}:holds"


def supervisor_leader(town: str) -> str:
    return f"tt:{town}:supervisor:leader"


def supervisor_starting(town: str) -> str:
    return f"tt:{town}:supervisor:starting"


def supervisors(town: str) -> str:
    return f"tt:{town}:supervisors"


def deadletter(town: str) -> str:
    return f"tt:{town}:deadletter"


def backlog(town: str) -> str:
    return f"tt:{town}:backlog"


def role_pending(town: str) -> str:
    """Tasks queued for a role and not yet taken, by when they were last offered."""
    return f"tt:{town}:rolepending"


def dependents(town: str, task_id: str) -> str:
    """The blocked tasks that wait for `task_id`: its completion releases them (a reverse
    index of the tasks' `after`, so the release reads only its own children). Not under
    `task:` so that `task_pattern` still matches task records only."""
    return f"tt:{town}:dependents:{task_id}"


def set_aside(town: str, key: str, stamp: str) -> str:
    """Where a key of the wrong Redis type is moved (kept for a human, out of the way):
    tt:<town>:deadletter:<the key's own part>:<stamp>."""
    return f"tt:{town}:deadletter:{key.removeprefix(prefix(town))}:{stamp}"


def hosts(town: str) -> str:
    """Names of the host daemons (`tt host`) that registered with the town."""
    return f"tt:{town}:hosts"


def host(town: str, name: str) -> str:
    """One host daemon's registration and heartbeat (`tinytown.db.host_store`)."""
    return f"tt:{town}:host:{name}"


def host_queue(town: str, name: str) -> str:
    """The Celery queue a host daemon consumes: "look at your agents now"."""
    return f"tt.{town}.host.{name}"


def celery_prefix(town: str) -> str:
    """kombu's global_keyprefix: every Celery key and channel of the town lives here."""
    return f"tt:{town}:celery:"


def agent_queue(town: str, agent_id: str) -> str:
    """The Celery queue name (not a raw key: kombu prefixes it with celery_prefix)."""
    return f"tt.{town}.agent.{agent_id}"


def role_queue(town: str, role: str) -> str:
    """The Celery queue every agent of a role consumes (`tt assign --role`)."""
    return f"tt.{town}.role.{role}"


def down_agents(town: str) -> str:
    """The agents that were live when `tt down` stopped the town (`tt up` starts them)."""
    return f"tt:{town}:down:agents"


def mission(town: str, name: str) -> str:
    """One mission (`tt mission start`): its goal, budget, state and task names -> ids."""
    return f"tt:{town}:mission:{name}"


def missions(town: str) -> str:
    """The names of the town's missions (`tt mission list`)."""
    return f"tt:{town}:missions"


def questions(town: str) -> str:
    """The open questions to a person: task ids by when the question was asked."""
    return f"tt:{town}:questions"


def questions_due(town: str) -> str:
    """Open questions whose timeout the supervisor has not reported yet (by when asked):
    its pass reads only the ones past the limit."""
    return f"tt:{town}:questions:due"


def per_agent_keys(town: str, agent_id: str) -> list[str]:
    """Keys that belong to one agent and go away with it (`tt prune`)."""
    return [
        agent(town, agent_id),
        inbox(town, agent_id),
        inflight(town, agent_id),
        stop_flag(town, agent_id),
        wake(town, agent_id),
        runtime(town, agent_id),
        epoch(town, agent_id),
        context(town, agent_id),
    ]


LEGACY_KINDS = ("agent", "inbox", "task")


def legacy_pattern(kind: str) -> str:
    return f"tt:{kind}:*"


def legacy_to_town(town: str, legacy_key: str) -> str:
    """tt:agent:<id> -> tt:<town>:agent:<id>."""
    _, kind, ident = legacy_key.split(":", 2)
    return f"tt:{town}:{kind}:{ident}"


# --- `tt serve`: API keys (written by tinytown/db/apikey_store.py) ---------------------------


def api_keys(town: str) -> str:
    """API keys: SHA-256 digest of the key -> its record (name, scope, created)."""
    return f"tt:{town}:apikeys"


def api_keys_used(town: str) -> str:
    """When each API key was last used: key name -> time (written at most a minute apart)."""
    return f"tt:{town}:apikeys:used"
