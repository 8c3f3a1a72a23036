"""The dashboard at `/`: plain HTML pages and a little vanilla JavaScript (static/,
installed with the package: no build step, nothing fetched from another site), which
read and drive the town through the same /v1 API as any client, and stay current from
its event stream.

A browser cannot set `Authorization` on a page load or an EventSource, so `/login`
takes a key once and sets the session cookie that `auth.needs` accepts in place of the
header (see auth.py for its flags and the CSRF check of writes). The cookie holds the
key itself: any number of `tt serve` processes accept it with no session store, and a
revoked key stops working in the browser at the next request, as everywhere. Nothing
puts a key in a URL.

Pages: the town (`/`), an agent (`/agents/{ref}`), a task (`/tasks/{ref}`), a mission
(`/missions/{name}`: its graph drawn by waves), login. Besides the pages, four read
routes of the API that the pages need: `/v1/whoami` (the key's name and scope: which
actions to offer), `/v1/inboxes` (every agent's pending messages, counted),
`/v1/agents/{ref}/logs` (its round logs' tail) and `/v1/tasks/{ref}/links` (the tasks
it waits for and those that wait for it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tinytown.core.apikeys import ApiKey, Scope
from tinytown.core.errors import KeyRefused
from tinytown.http import schemas as s
from tinytown.http.agents import AgentRef
from tinytown.http.auth import check_same_origin, needs, session_cookie, session_key, town_of
from tinytown.http.dashboard_bodies import RoundLog, WhoAmI
from tinytown.http.error_responses import error, responses
from tinytown.http.tasks import TaskRef
from tinytown.ops.facade import Town

TownDep = Annotated[Town, Depends(town_of)]
STATIC = Path(__file__).parent / "static"
ASSETS = {  # what /static/ serves: these files and nothing else
    "dashboard.css": "text/css; charset=utf-8",
    "common.js": "text/javascript; charset=utf-8",
    "index.js": "text/javascript; charset=utf-8",
    "agent.js": "text/javascript; charset=utf-8",
    "task.js": "text/javascript; charset=utf-8",
    "actions.js": "text/javascript; charset=utf-8",
    "graph.js": "text/javascript; charset=utf-8",
    "mission.js": "text/javascript; charset=utf-8",
    "login.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
SESSION_SECS = 12 * 3600  # a working day; logging out (or revoking the key) ends it sooner
# Pages run only their own scripts and styles, talk only to this server, are framed by
# no one (a button cannot be clickjacked) and tell no other site where they were.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self';"
                               " img-src 'self'; connect-src 'self'; form-action 'self';"
                               " frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

api = APIRouter(prefix="/v1", tags=["dashboard"])
pages = APIRouter(include_in_schema=False)
router = APIRouter()


# --- the API routes the pages need ---------------------------------------------------


@api.get("/whoami", responses=responses())
def whoami(key: Annotated[ApiKey, needs(Scope.READ)], town: TownDep) -> WhoAmI:
    """The key the request is made with: its name and scope, and the town's name."""
    return WhoAmI(name=key.name, scope=key.scope.value, town=town.name)


@api.get("/inboxes", dependencies=[needs(Scope.READ)], responses=responses())
def inboxes(town: TownDep) -> dict[str, int]:
    """Every agent's pending messages, counted, by agent id (`tt list`'s inbox)."""
    return town.inbox_lens(town.list_agents())


@api.get("/agents/{ref}/logs", dependencies=[needs(Scope.READ)], responses=responses(404))
def round_log(ref: AgentRef, town: TownDep,
              round: Annotated[int | None, Query(ge=1, le=2**53, description=
                                                 "Default: the newest round")] = None
              ) -> RoundLog:
    """The agent's round logs on the serving machine, and the last 64 KiB of one
    (`tt logs`); 422 for a round it has no log of."""
    return RoundLog.model_validate(town.round_log(ref, round))


class TaskLinks(BaseModel):
    """A task's place in the graph, for its page."""

    dependencies: list[s.Task] = Field(description="The tasks it waits for, in its order")
    missing: list[str] = Field(description="Ids of tasks it waits for that are not recorded")
    dependents: list[s.Task] = Field(description="The tasks that wait for it")


@api.get("/tasks/{ref}/links", dependencies=[needs(Scope.READ)], responses=responses(404))
def task_links(ref: TaskRef, town: TownDep) -> TaskLinks:
    """The tasks it comes after (`after`) and those that come after it, each with its
    state. The reverse index holds only blocked dependents, so a finished task's
    dependents are found by reading the tasks (a page's look, not a hot path)."""
    task = town.task(ref)
    tasks = {t.id: t for t in town.list_tasks()}
    return TaskLinks(
        dependencies=[s.Task.of(tasks[i]) for i in task.after if i in tasks],
        missing=[i for i in task.after if i not in tasks],
        dependents=[s.Task.of(t) for t in tasks.values() if task.id in t.after])


