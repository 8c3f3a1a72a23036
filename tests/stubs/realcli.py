"""Finding and running the real agent CLIs for the stub tests: the binaries come from the
cache scripts/install-clis fills; each run gets a fresh HOME and TMPDIR and an environment
built from nothing (PATH and a few basics) plus what the test passes, so nothing of the
user's own configuration or credentials can leak in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "scripts" / "install-clis"


def cache_dir() -> Path:
    return Path(os.environ.get("TT_CLI_CACHE") or Path.home() / ".cache" / "tinytown-clis")


def installed(binary: str) -> str:
    """The CLI's path, or skip the test saying why it is not installed."""
    import pytest

    path, why = find_cli(binary)
    if path is None:
        pytest.skip(why)
    return path


def find_cli(binary: str) -> tuple[str | None, str]:
    """(path of the binary, "") or (None, why not): the cache first (npm CLIs, or a PyPI
    CLI's venv of its own), then PATH."""
    venv = cache_dir() / binary / "bin" / binary
    if os.access(venv, os.X_OK):
        return str(venv), ""
    cached = cache_dir() / "npm" / "node_modules" / ".bin" / binary
    if os.access(cached, os.X_OK):
        return str(cached), ""
    on_path = shutil.which(binary)
    if on_path:
        return on_path, ""
    return None, (f"{binary} is not installed: not in {cached.parent} nor on PATH "
                  f"(run scripts/install-clis)")


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json(self, stream: str = "stdout") -> dict[str, Any]:
        """The JSON object that ends `stream` ("stdout" or "stderr"): a CLI may print
        warnings or a stack trace before it, and may print it on one line or indented."""
        value = last_json_object(self.stdout if stream == "stdout" else self.stderr)
        if value is None:
            raise AssertionError(f"no JSON object ends the {stream}:\n{self.describe()}")
        return value

    def describe(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.returncode} after {self.seconds:.1f}s\n"
                f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}")


def last_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object at the end of `text` that starts at the beginning of a line."""
    decoder = json.JSONDecoder()
    text = text.rstrip()
    start = len(text)
    while True:
        start = text.rfind("{", 0, start)
        if start < 0:
            return None
        if start == 0 or text[start - 1] == "\n":
            try:
                value, end = decoder.raw_decode(text, start)
            except ValueError:
                value, end = None, -1
            if end == len(text) and isinstance(value, dict):
                return value


class Sandbox:
    """A temporary HOME, TMPDIR and work directory for one or more runs of a CLI (runs
    that share a Sandbox share the CLI's session store, as a user's runs would)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="tt-realcli-"))
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        self.work = self.root / "work"
        for d in (self.home, self.tmp, self.work):
            d.mkdir(parents=True, exist_ok=True)

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        base = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "SHELL": "/bin/bash",
            "NO_COLOR": "1",
        }
        return {**base, **extra}

    def run(self, argv: list[str], prompt: str | None, env: dict[str, str],
            timeout: float = 90.0, cwd: Path | None = None) -> Run:
        start = time.monotonic()
        try:
            proc = subprocess.run(
                argv, input=prompt if prompt is not None else "", capture_output=True,
                text=True, cwd=cwd or self.work, env=self.env(env), timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise AssertionError(
                f"{argv[0]} did not finish within {timeout}s\n--- stdout\n{out[-4000:]}"
                f"\n--- stderr\n{err[-4000:]}") from None
        return Run(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# -- Claude Code ---------------------------------------------------------------------------
CLAUDE_ARGS = ["--print", "--dangerously-skip-permissions", "--output-format", "json"]


def claude_env(base_url: str, **extra: str) -> dict[str, str]:
    """What reaches a stub and keeps Claude Code quiet; IS_SANDBOX=1 lets root use
    --dangerously-skip-permissions."""
    return {
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-stub-key",
        "IS_SANDBOX": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        **extra,
    }


# -- Gemini CLI ----------------------------------------------------------------------------
GEMINI_ARGS = ["--skip-trust", "--yolo", "-o", "json"]


def gemini_settings(sandbox: Sandbox, **general: Any) -> Path:
    """~/.gemini/settings.json: API-key auth (without it: "Invalid auth method selected.",
    exit 41), no usage statistics (else it calls play.googleapis.com), and `general`
    settings such as maxAttempts (its retries of 429/5xx; default 10, 5 s apart at first)."""
    settings: dict[str, Any] = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
    }
    if general:
        settings["general"] = general
    path = sandbox.home / ".gemini" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2))
    return path


def gemini_env(base_url: str, **extra: str) -> dict[str, str]:
    return {"GEMINI_API_KEY": "stub-gemini-key", "GOOGLE_GEMINI_BASE_URL": base_url, **extra}


# -- opencode ------------------------------------------------------------------------------
def opencode_config(sandbox: Sandbox, api_url: str, model: str = "gpt-4o") -> Path:
    """~/.config/opencode/opencode.json: a provider of its own (`stub`, through the
    bundled @ai-sdk/openai-compatible) at the OpenAI stub, and its model as the default."""
    config = {
        "$schema": "https://opencode.ai/config.json",
        "model": f"stub/{model}",
        "provider": {"stub": {
            "npm": "@ai-sdk/openai-compatible", "name": "Stub",
            "options": {"baseURL": api_url, "apiKey": "sk-stub"},
            "models": {model: {"name": model}},
        }},
        "autoupdate": False,
        "share": "disabled",
    }
    path = sandbox.home / ".config" / "opencode" / "opencode.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def opencode_env(**extra: str) -> dict[str, str]:
    """No models.dev catalogue download, no update check; npm's registry unreachable, so
    it does not install its plug-in package into ~/.config/opencode (it runs on without)."""
    return {"OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1",
            "npm_config_registry": "http://127.0.0.1:9/", **extra}


# -- Qwen Code -----------------------------------------------------------------------------
def qwen_settings(sandbox: Sandbox) -> Path:
    """~/.qwen/settings.json: the OpenAI-compatible provider, no usage statistics, no
    update check, and no managed auto-memory (after a run it sends a request of its own,
    with tools, to extract memories: it would take the script's next reply)."""
    settings = {
        "security": {"auth": {"selectedType": "openai"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"enableAutoUpdate": False},
        "memory": {"enableManagedAutoMemory": False},
    }
    path = sandbox.home / ".qwen" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2))
    return path


def qwen_env(api_url: str, **extra: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-stub", "OPENAI_BASE_URL": api_url, "OPENAI_MODEL": "gpt-4o",
            **extra}


# -- Cline CLI -----------------------------------------------------------------------------
def cline_providers(sandbox: Sandbox, api_url: str, model: str = "gpt-4o") -> Path:
    """~/.cline/data/settings/providers.json as `cline auth -p openai-compatible -k KEY -m
    MODEL -b URL` writes it (without `updatedAt` Cline drops the entry and falls back
    to its own provider, which needs a login)."""
    providers = {
        "version": 1, "lastUsedProvider": "openai-compatible", "modes": {},
        "providers": {"openai-compatible": {
            "settings": {"provider": "openai-compatible", "apiKey": "sk-stub",
                         "model": model, "baseUrl": api_url},
            "updatedAt": "2026-01-01T00:00:00.000Z", "tokenSource": "manual",
        }},
    }
    path = sandbox.home / ".cline" / "data" / "settings" / "providers.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(providers, indent=2))
    return path
