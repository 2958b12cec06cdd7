"""metacadi.notebook: chapter widgets are live in a kernel and embedded only in the book build."""

from __future__ import annotations

import os

import panel as pn
import pytest

from metacadi import notebook


@pytest.fixture
def live(monkeypatch):
    monkeypatch.delenv(notebook.BOOK_BUILD_ENV, raising=False)


@pytest.fixture
def book_build(monkeypatch):
    monkeypatch.setenv(notebook.BOOK_BUILD_ENV, "1")


def _widget(calls: list[int]):
    size = pn.widgets.DiscreteSlider(options=[1, 2, 3], value=1)

    def view(value):
        calls.append(value)
        return pn.pane.Markdown(f"size {value}")

    return size, pn.Column(size, pn.bind(view, size))


def test_live_kernel_gets_the_object_and_recomputes_on_change(live):
    calls: list[int] = []
    size, column = _widget(calls)
    assert not notebook.building_book()
    shown = notebook.show(column)
    assert shown is column
    shown.get_root()  # rendering asks for the first state
    size.value = 3
    assert calls[-1] == 3, "a live widget calls its bound function again"


def test_live_replacement_is_shown_in_a_kernel(live):
    _, column = _widget([])
    replacement = pn.pane.Markdown("the live app")
    assert notebook.show(column, live=replacement) is replacement


def test_book_build_embeds_every_state(book_build):
    calls: list[int] = []
    _, column = _widget(calls)
    assert notebook.building_book()
    shown = notebook.show(column, live=pn.pane.Markdown("not in the book"))
    assert shown is not column
    assert set(calls) == {1, 2, 3}, "embedding computes each state once"


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_falsy_values_mean_a_live_kernel(monkeypatch, value):
    monkeypatch.setenv(notebook.BOOK_BUILD_ENV, value)
    assert not notebook.building_book()


def test_slider_is_discrete_in_the_book_and_spans_the_live_range(monkeypatch):
    monkeypatch.setenv(notebook.BOOK_BUILD_ENV, "1")
    book = notebook.slider("support size", [2, 10, 50], 10, live_range=(2, 100))
    assert isinstance(book, pn.widgets.DiscreteSlider) and book.options == [2, 10, 50]

    monkeypatch.delenv(notebook.BOOK_BUILD_ENV)
    whole = notebook.slider("support size", [2, 10, 50], 10, live_range=(2, 100))
    assert isinstance(whole, pn.widgets.IntSlider) and (whole.start, whole.end, whole.value) == (2, 100, 10)
    scale = notebook.slider("λ", [0.1, 1.0], 0.1, live_range=(0.0, 2.0))
    assert isinstance(scale, pn.widgets.FloatSlider) and scale.step == pytest.approx(0.02)
    assert isinstance(notebook.slider("τ", [0.1, 0.3], 0.3), pn.widgets.DiscreteSlider)


def test_slider_rejects_a_value_it_cannot_show(live):
    with pytest.raises(ValueError, match="not one of its options"):
        notebook.slider("size", [1, 2], 3)
    with pytest.raises(ValueError, match="outside its live range"):
        notebook.slider("size", [1, 20], 20, live_range=(1, 10))


def test_sphinx_extension_marks_the_build(monkeypatch):
    monkeypatch.delenv(notebook.BOOK_BUILD_ENV, raising=False)
    metadata = notebook.setup(app=None)
    assert os.environ[notebook.BOOK_BUILD_ENV] == "1"
    assert metadata["parallel_read_safe"]
