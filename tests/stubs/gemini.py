"""A stub of the Gemini API (generativelanguage, v1beta) for running the real Gemini CLI
offline.

    with GeminiStub() as stub:
        stub.push(ToolCall("echo hi > out.txt"), Text("done"))
        env = {"GEMINI_API_KEY": "stub", "GOOGLE_GEMINI_BASE_URL": stub.base_url}
        # plus ~/.gemini/settings.json {"security":{"auth":{"selectedType":"gemini-api-key"}}}

Endpoints (any API version prefix, /v1beta or /v1): `POST models/<m>:generateContent`,
`POST models/<m>:streamGenerateContent` (SSE when `alt=sse`, else a JSON array),
`POST models/<m>:countTokens`, `GET models` and `GET models/<m>`; anything else 404 with
Google's error body (every request is recorded either way).

Main vs side requests: a request that offers tools (`functionDeclarations`; the shell
tool `run_shell_command` is among them unless the CLI runs read-only) is the agent loop
and consumes the next scripted reply; any other (model routing, next-speaker checks,
loop detection, summaries — usually with a JSON `responseJsonSchema`) is a side request
answered harmlessly from its schema ("user" where "user" is allowed, so a next-speaker
check hands the turn back; a number at its `minimum`), consuming nothing.
"""

from __future__ import annotations

import json
import re
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
)

__all__ = ["ApiError", "GeminiStub", "Text", "ToolCall"]

SHELL_TOOL = "run_shell_command"
SIDE_TEXT = "stub"
UNSCRIPTED_TEXT = "stub: no scripted reply left"

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_ROUTE = re.compile(r"^/(?:v\d\w*)/models/(?P<model>[^/:]+):(?P<method>\w+)$")



def declared_tools(body: Any) -> list[str]:
    """The function names a request offers."""
    names: list[str] = []
    if isinstance(body, dict):
        for tool in body.get("tools") or []:
            for decl in tool.get("functionDeclarations") or []:
                names.append(str(decl.get("name")))
    return names


def default_is_main(body: Any) -> bool:
    return bool(declared_tools(body))


