"""Drive headless Chromium through the DevTools protocol over a pipe (``--remote-debugging-pipe``: no port, no
network, no extra package): open a page, press real keys (``Input.dispatchKeyEvent``), collect the files it
downloads and every console message, script error and CSP refusal."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from helpers import CHROMIUM

# Keys as Input.dispatchKeyEvent wants them: key -> (code, windowsVirtualKeyCode, text)
SPECIAL = {"Enter": ("Enter", 13, "\r"), "ArrowRight": ("ArrowRight", 39, ""), "ArrowLeft": ("ArrowLeft", 37, ""),
           "ArrowUp": ("ArrowUp", 38, ""), "ArrowDown": ("ArrowDown", 40, ""), "Backspace": ("Backspace", 8, "")}


class Browser:
    """One headless Chromium with one page; ``close()`` (or the context manager) stops it."""

    def __init__(self, profile: Path, downloads: Path) -> None:
        self.downloads = downloads
        downloads.mkdir(parents=True, exist_ok=True)
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds() -> None:  # the child's fd 3 reads our commands, fd 4 carries its answers
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=fds, pass_fds=(3, 4))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads), eventsEnabled=True)
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("no message from Chromium in time")
            chunk = os.read(self._from_chrome, 65536)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe (exit code {self.proc.poll()})")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method: str, session: bool = False, timeout: float = 60, **params: Any) -> dict[str, Any]:
        """Send one command, return its result (events met meanwhile are kept in ``events``)."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60, since: int = 0, **match: Any) -> dict[str, Any]:
        """The first event ``method`` whose params include ``match``, among the events from index ``since`` on
        (received already or coming)."""
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for ev in self.events[seen:]:
                if ev.get("method") == method and all(ev["params"].get(k) == v for k, v in match.items()):
                    return ev
            seen = len(self.events)
            self.events.append(self._read(deadline))

    def open(self, url: str) -> None:
        since = len(self.events)
        self.call("Page.navigate", session=True, url=url)
        self.wait_for("Page.loadEventFired", since=since)

    def eval(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        return result["result"].get("value")

    def press(self, *keys: str) -> None:
        """Real key presses, one after the other (``"3"``, ``"a"``, ``"Enter"``, ...)."""
        for key in keys:
            code, vk, text = SPECIAL.get(key, (f"Key{key.upper()}" if key.isalpha() else f"Digit{key}",
                                               ord(key.upper()), key))
            down = {"key": key, "code": code, "windowsVirtualKeyCode": vk}
            self.call("Input.dispatchKeyEvent", session=True, type="keyDown", text=text, **down)
            self.call("Input.dispatchKeyEvent", session=True, type="keyUp", **down)

    def type_text(self, text: str) -> None:
        self.call("Input.insertText", session=True, text=text)

    def download(self, since: int, timeout: float = 60) -> Path:
        """The file of the first download completed after event ``since`` (``len(events)`` before the key press)."""
        done = self.wait_for("Browser.downloadProgress", timeout, since, state="completed")
        begin = next(e for e in self.events if e.get("method") == "Browser.downloadWillBegin"
                     and e["params"]["guid"] == done["params"]["guid"])
        return self.downloads / begin["params"]["suggestedFilename"]

    def problems(self) -> list[str]:
        """Script errors, console errors and warnings, CSP refusals met so far."""
        out = []
        for ev in self.events:
            p = ev.get("params", {})
            if ev.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(p["exceptionDetails"])[:400])
            elif ev.get("method") == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(p["entry"]["text"])
            elif ev.get("method") == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
                out.append(json.dumps(p["args"])[:400])
        return out
