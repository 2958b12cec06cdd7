"""The what-if panel (widgets/whatif.py): redraws on a new value or variable, true distribution beside."""

from __future__ import annotations

import numpy as np
import pytest

pn = pytest.importorskip("panel")

from metacadi.model import MetaCaDI  # noqa: E402
from metacadi.tasks import make_meta_protocol  # noqa: E402
from widgets.whatif import WhatIfPanel  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    protocol = make_meta_protocol(n_variables=3, n_interventional=3, train_rows=30, seed=2)
    model = MetaCaDI(n_steps=3, hidden_size=8, n_features=4, embedding_size=8, n_edge_samples=20, seed=0).fit(
        protocol.train, progress=False
    )
    return model, protocol.scm


def test_panel_redraws_with_the_do_value(fitted):
    model, scm = fitted
    view = WhatIfPanel(model, scm, n_samples=200)
    assert [trace.name for trace in view.pane.object.data] == ["predicted", "true", "do"]
    view.slider.value = view.slider.start
    do_trace = view.pane.object.data[2]
    assert np.isclose(do_trace.y[0], view.slider.start)
    assert np.isclose(view.samples()[0]["X0"].iloc[0], view.slider.start)
    view.variable = "X2"
    assert view.pane.object.data[2].x[0] == 2
    assert view.slider.start < view.value < view.slider.end
    assert isinstance(view.panel(), pn.Column)


def test_panel_without_an_scm_and_mismatched_names(fitted):
    model, scm = fitted
    view = WhatIfPanel(model, n_samples=50)
    assert [trace.name for trace in view.pane.object.data] == ["predicted", "do"]
    scm.names = ["a", "b", "c"]
    try:
        with pytest.raises(ValueError, match="differ"):
            WhatIfPanel(model, scm)
    finally:
        scm.names = ["X0", "X1", "X2"]
