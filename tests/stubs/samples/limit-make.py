"""Records what each real agent CLI prints when its provider answers 429 (rate limit) or a
usage/quota limit, into tests/stubs/samples/limit-<cli>-<case>.txt (findings:
tests/stubs/limits.md). Not a test; run by hand:

    python tests/stubs/samples/limit-make.py [cli-or-case-prefix ...]

Each sample: the command, exit code and time, the requests the stub saw (status and
seconds since the first, to show retries and their spacing), then stdout and stderr.
`limit-runs.json` keeps the exit code, time, note and requests per case (merged with
earlier runs; run one process at a time).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from tests.stubs._base import ApiError, StubServer, Text  # noqa: E402
from tests.stubs.anthropic import AnthropicStub  # noqa: E402
from tests.stubs.augment import AugmentStub  # noqa: E402
from tests.stubs.gemini import GeminiStub  # noqa: E402
from tests.stubs.openai import OpenAIStub, insufficient_quota, openai_error  # noqa: E402
from tests.stubs.realcli import (  # noqa: E402
    CLAUDE_ARGS,
    GEMINI_ARGS,
    Sandbox,
    cache_dir,
    claude_env,
    find_cli,
    gemini_env,
    gemini_settings,
)

OUT = Path(__file__).resolve().parent
TIMEOUT = float(os.environ.get("LIMIT_TIMEOUT", "150"))
RESET_EPOCH = 1893456000  # 2030-01-01T00:00:00Z, a fixed "resets at" for the samples


def run(argv: list[str], prompt: str | None, env: dict[str, str], box: Sandbox,
        timeout: float = TIMEOUT) -> dict[str, Any]:
    """Like Sandbox.run, but a run that outlives `timeout` is killed (its group) and
    reported with what it printed so far, exit None."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=box.work,
                            env=box.env(env), start_new_session=True)
    try:
        out, err = proc.communicate(prompt or "", timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    return {"argv": argv, "exit": code, "seconds": round(time.monotonic() - start, 1),
            "stdout": out, "stderr": err}


def requests_of(stub: StubServer) -> list[str]:
    reqs = list(stub.requests)
    t0 = reqs[0].at if reqs else 0
    return [f"+{r.at - t0:6.1f}s {r.kind:5} {r.status} {r.method} {r.path}" for r in reqs]


def save(name: str, result: dict[str, Any], stub: StubServer, note: str,
         extra: dict[str, str] | None = None) -> None:
    result = {**result, "note": note, "requests": requests_of(stub)}
    exit_text = "killed after timeout" if result["exit"] is None else result["exit"]
    lines = [f"# {note}", f"$ {' '.join(result['argv'])}",
             f"--- exit {exit_text} after {result['seconds']}s",
             "--- requests the stub saw", *result["requests"],
             "--- stdout", result["stdout"].rstrip("\n"),
             "--- stderr", result["stderr"].rstrip("\n")]
    for title, text in (extra or {}).items():
        lines += [f"--- {title}", text.rstrip("\n")]
        result[title] = text
    (OUT / f"limit-{name}.txt").write_text("\n".join(lines) + "\n")
    index = OUT / "limit-runs.json"
    runs = json.loads(index.read_text()) if index.exists() else {}
    runs[name] = {k: v for k, v in result.items() if k in ("exit", "seconds", "note",
                                                           "requests")} | {
        "sample": f"limit-{name}.txt", "argv": [Path(result["argv"][0]).name,
                                                *result["argv"][1:]]}
    index.write_text(json.dumps(dict(sorted(runs.items())), indent=1) + "\n")
    print(f"== {name}: exit {exit_text} after {result['seconds']}s, "
          f"{len(stub.requests)} requests", flush=True)


def binary(name: str) -> str:
    path, why = find_cli(name)
    if path is None:
        raise SystemExit(why)
    return path


# -- Claude Code ---------------------------------------------------------------------------
ANTHROPIC_RATE_MESSAGE = (
    "This request would exceed the rate limit for your organization "
    "(00000000-0000-0000-0000-000000000000) of 50,000 input tokens per minute. For details, "
    "refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers "
    "for current usage. Please reduce the prompt length or the maximum tokens requested, or "
    "try again later.")


def claude_case(name: str, note: str, reply: ApiError, retries: str = "0",
                auth: str = "key", args: list[str] | None = None,
                **extra_env: str) -> None:
    box = Sandbox()
    with AnthropicStub() as stub:
        stub.push(reply)
        env = claude_env(stub.base_url, CLAUDE_CODE_MAX_RETRIES=retries, **extra_env)
        if auth == "oauth":  # a (fake) subscription token instead of the API key
            del env["ANTHROPIC_API_KEY"]
            env["CLAUDE_CODE_OAUTH_TOKEN"] = "sk-ant-oat01-stub"
        result = run([binary("claude"), *(args or CLAUDE_ARGS)], "Say hi", env, box)
        save(f"claude-{name}", result, stub, note)
    box.cleanup()


def unified_headers(status: str = "rejected", claim: str = "five_hour") -> dict[str, str]:
    return {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": str(RESET_EPOCH),
        "anthropic-ratelimit-unified-representative-claim": claim,
        "anthropic-ratelimit-unified-5h-status": status,
        "anthropic-ratelimit-unified-5h-reset": str(RESET_EPOCH),
        "anthropic-ratelimit-unified-5h-utilization": "1.0",
        "anthropic-ratelimit-unified-fallback": "unavailable",
        "anthropic-ratelimit-unified-overage-status": "rejected",
        "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
        "retry-after": "3600",
    }


CLAUDE_CASES: dict[str, Callable[[], None]] = {
    "claude-429-retry-after-5": lambda: claude_case(
        "429-retry-after-5", "429 rate_limit_error, retry-after: 5, CLAUDE_CODE_MAX_RETRIES=1",
        ApiError(429, ANTHROPIC_RATE_MESSAGE, headers={
            "retry-after": "5",
            "anthropic-ratelimit-input-tokens-reset": "2030-01-01T00:00:05Z"}, times=None),
        retries="1"),
    "claude-429-retry-after-3600": lambda: claude_case(
        "429-retry-after-3600",
        "429 rate_limit_error, retry-after: 3600, CLAUDE_CODE_MAX_RETRIES=1",
        ApiError(429, ANTHROPIC_RATE_MESSAGE, headers={"retry-after": "3600"}, times=None),
        retries="1"),
    "claude-429-usage-message": lambda: claude_case(
        "429-usage-message",
        "429 rate_limit_error whose message is a usage limit with a reset time "
        "(incl. the old subscription form 'Claude AI usage limit reached|<epoch>')",
        ApiError(429, f"Claude AI usage limit reached|{RESET_EPOCH}", times=None)),
    "claude-429-usage-text": lambda: claude_case(
        "429-usage-text", "429 rate_limit_error 'usage limit reached ... resets at <time>'",
        ApiError(429, "You have reached your usage limit. Your limit resets at "
                 "2030-01-01T00:00:00Z.", times=None)),
    "claude-429-unified-apikey": lambda: claude_case(
        "429-unified-apikey",
        "429 with the subscription headers anthropic-ratelimit-unified-* (status rejected, "
        f"reset {RESET_EPOCH}, claim five_hour), API key auth",
        ApiError(429, "Rate limited.", headers=unified_headers(), times=None)),
    "claude-429-unified-oauth": lambda: claude_case(
        "429-unified-oauth",
        "429 with anthropic-ratelimit-unified-* headers, CLAUDE_CODE_OAUTH_TOKEN auth "
        "(a fake subscription token)",
        ApiError(429, "Rate limited.", headers=unified_headers(), times=None), auth="oauth"),
    "claude-429-unified-oauth-weekly": lambda: claude_case(
        "429-unified-oauth-weekly",
        "429 with anthropic-ratelimit-unified-* headers, claim seven_day, no overage "
        "headers, CLAUDE_CODE_OAUTH_TOKEN auth",
        ApiError(429, "Rate limited.", headers={
            k: v for k, v in unified_headers(claim="seven_day").items()
            if "overage" not in k}, times=None), auth="oauth"),
    "claude-429-unified-oauth-soon": lambda: claude_case(
        "429-unified-oauth-soon",
        "429 with anthropic-ratelimit-unified-* headers (claim five_hour, reset in 2h30m, no "
        "retry-after, no overage headers), CLAUDE_CODE_OAUTH_TOKEN auth, "
        "CLAUDE_CODE_MAX_RETRIES=2, TZ=Europe/Berlin",
        ApiError(429, "Rate limited.", headers={
            k: (str(int(time.time()) // 60 * 60 + 9000) if k.endswith("reset") else v)
            for k, v in unified_headers().items()
            if "overage" not in k and k != "retry-after"}, times=None),
        retries="2", auth="oauth", TZ="Europe/Berlin"),
    "claude-429-unified-oauth-stream": lambda: claude_case(
        "429-unified-oauth-stream", "as 429-unified-oauth-weekly, --output-format stream-json "
        "--verbose (for its rate_limit_event)",
        ApiError(429, "Rate limited.", headers={
            k: v for k, v in unified_headers(claim="seven_day").items()
            if "overage" not in k}, times=None), auth="oauth",
        args=["--print", "--dangerously-skip-permissions", "--output-format", "stream-json",
              "--verbose"]),
    "claude-429-oauth-plain": lambda: claude_case(
        "429-oauth-plain", "429 rate_limit_error without unified headers, "
        "CLAUDE_CODE_OAUTH_TOKEN auth", ApiError(429, ANTHROPIC_RATE_MESSAGE, times=None),
        auth="oauth"),
    "claude-400-spend-limit": lambda: claude_case(
        "400-spend-limit", "400 invalid_request_error: the API's own monthly spend limit",
        ApiError(400, "You have reached your specified API usage limits. You will regain "
                 "access on 2030-01-01 at 00:00 UTC.", times=None)),
    "claude-400-credit-balance": lambda: claude_case(
        "400-credit-balance", "400 invalid_request_error: no credit left",
        ApiError(400, "Your credit balance is too low to access the Anthropic API. Please "
                 "go to Plans & Billing to upgrade or purchase credits.", times=None)),
}


# -- Codex ---------------------------------------------------------------------------------
OPENAI_RATE_MESSAGE = (
    "Rate limit reached for gpt-4o in organization org-stub on tokens per min (TPM): "
    "Limit 30000, Used 29000, Requested 2000. Please try again in 5s. Visit "
    "https://platform.openai.com/account/rate-limits to learn more.")


def openai_rate(retry_after: str) -> ApiError:
    return openai_error(429, OPENAI_RATE_MESSAGE, "tokens", "rate_limit_exceeded",
                        headers={"retry-after": retry_after,
                                 "x-ratelimit-reset-tokens": "5s"}, times=None)


def usage_limit_reached(plan: str = "plus", resets_at: int | None = RESET_EPOCH) -> ApiError:
    """ChatGPT-plan Codex's own 429 (its backend, not the public API)."""
    error: dict[str, Any] = {"type": "usage_limit_reached", "message": "The usage limit has "
                             "been reached", "plan_type": plan}
    if resets_at is not None:
        error |= {"resets_at": resets_at, "resets_in_seconds": 3600}
    body = {"error": error}
    return ApiError(429, "usage limit", body=body, times=None, headers={
        "x-codex-primary-used-percent": "100", "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": str(RESET_EPOCH),
        "x-codex-primary-reset-after-seconds": "3600"})


def codex_case(name: str, note: str, reply: ApiError, **extra_env: str) -> None:
    box = Sandbox()
    with OpenAIStub() as stub:
        stub.push(reply)
        config = box.home / ".codex" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(f'openai_base_url = "{stub.api_url}"\n')
        result = run([binary("codex"), "exec", "--json",
                      "--dangerously-bypass-approvals-and-sandbox"], "Say hi",
                     {"OPENAI_API_KEY": "sk-stub-key", **extra_env}, box)
        save(f"codex-{name}", result, stub, note)
    box.cleanup()


CODEX_CASES: dict[str, Callable[[], None]] = {
    "codex-429-retry-after-5": lambda: codex_case(
        "429-retry-after-5", "429 rate_limit_exceeded, retry-after: 5", openai_rate("5")),
    "codex-429-retry-after-3600": lambda: codex_case(
        "429-retry-after-3600", "429 rate_limit_exceeded, retry-after: 3600",
        openai_rate("3600")),
    "codex-429-insufficient-quota": lambda: codex_case(
        "429-insufficient-quota", "429 insufficient_quota (no retry-after)",
        insufficient_quota()),
    "codex-429-usage-limit-reached": lambda: codex_case(
        "429-usage-limit-reached",
        "429 {error: {type: usage_limit_reached, plan_type, resets_at, resets_in_seconds}} "
        "(ChatGPT-plan form), API key auth", usage_limit_reached()),
    "codex-429-usage-limit-pro-soon": lambda: codex_case(
        "429-usage-limit-pro-soon", "429 usage_limit_reached, plan_type pro, resets_at in "
        "2h30m, TZ=Europe/Berlin",
        usage_limit_reached("pro", int(time.time()) // 60 * 60 + 9000), TZ="Europe/Berlin"),
    "codex-429-usage-limit-no-reset": lambda: codex_case(
        "429-usage-limit-no-reset", "429 usage_limit_reached, plan_type pro, no resets_at",
        usage_limit_reached("pro", None)),
}


# -- Gemini CLI ----------------------------------------------------------------------------
GEMINI_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
    "\n* Quota exceeded for metric: generativelanguage.googleapis.com/"
    "generate_content_free_tier_requests, limit: 10, model: gemini-2.5-pro\n"
    "Please retry in 5.2s.")


def gemini_429(message: str, details: list[dict[str, Any]],
               headers: dict[str, str] | None = None) -> ApiError:
    body = {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED",
                      "details": details}}
    return ApiError(429, message, body=body, headers=dict(headers or {}), times=None)


def retry_info(delay: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


def quota_failure(quota_id: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": quota_id, "quotaDimensions": {"location": "global",
                                                 "model": "gemini-2.5-pro"},
        "quotaValue": "10"}]}


def gemini_case(name: str, note: str, reply: ApiError, max_attempts: int = 1) -> None:
    box = Sandbox()
    with GeminiStub() as stub:
        stub.push(reply)
        gemini_settings(box, maxAttempts=max_attempts)
        result = run([binary("gemini"), *GEMINI_ARGS], "Say hi",
                     gemini_env(stub.base_url, GEMINI_MODEL="gemini-2.5-pro",
                                GEMINI_CLI_NO_RELAUNCH="true"), box)
        reports = sorted(box.tmp.glob("gemini-client-error-*.json"))
        extra = {"error report " + p.name: p.read_text()[:3000] for p in reports[:1]}
        save(f"gemini-{name}", result, stub, note, extra)
    box.cleanup()


GEMINI_CASES: dict[str, Callable[[], None]] = {
    "gemini-429-retryinfo-5s": lambda: gemini_case(
        "429-retryinfo-5s", "429 RESOURCE_EXHAUSTED, details: [RetryInfo retryDelay 5s], "
        "maxAttempts=1", gemini_429("Resource has been exhausted (e.g. check quota).",
                                    [retry_info("5s")])),
    "gemini-429-per-minute": lambda: gemini_case(
        "429-per-minute", "429 RESOURCE_EXHAUSTED as the API sends it for a per-minute free "
        "tier quota (QuotaFailure PerMinute + RetryInfo 5s, 'Please retry in 5.2s.'), "
        "maxAttempts=1",
        gemini_429(GEMINI_QUOTA_MESSAGE, [
            quota_failure("GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
            retry_info("5s")])),
    "gemini-429-per-day": lambda: gemini_case(
        "429-per-day", "429 RESOURCE_EXHAUSTED, daily quota (QuotaFailure PerDay + RetryInfo "
        "3600s), maxAttempts=1",
        gemini_429(GEMINI_QUOTA_MESSAGE.replace("5.2s", "3600s"), [
            quota_failure("GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
            retry_info("3600s")])),
    "gemini-429-retryinfo-3600s": lambda: gemini_case(
        "429-retryinfo-3600s", "429 RESOURCE_EXHAUSTED, details: [RetryInfo 3600s], "
        "maxAttempts=1", gemini_429("Resource has been exhausted (e.g. check quota).",
                                    [retry_info("3600s")])),
    "gemini-429-retry-after-5": lambda: gemini_case(
        "429-retry-after-5", "429 RESOURCE_EXHAUSTED, no details, header retry-after: 5, "
        "maxAttempts=1", gemini_429("Resource has been exhausted (e.g. check quota).", [],
                                    {"retry-after": "5"})),
    "gemini-429-retryinfo-5s-attempts-3": lambda: gemini_case(
        "429-retryinfo-5s-attempts-3", "429 RESOURCE_EXHAUSTED, RetryInfo 5s, maxAttempts=3",
        gemini_429("Resource has been exhausted (e.g. check quota).", [retry_info("5s")]),
        max_attempts=3),
}


# -- Copilot CLI ---------------------------------------------------------------------------
def copilot_case(name: str, note: str, reply: ApiError | None) -> None:
    box = Sandbox()
    with OpenAIStub() as stub:
        if reply is not None:
            stub.push(reply)
        else:
            stub.push(Text("hi there"))
        usage = box.root / "usage.json"
        env = {"COPILOT_PROVIDER_BASE_URL": stub.api_url, "COPILOT_PROVIDER_API_KEY": "sk-stub",
               "COPILOT_OFFLINE": "true", "COPILOT_MODEL": "gpt-4o"}
        result = run([binary("copilot"), "--yolo", "--output-format", "json",
                      "--usage-output-file", str(usage)], "Say hi", env, box)
        # keep the JSON lines that are not the long startup ones
        keep = [line for line in result["stdout"].splitlines()
                if not line.startswith('{"type":"session.skills_loaded"')]
        result["stdout"] = "\n".join(keep)
        extra = {"usage-output-file": usage.read_text() if usage.exists() else "(none)"}
        save(f"copilot-{name}", result, stub, note, extra)
    box.cleanup()


COPILOT_CASES: dict[str, Callable[[], None]] = {
    "copilot-429-retry-after-5": lambda: copilot_case(
        "429-retry-after-5", "429 rate_limit_exceeded, retry-after: 5", openai_rate("5")),
    "copilot-429-retry-after-3600": lambda: copilot_case(
        "429-retry-after-3600", "429 rate_limit_exceeded, retry-after: 3600",
        openai_rate("3600")),
    "copilot-429-insufficient-quota": lambda: copilot_case(
        "429-insufficient-quota", "429 insufficient_quota (no retry-after)",
        insufficient_quota()),
    "copilot-success-usage": lambda: copilot_case(
        "success-usage", "success, for --usage-output-file and the result line", None),
}


# -- aider ---------------------------------------------------------------------------------
def aider_binary() -> str:
    venv = cache_dir() / "aider" / "bin" / "aider"
    return str(venv) if os.access(venv, os.X_OK) else binary("aider")


def aider_case(name: str, note: str, replies: list[Any], *args: str) -> None:
    box = Sandbox()
    subprocess.run(["git", "init", "-q", str(box.work)], check=True)
    with OpenAIStub() as stub:
        stub.push(*replies)
        message = box.root / f"message-{uuid.uuid4().hex[:8]}.txt"
        message.write_text("Say hi")
        env = {"OPENAI_API_BASE": stub.api_url, "OPENAI_API_KEY": "sk-stub",
               "AIDER_CHECK_UPDATE": "false", "AIDER_ANALYTICS": "false"}
        result = run([aider_binary(), "--yes-always", "--no-auto-commits", *args,
                      "--message-file", str(message)], None, env, box)
        save(f"aider-{name}", result, stub, note)
    box.cleanup()


AIDER_CASES: dict[str, Callable[[], None]] = {
    "aider-429-retry-after-5": lambda: aider_case(
        "429-retry-after-5", "429 rate_limit_exceeded, retry-after: 5", [openai_rate("5")]),
    "aider-429-retry-after-3600": lambda: aider_case(
        "429-retry-after-3600", "429 rate_limit_exceeded, retry-after: 3600",
        [openai_rate("3600")]),
    "aider-429-insufficient-quota": lambda: aider_case(
        "429-insufficient-quota", "429 insufficient_quota (no retry-after)",
        [insufficient_quota()]),
    "aider-success-tokens": lambda: aider_case(
        "success-tokens", "success, for the Tokens/Cost line",
        [Text("Hi! Nothing to edit.")]),
    "aider-429-quota-no-pretty": lambda: aider_case(
        "429-quota-no-pretty", "429 insufficient_quota, with Tinytown's preset flags "
        "--no-check-update --no-analytics --no-pretty --no-stream",
        [insufficient_quota()], "--no-check-update", "--no-analytics", "--no-pretty",
        "--no-stream"),
    "aider-success-no-pretty": lambda: aider_case(
        "success-no-pretty", "success with --no-pretty --no-stream, for the Tokens/Cost line",
        [Text("Hi! Nothing to edit.")], "--no-check-update", "--no-analytics", "--no-pretty",
        "--no-stream"),
}


# -- auggie --------------------------------------------------------------------------------
class BillingAugmentStub(AugmentStub):
    """Turns on the server flag --show-cost needs (featureFlagsV2.cliEnableShowCredits,
    from get-models feature_flags.cli_enable_show_credits) and adds a billing node
    (type 9: billing_metadata {transaction_id, credits_consumed, cost_usd, usage_unit})
    to each chat-stream answer; usage_unit 2 = USD ("Cost: $…"), 1 = credits."""

    usage_unit = 2

    def route(self, rec: Any) -> Any:
        answer = super().route(rec)
        path = rec.path.strip("/")
        if path == "get-models" and isinstance(answer.body, dict):
            answer.body["feature_flags"] = {"cli_enable_show_credits": True}
        if path == "chat-stream" and answer.status == 200:
            billing = {"transaction_id": "tx_" + uuid.uuid4().hex[:8], "usage_unit":
                       self.usage_unit, "credits_consumed": 42, "cost_usd": "0.0123"}
            node = json.dumps({"text": "", "nodes": [{"id": 8, "type": 9, "content": "",
                                                      "billing_metadata": billing}]})
            chunks = list(answer.chunks)
            answer.chunks = [*chunks[:-1], node.encode() + b"\n", chunks[-1]]
        return answer


def auggie_case(name: str, note: str, reply: Any, *args: str, fmt: str = "json",
                stub_class: type[AugmentStub] = AugmentStub) -> None:
    box = Sandbox()
    with stub_class() as stub:
        stub.push(reply)
        instruction = box.root / "instruction.txt"
        instruction.write_text("Say hi")
        result = run([binary("auggie"), "--print", "--output-format", fmt, *args,
                      "--instruction-file", str(instruction)], None,
                     {"AUGMENT_SESSION_AUTH": stub.session_auth()}, box)
        save(f"auggie-{name}", result, stub, note)
    box.cleanup()


AUGGIE_CASES: dict[str, Callable[[], None]] = {
    "auggie-429-retry-after-5": lambda: auggie_case(
        "429-retry-after-5", "429, retry-after: 5, --retry-timeout 2",
        ApiError(429, "Rate limit exceeded", headers={"retry-after": "5"}, times=None),
        "--retry-timeout", "2"),
    "auggie-429-retry-after-3600": lambda: auggie_case(
        "429-retry-after-3600", "429, retry-after: 3600, --retry-timeout 2",
        ApiError(429, "Rate limit exceeded", headers={"retry-after": "3600"}, times=None),
        "--retry-timeout", "2"),
    "auggie-402-credits": lambda: auggie_case(
        "402-credits", "402 Payment Required (out of credits), --retry-timeout 2",
        ApiError(402, "You are out of credits", times=None), "--retry-timeout", "2"),
    "auggie-success-show-cost": lambda: auggie_case(
        "success-show-cost", "success with --show-cost", Text("hi there"), "--show-cost"),
    "auggie-success-show-cost-text": lambda: auggie_case(
        "success-show-cost-text", "success with --show-cost, --output-format text",
        Text("hi there"), "--show-cost", fmt="text"),
    "auggie-success-show-cost-billing": lambda: auggie_case(
        "success-show-cost-billing", "success with --show-cost, --output-format text, the "
        "server flag cli_enable_show_credits on and a billing node (usage_unit 2 = USD, "
        "cost_usd 0.0123) in the answer", Text("hi there"), "--show-cost", fmt="text",
        stub_class=BillingAugmentStub),
}

CASES = {**CLAUDE_CASES, **CODEX_CASES, **GEMINI_CASES, **COPILOT_CASES, **AIDER_CASES,
         **AUGGIE_CASES}


def main(prefixes: list[str]) -> None:
    for name, case in CASES.items():
        if not prefixes or any(name.startswith(p) for p in prefixes):
            try:
                case()
            except Exception as exc:  # keep going; the case is simply missing
                print(f"!! {name}: {exc!r}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
