"""MetaCaDI explorer: meta-train on a simulated system, then identify a new experiment's targets.

Serve it, or use it inline in JupyterLab::

    panel serve widgets/explorer.py            # http://localhost:5006/explorer
    from widgets.explorer import Explorer
    Explorer().panel()                          # in a notebook cell

Two kinds of control, two costs:

* **System** controls (number of variables, expected degree, graph family, intervention type,
  off-target rate) define a new causal system. Changing one cancels the running meta-training
  (its fit callback returns ``False``) and trains a new model in a background thread; the
  posterior views follow the training through the fit callback while the controls stay live.
  A system seen before in this session is restored from a cache instead of retrained.
* **New-experiment** controls (support size, targets, experiment seed) only re-run the
  closed-form adaptation ``model.adapt(rows)`` on a cached pool of rows from that experiment, a
  few milliseconds, and redraw the target-probability chart (the Intv-AUROC/AUPRC over a batch
  of new experiments follow a moment later from a worker thread).
* **What if** controls (a variable and a value) redraw the interventional distribution
  ``p(x | do(X_j = value))`` that the current model predicts, averaged over its graph posterior
  (:func:`metacadi.whatif.predict_intervention`, no retraining), beside the simulator's true
  ``do`` distribution. One redraw costs tens of milliseconds (fewer samples for large systems, see
  :func:`whatif_sample_count`), so it runs in the callback; while the model trains, each
  published model's what-if figure is built in the training thread with the posterior views.
* The **accuracy-vs-support-size** view plots the Intv-AUROC and Intv-AUPRC of the current model
  over the batch of new experiments against the number of rows used for adaptation
  (:data:`SUPPORT_CURVE_SIZES`, capped by the rows of an experiment), beside the non-causal
  shift-score floor and the oracle ceiling that knows the true graph and mechanisms
  (:mod:`metacadi.reference_scores`; the explorer simulates the system, so it knows both). The
  model's curve costs one batched ``model.adapt_many`` per support size (about 0.2-0.3 s at the
  default 8 variables and 16 experiments): for models published mid-training the metrics worker
  computes it, at most every ``support_interval`` seconds (for every published model it slowed
  training by about a third), for the final model the training thread, which caches it with the
  other views. The floor and ceiling do not
  depend on the model and are computed once per system. The support-size slider only moves the
  curve's marker.

Everything lives in one :class:`Explorer` instance per browser session (no module-level model).
Model work runs off the UI thread; results reach the page through the Bokeh document's
next-tick callbacks (``doc.add_next_tick_callback``), the documented way to change a document
from another thread. Exceptions in callbacks are shown in an alert on the page.

When served, torch runs each op on one thread (see ``_from_environment``); in a notebook,
``torch.set_num_threads(1)`` makes the explorer snappier on a machine with few cores.

Environment variables (read only when served) shrink the default system for demos and tests:
``METACADI_EXPLORER_STEPS`` (meta-training steps, default 400), ``METACADI_EXPLORER_VARIABLES``
(default 8), ``METACADI_EXPLORER_SEED`` (system seed, default 0).
"""

from __future__ import annotations

import copy
import dataclasses
import html
import itertools
import logging
import os
import threading
import time
import traceback
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
import plotly.graph_objects as go
import torch

from metacadi import metrics, plots
from metacadi.model import MetaCaDI
from metacadi.reference_scores import scm_oracle_scores, shift_scores
from metacadi.scm import random_intervention
from metacadi.tasks import make_meta_protocol
from metacadi.whatif import predict_intervention, true_intervention

pn.extension("plotly")

log = logging.getLogger("metacadi.explorer")

GRAPH_FAMILY_LABELS = {"Erdős–Rényi": "er", "scale-free": "sf"}
SYSTEM_PARAMETERS = ("n_variables", "expected_degree", "graph_family", "intervention", "off_target_rate")
EXPERIMENT_PARAMETERS = ("support_size", "targets", "experiment_seed")
VIEW_PARAMETERS = ("edge_threshold",)
WHATIF_PARAMETERS = ("whatif_variable", "whatif_value")

#: What each metric measures, shown as a tooltip on its name.
METRIC_HELP = {
    "Edge AUROC": "Area under the ROC curve of the edge probabilities P(i → j) against the true "
                  "edges: 0.5 is chance, 1.0 ranks every true edge above every absent one.",
    "Edge AUPRC": "Area under the precision-recall curve of the edge probabilities; chance level is "
                  "the fraction of pairs that are edges, so it is low for sparse graphs.",
    "E-SHD": "Expected structural Hamming distance: the mean number of edge additions, deletions and "
             "reversals between a graph sampled from the posterior and the true graph (0 is perfect).",
    "Intv-AUROC": "Area under the ROC curve of the target probabilities P(r_j = 1) against the true "
                  "targets, pooled over a batch of new experiments at this support size.",
    "Intv-AUPRC": "Area under the precision-recall curve of the target probabilities against the true "
                  "targets, over the same batch; chance level is the fraction of variables that are targets.",
}

#: ``layout.meta`` of each figure, so a page script can find a plot by its role.
FIGURE_ROLES = ("truth", "posterior", "heatmap", "targets", "training", "whatif", "support-curve")

#: Support sizes of the accuracy-vs-support-size curve; sizes above the rows of a new experiment
#: are dropped and that row count is added as the last point (:func:`support_curve_sizes`).
SUPPORT_CURVE_SIZES = (2, 3, 5, 10, 20, 50, 100)
#: Names of the curves (legend entries and keys of :meth:`ExplorerSystem.reference_curves`).
MODEL_CURVE, FLOOR_CURVE, CEILING_CURVE = "MetaCaDI", "shift score (floor)", "oracle (ceiling)"

#: Half-width of the what-if value slider in standard deviations of the variable, and the default
#: value's distance from the mean (far enough for the effect on the descendants to show).
WHATIF_RANGE_SDS = 3.0
WHATIF_DEFAULT_SDS = 2.0


def whatif_sample_count(n_variables: int, n_samples: int = 2000, reference: int = 10, least: int = 500) -> int:
    """Samples per what-if redraw: ``n_samples`` up to ``reference`` variables, then fewer in
    proportion to ``d²`` (one sample costs ``d`` sweeps through ``d`` mechanisms), never below
    ``least`` (nor above ``n_samples``). Keeps a redraw at tens of milliseconds: at ``d = 8`` 2000
    samples (and as many from the simulator) took about 0.05 s on a busy 2-core machine, at
    ``d = 20`` 2000 samples took 0.3–0.4 s and 500 about 0.1 s."""
    d, n = int(n_variables), int(n_samples)
    if d <= reference:
        return n
    return min(n, max(int(least), int(n * (reference / d) ** 2)))


def support_curve_sizes(pool_rows: int) -> tuple[int, ...]:
    """The support sizes of the accuracy-vs-support-size curve for new experiments of
    ``pool_rows`` rows: :data:`SUPPORT_CURVE_SIZES` up to ``pool_rows``, then ``pool_rows``
    itself, so that the curve spans the support-size slider."""
    pool_rows = int(pool_rows)
    sizes = [n for n in SUPPORT_CURVE_SIZES if n <= pool_rows]
    if pool_rows >= 2 and pool_rows not in sizes:
        sizes.append(pool_rows)
    return tuple(sizes)


