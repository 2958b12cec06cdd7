"""A chapter in the project's JupyterLab, in a real headless Chromium.

JupyterLab runs from this environment (``.venv``) with the settings ``scripts/setup.sh`` installs
there, on a copy of one chapter. Double-clicking the chapter in the file browser must open it as
a notebook (jupytext's viewer, not the Markdown editor); Run All must execute every cell without
an error; moving the chapter's Panel slider must recompute its plot in the kernel (the widgets
are live in a kernel and only embedded when the book is built).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
import jupytext
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `widgets` lives next to `metacadi`

from widgets.harness import INSTALL_JS, require_chromium, free_port, launch_chromium  # noqa: E402

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
# A short chapter whose widget (the SoftSort temperature) recomputes in the kernel.
CHAPTER = REPO / "book" / "03_dpdag.md"
RUN_ALL_TIMEOUT_MS = 90_000
UPDATE_TIMEOUT_MS = 60_000  # a liveness bound, generous for a loaded 2-core machine; no speed is asserted

#: Every plotly figure on the page (through Panel's shadow roots), as one comparable string.
PLOTS_SIGNATURE_JS = "() => JSON.stringify(window.__explorer.plots().map((el) => window.__explorer.signatureOf(el)))"

#: The subplot titles (annotations) of every plotly figure on the page.
ANNOTATIONS_JS = "() => window.__explorer.plots().flatMap((el) => ((el.layout && el.layout.annotations) || []).map((a) => a.text))"

#: ``{cells, executed, errors}``: code cells, cells with an execution count, error outputs.
#: IPython renders an exception as an stderr output holding the traceback (``Cell In[n], line k``).
CELL_STATE_JS = """
() => {
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')];
  const errors = [...document.querySelectorAll('.jp-NotebookPanel .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map((el) => el.textContent)
    .filter((text) => /Traceback|Cell In\\[\\d+\\]|Error:/.test(text));
  return {cells: prompts.length, executed: prompts.filter((p) => /\\[\\d+\\]/.test(p.textContent)).length,
          busy: prompts.filter((p) => p.textContent.includes('*')).length, errors};
}
"""


@pytest.fixture(scope="module")
def browser_ready() -> None:
    require_chromium("the JupyterLab browser test")


class LabServer:
    """``jupyter lab`` from this environment on a free loopback port, without a token
    (:meth:`start`, :meth:`stop`).

    The user's own Jupyter configuration and settings (``~/.jupyter``) are kept out: config,
    data, runtime, user-settings and workspace directories all live in a temporary folder. The
    project's settings overrides inside ``sys.prefix`` (written by ``scripts/setup.sh``) apply.
    """

    def __init__(self, root_dir: Path, startup_timeout: float = 60.0) -> None:
        self.root_dir = Path(root_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.home = Path(tempfile.mkdtemp(prefix="metacadi-lab-home-"))
        self.log_path = self.home / "jupyter-lab.log"
        self.process: subprocess.Popen | None = None

    def environment(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for variable, folder in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                                 ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTERLAB_SETTINGS_DIR", "user-settings"),
                                 ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
            env[variable] = str(self.home / folder)
        env.pop("METACADI_BOOK_BUILD", None)  # a live kernel, as for a reader
        env["PANEL_INLINE"] = "1"  # as scripts/lab.sh: Panel's JavaScript from the kernel, not a CDN
        # Every cell stays in the page (no virtual scrolling), so the test can see all prompts.
        tracker = self.home / "user-settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        notification = self.home / "user-settings" / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True, exist_ok=True)
        (notification / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        return env

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "jupyter", "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            "--IdentityProvider.token=", "--ServerApp.password=",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # no extension lookups on the network
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        ]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start the server and wait until it answers (stop it again if it does not)."""
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(self.command(), cwd=self.root_dir, env=self.environment(),
                                            stdout=log_file, stderr=subprocess.STDOUT)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"jupyter lab did not answer at {self.url} within {self.startup_timeout} s:\n{self.log()}")

    def stop(self) -> None:
        """Shut the server (and with it the kernels) down; kill it if it does not exit in 15 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def remove_files(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


def cell_state(page) -> dict:
    return page.evaluate(CELL_STATE_JS)


def test_chapter_in_jupyterlab(browser_ready, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    root = tmp_path / "book"
    root.mkdir()
    shutil.copy(CHAPTER, root / CHAPTER.name)  # a copy: the editor's autosave never touches the repository
    server = LabServer(root)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)  # starts while nothing else runs yet
        try:
            server.start()
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            # Bokeh's and Panel's JavaScript must come with the kernel's output (PANEL_INLINE), not
            # from a CDN that an offline machine cannot reach
            failed_loads: list[str] = []
            page.on("requestfailed", lambda request: failed_loads.append(request.url)
                    if re.search(r"bokeh|holoviz|panel", request.url) else None)
            page.goto(f"{server.url}/lab?reset", wait_until="load", timeout=60_000)

            # 1. a double-click in the file browser opens the chapter as a notebook
            item = page.locator(".jp-DirListing-item", has_text=CHAPTER.name)
            expect(item).to_be_visible(timeout=60_000)
            item.dblclick()
            notebook = page.locator(".jp-NotebookPanel")
            expect(notebook).to_be_visible(timeout=30_000)
            expect(page.locator(".jp-FileEditor")).to_have_count(0)
            code_cells = sum(cell.cell_type == "code" for cell in jupytext.read(CHAPTER).cells)
            expect(notebook.locator(".jp-CodeCell")).to_have_count(code_cells, timeout=30_000)
            # the chapter's kernel starts by itself (no kernel picker) and becomes idle
            expect(page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"Python 3 \(metacadi\) \| Idle"))).to_be_visible(timeout=60_000)

            # 2. Run All: every code cell runs, none raises
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
            page.wait_for_function(
                f"() => {{ const s = ({CELL_STATE_JS})(); return s.errors.length > 0 || (s.cells > 0 && s.executed === s.cells && s.busy === 0); }}",
                timeout=RUN_ALL_TIMEOUT_MS,
            )
            state = cell_state(page)
            assert state["errors"] == [], f"a cell raised:\n{state['errors'][0]}"
            assert state["executed"] == state["cells"] > 10, state

            # 3. the Panel slider is live: a key press on it recomputes the figure in the kernel
            page.evaluate(INSTALL_JS)
            handle = page.locator(".noUi-handle").first
            handle.scroll_into_view_if_needed(timeout=UPDATE_TIMEOUT_MS)
            page.wait_for_function("() => window.__explorer.plots().length > 0", timeout=UPDATE_TIMEOUT_MS)
            before = page.evaluate(PLOTS_SIGNATURE_JS)
            page.evaluate(f"() => {{ window.__plotsBefore = ({PLOTS_SIGNATURE_JS})(); }}")
            handle.focus()
            handle.press("ArrowRight")
            page.wait_for_function(f"() => ({PLOTS_SIGNATURE_JS})() !== window.__plotsBefore", timeout=UPDATE_TIMEOUT_MS)
            after = page.evaluate(PLOTS_SIGNATURE_JS)
            assert after != before
            titles = page.evaluate(ANNOTATIONS_JS)
            assert "SoftSort P̃ (τ = 0.5)" in titles, f"the temperature did not move from 0.3 to 0.5: {titles}"
            page.screenshot(path=str(tmp_path / "jupyterlab-chapter.png"), full_page=True)
            assert cell_state(page)["errors"] == []
            assert page_errors == [], f"JavaScript errors on the page: {page_errors}"
            assert failed_loads == [], f"Bokeh/Panel JavaScript requested from the network: {failed_loads}"
        finally:
            browser.close()
            server.stop()  # also shuts the kernel down
    log = server.log()
    assert "Traceback" not in log, log
    server.remove_files()
