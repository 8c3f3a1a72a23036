"""A dependent task's prompt carries what its dependencies came to: their results'
tails (each bounded, all together bounded) and their branches."""

from __future__ import annotations

from tinytown.core.models import Agent, Gates, Message, MessageBody, Task, TaskState
from tinytown.worker.prompt import (
    DEPENDENCIES_CHARS,
    DEPENDENCY_CHARS,
    RoundInput,
    build_prompt,
)


def test_dependencies_results_and_branches_are_bounded() -> None:
    agent = Agent("w")
    deps = [Task(f"part {i}\nmore text", state=TaskState.COMPLETED,
                 result=f"start-{i}" + "x" * 9000 + f"end-{i}", branch=f"tt/a{i}",
                 commits=["0123456789abcdef"]) for i in range(6)]
    task = Task("join the parts", after=[d.id for d in deps])
    r = RoundInput(agent=agent, town="t", task=task, dependencies=deps,
                   actionable=Message(sender=agent.id, to=agent.id,
                                      body=MessageBody.task_assign(task.id)))
    prompt = build_prompt(r)
    assert "## The tasks this one waited for" in prompt
    assert f"### Task {deps[0].id} (completed, by " in prompt and ": part 0\n" in prompt
    assert "Branch: tt/a0 (1 commit(s), last commit 0123456789ab)" in prompt
    assert "end-0" in prompt and "start-0" not in prompt  # the tail, bounded
    assert prompt.count("x" * 100) and len(prompt) < DEPENDENCIES_CHARS + 3000
    assert max(len(line) for line in prompt.splitlines()) <= DEPENDENCY_CHARS + 5
    assert f"(2 more: `tt task show ID` for {deps[4].id} {deps[5].id})" in prompt
    assert prompt.index("join the parts") < prompt.index("## The tasks this one")


def test_no_dependencies_no_section() -> None:
    agent = Agent("w")
    task = Task("alone")
    r = RoundInput(agent=agent, town="t", task=task,
                   actionable=Message(sender=agent.id, to=agent.id,
                                      body=MessageBody.task_assign(task.id)))
    assert "waited for" not in build_prompt(r)


def test_a_gated_tasks_prompt_names_its_gates_and_its_follow_up() -> None:
    """With the merged gates: dependencies, the follow-up (here a review's requested
    changes) and the "when done" line naming check, review and approve, in that order."""
    agent = Agent("w")
    dep = Task("the base", state=TaskState.COMPLETED, result="base done")
    task = Task("build it", after=[dep.id],
                gates=Gates(check="make test", review="reviewer", approve=True),
                follow_up="Review round 1: review requested changes: add a test")
    r = RoundInput(agent=agent, town="t", task=task, dependencies=[dep],
                   actionable=Message(sender=agent.id, to=agent.id,
                                      body=MessageBody.task_assign(task.id)))
    prompt = build_prompt(r)
    assert "base done" in prompt
    assert "## Follow-up: this task is not done yet" in prompt
    assert "review requested changes: add a test" in prompt
    assert ("then the check `make test` runs in your worktree and an agent of role reviewer"
            " reviews your branch and a person approves it before it is completed") in prompt