@dataclass(frozen=True, eq=False)
class SupportCurve:
    """Intv-AUROC and Intv-AUPRC of one scorer over a batch of new experiments, per support size."""

    sizes: tuple[int, ...]
    auroc: tuple[float, ...]
    auprc: tuple[float, ...]

    @classmethod
    def score(cls, sizes: Sequence[int], targets: np.ndarray, probs_by_size: Sequence[np.ndarray]) -> "SupportCurve":
        """The curve of ``probs_by_size[k]`` ``(T, d)`` (the scores at ``sizes[k]`` rows) against
        the true ``targets`` ``(T, d)``, pooled over the ``T`` experiments as in the metrics table."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nan (one class) is drawn as a gap
            values = [metrics.target_metrics(targets, probs) for probs in probs_by_size]
        return cls(
            tuple(int(n) for n in sizes),
            tuple(float(v["target_auroc"]) for v in values),
            tuple(float(v["target_auprc"]) for v in values),
        )


def support_curve_figure(
    curves: dict[str, SupportCurve],
    support: int,
    *,
    chance: float | None = None,
    title: str | None = None,
    note: str | None = None,
    height: int = 360,
) -> go.Figure:
    """Intv-AUROC (left) and Intv-AUPRC (right) against the support size, one line per curve
    (MetaCaDI blue, the shift-score floor grey, the oracle ceiling red), on a log axis. Two traces
    named ``"current support"`` mark ``support`` rows (a vertical line in each panel); ``chance``
    (the fraction of variables that are targets) draws the chance levels, 0.5 and ``chance``.
    ``note`` is written in the middle of the figure (e.g. while the model's curve is pending)."""
    from plotly.subplots import make_subplots

    styles = {
        MODEL_CURVE: dict(color=plots.BAR_COLOR, width=3),
        FLOOR_CURVE: dict(color="#7f7f7f", width=2, dash="dash"),
        CEILING_CURVE: dict(color=plots.TRUE_COLOR, width=2, dash="dot"),
    }
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Intv-AUROC", "Intv-AUPRC"), horizontal_spacing=0.09)
    sizes = sorted({n for curve in curves.values() for n in curve.sizes} | {int(support)})
    for name in sorted(curves, key=lambda n: list(styles).index(n) if n in styles else len(styles)):
        curve = curves[name]
        for col, values in ((1, curve.auroc), (2, curve.auprc)):
            fig.add_trace(go.Scatter(
                x=list(curve.sizes), y=[v if np.isfinite(v) else None for v in values], mode="lines+markers",
                name=name, legendgroup=name, showlegend=col == 1, line=styles.get(name, {}), marker=dict(size=7),
                hovertemplate=f"{name}: %{{y:.3f}} with %{{x}} rows<extra></extra>",
            ), row=1, col=col)
    if chance is not None:
        for col, level in ((1, 0.5), (2, float(chance))):
            fig.add_trace(go.Scatter(
                x=[sizes[0], sizes[-1]], y=[level, level], mode="lines", name="chance", legendgroup="chance",
                showlegend=col == 1, line=dict(color="#bbbbbb", width=1, dash="dot"),
                hovertemplate=f"chance: {level:.2f}<extra></extra>",
            ), row=1, col=col)
    for col in (1, 2):
        fig.add_trace(go.Scatter(
            x=[int(support), int(support)], y=[0.0, 1.0], mode="lines", name="current support",
            legendgroup="current support", showlegend=col == 1, line=dict(color="#333333", width=1.5, dash="dashdot"),
            hovertemplate=_marker_hover(support),
        ), row=1, col=col)
    low, high = np.log10(sizes[0] / 1.15), np.log10(sizes[-1] * 1.15)
    fig.update_xaxes(
        type="log", range=[low, high], tickvals=[n for n in sizes if n in SUPPORT_CURVE_SIZES or n == sizes[-1]],
        title_text="rows used for adaptation", showgrid=True, gridcolor="#eeeeee", zeroline=False,
    )
    fig.update_yaxes(range=[0.0, 1.03], showgrid=True, gridcolor="#eeeeee", zeroline=False)
    fig.update_layout(
        title=title, height=height, meta="support-curve", plot_bgcolor="white",
        margin=dict(l=10, r=10, t=60 if title else 30, b=80),
        legend=dict(orientation="h", yanchor="top", y=-0.28, xanchor="left", x=0),
    )
    if note:
        fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                           font=dict(size=13, color="#666666"), bgcolor="rgba(255,255,255,0.8)")
    return fig


def _marker_hover(support: int) -> str:
    return f"support-size slider: {int(support)} rows<extra></extra>"


def with_support_marker(figure: go.Figure, support: int) -> go.Figure:
    """A copy of a :func:`support_curve_figure` with its marker at ``support`` rows. The copy
    skips plotly's validation (the figure was validated when it was built): about 5 ms instead of
    about 30 ms with validation, or 35 ms for a new figure."""
    spec = figure.to_dict()
    for trace in spec["data"]:
        if trace.get("name") == "current support":
            trace["x"] = [int(support), int(support)]
            trace["hovertemplate"] = _marker_hover(support)
    try:
        return go.Figure(spec, _validate=False)  # a private plotly option (plotly 5-7)
    except TypeError:  # a plotly without it: the validated (slower) copy
        return go.Figure(spec)


def support_curve_caption(curves: dict[str, SupportCurve]) -> str:
    """One line on what to look for in :func:`support_curve_figure`, with this system's numbers:
    at how many support sizes MetaCaDI's Intv-AUROC beats the floor, and how far below the ceiling."""
    lead = ("Look for blue (MetaCaDI) above grey (shift score: marginal shifts only, so descendants score "
            "too) and close to red (oracle: true graph and mechanisms)")
    model, floor, ceiling = curves.get(MODEL_CURVE), curves.get(FLOOR_CURVE), curves.get(CEILING_CURVE)
    if model is None:
        return lead + "; the blue curve follows the first trained model."
    facts = []
    if floor is not None:
        pairs = [(n, m > f) for n, m, f in zip(model.sizes, model.auroc, floor.auroc) if np.isfinite(m) and np.isfinite(f)]
        above = [n for n, beats in pairs if beats]
        where = f" ({', '.join(map(str, above))} rows)" if 0 < len(above) < len(pairs) else ""
        facts.append(f"beats the floor at {len(above)} of {len(pairs)} support sizes{where}")
    if ceiling is not None:
        gaps = [c - m for m, c in zip(model.auroc, ceiling.auroc) if np.isfinite(m) and np.isfinite(c)]
        if gaps and min(gaps) >= 0:
            facts.append(f"is {min(gaps):.2f}–{max(gaps):.2f} below the ceiling")
        elif gaps and max(gaps) > 0:
            facts.append(f"is at most {max(gaps):.2f} below the ceiling (above it at some sizes)")
        elif gaps:
            facts.append("reaches the ceiling at every size")
    return lead + (" — here its Intv-AUROC " + " and ".join(facts) + "." if facts else ".")


def _round_step(span: float) -> float:
    """A round slider step (1, 2 or 5 times a power of ten) near ``span / 100``."""
    raw = max(float(span), 1e-9) / 100
    power = 10.0 ** np.floor(np.log10(raw))
    return float(min((m * power for m in (1, 2, 5, 10) if m * power >= raw), default=10 * power))


def _decimals(step: float) -> int:
    return max(0, int(-np.floor(np.log10(step) + 1e-9)))


# --------------------------------------------------------------------------------------------
# model-side state (no Panel here)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SystemSpec:
    """The controls that define a simulated system; a new spec means a new meta-training."""

    n_variables: int
    expected_degree: float
    graph_family: str
    intervention: str
    off_target_rate: float
    seed: int


@dataclass(frozen=True, eq=False)
class NewExperiment:
    """A pool of rows from one new experiment; a support set of ``n`` rows is ``rows[:n]``.

    Attributes:
        rows: ``(pool_rows, d)`` samples under the experiment's intervention.
        targets: ``(d,)`` bool realised targets (intended plus off-targets).
        intended: ``(d,)`` bool targets the experiment meant to hit.
    """

    rows: np.ndarray
    targets: np.ndarray
    intended: np.ndarray


