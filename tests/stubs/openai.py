"""A stub of OpenAI's model API for running the OpenAI-family agent CLIs offline.

    with OpenAIStub() as stub:
        stub.push(ToolCall("echo hi > out.txt"), Text("done"))
        ... run the CLI with its OpenAI base URL at stub.api_url (…/v1) ...
        stub.main_requests[0].body

Endpoints:

* `POST /v1/responses` (Responses API, SSE) — Codex CLI. Codex first tries the same URL
  as a WebSocket (`GET` with `Upgrade: websocket`); the stub answers 426, which makes it
  fall back to HTTPS at once. `websocket_status` sets another answer: any other refusal
  (404, as behind many proxies) costs Codex 5 retries, ~6 s, each printed as a
  `{"type":"error","message":"Reconnecting... N/5 (…)"}` event, before it falls back.
* `POST /v1/chat/completions` (streaming SSE chunks or one JSON body, `tool_calls`) —
  Copilot CLI with a provider base URL, aider (through litellm).
* `GET /v1/models`, `GET /v1/models/<id>`; anything else 404 with OpenAI's error body.

A `ToolCall(command)` becomes a call of the CLI's own shell tool, found in the request's
tools: `exec_command` {"cmd"} (Codex with a classic model such as gpt-5.4-mini), Codex's
code mode (its default model offers one freeform `exec` tool running JavaScript that calls
`tools.exec_command`), `bash` {"command", "description"} (Copilot CLI), or any tool whose
name says shell/bash/exec/command, its required arguments filled from its JSON schema.
aider offers no tools: script its edits as a `Text` in its edit format (`aider_new_file`).

Main vs side requests: a request offering tools is a main one (the agent loop) and takes
the next scripted reply; one without tools is main too (aider's turns) unless its
instructions ask for a title, a summary or a commit message — a side request, answered
with a harmless text that takes nothing. `is_main` can be replaced per stub.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from tests.stubs._base import (
    ApiError,
    Recorded,
    Response,
    Stream,
    StubServer,
    Text,
    ToolCall,
    chunked_text,
    collect_texts,
    estimate_tokens,
    sse,
)

__all__ = [
    "ApiError", "OpenAIStub", "Text", "ToolCall", "aider_new_file", "bad_request",
    "insufficient_quota", "openai_error", "rate_limited",
]

SIDE_TEXT = "Stub title"
UNSCRIPTED_TEXT = "stub: no scripted reply left"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "server_error",
}


# -- replies in OpenAI's terms --------------------------------------------------------------
def openai_error(status: int, message: str, type: str | None = None,  # noqa: A002
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None, times: int | None = 1) -> ApiError:
    """An HTTP error with OpenAI's body {"error": {message, type, param, code}}."""
    kind = type or ERROR_TYPES.get(status, "api_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return ApiError(status, message, kind, dict(headers or {}), body, times)


def bad_request(message: str = "Invalid request: refused by the stub.",
                times: int | None = 1) -> ApiError:
    return openai_error(400, message, "invalid_request_error", "invalid_value", times=times)


def rate_limited(retry_after: float = 1, times: int | None = None) -> ApiError:
    """429 rate_limit_exceeded with a retry-after (every request from then on by default)."""
    return openai_error(429, "Rate limit reached for requests. Please try again in 1s.",
                        "requests", "rate_limit_exceeded",
                        headers={"retry-after": f"{retry_after:g}"}, times=times)


def insufficient_quota(times: int | None = None) -> ApiError:
    """429 insufficient_quota (no retry-after): out of credit, not a passing limit."""
    return openai_error(429, "You exceeded your current quota, please check your plan and "
                        "billing details.", "insufficient_quota", "insufficient_quota",
                        times=times)


def aider_new_file(path: str, content: str, before: str = "") -> str:
    """A reply in aider's `diff` edit format (gpt-4o's) that creates `path`: a
    SEARCH/REPLACE block with an empty SEARCH part."""
    if not content.endswith("\n"):
        content += "\n"
    lead = f"{before}\n\n" if before else ""
    return f"{lead}{path}\n```\n<<<<<<< SEARCH\n=======\n{content}>>>>>>> REPLACE\n```\n"


# -- tools offered and the shell call ------------------------------------------------------
def offered_tools(body: Any) -> list[dict[str, Any]]:
    """The tools a request offers: its `tools` and those of Codex's `additional_tools`
    input items, namespaces flattened (a namespaced tool gets `_namespace`)."""
    if not isinstance(body, dict):
        return []
    found: list[dict[str, Any]] = []

    def walk(tools: Any, namespace: str | None) -> None:
        for t in tools or []:
            if not isinstance(t, dict):
                continue
            if t.get("type") == "namespace":
                walk(t.get("tools"), str(t.get("name", "")))
            else:
                found.append({**t, "_namespace": namespace} if namespace else t)

    walk(body.get("tools"), None)
    items = body.get("input")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and item.get("type") == "additional_tools":
                walk(item.get("tools"), None)
    return found


def tool_name(t: dict[str, Any]) -> str:
    if isinstance(t.get("function"), dict):
        return str(t["function"].get("name", ""))
    return str(t.get("name") or t.get("type") or "")


def _tool_params(t: dict[str, Any]) -> dict[str, Any]:
    if isinstance(t.get("function"), dict):
        return dict(t["function"].get("parameters") or {})
    return dict(t.get("parameters") or {})


SHELL_TOOL_NAMES = ("exec_command", "shell_command", "shell", "local_shell", "bash",
                    "run_shell_command")
COMMAND_FIELDS = ("cmd", "command", "commands", "script")


def _find_shell_tool(tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    by_name = {tool_name(t): t for t in tools}
    for name in SHELL_TOOL_NAMES:
        if name in by_name:
            return by_name[name]
    for name, t in by_name.items():
        if re.search(r"shell|bash|exec|terminal|command", name, re.IGNORECASE):
            return t
    return None


def _is_code_mode_exec(t: dict[str, Any]) -> bool:
    return (t.get("type") == "custom" and tool_name(t) == "exec"
            and "tools.exec_command" in str(t.get("description", "")))


def _fill(schema: dict[str, Any], command: str) -> dict[str, Any]:
    """Arguments for a shell tool's JSON schema: the command in its command field, the
    other required fields with harmless values."""
    props = dict(schema.get("properties") or {})
    required = list(schema.get("required") or [])
    cmd_field = next((f for f in COMMAND_FIELDS if f in props), None)
    if cmd_field is None:
        cmd_field = required[0] if required else "command"
    spec = props.get(cmd_field) or {}
    value: Any = command
    if spec.get("type") == "array":  # a list of commands (Cline's run_commands), or an argv
        value = [command] if cmd_field == "commands" else ["bash", "-lc", command]
    args: dict[str, Any] = {cmd_field: value}
    for name in required:
        if name in args:
            continue
        p = props.get(name) or {}
        kind = p.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if "enum" in p:
            args[name] = p["enum"][0]
        elif kind == "boolean":
            args[name] = False
        elif kind in ("integer", "number"):
            args[name] = 60 if "timeout" not in name else 60000
        elif kind == "array":
            args[name] = []
        elif kind == "object":
            args[name] = {}
        else:
            args[name] = "Run the scripted command" if "desc" in name else "stub"
    return args


def shell_call(reply: ToolCall, tools: list[dict[str, Any]]) -> tuple[str, str, Any]:
    """(kind, name, arguments) of the call a ToolCall makes given the offered tools;
    kind is "function" (arguments a dict), "custom" (a string input) or "local_shell"."""
    code_mode = next((c for c in tools if _is_code_mode_exec(c)), None)
    if reply.name is not None:
        t = next((t for t in tools if tool_name(t) == reply.name), {})
        args: Any = reply.args if reply.args is not None else {"command": reply.command}
        if not t and code_mode is not None:  # not offered itself (Codex defers MCP tools):
            js = (f"const r = await tools[{json.dumps(reply.name)}]({json.dumps(args)});\n"
                  "text(typeof r === 'string' ? r : JSON.stringify(r));\n")
            return "custom", tool_name(code_mode), js  # called from its code mode
        kind = "custom" if t.get("type") == "custom" else "function"
        return kind, reply.name, args
    t = _find_shell_tool(tools)
    if code_mode is not None and (t is None or t.get("_namespace")):
        js = (f"const r = await tools.exec_command({{cmd: {json.dumps(reply.command)}}});\n"
              "text(typeof r === 'string' ? r : (r.output ?? JSON.stringify(r)));\n")
        return "custom", tool_name(code_mode), js
    if t is None:
        raise LookupError(f"no shell tool among the offered tools {[tool_name(x) for x in tools]}")
    if t.get("type") == "local_shell":
        return "local_shell", "local_shell", {"command": ["bash", "-lc", reply.command]}
    if t.get("type") == "custom":
        return "custom", tool_name(t), reply.command
    args = reply.args if reply.args is not None else _fill(_tool_params(t), reply.command)
    return "function", tool_name(t), args


# -- main vs side --------------------------------------------------------------------------
SIDE_PATTERNS = re.compile(
    r"\b(generate|write|create|suggest)\s+(a\s+|an\s+)?(short\s+|concise\s+|brief\s+)?"
    r"(title|summary|commit message)"
    r"|summari[sz]e\b.{0,40}\b(conversation|chat|session)"
    r"|commit messages?\b",
    re.IGNORECASE | re.DOTALL,
)


def default_is_main(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if offered_tools(body):
        return True
    head = str(body.get("instructions") or "")[:4000]
    msgs = body.get("messages") or body.get("input") or []
    if isinstance(msgs, list) and msgs:
        first = msgs[0]
        if isinstance(first, dict) and first.get("role") in ("system", "developer"):
            head += json.dumps(first.get("content"))[:4000]
    elif isinstance(msgs, str):
        head += msgs[:4000]
    return not SIDE_PATTERNS.search(head)




# -- the stub ------------------------------------------------------------------------------
class OpenAIStub(StubServer):
    def __init__(self, is_main: Callable[[Any], bool] = default_is_main,
                 model: str = "gpt-4o") -> None:
        super().__init__()
        self.is_main = is_main
        self.model = model
        self.cached_tokens = 0  # reported as cached input tokens in every usage
        self.websocket_status = 426  # the answer to a WebSocket upgrade (no WebSocket)

    @property
    def api_url(self) -> str:
        """The OpenAI base URL (…/v1) a CLI is given."""
        return f"{self.base_url}/v1"

    # -- routing ------------------------------------------------------------------------
    def route(self, rec: Recorded) -> Response | Stream:
        path = rec.path.rstrip("/")
        if rec.headers.get("upgrade", "").lower() == "websocket":
            rec.kind = "websocket"
            return self._error(openai_error(self.websocket_status,
                                            "stub: no WebSocket transport, use HTTPS"))
        if rec.method == "POST" and path.endswith("/responses"):
            return self._turn(rec, self._responses)
        if rec.method == "POST" and path.endswith("/chat/completions"):
            return self._turn(rec, self._chat)
        if rec.method == "GET" and path.endswith("/models"):
            return Response(200, {"object": "list", "data": [self._model(self.model)]})
        if rec.method == "GET" and "/models/" in path:
            return Response(200, self._model(path.rsplit("/", 1)[1]))
        return self._error(openai_error(404, f"stub: no route for {rec.method} {rec.path}"))

    @staticmethod
    def _model(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1700000000, "owned_by": "stub"}

    def _turn(self, rec: Recorded,
              render: Callable[[dict[str, Any], Text | ToolCall, Recorded],
                               Response | Stream]) -> Response | Stream:
        body = rec.body if isinstance(rec.body, dict) else {}
        reply: Any
        if self.is_main(body):
            rec.kind = "main"
            reply = self._next_reply() or Text(UNSCRIPTED_TEXT)
        else:
            rec.kind = "side"
            reply = Text(SIDE_TEXT)
        rec.reply = reply
        if isinstance(reply, ApiError):
            return self._error(reply)
        return render(body, reply, rec)

    @staticmethod
    def _error(err: ApiError) -> Response:
        body = err.body if err.body is not None else {"error": {
            "message": err.message, "type": err.type or ERROR_TYPES.get(err.status, "api_error"),
            "param": None, "code": None}}
        headers = {"x-request-id": "req_stub_" + uuid.uuid4().hex[:16], **err.headers}
        return Response(err.status, body, headers)

    def _numbers(self, body: dict[str, Any], reply: Text | ToolCall) -> tuple[int, int]:
        n_in = estimate_tokens([body.get("instructions"), body.get("input"),
                                body.get("messages")])
        n_out = estimate_tokens([reply.text, getattr(reply, "command", "")])
        usage = reply.usage or {}
        return (int(usage.get("input_tokens", usage.get("prompt_tokens", n_in))),
                int(usage.get("output_tokens", usage.get("completion_tokens", n_out))))

    # -- Responses API (Codex) ----------------------------------------------------------
    def _responses(self, body: dict[str, Any], reply: Text | ToolCall,
                   rec: Recorded) -> Stream:
        n_in, n_out = self._numbers(body, reply)
        usage = {"input_tokens": n_in,
                 "input_tokens_details": {"cached_tokens": self.cached_tokens},
                 "output_tokens": n_out, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": n_in + n_out}
        rec.usage = {"input_tokens": n_in, "output_tokens": n_out,
                     "cached_tokens": self.cached_tokens}
        items: list[dict[str, Any]] = []
        if reply.text:
            items.append({"id": "msg_" + uuid.uuid4().hex[:20], "type": "message",
                          "role": "assistant", "status": "completed",
                          "content": [{"type": "output_text", "text": reply.text,
                                       "annotations": []}]})
        if isinstance(reply, ToolCall):
            kind, name, args = shell_call(reply, offered_tools(body))
            call_id = "call_" + uuid.uuid4().hex[:20]
            item_id = "fc_" + uuid.uuid4().hex[:20]
            if kind == "custom":
                items.append({"id": item_id, "type": "custom_tool_call", "call_id": call_id,
                              "name": name, "input": args, "status": "completed"})
            elif kind == "local_shell":
                items.append({"id": item_id, "type": "local_shell_call", "call_id": call_id,
                              "status": "completed",
                              "action": {"type": "exec", "command": args["command"],
                                         "env": {}}})
            else:
                items.append({"id": item_id, "type": "function_call", "call_id": call_id,
                              "name": name, "arguments": json.dumps(args),
                              "status": "completed"})
        model = str(body.get("model") or self.model)
        return Stream(self._response_events(model, items, usage))

    @staticmethod
    def _response_events(model: str, items: list[dict[str, Any]],
                         usage: dict[str, Any]) -> Iterator[bytes]:
        rid = "resp_" + uuid.uuid4().hex[:20]
        base = {"id": rid, "object": "response", "created_at": int(time.time()),
                "model": model, "status": "in_progress", "output": []}
        seq = iter(range(1 << 30))

        def ev(kind: str, **data: Any) -> bytes:
            return sse(kind, {"type": kind, "sequence_number": next(seq), **data})

        yield ev("response.created", response=base)
        yield ev("response.in_progress", response=base)
        for index, item in enumerate(items):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                yield ev("response.output_item.added", output_index=index,
                         item={**item, "status": "in_progress", "content": []})
                part = {"type": "output_text", "text": "", "annotations": []}
                yield ev("response.content_part.added", item_id=item["id"],
                         output_index=index, content_index=0, part=part)
                for piece in chunked_text(text, 64 * 1024):
                    yield ev("response.output_text.delta", item_id=item["id"],
                             output_index=index, content_index=0, delta=piece)
                yield ev("response.output_text.done", item_id=item["id"],
                         output_index=index, content_index=0, text=text)
                yield ev("response.content_part.done", item_id=item["id"],
                         output_index=index, content_index=0, part=item["content"][0])
            else:
                yield ev("response.output_item.added", output_index=index,
                         item={**item, "status": "in_progress"})
            yield ev("response.output_item.done", output_index=index, item=item)
        yield ev("response.completed",
                 response={**base, "status": "completed", "output": items, "usage": usage})

    # -- Chat Completions (Copilot CLI, aider) ------------------------------------------
    def _chat(self, body: dict[str, Any], reply: Text | ToolCall,
              rec: Recorded) -> Response | Stream:
        n_in, n_out = self._numbers(body, reply)
        usage = {"prompt_tokens": n_in, "completion_tokens": n_out,
                 "total_tokens": n_in + n_out,
                 "prompt_tokens_details": {"cached_tokens": self.cached_tokens}}
        rec.usage = {"input_tokens": n_in, "output_tokens": n_out,
                     "cached_tokens": self.cached_tokens}
        calls: list[dict[str, Any]] = []
        if isinstance(reply, ToolCall):
            _, name, args = shell_call(reply, offered_tools(body))
            calls.append({"id": "call_" + uuid.uuid4().hex[:20], "type": "function",
                          "function": {"name": name,
                                       "arguments": args if isinstance(args, str)
                                       else json.dumps(args)}})
        finish = "tool_calls" if calls else "stop"
        cid = "chatcmpl-" + uuid.uuid4().hex[:20]
        model = str(body.get("model") or self.model)
        created = int(time.time())
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
            if calls:
                message["tool_calls"] = calls
            return Response(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish,
                             "logprobs": None}],
                "usage": usage})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return Stream(self._chat_chunks(cid, model, created, reply.text, calls, finish,
                                        usage if include_usage else None))

    @staticmethod
    def _chat_chunks(cid: str, model: str, created: int, text: str,
                     calls: list[dict[str, Any]], finish: str,
                     usage: dict[str, Any] | None) -> Iterator[bytes]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            return sse(None, {"id": cid, "object": "chat.completion.chunk",
                              "created": created, "model": model,
                              "choices": [{"index": 0, "delta": delta,
                                           "finish_reason": finish_reason,
                                           "logprobs": None}]})

        yield chunk({"role": "assistant", "content": ""})
        if text:
            for piece in chunked_text(text, 64 * 1024):
                yield chunk({"content": piece})
        for i, call in enumerate(calls):
            yield chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                         "function": {"name": call["function"]["name"],
                                                      "arguments": ""}}]})
            yield chunk({"tool_calls": [{"index": i, "function": {
                "arguments": call["function"]["arguments"]}}]})
        yield chunk({}, finish)
        if usage is not None:
            yield sse(None, {"id": cid, "object": "chat.completion.chunk", "created": created,
                             "model": model, "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"

    # -- looking at what arrived --------------------------------------------------------
    @staticmethod
    def conversation_text(rec: Recorded) -> str:
        """Every string of one request's conversation (`input` or `messages`), joined."""
        body = rec.body if isinstance(rec.body, dict) else {}
        out: list[str] = []
        collect_texts(body.get("input") or body.get("messages") or [], out)
        return "\n".join(out)

    @staticmethod
    def tool_names(rec: Recorded) -> list[str]:
        return [tool_name(t) for t in offered_tools(rec.body)]
