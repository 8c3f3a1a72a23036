"""Errors as JSON: `{"error": "<the line tt prints>"}` with the status that says what
went wrong. Never a stack trace: an unexpected failure is one line too (logged in full
on the server's side).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tinytown.core import errors as e
from tinytown.http.schemas import Error

log = logging.getLogger("tinytown.http")

# the most specific class first: a subclass is looked up before its base
STATUS: list[tuple[type[e.TinytownError], int]] = [
    (e.KeyRefused, 401),
    (e.NotPermitted, 403),
    (e.AgentNotFound, 404),
    (e.TaskNotFound, 404),
    (e.MissionNotFound, 404),
    (e.PlanInvalid, 422),
    (e.ApiKeyNotFound, 404),
    (e.InvalidTransition, 409),
    (e.NameTaken, 409),
    (e.Refused, 409),
    (e.AmbiguousReference, 422),
    (e.UsageError, 422),
    (e.MessageTooLarge, 413),
    (e.WaitTimeout, 408),
    (e.RedisUnreachable, 503),
]


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """For the OpenAPI document: the errors a route may answer, besides 401, 403, 422
    and 503, which every authenticated route may."""
    return {code: {"model": Error} for code in sorted({401, 403, 422, 503, *codes})}


def status_of(exc: e.TinytownError) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def error(status: int, message: str, headers: Mapping[str, str] | None = None
          ) -> JSONResponse:
    """The error answer: one line, whatever the message held."""
    return JSONResponse({"error": " ".join(message.splitlines())}, status_code=status,
                        headers=headers)


def _tinytown(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.TinytownError)
    status = status_of(exc)
    if status == 500:
        log.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error(status, e.one_line(exc), headers)


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for problem in exc.errors()[:3]:
        where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
        problems.append(f"{where}: {problem.get('msg', 'invalid')}" if where
                        else str(problem.get("msg", "invalid")))
    return error(422, "invalid request: " + "; ".join(problems) if problems
                 else "invalid request")


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # a body that is not JSON: bad input, like any other
        return error(422, f"invalid request: {exc.detail}")
    return error(exc.status_code, str(exc.detail), exc.headers)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette raises it again after this answer: the server's log has the traceback
    return error(500, f"unexpected {type(exc).__name__}: {e.one_line(str(exc))} (see the"
                      " server's log)")


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.TinytownError, _tinytown)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
