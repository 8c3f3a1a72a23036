"""`tt plan check` and `tt mission ...` as a user meets them: waves or every problem as
FILE:LINE: problem, exit codes, one-line refusals that write nothing."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import TownFixture, one_line_error, tt

PLAN = """\
goal = "two steps"

[[task]]
name = "a"
text = "first"
agent = "bob"

[[task]]
name = "b"
text = "second"
role = "worker"
after = ["a"]

[[task]]
name = "c"
text = "third"
agent = "bob"
after = ["a"]
"""


def _write(town: TownFixture, text: str | bytes, name: str = "plan.toml") -> str:
    path = town.root / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return name


def test_plan_check_prints_the_waves(town: TownFixture) -> None:
    town.tt("spawn", "bob", "--no-start")
    r = town.tt("plan", "check", _write(town, PLAN))
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["wave 1: a", "wave 2: b, c"]


def test_plan_check_against_the_town(town: TownFixture) -> None:
    plan = PLAN.replace('role = "worker"', 'role = "nobody"').replace(
        'text = "third"', 'text = "third"\napprove = true')
    r = town.tt("plan", "check", _write(town, plan))
    assert r.code == 1 and r.out == ""
    no_bob = f"no agent 'bob' in town {town.name!r} (try `tt list` for names and ids)"
    lines = r.err.splitlines()
    assert lines[0] == f"plan.toml:3: task 'a': {no_bob}"
    assert lines[1].startswith("plan.toml:8: task 'b': unknown role 'nobody'; known roles:")
    assert lines[2:] == [f"plan.toml:14: task 'c': {no_bob}"]  # its gate runs: no problem
    r = town.tt("plan", "check", "--no-town", "plan.toml")  # the file alone: no problem
    assert r.code == 0 and r.out.splitlines() == ["wave 1: a", "wave 2: b, c"]


def test_plan_check_outside_a_town_checks_the_file_alone(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(PLAN)
    r = tt("plan", "check", "p.toml", cwd=tmp_path)
    assert r.code == 0 and r.out.startswith("wave 1: a")
    assert "no town here" in r.err


def test_plan_check_reports_every_problem_with_its_line(town: TownFixture) -> None:
    bad = PLAN.replace('after = ["a"]\n', 'after = ["zz"]\n', 1) + '[[task]]\nname = "a"\n'
    r = town.tt("plan", "check", "--no-town", _write(town, bad))
    assert r.code == 1
    lines = r.err.splitlines()
    assert "plan.toml:12: task 'b' comes after 'zz', which is no task of this plan" in lines
    assert "plan.toml:19: duplicate task name 'a' (first at line 3)" in lines
    assert "plan.toml:19: task 'a' has no text" in lines
    assert all(line.startswith("plan.toml:") for line in lines)
    r = town.tt("plan", "check", _write(town, b'goal = "x"\n\xff\n', "bin.toml"))
    assert r.code == 1 and r.err == "bin.toml:2: the file is not UTF-8 text\n"
    r = town.tt("plan", "check", "missing.toml")
    assert r.code == 2 and "cannot read plan missing.toml" in one_line_error(r)


def test_start_refusals_write_nothing(town: TownFixture) -> None:
    town.tt("spawn", "bob", "--no-start")
    before = town.town_keys()
    r = town.tt("mission", "start", "m")  # no plan, no goal for a conductor
    assert r.code == 2 and "give the mission's GOAL" in one_line_error(r)
    r = town.tt("mission", "start", "m", "do everything", "--conductor", "carol")
    assert r.code == 1 and "carol" in one_line_error(r)
    r = town.tt("mission", "start", "m", "x", "--conductor", "bob", "--conductor-cli", "claude")
    assert r.code == 2 and "not both" in one_line_error(r)
    r = town.tt("mission", "start", "m", "--plan", _write(town, PLAN), "--parallel", "0")
    assert r.code == 2 and "--parallel is a whole number" in one_line_error(r)
    r = town.tt("mission", "start", "m", "--plan", "plan.toml", "--budget", "nan")
    assert r.code == 2 and "budget" in one_line_error(r)
    r = town.tt("mission", "start", "bad name", "--plan", "plan.toml")
    assert r.code == 2 and "invalid mission name" in one_line_error(r)
    gated = _write(town, PLAN.replace('text = "first"', 'text = "first"\nreview = "nobody"'),
                   "gated.toml")
    r = town.tt("mission", "start", "m", "--plan", gated)
    assert r.code == 1 and r.err.startswith("gated.toml:3: task 'a': unknown role 'nobody'")
    r = town.tt("mission", "start", "m", "--plan", _write(town, "[[task]]\n", "empty.toml"))
    assert r.code == 1 and r.err.startswith("empty.toml:1: task 1 has no name")
    assert town.town_keys() == before
    for args in (("status", "nope"), ("cancel", "nope"), ("add-task", "nope", "x", "--agent",
                                                           "bob")):
        r = town.tt("mission", *args)
        assert r.code == 1 and "no mission named 'nope'" in one_line_error(r)
    r = town.tt("mission", "add-task", "nope", "x")
    assert r.code == 2 and "--agent or --role" in one_line_error(r)


def test_start_status_and_list(town: TownFixture) -> None:
    town.tt("spawn", "bob", "--no-start")
    r = town.tt("mission", "start", "m", "--plan", _write(town, PLAN), "--parallel", "1",
                "--budget", "2.5")
    assert r.code == 0, r.err
    assert r.out.strip() == "mission m running: 3 tasks (`tt mission status m`)"
    r = town.tt("mission", "status", "m")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "mission m: running; spent $0.0000 of $2.5"
    assert lines[1] == "goal: two steps"
    rows = [line.split() for line in lines[3:]]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("1", "a", "assigned"), ("2", "b", "blocked"), ("2", "c", "blocked")]
    r = town.tt("mission", "list")
    assert r.code == 0 and r.out.splitlines()[1].split()[:3] == ["m", "running", "3"]
    r = town.tt("mission", "budget", "m", "lots")
    assert r.code == 2 and "not a number of USD" in one_line_error(r)
    r = town.tt("mission", "fail", "m", "changed our minds")
    assert r.code == 0 and r.out.strip() == "mission m failed"
    assert town.town.mission("m")["reason"] == "changed our minds"


def test_help_lists_missions_as_a_topic() -> None:
    r = tt("--help")
    assert r.code == 0
    topic = r.out.split("\nMissions:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in topic] == [
        "mission", "plan", "approve", "reject", "review"]


def test_status_watch_ends_with_the_mission(town: TownFixture) -> None:
    town.tt("spawn", "bob", "--no-start")
    assert town.tt("mission", "start", "w", "--plan", _write(town, PLAN)).code == 0
    assert town.tt("mission", "cancel", "w").code == 0
    r = town.tt("mission", "status", "w", "--watch", timeout=20)
    assert r.code == 0 and r.out.startswith("mission w: cancelled")


def test_start_names_the_town_problems_by_file_and_line(town: TownFixture) -> None:
    r = town.tt("mission", "start", "m", "--plan", _write(town, PLAN))
    assert r.code == 1
    assert r.err.splitlines()[0].startswith("plan.toml:3: task 'a': no agent 'bob'")
    assert town.town.missions() == []


def test_plan_check_names_file_and_town_problems_in_one_run(town: TownFixture) -> None:
    """A task with a flawed key still counts for the graph and the town's checks: one
    run names the unknown key, the cycle it is part of and the agent nobody spawned."""
    plan = ('[[task]]\nname = "a"\ntext = "t"\nagent = "zed"\nafter = ["b"]\n'
            '[[task]]\nname = "b"\ntext = "t"\nrole = "worker"\nafter = ["a"]\nbudget = 1\n')
    r = town.tt("plan", "check", _write(town, plan))
    assert r.code == 1 and r.out == ""
    lines = r.err.splitlines()
    assert lines[0].startswith("plan.toml:1: task 'a': no agent 'zed'")
    assert lines[1] == "plan.toml:5: cycle in `after`: a -> b -> a"
    assert lines[2].startswith("plan.toml:11: unknown key 'budget' in a task")
    assert len(lines) == 3
