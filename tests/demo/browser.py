"""A headless Chromium driven through chromedriver's W3C WebDriver protocol (plain JSON over HTTP
on a loopback port, so no client library is needed): open a page, run a script in it, and take
a screenshot of the whole page. Debian's ``chromium`` and ``chromium-driver`` provide both programs."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = ("chromedriver",)


def find(names: tuple[str, ...]) -> str | None:
    return next((path for path in map(shutil.which, names) if path), None)


class Browser:
    """One headless browser session; use as a context manager."""

    def __init__(self, width: int = 1280, height: int = 900, timeout_s: float = 60.0) -> None:
        chromium, driver = find(CHROMIUM), find(CHROMEDRIVER)
        if not chromium or not driver:
            raise FileNotFoundError("headless Chromium needs chromium and chromedriver on PATH "
                                    "(Debian: apt-get install chromium chromium-driver)")
        self.timeout_s = timeout_s
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.driver = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if time.monotonic() > deadline or self.driver.poll() is not None:
                self.driver.kill()
                raise RuntimeError(f"chromedriver did not start on {self.base}")
            time.sleep(0.1)
        options = {"binary": chromium, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                                "--disable-dev-shm-usage", f"--window-size={width},{height}",
                                                "--hide-scrollbars"]}
        session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = f"/session/{session['sessionId']}"
        self.width = width

    def open(self, url: str) -> None:
        """Navigates to ``url`` and returns once the page has loaded (images included)."""
        self._call("POST", f"{self.session}/url", {"url": url})

    def run(self, script: str):
        """The value of the JavaScript function body ``script`` in the page."""
        return self._call("POST", f"{self.session}/execute/sync", {"script": script, "args": []})

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page (the window grown to the page's height)."""
        height = int(self.run("return document.documentElement.scrollHeight;"))
        self._call("POST", f"{self.session}/window/rect", {"width": self.width, "height": height})
        path.write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))
        return path

    def close(self) -> None:
        try:
            self._call("DELETE", self.session)
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=10)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ready(self) -> bool:
        try:
            return bool(self._call("GET", "/status")["ready"])
        except OSError:
            return False

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            return json.loads(response.read())["value"]
