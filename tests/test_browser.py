"""The served explorer in a real headless Chromium: training finishes, the support-size slider
re-adapts the target chart, a density change restarts training and updates the edge view."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `widgets` lives next to `metacadi`

from widgets.harness import INSTALL_JS, SNAPSHOT_JS, ExplorerServer, chromium_problem, launch_chromium  # noqa: E402

pytestmark = pytest.mark.browser

# Small enough to train in seconds on two free cores, large enough for target probabilities
# that move with the support set.
SERVER_ENV = {"METACADI_EXPLORER_STEPS": "40", "METACADI_EXPLORER_VARIABLES": "8", "METACADI_EXPLORER_SEED": "0"}
TRAINING_TIMEOUT_MS = 240_000
UPDATE_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser_ready() -> None:
    problem = chromium_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser test cannot run: {problem}")
    pytest.skip(f"browser test skipped outside CI: {problem}")


def snapshot(page, role: str) -> dict | None:
    return page.evaluate(SNAPSHOT_JS, role)


def bar_heights(snap: dict | None) -> list[float] | None:
    if not snap:
        return None
    bars = next((t for t in snap["traces"] if t["name"] == "P(target)"), None)
    return None if bars is None else bars["y"]


def test_explorer_in_chromium(browser_ready, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with ExplorerServer(env=SERVER_ENV) as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1150})
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(server.url, wait_until="load", timeout=60_000)
            page.wait_for_selector(".support-size .noUi-handle", timeout=60_000)
            page.evaluate(INSTALL_JS)

            # 1. meta-training runs in the background and finishes
            trained = page.locator(".training-status").first.get_by_text(re.compile(r"Trained: \d+ steps"))
            expect(trained).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
            page.wait_for_function(
                "() => { const s = window.__explorer.snapshot('targets'); return s && s.title.includes('(10 rows)'); }",
                timeout=UPDATE_TIMEOUT_MS,
            )
            before = snapshot(page, "targets")
            assert len(bar_heights(before)) == 8

            # 2. support size 10 -> 100 with the keyboard on the slider handle: only adaptation runs
            handle = page.locator(".support-size .noUi-handle")
            handle.focus()
            handle.press("End")
            page.wait_for_function(
                "() => { const s = window.__explorer.snapshot('targets'); return s && s.title.includes('(100 rows)'); }",
                timeout=UPDATE_TIMEOUT_MS,
            )
            after = snapshot(page, "targets")
            assert bar_heights(after) != bar_heights(before), "the target probabilities did not change with the support size"
            assert all(0.0 <= p <= 1.0 for p in bar_heights(after))
            expect(trained).to_be_visible()  # no retraining was triggered
            page.screenshot(path=str(tmp_path / "explorer-support-100.png"), full_page=True)

            # 3. a density change starts a new meta-training with a visible progress indicator,
            #    and the edge view moves on to the new system's posterior
            heatmap_before = snapshot(page, "heatmap")
            page.evaluate("() => { window.__heatmapBefore = window.__explorer.signature('heatmap'); }")
            density = page.locator(".expected-degree .noUi-handle")
            density.focus()
            density.press("ArrowRight")
            expect(page.locator("progress.training-progress")).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
            status = page.locator(".training-status").first
            expect(status.get_by_text(re.compile(r"Meta-training… step|Building the system"))).to_be_visible(timeout=UPDATE_TIMEOUT_MS)
            expect(trained).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
            page.wait_for_function(
                """() => { const s = window.__explorer.snapshot('heatmap');
                           return s && s.traces.length > 0 && s.traces[0].z
                                  && window.__explorer.signature('heatmap') !== window.__heatmapBefore; }""",
                timeout=UPDATE_TIMEOUT_MS,
            )
            heatmap_after = snapshot(page, "heatmap")
            assert heatmap_after["traces"][0]["z"] != heatmap_before["traces"][0]["z"]
            expect(page.locator("progress.training-progress")).to_be_hidden()
            page.screenshot(path=str(tmp_path / "explorer-density.png"), full_page=True)
            expect(page.locator(".explorer-alert").first).to_be_hidden()  # no error was shown
            assert page_errors == [], f"JavaScript errors on the page: {page_errors}"
        finally:
            browser.close()
    assert "Traceback" not in server.log(), server.log()