class ExplorerSystem:
    """Everything about one simulated system that does not depend on the model, built once.

    * ``protocol``: :func:`~metacadi.tasks.make_meta_protocol` output; ``protocol.train`` is
      the meta-training set, ``protocol.test`` a batch of ``n_batch`` new experiments with
      ``pool_rows`` rows each, for the Intv-AUROC/AUPRC at any support size (first ``n`` rows).
    * ``positions``: node layout of the true graph, shared by the truth and posterior drawings.
    * :meth:`experiment`: the new experiment the user configures, cached per (targets, seed).
    * :meth:`reference_curves`: the floor and ceiling of the accuracy-vs-support-size curve.
    """

    def __init__(self, spec: SystemSpec, pool_rows: int = 100, n_batch: int | None = None) -> None:
        self.spec = spec
        self.pool_rows = int(pool_rows)
        self.protocol = make_meta_protocol(
            n_variables=spec.n_variables,
            expected_degree=spec.expected_degree,
            graph_family=spec.graph_family,
            intervention=spec.intervention,
            off_target_rate=spec.off_target_rate,
            n_test=n_batch or 2 * spec.n_variables,
            test_rows=self.pool_rows,
            seed=spec.seed,
        )
        self.names = list(self.protocol.names)
        self.graph = self.protocol.graph
        self.positions = plots.node_positions(self.names, self.graph, layout_seed=spec.seed)
        self.batch_rows = np.stack([task.data for task in self.protocol.test])  # (T, pool_rows, d)
        self.batch_targets = self.protocol.test.target_matrix()  # (T, d)
        pooled = np.concatenate([task.data for task in self.protocol.train])
        # the model standardises with the same pooled statistics (MetaCaDI.data_mean_ / data_std_)
        self.data_mean, self.data_std = pooled.mean(0), pooled.std(0) + 1e-6
        self._experiments: dict[tuple[tuple[str, ...], int], NewExperiment] = {}
        self._truths: OrderedDict[tuple[str, float, int], pd.DataFrame] = OrderedDict()
        self.curve_sizes = support_curve_sizes(self.pool_rows)
        self._references: dict[str, SupportCurve] | None = None
        self._lock = threading.Lock()

    def reference_curves(self) -> dict[str, SupportCurve]:
        """Floor and ceiling of the accuracy-vs-support-size curve over the batch of new
        experiments (the first ``n`` rows of each, ``n`` in ``curve_sizes``), computed once:

        * ``FLOOR_CURVE``: :func:`~metacadi.reference_scores.shift_scores` against the pooled
          observational meta-training rows (no causal model);
        * ``CEILING_CURVE``: the oracle of :func:`~metacadi.reference_scores.scm_oracle_scores`
          (the true mechanisms and noise scales).
        """
        with self._lock:
            if self._references is not None:
                return self._references
        sizes, targets, rows = self.curve_sizes, self.batch_targets, self.batch_rows
        curves: dict[str, SupportCurve] = {}
        observational = [task.data for task in self.protocol.train.observational()]
        if observational:
            floor = [shift_scores(observational, list(rows[:, :n])) for n in sizes]
            curves[FLOOR_CURVE] = SupportCurve.score(sizes, targets, floor)
        ceiling = [scm_oracle_scores(self.protocol.scm, list(rows[:, :n])) for n in sizes]
        curves[CEILING_CURVE] = SupportCurve.score(sizes, targets, ceiling)
        with self._lock:
            self._references = curves
        return curves

    def value_range(self, name: str) -> tuple[float, float, float]:
        """``(start, end, step)`` of the what-if value slider of variable ``name``: its mean in the
        meta-training data ± ``WHATIF_RANGE_SDS`` standard deviations, on a round step."""
        j = self.names.index(name)
        mean, sd = float(self.data_mean[j]), float(self.data_std[j])
        step = _round_step(2 * WHATIF_RANGE_SDS * sd)
        digits = _decimals(step)
        start = round(float(np.floor((mean - WHATIF_RANGE_SDS * sd) / step) * step), digits)
        end = round(float(np.ceil((mean + WHATIF_RANGE_SDS * sd) / step) * step), digits)
        return start, end, step

    def default_do(self, name: str | None = None) -> tuple[str, float]:
        """A what-if intervention to start from: ``name`` (default: the variable with the most
        descendants in the true graph, so that the intervention visibly moves something) set to its
        mean + ``WHATIF_DEFAULT_SDS`` standard deviations, on the slider's step."""
        if name is None:
            below = [plots.descendant_mask(self.graph, [n], self.names).sum() for n in self.names]
            name = self.names[int(np.argmax(below))]
        j = self.names.index(name)
        start, end, step = self.value_range(name)
        value = float(self.data_mean[j] + WHATIF_DEFAULT_SDS * self.data_std[j])
        value = round(float(np.clip(np.round(value / step) * step, start, end)), _decimals(step))
        return name, value

    def true_intervention(self, name: str, value: float, n_samples: int, seed: int = 0) -> pd.DataFrame:
        """Samples of the simulator's true ``do(name = value)`` (cached: they do not depend on
        the model, so a training run's successive models are compared with the same samples)."""
        key = (str(name), float(value), int(n_samples))
        with self._lock:
            cached = self._truths.get(key)
        if cached is not None:
            return cached
        truth = true_intervention(self.protocol.scm, name, value, n_samples=n_samples, seed=seed)
        with self._lock:
            self._truths[key] = truth
            while len(self._truths) > 8:
                self._truths.popitem(last=False)
        return truth

    def experiment(self, targets: Sequence[str], seed: int) -> NewExperiment:
        """The new experiment hitting ``targets`` (names; empty: one variable drawn at random),
        with off-targets at the system's rate; its intervention and rows are seeded by ``seed``."""
        key = (tuple(sorted(targets)), int(seed))
        with self._lock:
            cached = self._experiments.get(key)
        if cached is not None:
            return cached
        d = len(self.names)
        indices = [self.names.index(name) for name in key[0]]
        rng = np.random.default_rng([self.spec.seed, 7919, int(seed)])
        intervention = random_intervention(
            d,
            len(indices) if indices else 1,
            self.spec.intervention,
            self.spec.off_target_rate,
            seed=rng,
            candidates=indices or None,
        )
        rows = self.protocol.scm.sample(self.pool_rows, intervention, seed=rng)
        experiment = NewExperiment(rows, intervention.targets.copy(), intervention.intended_targets.copy())
        with self._lock:
            self._experiments[key] = experiment
        return experiment


_FIT_SERIALS = itertools.count()


@dataclass(frozen=True, eq=False)
class FitState:
    """A published, read-only model: a copy taken at a fit callback, or the final model.

    ``serial`` is unique per published model and keys the cache of target metrics."""

    generation: int
    system: ExplorerSystem
    model: MetaCaDI
    step: int
    n_steps: int
    done: bool
    serial: int = field(default_factory=lambda: next(_FIT_SERIALS))


@dataclass(eq=False)
class TrainingRun:
    """One background meta-training; ``cancel`` makes its fit callback return ``False``."""

    generation: int
    spec: SystemSpec
    cancel: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    callbacks: int = 0
    cancelled_at_step: int | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()


@dataclass(frozen=True, eq=False)
class PosteriorViews:
    """Figures and graph metrics of one :class:`FitState`, built off the UI thread."""

    graph: go.Figure
    heatmap: go.Figure
    curve: go.Figure
    graph_metrics: dict[str, float]
    threshold: float  # edge-probability threshold the graph was drawn with
    whatif: go.Figure | None = None  # the what-if figure, for the intervention in ``whatif_key``
    whatif_key: tuple[str, float] | None = None
    support: SupportView | None = None  # the accuracy-vs-support-size view of this model


