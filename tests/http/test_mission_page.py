"""The dashboard's views of missions and the task graph, in a real headless Chromium
against a real town and `tt serve` (fixtures of tests/http/test_dashboard.py: agent
`alice` with a real worker, `quiet` recorded without one, so its tasks wait until the
test completes them): the missions list on the town's page, a mission's page with its
graph drawn by waves in SVG and kept current over the event stream, the answers it
offers by scope, and a task's dependencies, dependents, mission and gates."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import wait_until
from tests.http.test_dashboard import (  # noqa: F401 (fixtures)
    LIVE_SECS,
    Dash,
    browser,
    dash,
    log_in,
    shot,
    text,
)
from tests.support.browser import Chromium, Page
from tinytown.core.models import MissionState, TaskState

# a fan-out and a fan-in: waves [a], [b, c], [d]; all on `quiet`, which runs nothing
PLAN = {"name": "web", "goal": "a small site", "budget": 5.0, "parallel": 2, "task": [
    {"name": "a", "text": "lay out the pages", "agent": "quiet"},
    {"name": "b", "text": "write the styles", "agent": "quiet", "after": ["a"]},
    {"name": "c", "text": "write the scripts", "agent": "quiet", "after": ["a"]},
    {"name": "d", "text": "put it together", "agent": "quiet", "after": ["b", "c"]},
]}


def start_mission(served: Dash) -> dict[str, str]:
    """The plan's mission, started over the API; its task ids by name."""
    with served.client(headers={"Authorization": f"Bearer {served.keys['write']}"}) as api:
        r = api.post("/v1/missions", json=PLAN)
        assert r.status_code == 201, r.text
        return {t["name"]: t["id"] for w in r.json()["waves"] for t in w}


def box(name: str, attr: str = "state") -> str:
    """A JS expression: a task's box's data attribute on the mission page ('' if none)."""
    return (f"((document.querySelector('svg.graph a.box[data-task=\"{name}\"]') || "
            f"{{dataset: {{}}}}).dataset.{attr} || '')")


def boxes(page: Page) -> Any:
    return page.eval("[...document.querySelectorAll('svg.graph a.box')].map(b => [b.dataset.task,"
                     " b.dataset.state, b.querySelector('rect').getAttribute('x'),"
                     " [...b.querySelectorAll('text')].map(t => t.textContent)])")


