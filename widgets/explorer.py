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
FIGURE_ROLES = ("truth", "posterior", "heatmap", "targets", "training", "whatif")

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
        self._lock = threading.Lock()

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
            "support_size": "Rows of the new experiment used by the closed-form adaptation (no retraining).",
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
        self.posterior_pane = plot("posterior", 420)
        self.heatmap_pane = plot("heatmap", 440)
        self.target_pane = plot("targets", 340)
        self.curve_pane = plot("training", 300)
        self.whatif_pane = plot("whatif", 340)
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
        views = pn.Column(
            self.alert,
            pair(self.truth_pane, self.posterior_pane),
            pair(self.heatmap_pane, self.target_pane),
            pair(self.metrics_pane, self.curve_pane),
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
        return PosteriorViews(graph, heatmap, curve, graph_metrics, threshold, whatif, key if whatif is not None else None)

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
        self.truth_pane.object = self._truth_figure(system, None)
        if self.status.object == "Building the system…":
            self.status.object = f"Meta-training on {len(system.protocol.train)} experiments…"

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
        self.truth_pane.object = self._truth_figure(system, experiment)
        fig.update_layout(meta="targets")
        self.target_pane.object = fig
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
