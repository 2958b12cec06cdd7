"""The built HTML book renders without network access, in a real headless Chromium.

Every page of the table of contents is opened from disk with every request that is not a local
file aborted. Each page must then show its math typeset by MathJax (no raw ``$$`` or ``\\[``),
markdown tables from cells as tables (no raw ``|---|``), every plotly figure drawn (an SVG in
each, plain figures and those inside Panel widgets alike), and load exactly one MathJax and one
plotly.js. The book is built once per session and shared with ``tests/test_book.py``
(``built_book`` in ``tests/conftest.py``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `widgets` lives next to `metacadi`

from widgets.harness import require_chromium, launch_chromium  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BOOK = Path(__file__).resolve().parents[1] / "book"
RENDER_TIMEOUT_MS = 90_000
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

#: Everything the test checks on a page, walking through Bokeh's shadow roots.
PROBE_JS = r"""
() => {
  const deep = (selector) => {
    const found = [];
    const walk = (root) => root.querySelectorAll('*').forEach((el) => {
      if (el.matches(selector)) found.push(el);
      if (el.shadowRoot) walk(el.shadowRoot);
    });
    walk(document);
    return found;
  };
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
  const main = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement || node.parentElement.closest(skip)) continue;
    const text = node.textContent;
    if (text.includes('$$') || /\|\s*:?-{3,}/.test(text) || /\\\(|\\\[|\\begin\{/.test(text)) {
      raw.push(text.trim().slice(0, 100));
    }
  }
  const math = [...document.querySelectorAll('span.math, div.math')];
  const plots = deep('.js-plotly-plot');
  return {
    math: math.length,
    mathUnrendered: math.filter((el) => !el.querySelector('mjx-container')).length,
    plots: plots.length,
    plotsWithoutSvg: plots.filter((el) => !el.querySelector('svg.main-svg')).length,
    mathjaxScripts: [...document.scripts].filter((s) => /mathjax/i.test(s.src)).length,
    plotlyScripts: [...document.scripts].filter((s) => /plotly[^/]*\.js/i.test(s.src)).length,
    raw,
  };
}
"""


def toc_pages() -> list[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    pages = [toc["root"]] + [entry["file"] for entry in toc.get("chapters", [])]
    for part in toc.get("parts", []):
        pages.extend(entry["file"] for entry in part.get("chapters", []))
    return pages


@pytest.fixture(scope="module")
def browser_ready() -> None:
    require_chromium("the offline book test")


@pytest.fixture(scope="module")
def book_html(built_book) -> Path:
    if built_book.returncode != 0:
        pytest.fail(f"the book did not build:\n{built_book.output[-4000:]}")
    return built_book.html


@pytest.fixture(scope="module")
def browser(browser_ready):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


def expected_plots(source: str) -> int:
    """Plots a page must draw at least: each plain figure, and one per page with Panel plots."""
    plain = source.count('class="plotly-graph-div"')
    in_panel = 1 if "panel.models.plotly.PlotlyPlot" in source else 0
    return plain + in_panel


@pytest.mark.parametrize("name", toc_pages())
def test_page_renders_offline(browser, book_html, name, tmp_path):
    page_path = book_html / f"{name}.html"
    assert page_path.exists(), f"{page_path} was not built"
    source = page_path.read_text(encoding="utf-8")
    minimum_plots = expected_plots(source)
    has_math = bool(re.search(r'class="math[ "]', source))

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    blocked: list[str] = []
    errors: list[str] = []

    def route(route) -> None:
        if route.request.url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(page_path.as_uri(), wait_until="load", timeout=60_000)
        try:
            page.wait_for_function(
                f"""() => {{ const r = ({PROBE_JS})();
                    return r.mathUnrendered === 0 && (r.math > 0 || !{str(has_math).lower()})
                        && r.plots >= {minimum_plots} && r.plotsWithoutSvg === 0; }}""",
                timeout=RENDER_TIMEOUT_MS,
            )
        except Exception:  # report what is missing below, with the page's state
            pass
        result = page.evaluate(PROBE_JS)
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    finally:
        page.close()

    state = f"{result}; blocked requests: {blocked[:5]}; page errors: {errors[:5]}"
    assert blocked == [], f"{name} tried to load from the network: {state}"
    if has_math:
        assert result["math"] > 0 and result["mathUnrendered"] == 0, f"{name}: math not typeset: {state}"
        assert result["mathjaxScripts"] == 1, f"{name}: expected one MathJax: {state}"
    assert result["raw"] == [], f"{name}: raw LaTeX or markdown-table text on the page: {state}"
    assert result["plots"] >= minimum_plots, f"{name}: {result['plots']} of {minimum_plots}+ plots drawn: {state}"
    assert result["plotsWithoutSvg"] == 0, f"{name}: plots without an SVG: {state}"
    if minimum_plots:
        assert result["plotlyScripts"] == 1, f"{name}: expected one plotly.js: {state}"
    assert errors == [], f"{name}: JavaScript errors: {state}"
