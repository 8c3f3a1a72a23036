"""A real headless Chromium driven over the DevTools protocol, for tests of pages.

Debian's `chromium` (scripts/test installs it as root), talked to through
`--remote-debugging-pipe`: the protocol's JSON messages, each ended by a NUL byte, on
file descriptors 3 (to the browser) and 4 (from it). No websocket client, no Selenium
or Playwright, nothing fetched at run time. Every wait has a deadline.

    with Chromium.launch(folder) as browser:
        page = browser.new_page()          # a browser context of its own: its own cookies
        page.goto("http://127.0.0.1:8765/")
        page.wait_for("document.title === 'Tinytown'", 10, "the page")
        page.click("button[data-action=interrupt]")
        page.screenshot(folder / "page.png")
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

# Puts the pipe's two ends at descriptors 3 and 4 and runs the browser (Popen can pass
# descriptors, not renumber them).
_AT_3_AND_4 = """\
import fcntl, os, sys
to_browser, from_browser = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.dup2(to_browser, 3)
os.dup2(from_browser, 4)
for fd in {to_browser, from_browser, int(sys.argv[1]), int(sys.argv[2])} - {3, 4}:
    os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


def chromium_or_skip() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (scripts/test installs Debian's package as root)")
    return found


class CdpError(AssertionError):
    pass


class Chromium:
    """One headless browser process; `new_page()` opens pages in fresh contexts."""

    def __init__(self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int,
                 log: Path) -> None:
        self.proc = proc
        self._in = to_browser
        self._out = from_browser
        self.log = log
        self._buffer = b""
        self._next_id = 0
        self.dialogs: list[str] = []  # every dialog's message (each one accepted)
        self.exceptions: list[str] = []  # uncaught JavaScript exceptions of the pages

    @classmethod
    def launch(cls, folder: Path, *flags: str) -> Chromium:
        binary = chromium_or_skip()
        folder.mkdir(parents=True, exist_ok=True)
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        log = folder / "chromium.log"
        argv = [binary, "--headless", "--remote-debugging-pipe", "--no-sandbox",
                "--disable-gpu", "--disable-quic", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
                "--password-store=basic", "--window-size=1280,900",
                f"--user-data-dir={folder / 'profile'}", *flags, "about:blank"]
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-c", _AT_3_AND_4, str(to_browser_r),
                                     str(from_browser_w), *argv],
                                    pass_fds=(to_browser_r, from_browser_w),
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        os.close(to_browser_r)
        os.close(from_browser_w)
        browser = cls(proc, to_browser_w, from_browser_r, log)
        browser.send("Browser.getVersion", timeout=60)  # up and answering
        return browser

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.post("Browser.close")
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for fd in (self._in, self._out):
            try:
                os.close(fd)
            except OSError:
                pass

    # --- the protocol ------------------------------------------------------------

    def post(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> int:
        """Send a command without waiting for its answer; its id."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._in, data):]
        return self._next_id

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 30) -> dict[str, Any]:
        """Send a command and return its result (CdpError for an error answer)."""
        wanted = self.post(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline, method)
            if message.get("id") == wanted:
                if "error" in message:
                    raise CdpError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        kind = message.get("method")
        params = message.get("params", {})
        if kind == "Page.javascriptDialogOpening":  # confirm() and alert(): say yes
            self.dialogs.append(str(params.get("message")))
            self.post("Page.handleJavaScriptDialog", {"accept": True}, message.get("sessionId"))
        elif kind == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.exceptions.append(str(details.get("exception", {}).get("description")
                                       or details.get("text")))

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError(f"no answer to {waiting_for} in time")
            ready, _, _ = select.select([self._out], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._out, 1 << 20)
            if not chunk:
                raise CdpError(f"chromium exited ({self.proc.poll()}): "
                               f"{self.log.read_text(errors='replace')[-2000:]}")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def pump(self, seconds: float = 0.0) -> None:
        """Handle the events that came (dialogs, exceptions) without a command."""
        deadline = time.monotonic() + seconds
        while True:
            if b"\0" not in self._buffer:
                ready, _, _ = select.select([self._out], [], [],
                                            max(0.0, deadline - time.monotonic()))
                if not ready:
                    return
            self._event(self._receive(time.monotonic() + 5, "an event"))

    # --- pages ---------------------------------------------------------------------

    def new_page(self) -> Page:
        """A page in a browser context of its own (cookies and storage of its own)."""
        context = self.send("Target.createBrowserContext")["browserContextId"]
        target = self.send("Target.createTarget", {"url": "about:blank",
                                                   "browserContextId": context})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target,
                                                      "flatten": True})["sessionId"]
        page = Page(self, session, context)
        for domain in ("Page.enable", "Runtime.enable"):
            page.send(domain)
        return page


class Page:
    def __init__(self, browser: Chromium, session: str, context: str) -> None:
        self.browser = browser
        self.session = session
        self.context = context

    def send(self, method: str, params: dict[str, Any] | None = None,
             timeout: float = 30) -> dict[str, Any]:
        return self.browser.send(method, params, self.session, timeout)

    def goto(self, url: str, timeout: float = 30) -> None:
        """Navigate and wait until the new document has loaded (scripts run)."""
        self.eval("window.__left = true")  # gone from the window of the next document
        answer = self.send("Page.navigate", {"url": url}, timeout)
        if answer.get("errorText"):
            raise CdpError(f"cannot load {url}: {answer['errorText']}")
        self.wait_for("!window.__left && document.readyState === 'complete'", timeout,
                      f"{url} to load")

    def eval(self, expression: str, timeout: float = 30) -> Any:
        """The expression's value (JSON-able), awaited when it is a promise."""
        answer = self.send("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True, "awaitPromise": True},
                           timeout)
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise CdpError(f"{expression!r} threw: "
                           f"{details.get('exception', {}).get('description') or details}")
        return answer.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Evaluate until the value is truthy; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                value = self.eval(expression)
            except CdpError as exc:  # the document changed under it (a navigation)
                if not any(said in str(exc) for said in (
                        "Execution context was destroyed", "Cannot find context",
                        "Inspected target navigated or closed")):
                    raise
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                     f" ({expression})")
            self.browser.pump(delay)
            delay = min(delay * 1.5, 0.25)

    def _center(self, selector: str, timeout: float) -> tuple[float, float]:
        """Where the element's middle is, once it is there and visible."""
        try:
            box = self.wait_for(f"""(() => {{
                const node = document.querySelector({json.dumps(selector)});
                if (!node) return null;
                node.scrollIntoView({{block: "center"}});
                const r = node.getBoundingClientRect();
                return r.width * r.height ? [r.x + r.width / 2, r.y + r.height / 2] : null;
            }})()""", timeout, f"{selector} to click")
        except AssertionError:
            raise CdpError(f"no visible {selector} to click at {self.eval('location.href')}:"
                           f" {self.eval('document.body.outerHTML')[:6000]}") from None
        return float(box[0]), float(box[1])

    def click(self, selector: str, timeout: float = 10) -> None:
        """A real mouse click at the middle of the element (waiting for it to show)."""
        x, y = self._center(selector, timeout)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                   "button": "left", "clickCount": 1})

    def type(self, selector: str, text: str) -> None:
        """Focus the field (once it is there) and type `text` into it, as a keyboard
        would."""
        self.wait_for(f"!!document.querySelector({json.dumps(selector)})", 10, selector)
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def select(self, selector: str, value: str) -> None:
        self.eval(f"""(() => {{ const s = document.querySelector({json.dumps(selector)});
            s.value = {json.dumps(value)}; s.dispatchEvent(new Event("change")); }})()""")

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page as it is drawn now (after the next two frames)."""
        self.eval("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        data = self.send("Page.captureScreenshot", {"format": "png",
                                                    "captureBeyondViewport": True})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def cookies(self) -> list[dict[str, Any]]:
        """This page's context's cookies, with their flags (HttpOnly ones included)."""
        found: list[dict[str, Any]] = self.browser.send(
            "Storage.getCookies", {"browserContextId": self.context})["cookies"]
        return found
