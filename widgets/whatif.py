"""A "do X = value" panel: a fitted model's predicted interventional distribution, live.

    from widgets.whatif import WhatIfPanel
    WhatIfPanel(model, scm=protocol.scm).panel()      # in a notebook; the SCM adds the true distribution

Pick a variable and a value; the figure shows :func:`metacadi.whatif.predict_intervention`'s mean
and 90 % band for every variable (:func:`metacadi.plots.intervention_figure`), beside the
simulator's true ``do`` distribution when an SCM is given. One redraw draws ``n_samples`` graphs
and samples through the learned mechanisms (a few milliseconds for small systems), so the slider
recomputes directly. The explorer (``widgets/explorer.py``) draws the same figure for whichever
model it holds, with controls of its own (its model changes while it trains).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param

from metacadi.plots import intervention_figure
from metacadi.whatif import predict_intervention, true_intervention


class WhatIfPanel(param.Parameterized):
    """State of one what-if view: the intervened variable and its value (in data units).

    Args:
        model: a fitted :class:`~metacadi.model.MetaCaDI`.
        scm: optional :class:`~metacadi.scm.SCM` with the same variable names; its true
            interventional samples are drawn beside the prediction.
        n_samples: samples per redraw.
        seed: seed of the predicted and the true samples (the same seed, the same picture).
    """

    variable = param.Selector(default=None, objects=[], label="do: variable")
    value = param.Number(0.0, label="value")

    def __init__(self, model: Any, scm: Any = None, *, n_samples: int = 2000, seed: int = 0, **params: Any) -> None:
        super().__init__(**params)
        model._check_fitted()
        self.model, self.scm = model, scm
        self.n_samples, self.seed = int(n_samples), int(seed)
        names = list(model.names_)
        if scm is not None and list(scm.names) != names:
            raise ValueError(f"the SCM's variables {list(scm.names)} differ from the model's {names}.")
        self.param.variable.objects = names
        mean = model.data_mean_.cpu().numpy().astype(float)
        std = model.data_std_.cpu().numpy().astype(float)
        self._ranges = {name: (float(m - 3 * s), float(m + 3 * s)) for name, m, s in zip(names, mean, std)}
        self._centre = {name: float(m) for name, m in zip(names, mean)}
        self.variable = names[0]
        self.value = self._centre[names[0]]
        self.slider = pn.widgets.FloatSlider(label="value", start=self._ranges[names[0]][0], end=self._ranges[names[0]][1],
                                             value=self.value, step=(self._ranges[names[0]][1] - self._ranges[names[0]][0]) / 100)
        self.select = pn.widgets.Select.from_param(self.param.variable)
        self.slider.link(self, value="value")
        self.pane = pn.pane.Plotly(self.figure(), height=360, sizing_mode="stretch_width", config={"displayModeBar": False})
        self.param.watch(self._on_variable, ["variable"])
        self.param.watch(self._redraw, ["value"])

    def samples(self) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """Predicted and (with an SCM) true samples under ``do(variable = value)``."""
        do = {self.variable: float(self.value)}
        predicted = predict_intervention(self.model, do, n_samples=self.n_samples, seed=self.seed)
        truth = None
        if self.scm is not None:
            truth = true_intervention(self.scm, self.variable, float(self.value), n_samples=self.n_samples, seed=self.seed)
        return predicted, truth

    def figure(self):
        predicted, truth = self.samples()
        return intervention_figure(predicted, {self.variable: float(self.value)}, truth)

    def _on_variable(self, *events: Any) -> None:
        low, high = self._ranges[self.variable]
        centre = self._centre[self.variable]
        # set the range first, then the value, so the slider never holds an out-of-range value
        self.slider.param.update(start=min(low, centre), end=max(high, centre), step=(high - low) / 100)
        if np.isclose(self.slider.value, centre):
            self._redraw()
        self.slider.value = centre

    def _redraw(self, *events: Any) -> None:
        self.pane.object = self.figure()

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(pn.pane.Markdown("### What if? do(variable = value)"), pn.Row(self.select, self.slider), self.pane,
                         sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()