@dataclass(frozen=True, eq=False)
class SupportView:
    """The accuracy-vs-support-size figure of one system and model, with its caption.

    ``curve`` is the model's (``None``: the floor and ceiling only, before the first posterior);
    ``curves`` every curve drawn. The figure is built off the UI thread; the support-size slider
    only moves its marker (:meth:`at`, a copy of the figure with the two ``"current support"``
    traces moved, a few milliseconds instead of tens for a new figure)."""

    system: ExplorerSystem
    curve: SupportCurve | None
    curves: dict[str, SupportCurve]
    title: str
    note: str | None
    figure: go.Figure
    caption: str

    @classmethod
    def build(cls, system: ExplorerSystem, curve: SupportCurve | None, support: int, title: str,
              note: str | None = None) -> "SupportView":
        curves = dict(system.reference_curves())
        if curve is not None:
            curves[MODEL_CURVE] = curve
        figure = support_curve_figure(
            curves, support, chance=float(np.mean(system.batch_targets)), title=title, note=note
        )
        return cls(system, curve, curves, title, note, figure, support_curve_caption(curves))

    @property
    def marker(self) -> int | None:
        """The support size the figure's marker shows now."""
        trace = next((t for t in self.figure.data if t.name == "current support"), None)
        return None if trace is None else int(trace.x[0])

    def at(self, support: int) -> "SupportView":
        """This view with its marker at ``support`` rows (the same view when it is there already)."""
        if self.marker == int(support):
            return self
        return dataclasses.replace(self, figure=with_support_marker(self.figure, int(support)))


def _placeholder(message: str, role: str, height: int) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        height=height, meta=role, plot_bgcolor="white", margin=dict(l=10, r=10, t=10, b=10),
        xaxis=dict(visible=False), yaxis=dict(visible=False),
        annotations=[dict(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                          font=dict(size=14, color="#666666"))],
    )
    return fig


def _format(value: float, digits: int = 3) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


# --------------------------------------------------------------------------------------------
# the app
# --------------------------------------------------------------------------------------------


