"""Serve the explorer and drive it in headless Chromium: shared by the browser test and the
latency benchmark.

* :class:`ExplorerServer` runs ``panel serve widgets/explorer.py`` (this interpreter's Panel) on a
  free local port in a subprocess, waits until the page answers, and always stops it.
* :func:`launch_chromium` starts Debian's ``/usr/bin/chromium`` through Playwright's
  ``executable_path``; no Playwright-managed browser is ever downloaded.
* ``*_JS`` are page functions for ``page.evaluate``: they look through Bokeh's shadow roots for
  the plotly plot whose ``layout.meta`` names its role (``"targets"``, ``"heatmap"``, …).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "widgets" / "explorer.py"
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SETUP_HINT = "run `bash scripts/setup.sh --browser` to install Debian's chromium"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium_problem() -> str | None:
    """Why the browser cannot be driven here, or ``None`` when it can."""
    if not (os.path.isfile(CHROMIUM_PATH) and os.access(CHROMIUM_PATH, os.X_OK)):
        return f"{CHROMIUM_PATH} is missing: {SETUP_HINT}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing: run `bash scripts/setup.sh --browser` (it installs the [test] extra)"
    return None


def require_chromium(what: str) -> None:
    """In a test: return when Chromium can be driven; otherwise fail under CI (``CI=true``, where
    the setup script must have installed it) and skip elsewhere, naming ``what`` and the reason."""
    import pytest

    problem = chromium_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} cannot run: {problem}")
    pytest.skip(f"{what} skipped outside CI: {problem}")


def launch_chromium(playwright: Any, **kwargs: Any):
    """Headless Chromium from ``/usr/bin/chromium`` (never a downloaded Playwright build)."""
    return playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS, headless=True, **kwargs)


class ExplorerServer:
    """``panel serve widgets/explorer.py`` in a subprocess, as a context manager.

    Args:
        env: extra environment variables (e.g. ``METACADI_EXPLORER_STEPS``).
        port: port to serve on (default: a free one).
        startup_timeout: seconds to wait for the page to answer.

    Attributes: ``url`` (the app's page), ``log_path`` (the server's stdout and stderr).
    """

    def __init__(self, env: dict[str, str] | None = None, port: int | None = None, startup_timeout: float = 120.0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/explorer"
        self.env = {**os.environ, **(env or {})}
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None
        self._log_dir = tempfile.mkdtemp(prefix="metacadi-explorer-serve-")
        self.log_path = Path(self._log_dir) / "panel-serve.log"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "panel", "serve", str(APP),
            "--address", "127.0.0.1", "--port", str(self.port),
            f"--allow-websocket-origin=127.0.0.1:{self.port}",
        ]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> "ExplorerServer":
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                self.command(), cwd=REPO, env=self.env, stdout=log_file, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"panel serve exited with code {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"panel serve did not answer at {self.url} within {self.startup_timeout} s:\n{self.log()}")

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit within 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        if exc[0] is None:
            shutil.rmtree(self._log_dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# page functions (run with page.evaluate / page.wait_for_function)
# ------------------------------------------------------------------------------------------

#: Defines ``window.__explorer`` helpers once per page: ``plot(role)`` finds a plotly div by
#: ``layout.meta`` through every shadow root; ``signature(role)`` summarises what it shows.
INSTALL_JS = """
() => {
  if (window.__explorer) return true;
  const plots = () => {
    const found = [];
    const walk = (root) => {
      root.querySelectorAll('.js-plotly-plot').forEach((el) => found.push(el));
      root.querySelectorAll('*').forEach((el) => { if (el.shadowRoot) walk(el.shadowRoot); });
    };
    walk(document);
    return found;
  };
  const plot = (role) => plots().find((el) => el.layout && el.layout.meta === role) || null;
  const snapshot = (role) => snapshotOf(plot(role));
  const snapshotOf = (el) => {
    if (!el || !el.data) return null;
    const title = el.layout.title ? (el.layout.title.text || el.layout.title) : '';
    return {title: String(title), traces: el.data.map((t) => ({name: t.name || null, x: t.x || null, y: t.y || null, z: t.z || null}))};
  };
  const signature = (role) => JSON.stringify(snapshot(role));
  const signatureOf = (el) => JSON.stringify(snapshotOf(el));
  window.__explorer = {plots, plot, snapshot, snapshotOf, signature, signatureOf};
  return true;
}
"""

#: ``(role) => snapshot``: the plot's title and each trace's name, x, y and z.
SNAPSHOT_JS = "(role) => window.__explorer.snapshot(role)"

#: Arms a latency measurement on the plot ``role``: a capturing ``keydown`` listener stamps
#: ``performance.now()`` at the key press (``start``); a MutationObserver on the plot stamps the
#: first moment its data differ from now (``data``), and the frame after that, when the new chart
#: has been painted (``painted``). All three land in ``window.__latency``.
ARM_LATENCY_JS = """
(role) => {
  const ex = window.__explorer;
  const before = ex.signature(role);
  const state = {start: null, data: null, painted: null};
  window.__latency = state;
  const onKey = () => { if (state.start === null) state.start = performance.now(); };
  window.addEventListener('keydown', onKey, {capture: true, once: true});
  let target = ex.plot(role);
  const changed = () => {
    if (!target || !target.isConnected) target = ex.plot(role);  // Panel may swap the element
    return target !== null && ex.signatureOf(target) !== before;
  };
  const check = () => {
    if (state.data !== null || !changed()) return;
    state.data = performance.now();
    observer.disconnect();
    // two frames: the first runs before the paint of the new chart, the second after it
    requestAnimationFrame(() => requestAnimationFrame(() => { state.painted = performance.now(); }));
  };
  const observer = new MutationObserver(check);
  if (target) observer.observe(target, {subtree: true, childList: true, attributes: true});
  const poll = () => { check(); if (state.data === null) requestAnimationFrame(poll); };
  requestAnimationFrame(poll);
  return before;
}
"""
