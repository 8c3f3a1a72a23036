"""Plan files: a mission's tasks and their order, as TOML, checked before anything runs.

    name = "search"                 # mission settings, all optional
    goal = "Full-text search for the API"
    budget = 5.0                    # USD for the whole mission
    parallel = 2                    # at most this many of its tasks dispatched at once
    approve = true                  # a person approves (`tt approve NAME`) before it runs

    [[task]]
    name = "schema"
    text = "Design the search index schema"
    role = "worker"                 # a role (whichever agent of it is free) ...

    [[task]]
    name = "api"
    text = "Build the /search endpoint"
    agent = "alice"                 # ... or one agent, never both
    after = ["schema"]              # runs once every task named here is completed

Tasks are `[[task]]` tables with a `name` (an array keeps the file's order, which is
the order a wave's tasks are dispatched in, and lets a duplicate name be reported with
both of its lines). A task's gates (`check`, `max_fix_rounds`, `review`,
`max_review_rounds`, `approve`) map onto its `Gates` (`PlanTask.to_gates`); `Plan.gates`
lists the keys each task sets.

`check_plan(text)` is pure: it reads only the text given and returns a `Plan` or every
`Problem` it found, each with its line. `plan_from_mapping` checks the same schema
given as data (the REST and MCP body), without lines. Nothing here raises on bad input.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from tinytown.core.models import Gates

MAX_TASKS = 500
MAX_TEXT_BYTES = 1024 * 1024  # a task's text, as a message's (MAX_MESSAGE_BYTES)
MAX_BUDGET_USD = 1_000_000.0
MAX_PARALLEL = 1000
MAX_FIX_ROUNDS = 100
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
SETTINGS_KEYS = ("name", "goal", "budget", "parallel", "approve", "task")
TASK_KEYS = ("name", "text", "role", "agent", "after", "review", "approve", "check",
             "max_fix_rounds", "max_review_rounds")
GATE_KEYS = ("review", "approve", "check", "max_fix_rounds", "max_review_rounds")
MAX_REVIEW_ROUNDS = 100


@dataclass(frozen=True)
class Problem:
    """What is wrong, and where: `line` 0 when the plan came as data (no file)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class PlanTask:
    name: str
    text: str
    role: str | None = None
    agent: str | None = None
    after: tuple[str, ...] = ()
    review: str | None = None
    approve: bool = False
    check: str | None = None
    max_fix_rounds: int | None = None
    line: int = 0  # where its table starts in the file (0: not from a file)
    max_review_rounds: int | None = None

    @property
    def gates(self) -> list[str]:
        """The gate keys it sets."""
        return [k for k in GATE_KEYS if getattr(self, k) not in (None, False)]

    def to_gates(self) -> Gates | None:
        """Its gates as the task's record holds them (None: it sets none)."""
        if not self.gates:
            return None
        gates = Gates(check=self.check, review=self.review, approve=self.approve)
        if self.max_fix_rounds is not None:
            gates.max_fix_rounds = self.max_fix_rounds
        if self.max_review_rounds is not None:
            gates.max_review_rounds = self.max_review_rounds
        return gates


@dataclass
class Plan:
    name: str | None = None
    goal: str | None = None
    budget: float | None = None
    parallel: int | None = None
    tasks: list[PlanTask] = field(default_factory=list)
    approve: bool = False  # the mission waits for `tt approve` before any task runs

    def task(self, name: str) -> PlanTask:
        return next(t for t in self.tasks if t.name == name)

    def waves(self) -> list[list[str]]:
        """The topological layers, each in the plan's order: wave 1 needs nothing, each
        later one needs only tasks of the waves before it."""
        return waves({t.name: t.after for t in self.tasks})

    @property
    def gates(self) -> list[tuple[PlanTask, str]]:
        return [(t, g) for t in self.tasks for g in t.gates]