def from_schema(schema: Any) -> Any:
    """A harmless value matching a (Gemini/OpenAPI or JSON) schema."""
    if not isinstance(schema, dict):
        return SIDE_TEXT
    enum = schema.get("enum")
    if enum:
        return "user" if "user" in enum else enum[0]
    kind = str(schema.get("type") or "").lower()
    if kind == "object" or "properties" in schema:
        return {k: from_schema(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return []
    if kind in ("number", "integer"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return SIDE_TEXT


class GeminiStub(StubServer):
    def __init__(self, is_main: Callable[[Any], bool] = default_is_main) -> None:
        super().__init__()
        self.is_main = is_main
        self.cached_content_tokens = 0  # put into every reply's usageMetadata

    # -- routing ------------------------------------------------------------------------
    def route(self, rec: Recorded) -> Response | Stream:
        path = rec.path.rstrip("/")
        match = _ROUTE.match(path)
        if match and rec.method == "POST":
            model, method = match["model"], match["method"]
            if method in ("generateContent", "streamGenerateContent"):
                return self._generate(rec, model, stream=method == "streamGenerateContent")
            if method == "countTokens":
                body = rec.body if isinstance(rec.body, dict) else {}
                request = body.get("generateContentRequest") or body
                return Response(200, {"totalTokens": estimate_tokens(request.get("contents"))})
            if method == "embedContent":
                return Response(200, {"embedding": {"values": [0.0] * 8}})
        if rec.method == "GET" and re.fullmatch(r"/v\d\w*/models", path):
            return Response(200, {"models": [self._model("gemini-2.5-pro"),
                                             self._model("gemini-2.5-flash")]})
        if rec.method == "GET" and (m := re.fullmatch(r"/v\d\w*/models/([^/:]+)", path)):
            return Response(200, self._model(m[1]))
        return self._error(ApiError(404, f"stub: no route for {rec.method} {rec.path}"))

    @staticmethod
    def _model(name: str) -> dict[str, Any]:
        return {"name": f"models/{name}", "displayName": name, "version": "stub",
                "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"]}

    def _generate(self, rec: Recorded, model: str, stream: bool) -> Response | Stream:
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
        parts = self._parts(reply)
        usage = self._usage(body, parts, reply)
        rec.usage = usage
        response_id = uuid.uuid4().hex[:20]
        if not stream:
            return Response(200, self._chunk(parts, usage, model, response_id, final=True))
        chunks = list(self._stream_chunks(parts, usage, model, response_id))
        if rec.query.get("alt") == "sse":
            return Stream(f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks)
        return Response(200, chunks)

    # -- building answers ---------------------------------------------------------------
    @staticmethod
    def _side_text(body: dict[str, Any]) -> str:
        config = body.get("generationConfig") or {}
        schema = config.get("responseSchema") or config.get("responseJsonSchema")
        if schema is not None or config.get("responseMimeType") == "application/json":
            return json.dumps(from_schema(schema))
        return SIDE_TEXT

    @staticmethod
    def _parts(reply: Text | ToolCall) -> list[dict[str, Any]]:
        if isinstance(reply, Text):
            return [{"text": reply.text}]
        parts: list[dict[str, Any]] = []
        if reply.text:
            parts.append({"text": reply.text})
        args = reply.args if reply.args is not None else {
            "command": reply.command, "description": "Run the scripted command"}
        parts.append({"functionCall": {"name": reply.name or SHELL_TOOL, "args": args}})
        return parts

    def _usage(self, body: dict[str, Any], parts: list[dict[str, Any]],
               reply: Text | ToolCall) -> dict[str, int]:
        prompt = estimate_tokens([body.get("systemInstruction"), body.get("contents")])
        out = estimate_tokens(parts)
        usage = {"promptTokenCount": prompt, "candidatesTokenCount": out,
                 "totalTokenCount": prompt + out}
        if self.cached_content_tokens:
            usage["cachedContentTokenCount"] = self.cached_content_tokens
        usage.update(reply.usage or {})
        return usage

    @staticmethod
    def _chunk(parts: list[dict[str, Any]], usage: dict[str, int] | None, model: str,
               response_id: str, final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if final:
            candidate["finishReason"] = "STOP"
        chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model,
                                 "responseId": response_id}
        if usage is not None:
            chunk["usageMetadata"] = usage
        return chunk

    def _stream_chunks(self, parts: list[dict[str, Any]], usage: dict[str, int], model: str,
                       response_id: str) -> Iterator[dict[str, Any]]:
        """Text in pieces (as the real API streams it), a function call whole, the finish
        reason and the usage on the last chunk."""
        pieces: list[dict[str, Any]] = []
        for part in parts:
            if "text" in part:
                pieces.extend({"text": t} for t in chunked_text(part["text"], 64 * 1024))
            else:
                pieces.append(part)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            yield self._chunk([piece], usage if last else None, model, response_id, last)

    @staticmethod
    def _error(err: ApiError) -> Response:
        status = err.type or STATUS_NAMES.get(err.status, "UNKNOWN")
        body = err.body if err.body is not None else {
            "error": {"code": err.status, "message": err.message, "status": status}}
        return Response(err.status, body, dict(err.headers))

    # -- looking at what arrived --------------------------------------------------------
    @staticmethod
    def text_of(content: dict[str, Any]) -> str:
        """All text of one content entry (text parts and function responses)."""
        out: list[str] = []
        for part in content.get("parts") or []:
            if "text" in part:
                out.append(str(part["text"]))
            elif "functionResponse" in part:
                out.append(json.dumps(part["functionResponse"].get("response")))
        return "".join(out)

    def conversation_text(self, rec: Recorded) -> str:
        contents = rec.body.get("contents", []) if isinstance(rec.body, dict) else []
        return "\n".join(self.text_of(c) for c in contents)
