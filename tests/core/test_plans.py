"""Plan files (tinytown/core/plans.py): every kind of problem is reported with its line,
never raised; a good plan gives its waves."""

from __future__ import annotations

import pytest

from tinytown.core.plans import Plan, Problem, check_plan, plan_from_mapping

GOOD = '''\
name = "search"
goal = "Full-text search"
budget = 5
parallel = 2

[[task]]
name = "schema"
text = "Design the schema"
role = "worker"

[[task]]
name = "index"
text = """Build the index:
[[task]]   <- inside a string, not a table
"""
agent = "alice"
after = ["schema"]

[[task]]
name = "api"
text = "The endpoint"
role = "worker"
after = ["schema"]

[[task]]
name = "docs"
text = "Document it"
agent = "bob"
after = ["index", "api", "index"]
'''


def test_a_good_plan_gives_its_settings_and_waves() -> None:
    plan = check_plan(GOOD)
    assert isinstance(plan, Plan)
    assert (plan.name, plan.goal, plan.budget, plan.parallel) == ("search", "Full-text search",
                                                                    5.0, 2)
    assert plan.waves() == [["schema"], ["index", "api"], ["docs"]]
    assert plan.task("docs").after == ("index", "api")  # a name given twice counts once
    assert plan.task("index").line == 11 and plan.task("index").agent == "alice"
    assert plan.gates == []


def _task(body: str, name: str = "a") -> str:
    return f'[[task]]\nname = "{name}"\n{body}\n'


OK = 'text = "x"\nrole = "worker"'

CASES = [  # (plan text, [(line, a piece of the problem)])
    ("x = [1,", [(1, "not valid TOML")]),
    ('name = "m"\nname = "n"\n' + _task(OK), [(2, "not valid TOML")]),
    ("", [(1, "no [[task]]")]),
    ('colour = "red"\n' + _task(OK), [(1, "unknown key 'colour'")]),
    (_task(OK + '\nweight = 3'), [(5, "unknown key 'weight' in a task")]),
    (_task('role = "worker"'), [(1, "task 'a' has no text")]),
    (_task('text = "   "\nrole = "worker"'), [(3, "`text` is empty")]),
    (_task('text = 5\nrole = "worker"'), [(3, "`text` is a string (not a number)")]),
    ('[[task]]\ntext = "x"\nrole = "worker"\n', [(1, "task 1 has no name")]),
    (_task('text = "x"'), [(1, "neither a role nor an agent")]),
    (_task('text = "x"\nrole = "worker"\nagent = "alice"'), [(5, "both a role and an agent")]),
    (_task('text = "x"\nrole = "no spaces"'), [(4, "`role`: a role is")]),
    (_task('text = "x"\nagent = ["alice"]'), [(4, "(not a list)")]),
    (_task(OK + '\nafter = "b"'), [(5, "`after` is a list of task names")]),
    (_task(OK + '\nafter = [1]'), [(5, "`after` is a list of task names")]),
    (_task(OK + '\nafter = ["zz"]'), [(5, "comes after 'zz', which is no task")]),
    (_task(OK + '\nafter = ["a"]'), [(5, "task 'a' comes after itself")]),
    (_task(OK) + _task(OK), [(5, "duplicate task name 'a' (first at line 1)")]),
    (_task(OK + '\nafter = ["b"]') + _task(OK + '\nafter = ["c"]', "b")
     + _task(OK + '\nafter = ["a"]', "c"), [(5, "cycle in `after`: a -> b -> c -> a")]),
    ('budget = nan\n' + _task(OK), [(1, "`budget` is a number of USD above 0")]),
    ('budget = inf\n' + _task(OK), [(1, "`budget` is a number of USD above 0")]),
    ('budget = -1\n' + _task(OK), [(1, "`budget` is a number of USD above 0")]),
    ('budget = 1e300\n' + _task(OK), [(1, "at most 1,000,000")]),
    ('budget = "5"\n' + _task(OK), [(1, "(not a string)")]),
    ('parallel = 0\n' + _task(OK), [(1, "`parallel` is a whole number from 1 to 1000")]),
    ('parallel = 99999999999999999999999999999\n' + _task(OK), [(1, "`parallel` is a whole")]),
    ('parallel = 2.5\n' + _task(OK), [(1, "`parallel` is a whole")]),
    ('parallel = true\n' + _task(OK), [(1, "`parallel` is a whole")]),
    (_task(OK + '\nmax_fix_rounds = -1'), [(5, "`max_fix_rounds` is a whole number")]),
    (_task(OK + '\napprove = "yes"'), [(5, "`approve` is true or false")]),
    ('task = 3\n', [(1, "`task` is a list of [[task]] tables"), (1, "no [[task]]")]),
    ('[meta]\nx = 1\n' + _task(OK), [(1, "unknown key 'meta'")]),
]


@pytest.mark.parametrize(("text", "wanted"), CASES, ids=[c[1][0][1][:30] for c in CASES])
def test_each_problem_is_reported_with_its_line(text: str, wanted: list[tuple[int, str]]
                                                ) -> None:
    found = check_plan(text)
    assert isinstance(found, list), found
    assert len(found) == len(wanted), found
    for problem, (line, piece) in zip(found, wanted, strict=True):
        assert piece in problem.message, found
        assert problem.line == line, found


def test_every_problem_at_once() -> None:
    text = ('budget = 0\n' + _task('role = "worker"') + _task(OK + '\nafter = ["zz"]', "b")
            + _task(OK, "b"))
    found = check_plan(text)
    assert isinstance(found, list)
    assert [p.line for p in found] == sorted(p.line for p in found)
    assert {p.line for p in found} == {1, 2, 9, 10}


def test_bytes_that_are_not_utf8_or_nul_are_problems() -> None:
    assert check_plan(b'name = "m"\n\xff\xfe = 1\n') == [Problem(2, "the file is not UTF-8"
                                                                 " text")]
    found = check_plan('name = "m"\n\x00')
    assert isinstance(found, list) and found[0].line == 2
    assert isinstance(check_plan(GOOD.encode()), Plan)


def test_deep_nesting_and_huge_input_do_not_raise() -> None:
    assert isinstance(check_plan("x = " + "[" * 5000 + "]" * 5000), list)
    many = "".join(_task(OK, f"t{i}") for i in range(501))
    found = check_plan(many)
    assert isinstance(found, list) and "at most 500 tasks" in found[0].message


def test_gates_are_parsed_and_listed() -> None:
    plan = check_plan(_task(OK + '\nreview = "reviewer"\napprove = true\ncheck = "pytest -q"'
                            '\nmax_fix_rounds = 3'))
    assert isinstance(plan, Plan)
    task = plan.task("a")
    assert (task.review, task.approve, task.check, task.max_fix_rounds) == (
        "reviewer", True, "pytest -q", 3)
    assert [g for _, g in plan.gates] == ["review", "approve", "check", "max_fix_rounds"]


def test_the_same_schema_as_data_has_no_lines() -> None:
    plan = plan_from_mapping({"task": [{"name": "a", "text": "x", "role": "worker"},
                                       {"name": "b", "text": "y", "agent": "bob",
                                        "after": ["a"]}]})
    assert isinstance(plan, Plan) and plan.waves() == [["a"], ["b"]]
    found = plan_from_mapping({"task": [{"name": "a", "text": "x", "role": "worker",
                                         "after": ["a"]}]})
    assert found == [Problem(0, "task 'a' comes after itself")]
    assert str(found[0]) == "task 'a' comes after itself"