@pytest.mark.timeout(300)
def test_the_mission_page_draws_waves_and_follows_them_live(  # noqa: F811
    dash: Dash, browser: Chromium,  # noqa: F811
) -> None:
    town, base = dash.town, dash.server.base
    ids = start_mission(dash)
    page = browser.new_page()
    log_in(page, base, dash.keys["write"])

    # the town's page lists it: progress and cost against its budget, linked to its page
    row = "tr[data-mission=web]"
    page.wait_for(f"!!document.querySelector('{row} td.progress')", 15, "the missions list")
    assert page.eval(text(f"{row} td.progress")) == "0/4 done"
    assert page.eval(text(f"{row} td.cost")) == "$0.0000 of $5.0000"
    assert page.eval(text(f"{row} td.state")) == "running"
    shot(page, "missions-list")
    page.click(f"{row} a[href=\"/missions/web\"]")
    page.wait_for("location.pathname === '/missions/web'", 10, "the mission's page")

    page.wait_for("document.querySelectorAll('svg.graph a.box').length === 4", 15, "the graph")
    drawn = {name: (state, float(x), lines) for name, state, x, lines in boxes(page)}
    assert {n: s for n, (s, _, _) in drawn.items()} == {
        "a": "assigned", "b": "blocked", "c": "blocked", "d": "blocked"}
    xa, xb, xc, xd = (drawn[n][1] for n in "abcd")
    assert xa < xb == xc < xd  # a column per wave
    assert drawn["a"][2] == ["a", "assigned", "quiet \u00b7 -"]  # name, state, agent and cost
    edges = page.eval("[...document.querySelectorAll('svg.graph path.edge')]"
                      ".map(e => e.dataset.from + '>' + e.dataset.to).sort()")
    assert edges == ["a>b", "a>c", "b>d", "c>d"]
    assert page.eval("[...document.querySelectorAll('svg.graph text.wave')]"
                     ".map(t => t.textContent)") == ["wave 1", "wave 2", "wave 3"]
    assert page.eval(text("#goal")) == "a small site"
    assert page.eval(text("[data-field=cost]")) == "$0.0000 of $5.0000 budget"
    assert page.eval(text("[data-field=parallel]")) == "at most 2 tasks at once"
    assert page.eval(text("#state")) == "running"
    assert page.eval(text("#progress")) == "(0/4 done)"
    assert page.eval("document.querySelector('svg.graph a.box[data-task=\"a\"]')"
                     ".getAttribute('href')") == f"/tasks/{ids['a']}"
    page.wait_for(f"{text('#live')} === 'live'", 15, "the event stream")
    shot(page, "mission-running")

    # a task completed elsewhere: its box changes, and its dependents are released, live
    page.eval("window.kept = 'the same document'")
    town.town.complete_task(ids["a"], "laid out")
    page.wait_for(f"{box('a')} === 'completed' && {box('b')} === 'assigned'"
                  f" && {box('c')} === 'assigned'", LIVE_SECS, "a completed, live")
    assert page.eval(text("#progress")) == "(1/4 done)"
    assert page.eval("window.kept") == "the same document"
    assert page.eval("[...document.querySelectorAll('svg.graph a.box')]"
                     ".map(b => getComputedStyle(b.querySelector('rect')).fill)"
                     ".filter((f, i, all) => all.indexOf(f) === i).length") >= 3  # by state
    shot(page, "mission-a-completed")

    # a task added to it elsewhere (an event about the mission alone) shows at once
    with dash.client(headers={"Authorization": f"Bearer {dash.keys['write']}"}) as api:
        r = api.post("/v1/missions/web/tasks", json={"text": "ship it", "agent": "quiet",
                                                     "after": ["d"], "name": "e"})
        assert r.status_code == 201, r.text
    page.wait_for(f"{box('e')} === 'blocked'", 5, "the added task, live (not the 10 s poll)")
    assert page.eval("[...document.querySelectorAll('svg.graph path.edge')]"
                     ".some(e => e.dataset.from === 'd' && e.dataset.to === 'e')")

    # a write key may cancel it (after a confirmation); the boxes follow
    page.click("#mission-actions button[data-action=cancel]")
    wait_until(lambda: town.town.mission("web")["state"] == MissionState.CANCELLED.value, 15,
               "the mission cancelled")
    assert browser.dialogs and "cancel mission web" in browser.dialogs[-1]
    page.wait_for(f"{text('#state')} === 'cancelled' && {box('e')} === 'cancelled'",
                  LIVE_SECS, "the mission cancelled, live")
    assert page.eval(box("a")) == "completed"
    assert page.eval("document.querySelectorAll('#mission-actions button').length") == 0
    page.goto(base + "/")
    page.wait_for(f"{text('tr[data-mission=web] td.state')} === 'cancelled'", 15, "the list")
    assert page.eval(text("tr[data-mission=web] td.progress")) == "1/5 done"