# --- pages -----------------------------------------------------------------------------


PAGES = {  # each page's title and scripts; its body is static/<page>
    "index.html": ("Tinytown", ("common.js", "index.js")),
    "agent.html": ("Tinytown: agent", ("common.js", "agent.js")),
    "task.html": ("Tinytown: task", ("common.js", "actions.js", "task.js")),
    "mission.html": ("Tinytown: mission", ("common.js", "actions.js", "graph.js",
                                           "mission.js")),
    "login.html": ("Tinytown: log in", ("login.js",)),
}
HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/static/favicon.svg">
<link rel="stylesheet" href="/static/dashboard.css">
{scripts}</head>
<body>
"""
BAR = """<header>
  <a class="brand" href="/">Tinytown</a>
  <span id="town" class="mono"></span>
  <span id="live" class="live off">connecting</span>
  <span class="spacer"></span>
  <span id="who"></span>
  <button id="logout" type="button">Log out</button>
</header>
"""


def page_html(name: str) -> str:
    """A whole page: the head every page shares (with its title and scripts), the bar
    of the pages behind the login (those that load common.js), then its body."""
    title, scripts = PAGES[name]
    tags = "".join(f'<script src="/static/{s}" defer></script>\n' for s in scripts)
    bar = BAR if "common.js" in scripts else ""
    body = (STATIC / name).read_text()
    return HEAD.format(title=title, scripts=tags) + bar + body + "</body>\n</html>\n"


def _file(name: str, media_type: str = "text/html; charset=utf-8") -> Response:
    content = page_html(name).encode() if name in PAGES else (STATIC / name).read_bytes()
    return Response(content, media_type=media_type, headers=PAGE_HEADERS)


def _page(request: Request, town: Town, name: str) -> Response:
    """The page, to a browser with a session; the login page (and back) otherwise."""
    key = session_key(request)
    try:
        town.authenticate(key, Scope.READ)
    except KeyRefused:
        back = quote(request.url.path, safe="/")
        answer = RedirectResponse(f"/login?next={back}", status_code=303,
                                  headers=PAGE_HEADERS)
        if key is not None:  # revoked, or from another town: forget it
            _forget(request, answer)
        return answer
    return _file(name)


@pages.get("/")
def index(request: Request, town: TownDep) -> Response:
    return _page(request, town, "index.html")


@pages.get("/agents/{ref}")
def agent_page(request: Request, ref: AgentRef, town: TownDep) -> Response:
    return _page(request, town, "agent.html")  # the page reads `ref` from its address


@pages.get("/tasks/{ref}")
def task_page(request: Request, ref: TaskRef, town: TownDep) -> Response:
    """A task: its text, result or error, rounds, usage, branch and commits (the page
    reads them from /v1/tasks/{ref} and the events)."""
    return _page(request, town, "task.html")


@pages.get("/missions/{name}")
def mission_page(request: Request, name: Annotated[str, PathParam(min_length=1, max_length=64)],
                 town: TownDep) -> Response:
    """A mission: its goal, state, budget, and its graph by waves, live (the page reads
    /v1/missions/{name} and the events)."""
    return _page(request, town, "mission.html")


@pages.get("/login")
def login_page() -> Response:
    return _file("login.html")


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=200)


@pages.post("/login")
def login(body: Login, request: Request, town: TownDep) -> Response:
    """Check the key and keep it in the session cookie (401 for an unknown key)."""
    check_same_origin(request)  # nobody else's page logs this browser in
    key = town.authenticate(body.key, Scope.READ)
    request.state.api_key = key  # the audit records the login
    answer = JSONResponse(WhoAmI(name=key.name, scope=key.scope.value,
                                   town=town.name).model_dump(),
                          headers={"Cache-Control": "no-store"})
    answer.set_cookie(session_cookie(request), body.key, max_age=SESSION_SECS, path="/",
                      secure=request.url.scheme == "https", httponly=True,
                      samesite="strict")
    return answer


@pages.post("/logout")
def logout(request: Request) -> Response:
    check_same_origin(request)
    answer = Response(status_code=204)
    _forget(request, answer)
    return answer


def _forget(request: Request, answer: Response) -> None:
    answer.delete_cookie(session_cookie(request), path="/",
                         secure=request.url.scheme == "https", httponly=True,
                         samesite="strict")


@pages.get("/static/{name}")
def static(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        return error(404, f"no file {name!r} here")
    return _file(name, media_type)


router.include_router(api)
router.include_router(pages)
