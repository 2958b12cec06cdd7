"""Sphinx extension: the HTML book renders its math, figures and widgets without network access.

Out of the box every chapter page loads its JavaScript from content delivery networks, some of
it twice: Sphinx's MathJax (jsdelivr) plus a second MathJax that plotly's notebook renderer
inlines next to each figure (cdnjs), plotly.js from plotly's CDN for plain figures plus Panel's
own bundled plotly.js for figures inside widgets, and BokehJS/Panel from their CDNs. Offline,
every figure and slider disappears and the math shows as raw LaTeX.

This extension makes each page load exactly one copy of each library from ``_static/offline``:

* **MathJax 3** (``tex-svg-full.js``, self-contained: SVG output needs no font files) comes from
  the ``django-static-mathjax`` wheel; ``mathjax_path`` points at it. The MathJax copies that
  plotly's notebook renderer adds are removed.
* **plotly.js** is the copy shipped inside the ``plotly`` package (the version plotly.py writes
  figures for), added once to the ``<head>`` of every page that shows a figure. The per-figure
  ``<script src=cdn.plot.ly>`` tags are removed, and so is Panel's bundled plotly.js from the
  list of scripts Panel's loader injects (Panel's plotly pane uses the global ``Plotly``).
* **BokehJS and Panel** (scripts, style sheets, the assets those style sheets reference) are
  copied from the installed ``bokeh`` and ``panel`` packages, and their CDN addresses in the
  pages are rewritten to the local copies; only files a page refers to are copied.

After rewriting, any remaining reference to one of those CDNs is reported as a Sphinx warning,
so ``jupyter-book build -W`` fails rather than publishing a page that needs the network.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

VENDOR = "offline"  # below _static (the theme already uses _static/vendor)
MATHJAX_FILE = "tex-svg-full.js"
PLOTLY_STATIC = f"{VENDOR}/plotly/plotly.min.js"
CDN_HOSTS = ("cdn.plot.ly", "cdn.bokeh.org", "cdn.holoviz.org", "cdn.jsdelivr.net", "cdnjs.cloudflare.com")
CDN_PATTERN = re.compile(r"https?://(?:" + "|".join(re.escape(h) for h in CDN_HOSTS) + r")[^\s\"'\\)]*")

# (pattern, replacement); "{static}" is the relative path from the page to _static/.
_REMOVALS = [
    # plotly's notebook renderer: a second MathJax, its v2 configuration, and plotly.js from its CDN
    re.compile(r'<script[^>]*src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]*"[^>]*>\s*</script>'),
    re.compile(r"<script>if \(window\.MathJax && window\.MathJax\.Hub && window\.MathJax\.Hub\.Config\)"
               r" \{[^<]*\}</script>"),
    re.compile(r'<script type="module">\s*import "https://cdn\.plot\.ly/[^"]*"\s*</script>'),
    re.compile(r'<script[^>]*src="https://cdn\.plot\.ly/[^"]*"[^>]*>\s*</script>'),
]
# Panel's loader list of scripts: its bundled plotly.js (the page already has one), wherever it
# stands in the list
_PANEL_PLOTLY = re.compile(
    r'(,\s*)?"https://cdn\.holoviz\.org/panel/[^/"]+/dist/bundled/plotlyplot/plotly-[^"]*\.js"(\s*,\s*)?'
)


def _drop_from_list(match: re.Match) -> str:
    """Remove one element of a JavaScript array literal, keeping its neighbours separated."""
    return ", " if match.group(1) and match.group(2) else ""


_REWRITES = [
    (re.compile(r"https://cdn\.plot\.ly/plotly-[0-9.]+\.min"), "{static}" + PLOTLY_STATIC[: -len(".js")]),
    (re.compile(r"https://cdn\.holoviz\.org/panel/[^/\"'\\]+/dist/"), "{static}" + f"{VENDOR}/panel/"),
    # the CDN's file names carry the version (bokeh-widgets-3.9.2.min.js); the package's do not
    (re.compile(r"https://cdn\.bokeh\.org/bokeh/release/(bokeh(?:-[a-z]+)?)-\d+\.\d+\.\d+[^\"'\\/]*?(\.min\.js|\.js)"),
     "{static}" + VENDOR + r"/bokeh/\1\2"),
]
# sphinx-thebe's settings are written into the <head> twice (Jupyter Book 1.x adds them once more);
# the second `const THEBE_JS_URL` is a JavaScript error on every page.
_THEBE_SETTINGS = re.compile(r"<script>const THEBE_JS_URL = .*?</script>\s*", re.DOTALL)
_LOCAL_REFERENCE = re.compile(r"_static/" + VENDOR + r"/(panel|bokeh)/([^\s\"'\\?#)]+)")
_CSS_URL = re.compile(r"url\(\s*['\"]?(?!data:|https?:|#)([^'\")?#]+)")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"offline_assets needs the Python package {name!r}; install the book's dependencies.")
    return Path(spec.origin).parent


def _sources() -> dict[str, Path]:
    """Where each vendored library lives in the installed packages."""
    return {
        "panel": _package_dir("panel") / "dist",
        "bokeh": _package_dir("bokeh") / "server" / "static" / "js",
    }


def _on_config_inited(app: Sphinx, config: Any) -> None:
    config.mathjax_path = f"{VENDOR}/mathjax/{MATHJAX_FILE}"


def _on_page_context(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """One plotly.js in the <head> of each page that draws a plotly figure (plain or in Panel)."""
    body = context.get("body") or ""
    if "plotly" in body.lower():
        app.add_js_file(PLOTLY_STATIC, priority=200)


def _copy(source: Path, target: Path) -> None:
    if target.exists() and target.stat().st_size == source.stat().st_size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _copy_referenced(library: str, relative: str, static: Path, sources: dict[str, Path], seen: set) -> None:
    """Copy one referenced file (and, for a style sheet, the files its ``url(...)`` names)."""
    key = (library, relative)
    if key in seen:
        return
    seen.add(key)
    source = (sources[library] / relative).resolve()
    if not source.is_file():
        logger.warning(f"offline_assets: the page refers to {library}/{relative}, which the installed "
                       f"{library} package does not ship ({source}).")
        return
    _copy(source, static / VENDOR / library / relative)
    if source.suffix == ".css":
        for match in _CSS_URL.finditer(source.read_text(encoding="utf-8", errors="replace")):
            nested = os.path.normpath(os.path.join(os.path.dirname(relative), match.group(1).strip()))
            if not nested.startswith(".."):
                _copy_referenced(library, nested.replace(os.sep, "/"), static, sources, seen)


def _on_build_finished(app: Sphinx, exception: BaseException | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    static = outdir / "_static"
    sources = _sources()
    mathjax = _package_dir("mathjax") / "static" / "mathjax" / "es5" / MATHJAX_FILE
    _copy(mathjax, static / VENDOR / "mathjax" / MATHJAX_FILE)
    plotly_js = _package_dir("plotly") / "package_data" / "plotly.min.js"
    _copy(plotly_js, static / PLOTLY_STATIC)

    seen: set = set()
    for page in sorted(outdir.rglob("*.html")):
        if static in page.parents:
            continue
        text = page.read_text(encoding="utf-8")
        original = text
        prefix = os.path.relpath(static, page.parent).replace(os.sep, "/") + "/"
        for pattern in _REMOVALS:
            text = pattern.sub("", text)
        text = _PANEL_PLOTLY.sub(_drop_from_list, text)
        thebe = list(_THEBE_SETTINGS.finditer(text))
        for duplicate in reversed(thebe[1:]):
            if duplicate.group(0).strip() == thebe[0].group(0).strip():
                text = text[: duplicate.start()] + text[duplicate.end():]
        for pattern, replacement in _REWRITES:
            text = pattern.sub(replacement.format(static=prefix), text)
        for match in _LOCAL_REFERENCE.finditer(text):
            _copy_referenced(match.group(1), match.group(2), static, sources, seen)
        if text != original:
            page.write_text(text, encoding="utf-8")
        leftovers = sorted(set(CDN_PATTERN.findall(text)))
        if leftovers:
            logger.warning(f"offline_assets: {page.relative_to(outdir)} still loads from the network: "
                           f"{', '.join(leftovers[:5])}")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", _on_config_inited)
    app.connect("html-page-context", _on_page_context)
    app.connect("build-finished", _on_build_finished)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
