"""A stub of Anthropic's Messages API for running the real Claude Code CLI offline.

    with AnthropicStub() as stub:
        stub.push(ToolCall("echo hi > out.txt"), Text("done"))
        env = {"ANTHROPIC_BASE_URL": stub.base_url, "ANTHROPIC_API_KEY": "sk-ant-stub", ...}
        ... run `claude --print ...` ...
        stub.main_requests[0].body["messages"]

Endpoints: `POST /v1/messages` (SSE when `"stream": true`, else one JSON message),
`POST /v1/messages/count_tokens`, `GET /v1/models` (a short list); anything else 404 with
Anthropic's error body (every request is recorded either way).

Main vs side requests: a request that offers tools (`tools` non-empty) is the agent loop
and consumes the next scripted reply; any other Messages request (title/topic generation,
quota checks, haiku summaries) is a side request answered with a harmless text that
consumes nothing. `is_main` can be replaced per stub.
"""

from __future__ import annotations

import json
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
    estimate_tokens,
    sse,
)

__all__ = ["AnthropicStub", "ApiError", "Text", "ToolCall"]

SHELL_TOOL = "Bash"
SIDE_TEXT = "Stub title"
UNSCRIPTED_TEXT = "stub: no scripted reply left"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}



def default_is_main(body: Any) -> bool:
    return isinstance(body, dict) and bool(body.get("tools"))


class AnthropicStub(StubServer):
    def __init__(self, is_main: Callable[[Any], bool] = default_is_main) -> None:
        super().__init__()
        self.is_main = is_main
        # cache token counts put into every reply's usage (besides input/output)
        self.cache_creation_input_tokens = 0
        self.cache_read_input_tokens = 0

    # -- routing ------------------------------------------------------------------------
    def route(self, rec: Recorded) -> Response | Stream:
        path = rec.path.rstrip("/")
        if rec.method == "POST" and path == "/v1/messages":
            return self._messages(rec)
        if rec.method == "POST" and path == "/v1/messages/count_tokens":
            body = rec.body if isinstance(rec.body, dict) else {}
            tokens = estimate_tokens(
                [body.get("system"), body.get("messages"), body.get("tools")]
            )
            return Response(200, {"input_tokens": tokens})
        if rec.method == "GET" and path == "/v1/models":
            return Response(200, {"data": [self._model("claude-sonnet-4-5")],
                                  "has_more": False, "first_id": None, "last_id": None})
        return self._error(ApiError(404, f"stub: no route for {rec.method} {rec.path}"))

    @staticmethod
    def _model(name: str) -> dict[str, Any]:
        return {"type": "model", "id": name, "display_name": name,
                "created_at": "2025-01-01T00:00:00Z"}

    def _messages(self, rec: Recorded) -> Response | Stream:
        body = rec.body if isinstance(rec.body, dict) else {}
        if self.is_main(body):
            rec.kind = "main"
            reply = self._next_reply()
            if reply is None:
                reply = Text(UNSCRIPTED_TEXT)
        else:
            rec.kind = "side"
            reply = Text(self._side_text(body))
        rec.reply = reply
        if isinstance(reply, ApiError):
            return self._error(reply)
        usage = self._usage(body, reply)
        rec.usage = usage
        content = self._content(reply)
        stop = "tool_use" if isinstance(reply, ToolCall) else "end_turn"
        model = str(body.get("model") or "claude-stub")
        msg_id = "msg_stub_" + uuid.uuid4().hex[:20]
        if body.get("stream"):
            return Stream(self._events(msg_id, model, content, stop, usage))
        return Response(200, {
            "id": msg_id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage,
        }, {"request-id": "req_stub_" + uuid.uuid4().hex[:16]})

    @staticmethod
    def _side_text(body: dict[str, Any]) -> str:
        """A harmless answer; JSON with every required string field when the request asks
        for structured output (title generation asks for {"title": ...})."""
        fmt = (body.get("output_config") or {}).get("format") or {}
        schema = fmt.get("schema") if isinstance(fmt, dict) else None
        if isinstance(schema, dict):
            props = schema.get("properties") or {}
            return json.dumps({k: SIDE_TEXT for k in schema.get("required") or props})
        return SIDE_TEXT

    # -- building answers ---------------------------------------------------------------
    def _usage(self, body: dict[str, Any], reply: Text | ToolCall) -> dict[str, int]:
        usage = {
            "input_tokens": estimate_tokens([body.get("system"), body.get("messages")]),
            "output_tokens": estimate_tokens(self._content(reply)),
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }
        usage.update(reply.usage or {})
        return usage

    @staticmethod
    def _content(reply: Text | ToolCall) -> list[dict[str, Any]]:
        if isinstance(reply, Text):
            return [{"type": "text", "text": reply.text}]
        blocks: list[dict[str, Any]] = []
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        args = reply.args if reply.args is not None else {
            "command": reply.command, "description": "Run the scripted command"}
        blocks.append({"type": "tool_use", "id": "toolu_stub_" + uuid.uuid4().hex[:16],
                       "name": reply.name or SHELL_TOOL, "input": args})
        return blocks

    @staticmethod
    def _events(msg_id: str, model: str, content: list[dict[str, Any]], stop: str,
                usage: dict[str, int]) -> Iterator[bytes]:
        start_usage = {**usage, "output_tokens": 1}
        yield sse("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}})
        yield sse("ping", {"type": "ping"})
        for index, block in enumerate(content):
            if block["type"] == "text":
                yield sse("content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": {"type": "text", "text": ""}})
                for piece in chunked_text(block["text"], 64 * 1024):
                    yield sse("content_block_delta", {
                        "type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": piece}})
            else:
                yield sse("content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": {**block, "input": {}}})
                yield sse("content_block_delta", {
                    "type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta",
                              "partial_json": json.dumps(block["input"])}})
            yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
        yield sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": stop, "stop_sequence": None},
                                    "usage": {"output_tokens": usage["output_tokens"]}})
        yield sse("message_stop", {"type": "message_stop"})

    @staticmethod
    def _error(err: ApiError) -> Response:
        body = err.body if err.body is not None else {
            "type": "error",
            "error": {"type": err.type or ERROR_TYPES.get(err.status, "api_error"),
                      "message": err.message},
        }
        headers = {"request-id": "req_stub_" + uuid.uuid4().hex[:16], **err.headers}
        return Response(err.status, body, headers)

    # -- looking at what arrived --------------------------------------------------------
    @staticmethod
    def text_of(message: dict[str, Any]) -> str:
        """All text in one message (string content or its text / tool_result blocks)."""
        content = message.get("content")
        if isinstance(content, str):
            return content
        parts: list[str] = []
        for block in content or []:
            if block.get("type") == "text":
                parts.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                inner = block.get("content")
                parts.append(inner if isinstance(inner, str) else
                             "".join(b.get("text", "") for b in inner or []))
        return "".join(parts)

    def conversation_text(self, rec: Recorded) -> str:
        """Every message's text in one request, joined (to look for earlier turns)."""
        messages = rec.body.get("messages", []) if isinstance(rec.body, dict) else []
        return "\n".join(self.text_of(m) for m in messages)