@pytest.mark.timeout(300)
def test_answers_are_offered_by_state_and_scope(  # noqa: F811
    dash: Dash, browser: Chromium,  # noqa: F811
) -> None:
    """A read key sees no buttons; a write key gets approve/reject for a task awaiting
    approval and a text box for one awaiting input, which post to the API's routes."""
    base = dash.server.base
    ids = start_mission(dash)
    reader = browser.new_page()
    log_in(reader, base, dash.keys["read"], "/missions/web")
    reader.wait_for("document.querySelectorAll('svg.graph a.box').length === 4", 15, "the graph")
    assert reader.eval("document.querySelectorAll('main button, main textarea').length") == 0
    assert reader.eval("document.querySelector('#mission-actions').hidden")
    # the builders give a read key nothing, whatever the state
    assert reader.eval("ttActions.forTask({id: 'x', state: 'awaiting_approval'}, 'x',"
                       " () => null).length + ttActions.forMission({name: 'web', state:"
                       " 'awaiting_approval'}, () => null).length") == 0
    shot(reader, "mission-read-key")

    writer = browser.new_page()
    log_in(writer, base, dash.keys["write"], "/missions/web")
    writer.wait_for("!!document.querySelector('#mission-actions button[data-action=cancel]')",
                    15, "the cancel button")
    # no task waits for a person: nothing to approve or answer, the section is hidden
    assert writer.eval("document.querySelector('#waiting-section').hidden")
    assert writer.eval("document.querySelectorAll('main [data-action=approve]').length") == 0
    offered = writer.eval("""(() => {
        const approve = ttActions.forTask({id: 'x', state: 'awaiting_approval'}, 'x', () => null);
        const reply = ttActions.forTask({id: 'x', state: 'awaiting_input'}, 'x', () => null);
        const none = ttActions.forTask({id: 'x', state: 'running'}, 'x', () => null);
        const mission = ttActions.forMission({name: 'web', state: 'awaiting_approval'},
                                             () => null);
        const actions = (nodes) => nodes.flatMap(n => [...n.querySelectorAll('[data-action]'),
            ...(n.dataset.action ? [n] : [])]).map(b => b.dataset.action);
        return [actions(approve), actions(reply), reply[0].querySelectorAll('textarea').length,
                none.length, actions(mission)];
    })()""")
    assert offered == [["approve", "reject"], ["reply"], 1, 0, ["approve", "reject", "cancel"]]
    # each button posts to its route: the page's requests are watched (and still made)
    writer.eval(f"""(() => {{
        window.posted = [];
        const fetched = window.fetch;
        window.fetch = (url, init) => {{
            if (init && init.method === 'POST') window.posted.push([url, init.body]);
            return fetched(url, init);
        }};
        const node = document.createElement('div');
        node.id = 'probe';
        node.append(...ttActions.forTask({{id: '{ids['b']}', state: 'awaiting_approval'}}, 'b',
                                         () => null),
                    ...ttActions.forTask({{id: '{ids['c']}', state: 'awaiting_input'}}, 'c',
                                         () => null));
        document.querySelector('main').prepend(node);
    }})()""")
    writer.type("#probe input.note", "looks right")
    writer.click("#probe button[data-action=approve]")
    writer.wait_for("window.posted.length === 1", 10, "the approval posted")
    # the approval's answer first (its button is on again), so that its notice cannot
    # come after, and hide, the refusal's
    writer.wait_for("!document.querySelector('#probe button[data-action=approve]').disabled",
                    10, "the approval's answer")
    writer.click("#probe button[data-action=reply]")  # an empty answer is not sent
    writer.wait_for(f"{text('#notice')} === 'write an answer first'", 10, "the refusal")
    writer.type("#probe textarea", "use plain CSS")
    writer.click("#probe button[data-action=reply]")
    writer.wait_for("window.posted.length === 2", 10, "the reply posted")
    assert writer.eval("window.posted") == [
        [f"/v1/tasks/{ids['b']}/approve", '{"note":"looks right"}'],
        [f"/v1/tasks/{ids['c']}/reply", '{"answer":"use plain CSS"}']]