class Explorer(param.Parameterized):
    """Per-session explorer state: the controls are parameters, the views Panel panes.

    Args:
        n_steps: meta-training steps per system.
        system_seed: seed of every simulated system (graph, SCM, datasets) and of the model.
        model_params: extra :class:`~metacadi.model.MetaCaDI` arguments.
        pool_rows: rows drawn once per new experiment; the support size slices them.
        n_batch: new experiments behind the Intv-AUROC/AUPRC (default ``2 d``).
        callback_every: steps between fit callbacks, i.e. cancellation checks.
        min_update_seconds: least time between two published posteriors during training (building
            the figures costs about 0.1 s, so publishing at every callback would slow training).
        metrics_delay: seconds the Intv-AUROC/AUPRC worker waits before adapting the whole batch,
            so that a slider being dragged only costs one batch, at the value it stops on, and
            the batch does not compete with sending the target chart.
        n_metric_graphs: posterior graph samples behind E-SHD.
        whatif_samples: samples per what-if redraw up to 10 variables (fewer above, see
            :func:`whatif_sample_count`).
        support_interval: least time (s) between two accuracy-vs-support-size curves of models
            published mid-training (each costs about 0.3 s of CPU that training would otherwise
            get: on every published model it slowed training by about a third on a busy 2-core
            machine); the final model always gets its curve.
        autostart: start meta-training at once (tests may start it themselves).
        cache_size: trained systems kept per session, so returning to one needs no retraining.
    """

    n_variables = param.Integer(8, bounds=(3, 20), label="Number of variables")
    expected_degree = param.Number(1.0, bounds=(0.5, 3.0), step=0.25, label="Expected degree (density)")
    graph_family = param.Selector(default="er", objects=GRAPH_FAMILY_LABELS, label="Graph family")
    intervention = param.Selector(default="hard", objects=["hard", "soft"], label="Intervention type")
    off_target_rate = param.Number(0.0, bounds=(0.0, 0.5), step=0.05, label="Off-target rate")
    support_size = param.Integer(10, bounds=(2, 100), label="Support size (rows of the new experiment)")
    targets = param.ListSelector(default=[], objects=[], label="Variables the new experiment hits (empty: random)")
    experiment_seed = param.Integer(0, bounds=(0, None), label="Seed of the new experiment")
    edge_threshold = param.Number(0.5, bounds=(0.0, 1.0), step=0.05, label="Edge-probability threshold (posterior graph)")
    whatif_variable = param.Selector(default=None, objects=[], label="do: variable")
    whatif_value = param.Number(0.0, label="value (data units)")

    def __init__(
        self,
        *,
        n_steps: int = 400,
        system_seed: int = 0,
        model_params: dict[str, Any] | None = None,
        pool_rows: int = 100,
        n_batch: int | None = None,
        callback_every: int = 10,
        min_update_seconds: float = 0.75,
        metrics_delay: float = 0.15,
        n_metric_graphs: int = 100,
        whatif_samples: int = 2000,
        support_interval: float = 3.0,
        autostart: bool = True,
        cache_size: int = 4,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.n_steps = int(n_steps)
        self.system_seed = int(system_seed)
        self.model_params = dict(model_params or {})
        self.pool_rows = int(pool_rows)
        self.n_batch = n_batch
        self.callback_every = int(callback_every)
        self.min_update_seconds = float(min_update_seconds)
        self.metrics_delay = float(metrics_delay)
        self.n_metric_graphs = int(n_metric_graphs)
        self.whatif_samples = int(whatif_samples)
        self.support_interval = float(support_interval)
        self.cache_size = int(cache_size)
        self.param.support_size.bounds = (2, self.pool_rows)

        self.run: TrainingRun | None = None
        self.fit: FitState | None = None
        self.runs: list[TrainingRun] = []
        self.errors: list[str] = []
        self._generation = 0
        self._systems: OrderedDict[SystemSpec, ExplorerSystem] = OrderedDict()
        self._trained: OrderedDict[SystemSpec, tuple[FitState, PosteriorViews]] = OrderedDict()
        self._graph_metrics: dict[str, float] = {}
        self._target_metrics: dict[str, float] = {}
        self._experiment_summary = ""
        self._metrics_key: tuple[int, int] | None = None
        self._metrics_cache: dict[tuple[int, int], dict[str, float]] = {}
        self._state_lock = threading.RLock()
        self._ui_lock = threading.RLock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metacadi-explorer-metrics")
        self._closed = False
        self.target_probs: pd.Series | None = None
        self.support_view: SupportView | None = None  # the one on the page
        self._support_requested = -float("inf")  # when a mid-training model's curve was last requested
        self._shown_system: ExplorerSystem | None = None

        doc = pn.state.curdoc
        self._doc = doc if doc is not None and doc.session_context is not None else None
        if self._doc is not None:
            self._doc.on_session_destroyed(lambda _context: self.close())

        self._build_views()
        self._sync_degree_bounds()
        self.param.watch(self._on_system_change, list(SYSTEM_PARAMETERS))
        self.param.watch(self._on_experiment_change, list(EXPERIMENT_PARAMETERS))
        self.param.watch(self._on_threshold_change, list(VIEW_PARAMETERS))
        self.param.watch(self._on_whatif_change, list(WHATIF_PARAMETERS))
        if autostart:
            self.start_training()

    # ------------------------------------------------------------------ views
    def _build_views(self) -> None:
        self.widgets = {
            "n_variables": pn.widgets.IntSlider.from_param(self.param.n_variables, throttled=True, css_classes=["n-variables"]),
            "expected_degree": pn.widgets.FloatSlider.from_param(self.param.expected_degree, throttled=True, css_classes=["expected-degree"]),
            "graph_family": pn.widgets.RadioButtonGroup.from_param(self.param.graph_family, css_classes=["graph-family"]),
            "intervention": pn.widgets.RadioButtonGroup.from_param(self.param.intervention, css_classes=["intervention"]),
            "off_target_rate": pn.widgets.FloatSlider.from_param(self.param.off_target_rate, throttled=True, css_classes=["off-target-rate"]),
            "support_size": pn.widgets.IntSlider.from_param(self.param.support_size, css_classes=["support-size"]),
            "targets": pn.widgets.MultiChoice.from_param(self.param.targets, css_classes=["experiment-targets"]),
            "experiment_seed": pn.widgets.IntInput.from_param(self.param.experiment_seed, css_classes=["experiment-seed"]),
            "edge_threshold": pn.widgets.FloatSlider.from_param(self.param.edge_threshold, css_classes=["edge-threshold"]),
            "whatif_variable": pn.widgets.Select.from_param(self.param.whatif_variable, width=150, css_classes=["whatif-variable"]),
            "whatif_value": pn.widgets.FloatSlider.from_param(
                self.param.whatif_value, start=-1.0, end=1.0, step=0.01, min_width=260,
                sizing_mode="stretch_width", styles={"flex": "1 1 260px"}, css_classes=["whatif-value"],
            ),
        }
        descriptions = {
            "n_variables": "Variables of the simulated system; a new value builds a new system and retrains.",
            "expected_degree": "Expected number of parents per variable in the random DAG.",
            "graph_family": "Erdős–Rényi: edges drawn independently; scale-free: a few hubs with many children.",
            "intervention": "Hard: the target is set independently of its parents; soft: its mechanism is perturbed.",
            "off_target_rate": "Chance that an experiment also hits a variable it did not aim at.",
            "support_size": "Rows of the new experiment used by the closed-form adaptation (no retraining); "
                            "the accuracy-vs-support-size view marks it.",
            "targets": "Variables the new experiment intervenes on; empty draws one at random.",
            "experiment_seed": "Draws another intervention and other rows for the same targets.",
            "edge_threshold": "The posterior graph draws every edge with P(i → j) at or above this value.",
            "whatif_variable": "The variable the hypothetical intervention sets (its parents are cut).",
            "whatif_value": "The value it is set to, in the data's units; the range is its mean ± 3 standard deviations.",
        }
        for name, text in descriptions.items():
            self.widgets[name].description = text
        config = {"displayModeBar": False, "responsive": True}

        def plot(role: str, height: int, message: str = "meta-training…") -> pn.pane.Plotly:
            return pn.pane.Plotly(
                _placeholder(message, role, height), config=config, height=height,
                sizing_mode="stretch_width", min_width=340, css_classes=[f"{role}-plot"],
            )

        self.truth_pane = plot("truth", 420, "building the system…")
        self._truth_shown: tuple[ExplorerSystem, NewExperiment | None] | None = None  # what truth_pane draws
        self.posterior_pane = plot("posterior", 420)
        self.heatmap_pane = plot("heatmap", 440)
        self.target_pane = plot("targets", 340)
        self.curve_pane = plot("training", 300)
        self.whatif_pane = plot("whatif", 340)
        self.support_pane = plot("support-curve", 360, "building the system…")
        self.support_caption = pn.pane.Markdown("", css_classes=["legend-note", "support-caption"], sizing_mode="stretch_width")
        self.metrics_pane = pn.pane.HTML("", css_classes=["metrics"], min_width=320, sizing_mode="stretch_width")
        self.progress = pn.indicators.Progress(
            value=-1, max=max(self.n_steps, 1), active=True, bar_color="primary",
            sizing_mode="stretch_width", visible=False, css_classes=["training-progress"],
        )
        self.status = pn.pane.Markdown("", css_classes=["training-status"])
        self.alert = pn.pane.Alert("", alert_type="danger", visible=False, css_classes=["explorer-alert"])

    def panel(self) -> pn.viewable.Viewable:
        """The whole app: controls on the left, views on the right."""
        intro = pn.pane.Markdown(
            "## MetaCaDI explorer\n"
            "MetaCaDI meta-learns one causal graph from many experiments with **unknown** targets, "
            "then identifies a *new* experiment's targets from a handful of rows by a closed-form "
            "ridge solve — no retraining."
        )
        controls = pn.Column(
            intro,
            pn.pane.Markdown("### System · changes retrain"),
            *(self.widgets[name] for name in SYSTEM_PARAMETERS),
            self.progress,
            self.status,
            pn.pane.Markdown("### New experiment · closed-form adaptation"),
            *(self.widgets[name] for name in EXPERIMENT_PARAMETERS),
            pn.pane.Markdown("### View"),
            self.widgets["edge_threshold"],
            pn.pane.Markdown(
                "Truth: the new experiment's targets are **red**, their descendants **light orange** — "
                "an intervention moves its descendants' distributions too, so a descendant can score "
                "higher than the target itself (often with soft interventions).",
                css_classes=["legend-note"],
            ),
            width=300,
        )
        # Each pair of views sits side by side while both get at least 420 px and stacks below
        # that (e.g. a 1000 px window), so that heatmap labels and graph nodes never get squeezed.
        def pair(*panes: pn.viewable.Viewable) -> pn.FlexBox:
            for pane in panes:
                pane.min_width = 420
                pane.styles = {"flex": "1 1 420px"}
            return pn.FlexBox(*panes, flex_wrap="wrap", sizing_mode="stretch_width")

        # The what-if view spans the views column, with its controls right above it (it sits
        # below the fold, so controls in the left column would be out of sight of the figure).
        whatif = pn.Column(
            pn.pane.Markdown("### What if? do(variable = value) · sampled from the trained model, no retraining"),
            pn.FlexBox(self.widgets["whatif_variable"], self.widgets["whatif_value"], flex_wrap="wrap",
                       sizing_mode="stretch_width"),
            self.whatif_pane,
            pn.pane.Markdown(
                "Blue: the model's prediction, averaged over its graph posterior (each sample draws its own "
                "graph, then samples through the learned mechanisms); red: the simulator's true interventional "
                "distribution. Dots are means, bars the central 90 % of the samples; the diamond is the "
                "do-value. The mechanisms are point estimates, so the bars show noise and graph uncertainty only.",
                css_classes=["legend-note"],
            ),
            sizing_mode="stretch_width", css_classes=["whatif"],
        )
        # The accuracy-vs-support-size view spans the views column too: its two panels (AUROC,
        # AUPRC) keep about 300 px each in the 680 px a 1000 px window leaves them.
        support = pn.Column(
            pn.pane.Markdown("### Accuracy vs. support size · the current model adapted to the batch of new experiments"),
            self.support_pane,
            self.support_caption,
            sizing_mode="stretch_width", css_classes=["support-curve"],
        )
        views = pn.Column(
            self.alert,
            pair(self.truth_pane, self.posterior_pane),
            pair(self.heatmap_pane, self.target_pane),
            pair(self.metrics_pane, self.curve_pane),
            support,
            whatif,
            sizing_mode="stretch_width",
        )
        return pn.Row(controls, views, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()

    # ------------------------------------------------------------------ threading helpers
    def _guarded(self, where: str, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function``; an exception becomes a message on the page instead of a dead session."""
        try:
            with self._ui_lock:
                return function(*args)
        except Exception as error:  # noqa: BLE001 - every failure must reach the page
            self._show_error(where, error)
            return None

    def _show_error(self, where: str, error: BaseException) -> None:
        message = f"{where} failed: {type(error).__name__}: {error}"
        log.error("%s\n%s", message, "".join(traceback.format_exception(error)))
        with self._ui_lock:
            self.errors.append(message)
            self.alert.object = f"**{where} failed.** `{type(error).__name__}`: {error}"
            self.alert.visible = True

    def _dispatch(self, where: str, function: Callable[..., Any], *args: Any) -> None:
        """Apply a UI change from any thread: on the server, as a next-tick callback of this
        session's document (which holds the document lock); otherwise (notebook, tests) at once."""
        if self._closed:
            return
        doc = self._doc
        if doc is None:
            self._guarded(where, function, *args)
            return

        def apply() -> None:
            from panel.io.state import set_curdoc

            with set_curdoc(doc):
                self._guarded(where, function, *args)

        try:
            doc.add_next_tick_callback(apply)
        except Exception as error:  # the session is gone: stop work for it
            log.info("explorer session closed (%s); cancelling its work", error)
            self.close()

    def close(self) -> None:
        """Cancel the running training and stop the metrics worker (called when a session ends)."""
        self._closed = True
        with self._state_lock:
            if self.run is not None:
                self.run.cancel.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ system changes → training
    def spec(self) -> SystemSpec:
        """The system the controls describe now."""
        return SystemSpec(
            int(self.n_variables), float(self.expected_degree), str(self.graph_family),
            str(self.intervention), float(self.off_target_rate), self.system_seed,
        )

    def _on_system_change(self, *events: param.parameterized.Event) -> None:
        if any(event.name == "n_variables" for event in events):
            self._guarded("Adjusting the density range", self._sync_degree_bounds)
        self._guarded("Restarting meta-training", self.start_training)

    def _sync_degree_bounds(self) -> None:
        """A DAG on ``d`` nodes has at most ``(d - 1) / 2`` edges per node: cap the density slider."""
        top = max(0.5, min(3.0, (int(self.n_variables) - 1) / 2))
        self.param.expected_degree.bounds = (0.5, top)
        self.widgets["expected_degree"].end = top
        if self.expected_degree > top:
            with param.parameterized.discard_events(self):
                self.expected_degree = top
            self.widgets["expected_degree"].value = top

    def _system(self, spec: SystemSpec) -> ExplorerSystem:
        with self._state_lock:
            system = self._systems.get(spec)
        if system is None:
            system = ExplorerSystem(spec, pool_rows=self.pool_rows, n_batch=self.n_batch)
            with self._state_lock:
                self._systems[spec] = system
                while len(self._systems) > self.cache_size + 1:
                    self._systems.popitem(last=False)
        return system

    def start_training(self) -> TrainingRun:
        """Cancel any running meta-training and train on the system the controls describe.

        Returns the new :class:`TrainingRun` (already finished when the system was cached)."""
        spec = self.spec()
        with self._state_lock:
            previous = self.run
            if previous is not None:
                previous.cancel.set()
            self._generation += 1
            run = TrainingRun(self._generation, spec)
            self.run = run
            self.runs.append(run)
            self.fit = None
            cached = self._trained.get(spec)
        self.alert.visible = False
        if cached is not None:
            self._trained.move_to_end(spec)
            fit, views = cached
            fit = FitState(run.generation, fit.system, fit.model, fit.step, fit.n_steps, True, fit.serial)
            self._show_system(run, fit.system)
            self._apply_fit(run, fit, views)
            run.finished.set()
            return run
        self.progress.value = -1
        self.progress.visible = True
        self.status.object = "Building the system…"
        self.posterior_pane.object = _placeholder("meta-training…", "posterior", 400)
        self.heatmap_pane.object = _placeholder("meta-training…", "heatmap", 400)
        self.target_pane.object = _placeholder("waiting for the first posterior…", "targets", 340)
        self.whatif_pane.object = _placeholder("waiting for the first posterior…", "whatif", 340)
        self.support_pane.object = _placeholder("building the system…", "support-curve", 360)
        self.support_caption.object = ""
        self.support_view = None
        self._support_requested = -float("inf")  # the new system's first model gets its curve at once
        run.thread = threading.Thread(
            target=self._train, args=(run, previous), name=f"metacadi-explorer-train-{run.generation}", daemon=True
        )
        run.thread.start()
        return run

    def _model(self, spec: SystemSpec) -> MetaCaDI:
        params = {"n_steps": self.n_steps, "seed": spec.seed, "prior_expected_degree": spec.expected_degree}
        params.update(self.model_params)
        return MetaCaDI(**params)

    def _train(self, run: TrainingRun, previous: TrainingRun | None) -> None:
        """Body of the training thread: build the system, fit with a callback that publishes
        a copy of the model and its figures, stop as soon as ``run`` is cancelled."""
        try:
            if previous is not None and previous.thread is not None:
                previous.thread.join()  # two trainings would only slow each other down
            if run.cancelled:
                return
            system = self._system(run.spec)
            self._dispatch("Showing the system", self._show_system, run, system)
            references = self.support_view_of(system, None)  # floor and ceiling, built off the UI thread
            self._dispatch("Showing the floor and ceiling", self._show_references, run, references)
            model = self._model(run.spec)
            last_publish = [-float("inf")]

            def callback(state) -> bool:
                run.callbacks += 1
                if run.cancelled:
                    run.cancelled_at_step = state.step
                    return False
                now = time.perf_counter()
                if now - last_publish[0] < self.min_update_seconds or state.step == state.n_steps:
                    # only the progress bar moves; the final model is published after fit returns
                    self._dispatch("Updating the progress", self._apply_progress, run, state.step, state.n_steps)
                    return True
                fit = FitState(run.generation, system, copy.deepcopy(state.model), state.step, state.n_steps, False)
                self._dispatch("Updating the posterior", self._apply_fit, run, fit, self._posterior_views(fit))
                last_publish[0] = time.perf_counter()  # measured after publishing: bounds its share of the time
                if run.cancelled:
                    run.cancelled_at_step = state.step
                    return False
                return True

            model.fit(system.protocol.train, callback=callback, callback_every=self.callback_every, progress=False)
            if run.cancelled or model.stopped_early_:
                return
            fit = FitState(run.generation, system, model, len(model.history_), model.n_steps, True)
            views = self._posterior_views(fit)
            with self._state_lock:
                self._trained[run.spec] = (fit, views)
                while len(self._trained) > self.cache_size:
                    self._trained.popitem(last=False)
            self._dispatch("Showing the trained model", self._apply_fit, run, fit, views)
        except Exception as error:  # noqa: BLE001
            self._dispatch("Meta-training", self._fail_run, run, error)
        finally:
            run.finished.set()

    def _posterior_views(self, fit: FitState) -> PosteriorViews:
        """Figures and graph metrics of a published model (runs in the training thread)."""
        system = fit.system
        edge_probs = fit.model.edge_probs_
        threshold = float(self.edge_threshold)
        graph = self._graph_figure(fit, edge_probs, threshold)
        heatmap = plots.edge_heatmap(edge_probs, system.graph, height=440)
        heatmap.update_layout(meta="heatmap")
        curve = plots.training_curve(fit.model.history_, smoothing=10)
        curve.update_layout(meta="training")
        samples = fit.model.graph_posterior().sample_graphs(self.n_metric_graphs, seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph_metrics = {
                "edge_auroc": metrics.edge_auroc(system.graph, edge_probs),
                "edge_auprc": metrics.edge_auprc(system.graph, edge_probs),
                "expected_shd": metrics.expected_shd(system.graph, samples),
            }
        key = self._whatif_key()
        whatif = None
        if key[0] in system.names:  # otherwise the controls still name the previous system's variables
            whatif = self.whatif_figure(fit, *key)
        # The final model's curve is built here (training is over) and cached with its views; a
        # model published mid-training gets its curve from the metrics worker (see _apply_fit),
        # so that the ~0.3 s it costs does not hold up the training.
        support = self.support_view_of(system, fit) if fit.done else None
        return PosteriorViews(
            graph, heatmap, curve, graph_metrics, threshold, whatif, key if whatif is not None else None, support
        )

    @staticmethod
    def model_support_curve(fit: FitState) -> SupportCurve:
        """Intv-AUROC/AUPRC of the target probabilities ``fit.model`` adapts to the batch of new
        experiments, at each support size of ``fit.system.curve_sizes``: one batched
        ``model.adapt_many`` per size on the first ``n`` rows of every experiment, seeded like the
        metrics table (so at a size on the curve the two agree). Closed form, no retraining."""
        system = fit.system
        probs = []
        with torch.inference_mode():
            for n in system.curve_sizes:
                posteriors = fit.model.adapt_many(list(system.batch_rows[:, :n]), seed=0)
                probs.append(np.stack([posterior.target_probs.to_numpy() for posterior in posteriors]))
        return SupportCurve.score(system.curve_sizes, system.batch_targets, probs)

    def support_view_of(self, system: ExplorerSystem, fit: FitState | None) -> SupportView:
        """The accuracy-vs-support-size view of ``system``: ``fit``'s curve
        (:meth:`model_support_curve`) beside the floor and ceiling, or these alone without a fit;
        its marker at the support-size slider's value now (built off the UI thread)."""
        n_experiments = len(system.batch_targets)
        support = min(int(self.support_size), system.pool_rows)
        if fit is None:
            return SupportView.build(system, None, support, f"{n_experiments} new experiments",
                                     note="MetaCaDI: waiting for the first posterior…")
        title = f"{n_experiments} new experiments · model after {fit.step}/{fit.n_steps} steps"
        return SupportView.build(system, self.model_support_curve(fit), support, title)

    def _show_support(self, view: SupportView) -> None:
        """Put ``view`` on the page, with its marker moved if the slider moved since it was built."""
        view = view.at(min(int(self.support_size), view.system.pool_rows))
        self.support_pane.object = view.figure
        self.support_caption.object = view.caption
        self.support_view = view

    def _compute_support(self, fit: FitState) -> None:
        """The accuracy-vs-support-size view of a model published mid-training (metrics worker
        thread); of the latest one when a later model of the same system has been published
        meanwhile, skipped when that is the final model (its views carry their own curve)."""
        latest = self.fit
        if self._closed or latest is None or latest.system is not fit.system or latest.done:
            return
        fit = latest
        try:
            view = self.support_view_of(fit.system, fit)
        except Exception as error:  # noqa: BLE001
            self._dispatch("Computing the support-size curve", self._show_error, "Computing the support-size curve", error)
            return
        self._dispatch("Showing the support-size curve", self._apply_support, fit, view)

    def _apply_support(self, fit: FitState, view: SupportView) -> None:
        if fit is self.fit:
            self._show_support(view)

    def _move_support_marker(self, system: ExplorerSystem) -> None:
        """Move the marker of the view on the page to the support-size slider's value (a copy of
        the figure with the marker elsewhere; nothing is recomputed)."""
        view = self.support_view
        if view is None or view.system is not system:
            return
        moved = view.at(min(int(self.support_size), system.pool_rows))
        if moved is not view:
            self.support_pane.object = moved.figure
            self.support_view = moved

    @staticmethod
    def _graph_figure(fit: FitState, edge_probs: pd.DataFrame, threshold: float) -> go.Figure:
        title = f"Posterior graph (step {fit.step}/{fit.n_steps}, P ≥ {threshold:.2f})"
        graph = plots.graph_figure(
            edge_probs, fit.system.graph, threshold=threshold, positions=fit.system.positions, title=title, height=420
        )
        graph.update_layout(meta="posterior")
        return graph

    def _whatif_key(self) -> tuple[str, float]:
        return (str(self.whatif_variable), float(self.whatif_value))

    def whatif_figure(self, fit: FitState, variable: str, value: float) -> go.Figure:
        """The model's predicted ``p(x | do(variable = value))`` (averaged over its graph
        posterior) beside the simulator's, with :func:`whatif_sample_count` samples of each."""
        system = fit.system
        n_samples = whatif_sample_count(len(system.names), self.whatif_samples)
        with torch.inference_mode():
            predicted = predict_intervention(fit.model, {variable: float(value)}, n_samples=n_samples, seed=0)
        truth = system.true_intervention(variable, value, n_samples)
        title = f"do({variable} = {float(value):g}): model after {fit.step}/{fit.n_steps} steps vs. the simulator"
        fig = plots.intervention_figure(predicted, {variable: float(value)}, truth, title=title, height=340)
        fig.update_layout(meta="whatif")
        return fig

    def _on_whatif_change(self, *events: param.parameterized.Event) -> None:
        if any(event.name == "whatif_variable" for event in events):
            self._guarded("Choosing the what-if variable", self._whatif_variable_chosen)
        else:
            self._guarded("Predicting the intervention", self._redraw_whatif)

    def _whatif_variable_chosen(self) -> None:
        """A new do-variable: its slider range and default value, then one redraw."""
        system = self._shown_system
        if system is None or self.whatif_variable not in system.names:
            return
        self._set_whatif_controls(system, *system.default_do(str(self.whatif_variable)))
        self._redraw_whatif()

    def _set_whatif_controls(self, system: ExplorerSystem, variable: str, value: float) -> None:
        """Put the what-if controls on ``variable = value`` of ``system`` without triggering a
        redraw (the caller redraws once)."""
        start, end, step = system.value_range(variable)
        with param.parameterized.discard_events(self):
            if list(self.param.whatif_variable.objects) != system.names:
                self.param.whatif_variable.objects = list(system.names)
            self.whatif_variable = variable
            self.whatif_value = value
        select = self.widgets["whatif_variable"]
        if list(select.options) != system.names:
            select.options = list(system.names)
        select.value = variable
        # range first, then the value, so that the slider never holds an out-of-range value
        self.widgets["whatif_value"].param.update(start=min(start, value), end=max(end, value), step=step)
        self.widgets["whatif_value"].value = value

    def _redraw_whatif(self) -> None:
        fit = self.fit
        if fit is None or self.whatif_variable not in fit.system.names:
            return
        self.whatif_pane.object = self.whatif_figure(fit, *self._whatif_key())

    def _on_threshold_change(self, *events: param.parameterized.Event) -> None:
        self._guarded("Redrawing the posterior graph", self._redraw_graph)

    def _redraw_graph(self) -> None:
        """Only the posterior drawing depends on the threshold: redraw it from the current model."""
        fit = self.fit
        if fit is None:
            return
        self.posterior_pane.object = self._graph_figure(fit, fit.model.edge_probs_, float(self.edge_threshold))

    # ------------------------------------------------------------------ UI-thread updates
    def _current(self, run: TrainingRun) -> bool:
        return run is self.run and not run.cancelled

    def _show_system(self, run: TrainingRun, system: ExplorerSystem) -> None:
        if not self._current(run):
            return
        names = system.names
        if list(self.param.targets.objects) != names:
            kept = [name for name in self.targets if name in names]
            with param.parameterized.discard_events(self):
                self.param.targets.objects = names
                self.targets = kept
            self.widgets["targets"].options = names
            self.widgets["targets"].value = kept
        if self._shown_system is not system:
            self._shown_system = system
            variable, value = self._whatif_key()
            if variable in names:  # keep the intervention when it fits the new system
                start, end, _ = system.value_range(variable)
                if not start <= value <= end:
                    variable, value = system.default_do(variable)
            else:
                variable, value = system.default_do()
            self._set_whatif_controls(system, variable, value)
        self._show_truth(system, None)
        if self.status.object == "Building the system…":
            self.status.object = f"Meta-training on {len(system.protocol.train)} experiments…"

    def _show_references(self, run: TrainingRun, references: SupportView) -> None:
        """The accuracy-vs-support-size view of a new system before its first model: the floor
        and the ceiling alone (unless a model of that system is shown already)."""
        if self._current(run) and (self.fit is None or self.fit.system is not references.system):
            self._show_support(references)

    def _show_truth(self, system: ExplorerSystem, experiment: NewExperiment | None) -> None:
        """Draw the true graph for this system and experiment, unless it is drawn already (the
        support-size slider keeps the experiment, so its key presses send no new graph)."""
        shown = self._truth_shown
        if shown is not None and shown[0] is system and shown[1] is experiment:
            return
        self.truth_pane.object = self._truth_figure(system, experiment)
        self._truth_shown = (system, experiment)

    @staticmethod
    def _truth_figure(system: ExplorerSystem, experiment: NewExperiment | None) -> go.Figure:
        """The true graph; with an experiment, its targets red and their descendants light orange."""
        if experiment is None:
            truth = plots.true_graph_figure(system.graph, system.names, positions=system.positions, height=420)
        else:
            truth = plots.true_graph_figure(
                system.graph, system.names, positions=system.positions, height=420,
                highlight=experiment.targets,
                downstream=plots.descendant_mask(system.graph, experiment.targets, system.names),
                title="Ground-truth graph: targets and their descendants",
            )
        truth.update_layout(meta="truth")
        return truth

    def _apply_fit(self, run: TrainingRun, fit: FitState, views: PosteriorViews) -> None:
        if not self._current(run):
            return
        self.fit = fit
        if views.threshold == float(self.edge_threshold):
            self.posterior_pane.object = views.graph
        else:  # the threshold moved while these views were being built
            self.posterior_pane.object = self._graph_figure(fit, fit.model.edge_probs_, float(self.edge_threshold))
        self.heatmap_pane.object = views.heatmap
        self.curve_pane.object = views.curve
        if views.whatif is not None and views.whatif_key == self._whatif_key():
            self.whatif_pane.object = views.whatif
        else:  # the what-if controls moved while these views were being built
            self._redraw_whatif()
        self._graph_metrics = views.graph_metrics
        if views.support is not None:
            self._show_support(views.support)
        elif not self._closed and time.perf_counter() - self._support_requested >= self.support_interval:
            self._support_requested = time.perf_counter()
            self._executor.submit(self._compute_support, fit)
        if fit.done and views.support is not None and views.support.curve is not None:
            # the curve's points are the metrics table's values at those sizes: no second batch
            curve, n_experiments = views.support.curve, len(fit.system.batch_targets)
            for n, auroc, auprc in zip(curve.sizes, curve.auroc, curve.auprc):
                self._metrics_cache.setdefault(
                    (fit.serial, n), {"target_auroc": auroc, "target_auprc": auprc, "n_experiments": n_experiments}
                )
        if fit.done:
            self.progress.visible = False
            seconds = getattr(fit.model, "fit_seconds_", float("nan"))
            self.status.object = f"Trained: {fit.step} steps in {seconds:.1f} s."
        else:
            self.progress.visible = True
            self.progress.value = int(fit.step)
            self.status.object = f"Meta-training… step {fit.step}/{fit.n_steps}"
        self._readapt()

    def _apply_progress(self, run: TrainingRun, step: int, n_steps: int) -> None:
        if not self._current(run) or (self.fit is not None and self.fit.done):
            return
        self.progress.visible = True
        self.progress.value = int(step)
        self.status.object = f"Meta-training… step {step}/{n_steps}"

    def _fail_run(self, run: TrainingRun, error: BaseException) -> None:
        if run is self.run:
            self.progress.visible = False
            self.status.object = "Meta-training failed."
        self._show_error("Meta-training", error)

    # ------------------------------------------------------------------ new experiment → adapt
    def _on_experiment_change(self, *events: param.parameterized.Event) -> None:
        self._guarded("Adapting to the new experiment", self._readapt)

    def _readapt(self) -> None:
        """Closed-form adaptation to the configured new experiment; only the target chart and
        the target metrics change."""
        fit = self.fit
        if fit is None:
            return
        system = fit.system
        targets = [name for name in self.targets if name in system.names]
        experiment = system.experiment(targets, self.experiment_seed)
        support = min(int(self.support_size), system.pool_rows)
        with torch.inference_mode():  # no autograd bookkeeping on the hot path
            posterior = fit.model.adapt(experiment.rows[:support], seed=int(self.experiment_seed))
        self.target_probs = posterior.target_probs
        downstream = plots.descendant_mask(system.graph, experiment.targets, system.names)
        fig = plots.target_bar_chart(
            posterior.target_probs, experiment.targets, experiment.intended, descendants=downstream,
            title=f"Target probabilities of the new experiment ({support} rows)",
        )
        self._show_truth(system, experiment)
        fig.update_layout(meta="targets")
        self.target_pane.object = fig
        self._move_support_marker(system)
        true_names = [n for n, hit in zip(system.names, experiment.targets) if hit]
        top = posterior.top_targets(1)
        self._experiment_summary = (
            f"most probable target <b>{html.escape(str(top.index[0]))}</b> (P = {top.iloc[0]:.2f}); "
            f"true target(s): {html.escape(', '.join(true_names))}"
        )
        self._request_target_metrics(fit, support)
        self._render_metrics()

    def _request_target_metrics(self, fit: FitState, support: int) -> None:
        key = (fit.serial, support)
        self._metrics_key = key
        cached = self._metrics_cache.get(key)
        if cached is not None:
            self._target_metrics = cached
            return
        self._target_metrics = {}
        if not self._closed:
            self._executor.submit(self._compute_target_metrics, fit, support, key)

    def _compute_target_metrics(self, fit: FitState, support: int, key: tuple[int, int]) -> None:
        """Intv-AUROC/AUPRC over the batch of new experiments at this support size (worker thread)."""
        if self.metrics_delay > 0:
            time.sleep(self.metrics_delay)
        if key != self._metrics_key or self._closed:
            return  # superseded by a later request
        try:
            datasets = list(fit.system.batch_rows[:, :support])
            with torch.inference_mode():
                posteriors = fit.model.adapt_many(datasets, seed=0)
            probs = np.stack([p.target_probs.to_numpy() for p in posteriors])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = metrics.target_metrics(fit.system.batch_targets, probs)
            values["n_experiments"] = len(datasets)
        except Exception as error:  # noqa: BLE001
            self._dispatch("Computing the target metrics", self._show_error, "Computing the target metrics", error)
            return
        self._dispatch("Showing the target metrics", self._apply_target_metrics, key, values, fit.done)

    def _apply_target_metrics(self, key: tuple[int, int], values: dict[str, float], cacheable: bool) -> None:
        if cacheable:  # a finished model's metrics never change; mid-training ones are replaced anyway
            self._metrics_cache[key] = values
        if key == self._metrics_key:
            self._target_metrics = values
            self._render_metrics()

    def _render_metrics(self) -> None:
        graph, target = self._graph_metrics, self._target_metrics
        batch = target.get("n_experiments")
        support = int(self.support_size)
        rows = [
            ("Edge AUROC", "", _format(graph.get("edge_auroc"))),
            ("Edge AUPRC", "", _format(graph.get("edge_auprc"))),
            ("E-SHD", f"{self.n_metric_graphs} posterior graphs", _format(graph.get("expected_shd"), 2)),
            ("Intv-AUROC", f"{batch or '…'} new experiments, {support} rows", _format(target.get("target_auroc"))),
            ("Intv-AUPRC", f"{batch or '…'} new experiments, {support} rows", _format(target.get("target_auprc"))),
        ]
        body = "".join(
            f'<tr><td><abbr class="metric-help" title="{html.escape(METRIC_HELP[name])}">'
            f'{name}{f" ({html.escape(detail)})" if detail else ""}</abbr></td><td>{value}</td></tr>'
            for name, detail, value in rows
        )
        summary = self._experiment_summary
        self.metrics_pane.object = (
            "<h3>Metrics</h3><p style='margin:0;color:#555'>Hover a metric's name for what it measures.</p>"
            f"<table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>{body}</tbody></table>"
            f"<p>This experiment: {summary}</p>"
        )

    # ------------------------------------------------------------------ conveniences
    def wait(self, timeout: float = 120.0) -> FitState:
        """Block until the current training run has finished (for scripts and tests)."""
        run = self.run
        if run is None:
            raise RuntimeError("no training has been started; call start_training() first.")
        if not run.finished.wait(timeout):
            raise TimeoutError(f"meta-training did not finish within {timeout} s.")
        if self.fit is None or not self.fit.done:
            raise RuntimeError(f"meta-training ended without a trained model; errors: {self.errors}")
        return self.fit


def _from_environment() -> Explorer:
    """The served app, with the defaults overridable by environment variables.

    The server process runs torch ops on one thread: the models are small, so a second
    intra-op thread gains little for training and, on a busy machine, multiplies the time of
    every small op — adaptation on the UI thread went from about 7 ms to about 30 ms per call
    with two threads on two shared cores. One thread per op leaves the other core to the UI
    thread (and to other sessions)."""
    torch.set_num_threads(1)
    return Explorer(
        n_steps=int(os.environ.get("METACADI_EXPLORER_STEPS", 400)),
        n_variables=int(os.environ.get("METACADI_EXPLORER_VARIABLES", 8)),
        system_seed=int(os.environ.get("METACADI_EXPLORER_SEED", 0)),
    )


if __name__.startswith("bokeh"):
    _from_environment().panel().servable(title="MetaCaDI explorer")