def waves(graph: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """Kahn's layers of an acyclic graph (name -> the names it comes after)."""
    left = dict(graph)
    done: set[str] = set()
    layers: list[list[str]] = []
    while left:
        layer = [n for n, after in left.items() if all(a in done or a not in graph
                                                       for a in after)]
        if not layer:  # a cycle: callers check first; never loop forever
            break
        layers.append(layer)
        done.update(layer)
        for n in layer:
            del left[n]
    return layers


# --- reading the file ------------------------------------------------------------------


def check_plan(text: str | bytes) -> Plan | list[Problem]:
    """The plan in `text` (a plan file's content), or every problem with its line."""
    plan, problems = read_plan(text)
    return sorted(problems, key=lambda p: p.line) if problems or plan is None else plan


def read_plan(text: str | bytes) -> tuple[Plan | None, list[Problem]]:
    """The plan as far as it could be read, and its problems: the town's own checks
    (`ops.mission_control`) look at a flawed plan too, so one run names every problem."""
    if isinstance(text, bytes):
        data = text
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, [Problem(data[:exc.start].count(b"\n") + 1,
                                  "the file is not UTF-8 text")]
    if "\x00" in text:
        return None, [Problem(text[:text.index("\x00")].count("\n") + 1,
                              "the file holds a NUL character: not a TOML plan")]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [_toml_problem(str(exc))]
    except RecursionError:
        return None, [Problem(1, "not valid TOML: nested too deeply")]
    return _read_mapping(doc, _Lines(text))


def _toml_problem(message: str) -> Problem:
    found = re.search(r"\(at line (\d+), column \d+\)", message)
    line = int(found.group(1)) if found else 1
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    return Problem(line, f"not valid TOML: {reason}")


class _Lines:
    """Where each key of the file is, found by a scan of its lines (tomllib gives none):
    the settings' keys, each `[[task]]` header and the keys under it."""

    _HEADER = re.compile(r"^\s*\[\[\s*task\s*\]\]\s*(#.*)?$")
    _TABLE = re.compile(r"^\s*\[")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')\s*=")

    def __init__(self, text: str) -> None:
        self.settings: dict[str, int] = {}
        self.tasks: list[dict[str, int]] = []  # per [[task]]: "" -> its header, key -> line
        section: dict[str, int] | None = self.settings
        in_string: str | None = None
        for number, line in enumerate(text.splitlines(), 1):
            if in_string is not None:  # inside a multi-line string: nothing to see here
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            if self._HEADER.match(line):
                section = {"": number}
                self.tasks.append(section)
            elif self._TABLE.match(line):
                section = None  # some other table: reported as an unknown key
            elif section is not None and (key := self._KEY.match(line)):
                section.setdefault(key.group(1).strip("\"'"), number)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_string = quote
                    break

    def setting(self, key: str) -> int:
        return self.settings.get(key, 1)

    def of_task(self, index: int, key: str | None = None) -> int:
        if index >= len(self.tasks):  # `task = [{...}]` written inline: its key's line
            return self.settings.get("task", 1)
        found = self.tasks[index]
        return found.get(key, found[""]) if key else found[""]


class _NoLines(_Lines):
    def __init__(self) -> None:
        super().__init__("")

    def setting(self, key: str) -> int:
        return 0

    def of_task(self, index: int, key: str | None = None) -> int:
        return 0


def plan_from_mapping(doc: dict[str, Any], lines: _Lines | None = None
                      ) -> Plan | list[Problem]:
    """The plan in parsed data (a TOML file's, or a request body's), or its problems."""
    plan, problems = _read_mapping(doc, lines)
    return sorted(problems, key=lambda p: p.line) if problems or plan is None else plan


def _read_mapping(doc: dict[str, Any], lines: _Lines | None = None
                  ) -> tuple[Plan | None, list[Problem]]:
    where = lines or _NoLines()
    problems: list[Problem] = []
    for key in doc:
        if key not in SETTINGS_KEYS:
            problems.append(Problem(where.setting(key), f"unknown key {key!r}; a plan has"
                                    f" {', '.join(SETTINGS_KEYS)}"))
    plan = Plan(
        name=_name(doc, "name", where.setting("name"), problems, "the mission's name"),
        goal=_text(doc, "goal", where.setting("goal"), problems),
        budget=_budget(doc, where.setting("budget"), problems),
        parallel=_count(doc, "parallel", where.setting("parallel"), problems, 1, MAX_PARALLEL),
        approve=doc.get("approve") is True,
    )
    if not isinstance(doc.get("approve", False), bool):
        problems.append(Problem(where.setting("approve"), "`approve` is true or false"))
    raw_tasks = doc.get("task", [])
    if not isinstance(raw_tasks, list):
        problems.append(Problem(where.setting("task"), "`task` is a list of [[task]] tables"))
        raw_tasks = []
    if not raw_tasks:
        problems.append(Problem(where.setting("task") or (1 if lines else 0),
                                "the plan has no [[task]]"))
    if len(raw_tasks) > MAX_TASKS:
        problems.append(Problem(where.of_task(MAX_TASKS), f"a plan has at most {MAX_TASKS}"
                                f" tasks (this one has {len(raw_tasks)})"))
        raw_tasks = raw_tasks[:MAX_TASKS]
    for index, raw in enumerate(raw_tasks):
        found = _task(raw, index, where, problems)
        if found is not None:
            plan.tasks.append(found)
    problems += _graph_problems(plan.tasks, where, raw_tasks)
    return plan, problems


def _task(raw: Any, index: int, where: _Lines, problems: list[Problem]) -> PlanTask | None:
    line = where.of_task(index)
    if not isinstance(raw, dict):
        problems.append(Problem(line, f"task {index + 1} is not a table"))
        return None

    def at(key: str) -> int:
        return where.of_task(index, key)

    for key in raw:
        if key not in TASK_KEYS:
            problems.append(Problem(at(key), f"unknown key {key!r} in a task; a task has"
                                    f" {', '.join(TASK_KEYS)}"))
    name = _name(raw, "name", at("name"), problems, "a task's name")
    label = f"task {name!r}" if name else f"task {index + 1}"
    if name is None and "name" not in raw:
        problems.append(Problem(line, f"{label} has no name"))
    text = _text(raw, "text", at("text"), problems)
    if text is None and "text" not in raw:
        problems.append(Problem(line, f"{label} has no text"))
    role = _name(raw, "role", at("role"), problems, "a role")
    agent = _name(raw, "agent", at("agent"), problems, "an agent's name")
    if "role" in raw and "agent" in raw:
        problems.append(Problem(at("agent"), f"{label} has both a role and an agent;"
                                " give one"))
    elif "role" not in raw and "agent" not in raw:
        problems.append(Problem(line, f"{label} has neither a role nor an agent; give one"))
    after = _after(raw, at("after"), problems)
    review = _name(raw, "review", at("review"), problems, "a review role")
    approve = raw.get("approve", False)
    if not isinstance(approve, bool):
        problems.append(Problem(at("approve"), "`approve` is true or false"))
    check = _text(raw, "check", at("check"), problems)
    fixes = _count(raw, "max_fix_rounds", at("max_fix_rounds"), problems, 0, MAX_FIX_ROUNDS)
    reviews = _count(raw, "max_review_rounds", at("max_review_rounds"), problems, 1,
                     MAX_REVIEW_ROUNDS)
    if reviews is not None and review is None and "review" not in raw:
        problems.append(Problem(at("max_review_rounds"), "`max_review_rounds` goes with"
                                " `review`"))
    if name is None or text is None:
        return None  # nothing to name it by: its graph problems cannot be told
    return PlanTask(name, text, role, agent, after, review, approve is True, check, fixes, line,
                    reviews)


def _name(doc: dict[str, Any], key: str, line: int, problems: list[Problem], what: str
          ) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not NAME_RE.match(value):
        shown = repr(value) if isinstance(value, str) else f"a {_kind(value)}"
        problems.append(Problem(line, f"`{key}`: {what} is {NAME_RULE} (not {shown[:80]})"))
        return None
    return value


def _text(doc: dict[str, Any], key: str, line: int, problems: list[Problem]) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(Problem(line, f"`{key}` is a string (not a {_kind(value)})"))
        return None
    if not value.strip():
        problems.append(Problem(line, f"`{key}` is empty"))
        return None
    if len(value.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        problems.append(Problem(line, f"`{key}` is over {MAX_TEXT_BYTES} bytes (1 MiB)"))
        return None
    return value


def _budget(doc: dict[str, Any], line: int, problems: list[Problem]) -> float | None:
    value = doc.get("budget")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(Problem(line, f"`budget` is a number of USD (not a {_kind(value)})"))
        return None
    if not math.isfinite(value) or not 0 < value <= MAX_BUDGET_USD:
        problems.append(Problem(line, "`budget` is a number of USD above 0 and at most"
                                f" {MAX_BUDGET_USD:,.0f} (not {str(value)[:40]})"))
        return None
    return float(value)


def _count(doc: dict[str, Any], key: str, line: int, problems: list[Problem], low: int,
           high: int) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = str(value)[:40] if isinstance(value, int | float) else f"a {_kind(value)}"
        problems.append(Problem(line, f"`{key}` is a whole number from {low} to {high}"
                                f" (not {shown})"))
        return None
    return value


def _after(doc: dict[str, Any], line: int, problems: list[Problem]) -> tuple[str, ...]:
    value = doc.get("after", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(Problem(line, "`after` is a list of task names, e.g."
                                ' after = ["schema", "api"]'))
        return ()
    return tuple(dict.fromkeys(value))  # a name given twice counts once


def _kind(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list",
            dict: "table"}.get(type(value), type(value).__name__)


def _graph_problems(tasks: list[PlanTask], where: _Lines, raw: list[Any]) -> list[Problem]:
    """Duplicate names, unknown `after` names (of every task, even one with problems of
    its own), and cycles (each named once, when nothing else is wrong)."""
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for index, r in enumerate(raw):
        name = r.get("name") if isinstance(r, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            line = where.of_task(index)
            problems.append(Problem(line, f"duplicate task name {name!r} (first at line"
                                    f" {first[name]})" if line else
                                    f"duplicate task name {name!r}"))
        else:
            first[name] = where.of_task(index)
    for index, r in enumerate(raw):
        name = r.get("name") if isinstance(r, dict) else None
        after = r.get("after") if isinstance(r, dict) else None
        if not isinstance(name, str) or not isinstance(after, list):
            continue
        line = where.of_task(index, "after")
        for other in dict.fromkeys(a for a in after if isinstance(a, str)):
            if other == name:
                problems.append(Problem(line, f"task {name!r} comes after itself"))
            elif other not in first:
                problems.append(Problem(line, f"task {name!r} comes after {other!r}, which"
                                        " is no task of this plan"))
    if not problems:
        lines = {t.name: t for t in tasks}
        for cycle in find_cycles({t.name: t.after for t in tasks}):
            problems.append(Problem(_after_line(where, lines[cycle[0]]),
                                    "cycle in `after`: " + " -> ".join([*cycle, cycle[0]])))
    return problems


def _after_line(where: _Lines, t: PlanTask) -> int:
    if not t.line:
        return 0
    for index, found in enumerate(where.tasks):
        if found[""] == t.line:
            return where.of_task(index, "after")
    return t.line


def find_cycles(graph: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """Each cycle of the graph once, as the names along it (a depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(start: str) -> None:
        stack = [(start, iter(graph.get(start, ())))]
        state[start] = 1
        path.append(start)
        while stack:
            node, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif nxt in graph and state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):])
            elif nxt in graph and nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(graph[nxt])))

    for name in graph:
        if name not in state:
            visit(name)
    return cycles
