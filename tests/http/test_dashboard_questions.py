"""The dashboard's questions to a person, in a real headless Chromium: the town's page
lists an open question live and answers it from its reply form; the task's page shows
the question and, once answered, the answer (the same fixtures as test_dashboard.py)."""

from __future__ import annotations

import json

import pytest

from tests.http.test_dashboard import LIVE_SECS, Dash, browser, dash, log_in, shot, text
from tests.support.browser import Chromium
from tinytown.core.models import TaskState

pytestmark = pytest.mark.timeout(180)
__all__ = ["browser", "dash"]  # the fixtures, for the tests here


def test_questions_listed_live_and_answered_from_the_page(dash: Dash, browser: Chromium
                                                          ) -> None:
    town, base = dash.town, dash.server.base
    page = browser.new_page()
    log_in(page, base, dash.keys["write"])
    page.wait_for(f"{text('#questions tbody')} === 'no open questions'", 15, "no questions")
    task_id = town.town.assign("alice", "choose the port\n@ask 8080 or 9090?")
    row = f"tr[data-task={json.dumps(task_id)}]"
    page.wait_for(f"!!document.querySelector('#questions {row}')", LIVE_SECS,
                  "the question, live")
    assert page.eval(f"{text(f'#questions {row} td.question')}") == "8080 or 9090?"
    assert page.eval(f"{text('#questions-count')}") == "(1)"
    shot(page, "questions")
    page.type(f"#questions {row} textarea", "9090")
    page.click(f"#questions {row} button")
    town.wait_task(task_id, TaskState.COMPLETED, timeout=30)
    page.wait_for(f"{text('#questions tbody')} === 'no open questions'", LIVE_SECS,
                  "the question gone")
    assert town.town.task(task_id).answer == "9090"

    page.goto(f"{base}/tasks/{task_id}")
    page.wait_for(f"{text('#answer')} === 'answered: 9090'", 15, "the answer on the task page")
    assert page.eval(f"{text('#question')}") == "8080 or 9090?"
    assert page.eval("document.querySelector('#reply').hidden") is True


def test_the_task_page_replies_and_a_read_key_gets_no_form(dash: Dash, browser: Chromium
                                                           ) -> None:
    town, base = dash.town, dash.server.base
    task_id = town.town.assign("alice", "name it\n@ask which name?")
    town.wait_task(task_id, TaskState.AWAITING_INPUT, timeout=30)
    reader = browser.new_page()
    log_in(reader, base, dash.keys["read"], f"/tasks/{task_id}")
    reader.wait_for(f"{text('#question')} === 'which name?'", 15, "the question")
    assert reader.eval("document.querySelector('#reply').hidden") is True
    reader.goto(base + "/")
    reader.wait_for(f"!!document.querySelector('#questions tr[data-task={json.dumps(task_id)}]')",
                    15, "the question listed")
    assert reader.eval("document.querySelectorAll('#questions textarea').length") == 0
    page = browser.new_page()
    log_in(page, base, dash.keys["write"], f"/tasks/{task_id}")
    page.wait_for("document.querySelector('#reply').hidden === false", 15, "the reply form")
    shot(page, "task-question")
    page.type("#reply-answer", "Ada")
    page.click("#reply-submit")
    town.wait_task(task_id, TaskState.COMPLETED, timeout=30)
    page.wait_for(f"{text('#answer')} === 'answered: Ada'", LIVE_SECS, "the answer, live")