@pytest.mark.timeout(300)
def test_the_task_page_shows_dependencies_dependents_and_gates(  # noqa: F811
    dash: Dash, browser: Chromium,  # noqa: F811
) -> None:
    town, base = dash.town, dash.server.base
    ids = start_mission(dash)
    gates = {"check": "pytest -q tests/test_x.py", "max_fix_rounds": 2, "approve": True}

    def gated(task: Any) -> None:  # as a plan's gates are stored (the wire field `gates`)
        task.extra["gates"] = gates
    town.town.store.update_task(ids["b"], gated)
    town.town.complete_task(ids["a"], "laid out")
    town.town.fail_task(ids["c"], "no scripts today")

    with httpx.Client(base_url=base, timeout=30, headers={
            "Authorization": f"Bearer {dash.keys['read']}"}) as api:
        links = api.get(f"/v1/tasks/{ids['d'][:8]}/links").json()
        assert [t["id"] for t in links["dependencies"]] == [ids["b"], ids["c"]]
        assert [t["state"] for t in links["dependencies"]] == ["assigned", "failed"]
        assert links["dependents"] == [] and links["missing"] == []
        links = api.get(f"/v1/tasks/{ids['a']}/links").json()
        assert sorted(t["id"] for t in links["dependents"]) == sorted([ids["b"], ids["c"]])
        assert api.get("/v1/tasks/00000000/links").status_code == 404
        samples = {(m.name, m.labels.get("state")): m.value for family in
                   text_string_to_metric_families(api.get("/metrics").text)
                   for m in family.samples}
    assert samples[("tinytown_tasks", "blocked")] == 1  # d
    assert all(("tinytown_tasks", s.value) in samples for s in TaskState)
    assert all(("tinytown_missions", s.value) in samples for s in MissionState)

    page = browser.new_page()
    log_in(page, base, dash.keys["read"], f"/tasks/{ids['d']}")
    page.wait_for("document.querySelectorAll('#dependencies tbody tr[data-task]').length === 2",
                  15, "d's dependencies")
    assert page.eval("[...document.querySelectorAll('#dependencies tbody tr')]"
                     ".map(r => r.dataset.state)") == ["assigned", "failed"]
    assert page.eval(f"!!document.querySelector('#dependencies a[href=\"/tasks/{ids['c']}\"]')")
    assert page.eval(text("#dependents tbody")) == "none: no task waits for it"
    assert page.eval(text("[data-field=mission]")) == "web"
    assert page.eval("document.querySelector('[data-field=mission] a').getAttribute('href')") \
        == "/missions/web"
    reason = page.eval(text("[data-field=blocked_reason]"))
    assert reason == town.town.task(ids["d"]).blocked_reason and "c did not complete" in reason
    assert page.eval(text("[data-field=gates]")) == "none"
    shot(page, "task-dependencies")

    page.goto(base + f"/tasks/{ids['b']}")
    page.wait_for("document.querySelectorAll('#dependents tbody tr[data-task]').length === 1",
                  15, "b's dependent")
    assert page.eval(f"!!document.querySelector('#dependents a[href=\"/tasks/{ids['d']}\"]')")
    assert page.eval("[...document.querySelectorAll('#dependencies tbody tr')]"
                     ".map(r => r.dataset.state)") == ["completed"]
    assert page.eval(text("[data-gate=check]")) == \
        "check pytest -q tests/test_x.py (up to 2 fix rounds)"
    assert page.eval(text("[data-gate=approve]")) == "a person approves"
    assert page.eval("document.querySelector('[data-gate=review]')") is None
    shot(page, "task-gates")
    # its dependency failing elsewhere shows live: d's page follows c
    page.goto(base + f"/tasks/{ids['d']}")
    page.wait_for(f"{text('#dependencies tbody')} !== ''", 15, "d's page")
    page.wait_for(f"{text('#live')} === 'live'", 15, "the event stream")
    town.town.retry_task(ids["c"])
    page.wait_for("[...document.querySelectorAll('#dependencies tbody tr')]"
                  ".map(r => r.dataset.state).join() === 'assigned,assigned'", LIVE_SECS,
                  "c retried, live")


@pytest.mark.timeout(300)
def test_a_task_awaiting_approval_is_approved_from_the_mission_page(  # noqa: F811
    dash: Dash, browser: Chromium,  # noqa: F811
) -> None:
    """End to end once the approve gate exists: alice's round ends, the task waits for a
    person; the write key's Approve button completes it, and the page follows."""
    town, base = dash.town, dash.server.base
    plan = {"name": "gated", "goal": "a gated step", "task": [
        {"name": "a", "text": "Write a.txt containing a", "agent": "alice", "approve": True},
        {"name": "b", "text": "then b", "agent": "quiet", "after": ["a"]}]}
    with dash.client(headers={"Authorization": f"Bearer {dash.keys['write']}"}) as api:
        r = api.post("/v1/missions", json=plan)
        assert r.status_code == 201, r.text
        a = r.json()["waves"][0][0]["id"]
    town.wait_task(a, TaskState("awaiting_approval"))
    page = browser.new_page()
    log_in(page, base, dash.keys["write"], "/missions/gated")
    page.wait_for(f"{box('a')} === 'awaiting_approval'", 15, "a awaiting approval")
    assert not page.eval("document.querySelector('#waiting-section').hidden")
    page.type("#waiting tr[data-task=a] input.note", "fine")
    page.click("#waiting tr[data-task=a] button[data-action=approve]")
    town.wait_task(a, TaskState.COMPLETED)
    page.wait_for(f"{box('a')} === 'completed' && {box('b')} === 'assigned'", LIVE_SECS,
                  "a approved, live")
    page.wait_for("document.querySelector('#waiting-section').hidden", LIVE_SECS,
                  "nothing waits any more")
