"""The dashboard of `tt serve` (`/`, `/agents/{ref}`, `/login`), in a real headless
Chromium against a real town: the real `tt serve` process, a supervisor, agent `alice`
with a real worker running the fake agent CLI, and `quiet` (recorded, no worker). Keys
are made with the real `tt auth add`.

The browser is Debian's `chromium` driven over the DevTools protocol (tests/support/browser.py);
without it the browser tests skip, saying why. Screenshots are kept as test artifacts in
`$TT_TEST_ARTIFACTS/dashboard/` when that variable is set, else in the checkout's
`test-artifacts/dashboard/` (beside the Flower test's screenshot).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import TownFixture, wait_until
from tests.http.test_api import Server, add_key, self_signed, start_server
from tests.support.browser import Chromium, Page, chromium_or_skip
from tinytown.core.models import AgentState, TaskState, utcnow

ARTIFACTS = Path(os.environ.get("TT_TEST_ARTIFACTS") or
                 Path(__file__).resolve().parents[2] / "test-artifacts") / "dashboard"
LIVE_SECS = 10  # a change in Redis shows on an open page within this (about 1 s when idle)
KEY_NAMES = {"read": "watcher", "write": "operator", "admin": "owner"}
OWN = {"X-Requested-With": "tinytown-dashboard"}


@dataclass
class Dash:
    town: TownFixture
    server: Server
    keys: dict[str, str]

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.server.base, timeout=30,
                            follow_redirects=False, **kw)  # type: ignore[arg-type]


def _serve(town: TownFixture, *args: str) -> Iterator[Dash]:
    keys_made = {scope: add_key(town, name, scope) for scope, name in KEY_NAMES.items()}
    assert town.tt("spawn", "alice").code == 0
    assert town.tt("spawn", "quiet", "--no-start").code == 0
    town.wait_state("alice", "idle")
    server = start_server(town, *args)
    try:
        yield Dash(town, server, keys_made)
    finally:
        server.stop()
    log = server.log_text()
    for key in keys_made.values():
        assert key not in log, "an API key reached the server's log"
    assert "Traceback" not in log, log


@pytest.fixture
def dash(town: TownFixture, supervisor: subprocess.Popen[bytes]) -> Iterator[Dash]:
    yield from _serve(town)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    chromium_or_skip()
    with Chromium.launch(tmp_path / "chromium") as launched:
        yield launched
    assert launched.exceptions == [], launched.exceptions  # no page script failed


def shot(page: Page, name: str) -> None:
    path = page.screenshot(ARTIFACTS / f"{name}.png")
    assert path.stat().st_size > 5000, path


def log_in(page: Page, base: str, key: str, path: str = "/") -> None:
    """Open `path`, be sent to the login page, type the key, and be sent back."""
    page.goto(base + path)
    page.wait_for("location.pathname === '/login'", 10, "the login page")
    page.type("#key", key)
    page.click("#submit")
    page.wait_for(f"location.pathname === {json.dumps(path)}", 15, f"{path} after logging in")
    page.wait_for(f"{text('#who')} !== ''", 15, "the session")


def text(selector: str) -> str:
    """A JS expression: the text of the element ('' while there is none)."""
    return f"((document.querySelector({json.dumps(selector)}) || {{}}).textContent || '')"


def cell(agent: str, column: str) -> str:
    """A JS expression: the text of an agent's cell on the town's page ('' if none)."""
    return (f"(document.querySelector('tr[data-agent={json.dumps(agent)}] td.{column}')"
            " || {}).textContent || ''")


def test_every_page_has_the_one_head() -> None:
    """The head (and the bar of the pages behind the login) is written once, in
    http/dashboard.py; static/*.html hold each page's body."""
    from tinytown.http.dashboard import PAGES, STATIC, page_html

    assert {p.name for p in STATIC.glob("*.html")} == set(PAGES)
    for name, (title, scripts) in PAGES.items():
        assert "<head>" not in (STATIC / name).read_text()
        html = page_html(name)
        assert html.startswith("<!doctype html>\n") and html.endswith("</body>\n</html>\n")
        assert html.count("<head>") == 1 and f"<title>{title}</title>" in html
        assert all(f'<script src="/static/{s}" defer>' in html for s in scripts)
        assert ('id="logout"' in html) == ("common.js" in scripts)


# --- over plain HTTP: the session cookie, CSRF, the new read routes ----------------------


def test_login_cookie_csrf_logout_and_revocation(dash: Dash) -> None:
    town = dash.town
    with dash.client() as anonymous:
        r = anonymous.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
        r = anonymous.get("/agents/alice")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/agents/alice"
        page = anonymous.get("/login")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.text.startswith("<!doctype html>") and "<title>Tinytown: log in" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert anonymous.get("/v1/agents").status_code == 401  # the API: a key as before
        assert anonymous.get("/v1/whoami").status_code == 401
        assert anonymous.get("/static/common.js").headers["content-type"].startswith(
            "text/javascript")
        assert anonymous.get("/static/app.py").status_code == 404

        key = dash.keys["write"]
        refused = anonymous.post("/login", json={"key": key})  # no X-Requested-With
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        cross = anonymous.post("/login", json={"key": key},
                               headers={**OWN, "Origin": "https://evil.example"})
        assert cross.status_code == 403 and "set-cookie" not in cross.headers
        wrong = anonymous.post("/login", json={"key": "tt_" + "x" * 43}, headers=OWN)
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        assert key not in wrong.text

        r = anonymous.post("/login", json={"key": key}, headers=OWN)
        assert r.status_code == 200, r.text
        assert r.json() == {"name": "operator", "scope": "write", "town": town.name}
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"tt_session={key};")
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "path=/", "samesite=strict", "max-age=43200"} <= flags
        assert "secure" not in flags  # plain HTTP: a Secure cookie would not come back

    with dash.client(cookies={"tt_session": key}) as browser:
        assert browser.get("/v1/whoami").json()["name"] == "operator"
        assert browser.get("/").status_code == 200
        assert browser.get("/agents/alice").status_code == 200
        # a write with the cookie alone: refused unless the page's own header is there
        line = browser.post("/v1/agents/alice/interrupt").json()["error"]
        assert "X-Requested-With" in line
        evil = browser.post("/v1/agents/alice/interrupt",
                            headers={**OWN, "Origin": "http://evil.example"})
        assert evil.status_code == 403
        assert town.agent_state("alice") == "idle"
        paused = browser.post("/v1/agents/alice/interrupt",
                              headers={**OWN, "Origin": dash.server.base})
        assert paused.status_code == 200 and paused.json()["state"] == "paused"
        # an Authorization header is judged alone: a read key with a write cookie reads
        read_only = browser.post("/v1/agents/alice/resume", headers={
            **OWN, "Authorization": f"Bearer {dash.keys['read']}"})
        assert read_only.status_code == 403
        assert browser.post("/v1/agents/alice/resume", headers=OWN).json()["state"] == "idle"

        assert town.tt("auth", "revoke", "operator").code == 0
        assert browser.get("/v1/whoami").status_code == 401  # at once
        gone = browser.get("/")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
        assert 'tt_session=""' in gone.headers["set-cookie"]  # forgotten

    with dash.client(cookies={"tt_session": dash.keys["read"]}) as browser:
        out = browser.post("/logout", headers=OWN)
        assert out.status_code == 204 and 'tt_session=""' in out.headers["set-cookie"]

    audited = {(e["key_name"], e["method"], e["path"], e["status"])
               for e in town.town.events(200) if e["kind"] == "api"}
    assert ("operator", "POST", "/login", "200") in audited
    assert ("operator", "POST", "/v1/agents/alice/interrupt", "403") in audited
    assert ("operator", "POST", "/v1/agents/alice/interrupt", "200") in audited


def test_whoami_inboxes_and_round_logs(dash: Dash) -> None:
    town = dash.town
    headers = {"Authorization": f"Bearer {dash.keys['read']}"}
    with dash.client(headers=headers) as client:
        assert client.get("/v1/whoami").json() == {"name": "watcher", "scope": "read",
                                                   "town": town.name}
        empty = client.get("/v1/agents/alice/logs").json()
        assert empty["rounds"] == [] and empty["round"] is None and empty["text"] == ""
        task_id = town.tt("assign", "alice", "leave a log").out.strip()
        town.wait_task(task_id, TaskState.COMPLETED)
        assert town.tt("send", "quiet", "two").code == 0
        assert town.tt("send", "quiet", "three").code == 0
        alice, quiet = (town.town.resolve(n).id for n in ("alice", "quiet"))
        assert client.get("/v1/inboxes").json() == {alice: 0, quiet: 2}
        log = client.get("/v1/agents/alice/logs").json()
        assert log["agent"] == alice and log["name"] == "alice"
        assert [r["round"] for r in log["rounds"]] == [1] and log["round"] == 1
        assert "fake agent alice round 1 did" in log["text"] and not log["truncated"]
        assert client.get("/v1/agents/alice/logs", params={"round": 1}).json() == log
        assert "no round 7 log" in client.get("/v1/agents/alice/logs",
                                              params={"round": 7}).json()["error"]
        assert client.get("/v1/agents/alice/logs", params={"round": 0}).status_code == 422
        assert client.get("/v1/agents/nobody/logs").status_code == 404
        assert client.get("/v1/agents/quiet/logs").json()["rounds"] == []
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/v1/whoami", "/v1/inboxes", "/v1/agents/{ref}/logs"} <= set(paths)
        assert not {"/", "/login", "/agents/{ref}"} & set(paths)  # pages: not the API


# --- in Chromium -----------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_dashboard_lists_agents_updates_live_and_acts(dash: Dash, browser: Chromium) -> None:
    town, base = dash.town, dash.server.base
    key = dash.keys["write"]
    page = browser.new_page()
    page.goto(base + "/")
    page.wait_for("location.pathname === '/login'", 10, "the login page")
    assert page.eval("location.search") == "?next=/"
    shot(page, "login")
    log_in(page, base, key)
    assert key not in page.eval("location.href") and page.eval("document.cookie") == ""
    [cookie] = page.cookies()
    assert cookie["name"] == "tt_session" and cookie["httpOnly"] and \
        cookie["sameSite"] == "Strict" and not cookie["secure"]

    page.wait_for(f"{cell('alice', 'state')} === 'idle' && {cell('quiet', 'state')}"
                  " === 'starting'", 15, "alice and quiet listed")
    page.wait_for(f"{text('#live')} === 'live'", 15,
                  "the event stream")
    assert page.eval(f"{cell('alice', 'inbox')}") == "0"
    assert re.fullmatch(r"\d+s", page.eval(cell("alice", "heartbeat")))
    assert page.eval("document.querySelector('#who').textContent") == "operator (write)"
    # a write key acts, but kill is for an admin key
    assert page.eval("document.querySelectorAll('tr[data-agent=alice] button[data-action]')"
                     ".length") == 2  # interrupt, close
    assert page.eval("document.querySelector('button[data-action=kill]')") is None
    shot(page, "agents")

    # a change made elsewhere shows without a reload
    page.eval("window.kept = 'the same document'")
    changed = time.monotonic()
    town.town.agent("alice").interrupt()
    page.wait_for(f"{cell('alice', 'state')} === 'paused'", LIVE_SECS, "alice paused, live")
    print(f"the state change showed after {time.monotonic() - changed:.2f}s")
    town.tt("send", "quiet", "hello there")
    page.wait_for(f"{cell('quiet', 'inbox')} === '1'", LIVE_SECS, "quiet's inbox, live")
    assert page.eval("window.kept") == "the same document"
    shot(page, "agents-paused")

    # the buttons call the API: resume alice, then assign it a task from the form
    page.click("tr[data-agent=alice] button[data-action=resume]")
    town.wait_state("alice", "idle")
    page.wait_for(f"{cell('alice', 'state')} === 'idle'", LIVE_SECS, "alice idle again")
    page.select("#assign-agent", town.town.resolve("alice").id)
    page.type("#assign-description", "from the dashboard")
    page.click("#assign-submit")
    task = wait_until(lambda: next((t for t in town.town.list_tasks()
                                    if t.description == "from the dashboard"), None),
                      10, "the task")
    town.wait_task(task.id, TaskState.COMPLETED)
    page.wait_for(f"(document.querySelector('tr[data-task=\"{task.id}\"]') || {{}})"
                  ".dataset?.state === 'completed'", LIVE_SECS, "the task completed, live")
    assert page.eval("window.kept") == "the same document"

    # an agent's page: its record, rounds and round log; send to quiet from its page
    page.click("tr[data-agent=alice] td.name a")
    page.wait_for("location.pathname === '/agents/alice'", 10, "alice's page")
    page.wait_for(f"{text('#log')}.includes('fake agent alice round 1 did')", 15,
                  "alice's round log")
    assert page.eval("document.querySelector('#rounds tbody tr').dataset.round") == "1"
    assert page.eval("document.querySelector('[data-field=rounds_completed]').textContent") \
        == "1"
    shot(page, "agent-alice")
    page.goto(base + "/agents/quiet")
    page.wait_for("document.querySelectorAll('#inbox tbody tr[data-message]').length === 1",
                  15, "quiet's inbox")
    page.select("#send-type", "query")
    page.type("#send-text", "are you there?")
    page.click("#send-submit")
    quiet = town.town.resolve("quiet").id
    wait_until(lambda: any(m.to_wire().get("question") == "are you there?"
                           for m in town.town.store.peek_inbox(quiet)), 10, "the message")
    page.wait_for("document.querySelectorAll('#inbox tbody tr[data-message]').length === 2",
                  LIVE_SECS, "the message on quiet's page")
    shot(page, "agent-quiet")

    # close alice from its page: a confirmation, then the worker drains and goes cold
    page.goto(base + "/agents/alice")
    page.wait_for("!!document.querySelector('#buttons button[data-action=close]')", 15,
                  "the close button")
    page.click("#buttons button[data-action=close]")
    town.wait_state("alice", "draining", "cold")
    assert browser.dialogs and "close alice" in browser.dialogs[-1]
    page.wait_for(f"{text('#state')} === 'cold'", 30,
                  "alice cold, live")
    shot(page, "agent-alice-cold")


@pytest.mark.timeout(300)
def test_a_read_key_gets_no_actions_and_nobody_gets_in_without_one(
    dash: Dash, browser: Chromium,
) -> None:
    town, base = dash.town, dash.server.base
    anonymous = browser.new_page()
    anonymous.goto(base + "/agents/alice")
    anonymous.wait_for("location.pathname === '/login'", 10, "the login page")
    assert anonymous.eval("location.search") == "?next=/agents/alice"
    assert anonymous.eval("fetch('/v1/agents').then(r => r.status)") == 401
    anonymous.type("#key", "tt_" + "x" * 43)
    anonymous.click("#submit")
    anonymous.wait_for("!document.querySelector('#notice').hidden", 10, "the refusal")
    assert "not valid" in anonymous.eval("document.querySelector('#notice').textContent")
    assert anonymous.cookies() == []

    reader = browser.new_page()
    log_in(reader, base, dash.keys["read"], "/agents/alice")  # and back to where it was
    reader.wait_for("!!document.querySelector('[data-field=name]')", 15, "alice's record")
    assert reader.eval("document.querySelectorAll('button[data-action]').length") == 0
    assert reader.eval("[...document.querySelectorAll('.needs-write')].every(e => e.hidden)")
    shot(reader, "agent-alice-read-key")
    reader.goto(base + "/")
    reader.wait_for(f"{cell('alice', 'state')} === 'idle'", 15, "the agents")
    assert reader.eval("document.querySelectorAll('button[data-action]').length") == 0
    assert reader.eval("document.querySelector('#assign-section').hidden")
    assert reader.eval("document.querySelector('#agents thead th.needs-write').hidden")
    # and the API refuses it anyway, even from the page's own script
    status = reader.eval("fetch('/v1/agents/alice/interrupt', {method: 'POST', headers:"
                         " {'X-Requested-With': 'tinytown-dashboard'}}).then(r => r.status)")
    assert status == 403 and town.agent_state("alice") == "idle"
    town.town.agent("alice").interrupt()  # a read key still watches live
    reader.wait_for(f"{cell('alice', 'state')} === 'paused'", LIVE_SECS, "alice paused, live")
    shot(reader, "agents-read-key")

    owner = browser.new_page()  # its own cookies: the reader stays a reader
    log_in(owner, base, dash.keys["admin"])
    owner.wait_for("!!document.querySelector('tr[data-agent=alice] button[data-action=kill]')",
                   15, "the kill button of an admin key")
    assert reader.eval("document.querySelector('#who').textContent") == "watcher (read)"

    reader.click("#logout")
    reader.wait_for("location.pathname === '/login'", 10, "the login page after logging out")
    assert reader.cookies() == []
    reader.goto(base + "/")
    assert reader.eval("location.pathname") == "/login"

    # revoking a key ends its sessions: the open page goes to the login page by itself
    assert town.tt("auth", "revoke", "owner").code == 0
    owner.wait_for("location.pathname === '/login'", 20, "the revoked key's page to leave")


@pytest.fixture
def tls_dash(town: TownFixture, supervisor: subprocess.Popen[bytes],
             tmp_path: Path) -> Iterator[Dash]:
    cert, key_file = self_signed(tmp_path)
    yield from _serve(town, "--tls-cert", str(cert), "--tls-key", str(key_file))


@pytest.mark.timeout(300)
def test_the_dashboard_over_tls(tls_dash: Dash, tmp_path: Path) -> None:
    chromium_or_skip()
    town, base = tls_dash.town, tls_dash.server.base
    assert base.startswith("https://")
    with Chromium.launch(tmp_path / "chromium-tls", "--ignore-certificate-errors") as browser:
        page = browser.new_page()
        log_in(page, base, tls_dash.keys["write"])
        [cookie] = page.cookies()
        assert cookie["name"] == "__Host-tt_session" and cookie["secure"] and \
            cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        page.wait_for(f"{cell('alice', 'state')} === 'idle'", 15, "alice listed")
        page.wait_for(f"{text('#live')} === 'live'", 15,
                      "the event stream")
        town.town.agent("alice").interrupt()
        page.wait_for(f"{cell('alice', 'state')} === 'paused'", LIVE_SECS,
                      "alice paused, live, over TLS")
        page.click("tr[data-agent=alice] button[data-action=resume]")
        town.wait_state("alice", AgentState.IDLE.value)
        shot(page, "agents-tls")
        assert browser.exceptions == [], browser.exceptions


@pytest.mark.timeout(300)
def test_task_page_and_readable_values(dash: Dash, browser: Chromium) -> None:
    """Usage as text, not JSON; a resume time still to come as "in 5m"; a task_assign
    message with its task's text; the task list with result or error and a link to the
    task's page; a cost nobody reported is "unknown" everywhere."""
    town, base = dash.town, dash.server.base
    store = town.town.store
    done_id = town.town.assign("alice", "Write hello.txt containing hi")
    town.wait_task(done_id, TaskState.COMPLETED)
    done = store.require_task(done_id)
    error = "API Error: 529 overloaded (the provider is busy; try again later)"
    failed_id = town.town.assign("quiet", "Refactor the parser")
    assert town.tt("task", "fail", failed_id, "--error", error).code == 0
    waiting_id = town.town.assign("quiet", "Count the lines of every module")
    alice, quiet = town.town.resolve("alice"), town.town.resolve("quiet")
    store.add_event("round", alice.id, name="alice", task=done_id, round=2, input_tokens=12,
                    cached_input_tokens=3, output_tokens=5, cost_usd="")  # no price

    def readable(a: Any) -> None:
        a.session_usage = {"input_tokens": 40, "cached_input_tokens": 2, "output_tokens": 9}
    store.update_agent(alice.id, readable)

    def limited(a: Any) -> None:
        a.state, a.hold = AgentState.PAUSED, "usage limit of claude"
        a.resume_at = utcnow() + timedelta(minutes=5)
    store.update_agent(quiet.id, limited)

    page = browser.new_page()
    log_in(page, base, dash.keys["read"])
    row = f"tr[data-task=\"{failed_id}\"]"
    page.wait_for(f"!!document.querySelector('{row} td.outcome')", 15, "the task list")
    assert page.eval(text(f"{row} td.outcome")) == f"error: {error}"
    assert page.eval(text(f"tr[data-task=\"{done_id}\"] td.outcome")) == done.result
    shot(page, "tasks-with-outcomes")
    page.click(f"{row} a[href=\"/tasks/{failed_id}\"]")
    page.wait_for(f"location.pathname === '/tasks/{failed_id}'", 10, "the task's page")
    page.wait_for(f"{text('#outcome')} !== ''", 15, "the failed task")
    assert page.eval(text("#description")) == "Refactor the parser"
    assert page.eval(text("#outcome-title")) == "Error" and page.eval(text("#outcome")) == error
    assert page.eval(text("#state")) == "failed"
    assert page.eval(text("[data-field=assigned_to]")) == "quiet"
    shot(page, "task-failed")

    page.goto(base + f"/tasks/{done_id}")
    page.wait_for("document.querySelectorAll('#rounds tbody tr[data-round]').length === 2",
                  15, "the completed task's rounds")
    assert page.eval(text("#outcome-title")) == "Result"
    assert page.eval(text("#outcome")) == done.result
    assert page.eval(text("#description")) == "Write hello.txt containing hi"
    assert page.eval("[...document.querySelectorAll('#rounds td.cost')]"
                     ".map(e => e.textContent)") == ["unknown", "unknown"]
    usage = page.eval(text("[data-field=usage]"))
    assert usage == "unknown (1 round: its CLI reported no usage)", usage
    shot(page, "task-completed")

    page.goto(base + "/agents/alice")
    page.wait_for("document.querySelectorAll('#rounds tbody tr[data-round]').length === 2",
                  15, "alice's rounds")
    assert page.eval(text("[data-field=usage]")) == \
        "unknown (1 round: its CLI reported no usage)"
    assert page.eval(text("[data-field=session_usage]")) == \
        "40 input, 2 cached, 9 output tokens"
    body = page.eval("document.body.textContent")
    assert "no price" not in body and "unknown_rounds" not in body
    assert page.eval(f"!!document.querySelector('#rounds a[href=\"/tasks/{done_id}\"]')")

    page.goto(base + "/agents/quiet")
    page.wait_for("document.querySelectorAll('#inbox tbody tr[data-message]').length === 2",
                  15, "quiet's inbox")
    resume = page.eval(text("[data-field=resume_at]"))
    assert re.search(r"\(in [45]m \d+s\)$", resume), resume
    assert "ago" not in resume
    texts = page.eval("[...document.querySelectorAll('#inbox tbody td.text')]"
                      ".map(e => e.textContent)")
    assert f"task {waiting_id[:8]}: Count the lines of every module" in texts, texts
    shot(page, "agent-quiet-limited")
