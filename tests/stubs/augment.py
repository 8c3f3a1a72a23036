"""A stub of Augment's API for running the real `auggie` CLI offline.

    with AugmentStub() as stub:
        stub.push(ToolCall("echo hi > out.txt"), Text("done"))
        env = {"AUGMENT_SESSION_AUTH": stub.session_auth()}
        ... run `auggie --print --instruction-file FILE` ...

auggie reaches it through AUGMENT_SESSION_AUTH (the same JSON as ~/.augment/session.json:
accessToken, tenantURL, scopes); every call is `POST <tenantURL><endpoint>` with a JSON
body and `Authorization: Bearer <accessToken>`. What auggie 0.36 calls in a --print run:

* `get-models` — `{"default_model", "models": [{"name", ...}], "feature_flags": {}}`;
* `settings/get-mcp-user-configs`, `settings/get-mcp-tenant-configs` — remote MCP servers;
* `agents/list-remote-tools` — remote tools (`{"tools": []}`: none);
* `chat-stream` — one model turn. The request carries `nodes` (the prompt as a text node
  `{"type": 0, "text_node": {"content"}}`; a tool result as `{"type": 1,
  "tool_result_node": {"tool_use_id", "content", "is_error"}}`), `chat_history` (earlier
  exchanges: `request_nodes`, `response_nodes`) and `tool_definitions` (`launch-process`
  is the shell tool: command, wait, max_wait_seconds, cwd). The answer is newline-delimited
  JSON objects `{"text", "nodes", "stop_reason"}`: the text also as a node of type 0
  (`content`; auggie keeps the history from the nodes), a tool call as a node of type 5
  (`tool_use`: tool_use_id, tool_name, input_json), the token usage as one of type 10
  (`token_usage`), stop_reason 1 (end turn) or 3 (tool use requested);
* `report-error`, `record-request-events`, … — telemetry: answered `{}`.

An error is the HTTP status (auggie reads the status, not the body): 400 and 401 end the
run at once (exit 1), 429 and 5xx are retried until `--retry-timeout`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from tests.stubs._base import (
    ApiError,
    Recorded,
    Response,
    Stream,
    StubServer,
    Text,
    ToolCall,
    collect_texts,
    estimate_tokens,
)

__all__ = ["ApiError", "AugmentStub", "Text", "ToolCall"]

MODEL = "stub-model"
STOP_END_TURN = 1
STOP_TOOL_USE_REQUESTED = 3
NODE_RAW_RESPONSE = 0
NODE_TOOL_USE = 5
NODE_TOKEN_USAGE = 10
UNSCRIPTED_TEXT = "stub: no scripted reply left"



class AugmentStub(StubServer):
    def session_auth(self, token: str = "stub-token") -> str:
        """The value for AUGMENT_SESSION_AUTH."""
        return json.dumps({"accessToken": token, "tenantURL": self.base_url + "/",
                           "scopes": ["read", "write"]})

    def route(self, rec: Recorded) -> Response | Stream:
        path = rec.path.strip("/")
        body = rec.body if isinstance(rec.body, dict) else {}
        if rec.method != "POST":
            return Response(404, {"error": f"stub: no route for {rec.method} {rec.path}"})
        if path == "chat-stream":
            return self._chat_stream(rec, body)
        if path == "get-models":
            return Response(200, {
                "default_model": MODEL,
                "models": [{"name": MODEL, "internal_name": MODEL,
                            "suggested_prefix_char_count": 0,
                            "suggested_suffix_char_count": 0,
                            "completion_timeout_ms": 60000}],
                "languages": [], "feature_flags": {}})
        if path.startswith("settings/get-mcp"):
            return Response(200, {"configs": [], "mcp_configs": []})
        if path == "agents/list-remote-tools":
            return Response(200, {"tools": []})
        if path == "find-missing":
            return Response(200, {"unknown_memory_names": [], "nonindexed_blob_names": []})
        return Response(200, {})

    def _chat_stream(self, rec: Recorded, body: dict[str, Any]) -> Response | Stream:
        reply: Any
        if body.get("silent"):
            rec.kind, reply = "side", Text("")
        else:
            rec.kind = "main"
            reply = self._next_reply() or Text(UNSCRIPTED_TEXT)
        rec.reply = reply
        if isinstance(reply, ApiError):
            err = reply.body if reply.body is not None else {"error": reply.message}
            return Response(reply.status, err, reply.headers)
        n_in = estimate_tokens([body.get("nodes"), body.get("chat_history")])
        n_out = estimate_tokens([reply.text, getattr(reply, "command", "")])
        usage = {"input_tokens": n_in, "output_tokens": n_out,
                 "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
        usage.update(reply.usage or {})
        rec.usage = usage
        lines: list[dict[str, Any]] = []
        if reply.text:
            lines.append({"text": reply.text, "nodes": [
                {"id": 0, "type": NODE_RAW_RESPONSE, "content": reply.text}]})
        usage_node = {"id": 9, "type": NODE_TOKEN_USAGE, "content": "", "token_usage": usage}
        if isinstance(reply, ToolCall):
            name = reply.name or "launch-process"
            args = reply.args if reply.args is not None else {
                "command": reply.command, "wait": True, "max_wait_seconds": 60, "cwd": "."}
            node = {"id": 1, "type": NODE_TOOL_USE, "content": "",
                    "tool_use": {"tool_use_id": "toolu_" + uuid.uuid4().hex[:16],
                                 "tool_name": name, "input_json": json.dumps(args)}}
            lines.append({"text": "", "nodes": [node, usage_node],
                          "stop_reason": STOP_TOOL_USE_REQUESTED})
        else:
            lines.append({"text": "", "nodes": [usage_node], "stop_reason": STOP_END_TURN})
        return Stream(_ndjson(lines), headers={"content-type": "application/json"})

    # -- looking at what arrived --------------------------------------------------------
    @staticmethod
    def conversation_text(rec: Recorded) -> str:
        """The text of a chat-stream request: its nodes, message and earlier exchanges."""
        body = rec.body if isinstance(rec.body, dict) else {}
        out: list[str] = []
        collect_texts([body.get("message"), body.get("nodes"), body.get("chat_history")], out)
        return "\n".join(out)


def _ndjson(objs: list[dict[str, Any]]) -> Iterator[bytes]:
    for obj in objs:
        yield json.dumps(obj).encode() + b"\n"

