"""The stub model APIs alone (no CLI): each scripts only the agent's main requests,
answers side requests harmlessly, and speaks its API's wire format (SSE, NDJSON, errors).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stubs._base import ApiError, Text, ToolCall
from tests.stubs.anthropic import AnthropicStub
from tests.stubs.augment import AugmentStub
from tests.stubs.gemini import GeminiStub
from tests.stubs.openai import OpenAIStub, bad_request

KEY = {"x-api-key": "secret"}  # as Claude Code sends its key

@pytest.fixture
def anthropic_stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


@pytest.fixture
def gemini_stub() -> Iterator[GeminiStub]:
    with GeminiStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


@pytest.fixture
def augment_stub() -> Iterator[AugmentStub]:
    with AugmentStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


def _post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {
        "content-type": "application/json",
        **(headers or {"authorization": "Bearer secret"})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def _sse_events(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if data is not None:
            events.append((name, data))
    return events



def _sse_data(raw: bytes) -> list[Any]:
    out = []
    for block in raw.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                out.append(json.loads(line[6:]))
    return out



BASH_TOOL = {"type": "function", "function": {"name": "bash", "parameters": {
    "type": "object", "required": ["command", "description"],
    "properties": {"command": {"type": "string"}, "description": {"type": "string"}}}}}



def test_anthropic_stub_scripts_main_requests_only(anthropic_stub: AnthropicStub) -> None:
    stub = anthropic_stub
    stub.cache_read_input_tokens = 7
    stub.push(ToolCall("echo hi > f"), ApiError(429, "slow down", times=2), Text("the end"))
    url = stub.base_url + "/v1/messages"
    main = {"model": "m", "max_tokens": 10, "stream": True,
            "tools": [{"name": "Bash", "input_schema": {}}],
            "messages": [{"role": "user", "content": "do it"}]}
    side = {"model": "m", "max_tokens": 10, "tools": [],
            "messages": [{"role": "user", "content": "title?"}],
            "output_config": {"format": {"type": "json_schema", "schema": {
                "type": "object", "properties": {"title": {"type": "string"}},
                "required": ["title"]}}}}
    status, raw = _post(url, side, KEY)  # answered without touching the script
    assert status == 200 and json.loads(json.loads(raw)["content"][0]["text"]) == {
        "title": "Stub title"}
    status, raw = _post(url, main, KEY)
    events = _sse_events(raw)
    assert [e for e, _ in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop"]
    assert events[2][1]["content_block"]["name"] == "Bash"
    assert json.loads(events[3][1]["delta"]["partial_json"])["command"] == "echo hi > f"
    assert events[5][1]["delta"]["stop_reason"] == "tool_use"
    assert events[0][1]["message"]["usage"]["cache_read_input_tokens"] == 7
    for _ in range(2):  # one error reply answers two requests (a retry)
        status, raw = _post(url, main, KEY)
        assert status == 429
        assert json.loads(raw) == {"type": "error", "error": {
            "type": "rate_limit_error", "message": "slow down"}}
    status, raw = _post(url, {**main, "stream": False}, KEY)
    assert status == 200 and json.loads(raw)["content"] == [{"type": "text", "text": "the end"}]
    status, raw = _post(url, main, KEY)  # nothing scripted is left: a harmless text
    assert status == 200 and "no scripted reply" in raw.decode()
    status, raw = _post(url + "/count_tokens", {"messages": main["messages"]}, KEY)
    assert status == 200 and json.loads(raw)["input_tokens"] > 0
    assert [r.kind for r in stub.requests] == ["side", "main", "main", "main", "main", "main",
                                              "other"]
    assert stub.requests[0].headers["x-api-key"] == "<redacted>"
    assert stub.pending() == 0



def test_gemini_stub_scripts_main_requests_only(gemini_stub: GeminiStub) -> None:
    stub = gemini_stub
    stub.push(ToolCall("echo hi > f"), ApiError(429, "Resource exhausted"), Text("the end"))
    base = stub.base_url + "/v1beta/models/gemini-x:"
    main = {"contents": [{"role": "user", "parts": [{"text": "do it"}]}],
            "tools": [{"functionDeclarations": [{"name": "run_shell_command"}]}]}
    router = {"contents": [{"role": "user", "parts": [{"text": "route"}]}],
              "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
                  "type": "OBJECT", "properties": {
                      "complexity_score": {"type": "INTEGER", "minimum": 1},
                      "next_speaker": {"type": "STRING", "enum": ["model", "user"]}}}}}
    status, raw = _post(base + "generateContent?key=secret", router)
    answer = json.loads(json.loads(raw)["candidates"][0]["content"]["parts"][0]["text"])
    assert status == 200 and answer == {"complexity_score": 1, "next_speaker": "user"}
    status, raw = _post(base + "streamGenerateContent?alt=sse", main)
    chunks = [data for _, data in _sse_events(raw)]
    call = chunks[-1]["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call == {"name": "run_shell_command",
                    "args": {"command": "echo hi > f", "description": "Run the scripted command"}}
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] > 0
    status, raw = _post(base + "streamGenerateContent?alt=sse", main)
    assert status == 429 and json.loads(raw) == {"error": {
        "code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}
    status, raw = _post(base + "generateContent", main)
    assert json.loads(raw)["candidates"][0]["content"]["parts"] == [{"text": "the end"}]
    status, raw = _post(base + "countTokens", {"contents": main["contents"]})
    assert status == 200 and json.loads(raw)["totalTokens"] > 0
    assert [r.kind for r in stub.requests] == ["side", "main", "main", "main", "other"]
    assert stub.requests[0].query["key"] == "<redacted>"



def test_openai_stub_chat_completions(openai_stub: OpenAIStub) -> None:
    stub = openai_stub
    stub.push(ToolCall("echo hi > f"), bad_request("nope"), Text("the end"))
    url = stub.api_url + "/chat/completions"
    side = {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "Generate a concise commit message for this diff"},
        {"role": "user", "content": "diff"}]}
    status, raw = _post(url, side)  # answered without touching the script
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"]
    main = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
            "tools": [BASH_TOOL], "messages": [{"role": "user", "content": "do it"}]}
    status, raw = _post(url, main)
    chunks = _sse_data(raw)
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
             if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0]["function"]["name"] == "bash"
    args = json.loads("".join(c["function"]["arguments"] for c in calls))
    assert args["command"] == "echo hi > f" and args["description"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["prompt_tokens"] > 0
    status, raw = _post(url, main)
    assert status == 400 and json.loads(raw)["error"]["message"] == "nope"
    status, raw = _post(url, {**main, "stream": False})
    assert json.loads(raw)["choices"][0]["message"]["content"] == "the end"
    assert [r.kind for r in stub.requests] == ["side", "main", "main", "main"]
    assert stub.requests[1].headers["authorization"] == "<redacted>"



def test_openai_stub_responses_shell_call_follows_the_offered_tools(
    openai_stub: OpenAIStub,
) -> None:
    stub = openai_stub
    url = stub.api_url + "/responses"
    classic = {"model": "m", "stream": True, "input": [], "tools": [
        {"type": "function", "name": "exec_command", "parameters": {
            "type": "object", "required": ["cmd"], "properties": {"cmd": {"type": "string"}}}}]}
    exec_tool = {"type": "custom", "name": "exec", "description": "… tools.exec_command(…"}
    code_mode = {"model": "m", "stream": True, "tools": [], "input": [
        {"type": "additional_tools",
         "tools": [{"type": "namespace", "name": "functions", "tools": [exec_tool]}]}]}
    stub.push(ToolCall("touch a"), ToolCall("touch b"), Text("done"))
    items = []
    for body in (classic, code_mode, classic):
        status, raw = _post(url, body)
        assert status == 200
        events = _sse_data(raw)
        assert events[0]["type"] == "response.created"
        assert events[-1]["type"] == "response.completed"
        assert events[-1]["response"]["usage"]["input_tokens"] > 0
        items.append(events[-1]["response"]["output"][-1])
    assert items[0]["type"] == "function_call" and items[0]["name"] == "exec_command"
    assert json.loads(items[0]["arguments"]) == {"cmd": "touch a"}
    assert items[1]["type"] == "custom_tool_call" and items[1]["name"] == "exec"
    assert 'tools.exec_command({cmd: "touch b"})' in items[1]["input"]
    assert items[2]["content"][0]["text"] == "done"
    status, raw = _post(url, {"model": "m", "input": "x"})  # nothing left: a default text
    assert status == 200 and stub.pending() == 0



@pytest.mark.parametrize("status", [426, 404])
def test_openai_stub_refuses_websockets_with_426_or_as_set(
    openai_stub: OpenAIStub, status: int,
) -> None:
    if status != 426:
        openai_stub.websocket_status = status  # as a proxy without WebSockets answers
    req = urllib.request.Request(openai_stub.api_url + "/responses",
                                 headers={"upgrade": "websocket", "connection": "Upgrade"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == status
    info.value.close()
    assert [r.kind for r in openai_stub.requests] == ["websocket"]



def test_augment_stub_answers_ndjson(augment_stub: AugmentStub) -> None:
    stub = augment_stub
    stub.push(ToolCall("echo hi"), ApiError(429, times=1), Text("fin"))
    url = stub.base_url + "/chat-stream"
    status, raw = _post(url, {"nodes": [], "chat_history": []})
    lines = [json.loads(x) for x in raw.decode().splitlines()]
    tool_use = lines[-1]["nodes"][0]["tool_use"]
    assert tool_use["tool_name"] == "launch-process"
    assert json.loads(tool_use["input_json"])["command"] == "echo hi"
    assert lines[-1]["stop_reason"] == 3
    assert _post(url, {})[0] == 429
    status, raw = _post(url, {})
    assert json.loads(raw.decode().splitlines()[0])["text"] == "fin"
    status, raw = _post(stub.base_url + "/get-models", {})
    assert json.loads(raw)["default_model"]

