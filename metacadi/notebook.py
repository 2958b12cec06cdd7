"""Chapter widgets that are live in a kernel and precomputed in the static book.

A chapter builds its Panel widget once, bound to ``metacadi`` calls, and hands it to :func:`show`:

* in a live kernel (JupyterLab, ``pytest book``) :func:`show` returns the widget itself, so every
  move of a slider runs the bound function again in the kernel;
* while ``jupyter-book build`` executes the chapters, :func:`show` returns
  ``widget.embed(...)``: every state is computed once and stored in the page, so the sliders
  also work in the static HTML, where no kernel exists.

The book build is recognised by the environment variable ``METACADI_BOOK_BUILD``. The build sets
it by loading this module as a Sphinx extension (``sphinx: extra_extensions: [metacadi.notebook]``
in ``jupyter_book_config.yml``): :func:`setup` puts it into the build's environment, and every
kernel the build starts inherits it. Set it by hand (``METACADI_BOOK_BUILD=1``) to see the
embedded version in a kernel.

:func:`slider` gives the static book a few precomputed values and a live kernel the whole range:

    size = notebook.slider("support size", [2, 5, 10, 50], value=10, live_range=(2, 100))
    notebook.show(pn.Column(size, pn.bind(view, size)))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

#: Set (to ``"1"``) while the book is built; a kernel that sees it embeds the chapters' widgets.
BOOK_BUILD_ENV = "METACADI_BOOK_BUILD"


def building_book() -> bool:
    """True while ``jupyter-book build`` executes the chapter (see :data:`BOOK_BUILD_ENV`)."""
    return os.environ.get(BOOK_BUILD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def show(panel_object: Any, *, live: Any = None, max_opts: int = 10, **embed_options: Any) -> Any:
    """The chapter's widget: embedded states for the static book, the live object in a kernel.

    Args:
        panel_object: a Panel layout whose widgets drive ``pn.bind`` views.
        live: what to show in a live kernel instead of ``panel_object`` (e.g. a richer app that
            retrains in the background); default ``panel_object`` itself.
        max_opts: most states embedded per widget when the book is built.
        embed_options: further arguments of ``panel_object.embed`` (book build only).

    Returns:
        ``panel_object.embed(max_opts=max_opts, **embed_options)`` while the book is built,
        otherwise ``live`` if given, else ``panel_object``.
    """
    if building_book():
        return panel_object.embed(max_opts=max_opts, **embed_options)
    return panel_object if live is None else live


def slider(
    name: str,
    options: Sequence[Any],
    value: Any,
    *,
    live_range: tuple[float, float] | None = None,
    step: float | None = None,
    **widget_options: Any,
):
    """A slider over ``options`` for the static book, over ``live_range`` in a live kernel.

    Args:
        name: the slider's label.
        options: the values precomputed for the static book (at most ``max_opts`` of :func:`show`).
        value: the initial value (one of ``options``).
        live_range: ``(start, end)`` offered in a live kernel; ``None`` keeps ``options`` there too.
        step: the live slider's step (default 1 for integers, a hundredth of the range otherwise).
        widget_options: further Panel widget arguments (``sizing_mode``, ``width``, ...).

    Returns:
        ``pn.widgets.DiscreteSlider`` while the book is built or without ``live_range``; otherwise
        an ``IntSlider`` (integer range and value) or a ``FloatSlider``.
    """
    import panel as pn

    # Panel 1.9 renamed a widget's ``name`` to ``label``; older releases only know ``name``.
    widget_options.setdefault("label" if "label" in pn.widgets.IntSlider.param else "name", name)
    options = list(options)
    if value not in options:
        raise ValueError(f"slider {name!r}: value {value!r} is not one of its options {options}")
    if live_range is None or building_book():
        return pn.widgets.DiscreteSlider(options=options, value=value, **widget_options)
    start, end = live_range
    if not start <= value <= end:
        raise ValueError(f"slider {name!r}: value {value!r} is outside its live range {live_range}")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end, value)):
        return pn.widgets.IntSlider(start=start, end=end, value=value, step=int(step or 1), **widget_options)
    return pn.widgets.FloatSlider(
        start=float(start), end=float(end), value=float(value),
        step=float(step or (end - start) / 100), **widget_options,
    )


def setup(app: Any) -> dict[str, Any]:
    """Sphinx extension hook: mark the build, so that the kernels it starts embed the widgets."""
    os.environ[BOOK_BUILD_ENV] = "1"
    return {"parallel_read_safe": True, "parallel_write_safe": True}
