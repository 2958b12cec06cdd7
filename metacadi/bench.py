"""Benchmark runner: MetaCaDI, its MAML ablations and the baselines on simulated meta-learning problems.

    python -m metacadi.bench --preset small --seeds 3                 # a few minutes on 2 cores
    python -m metacadi.bench --preset small --methods all --out results/
    python -m metacadi.bench --preset paper --n-jobs 8 --out results/  # the paper's protocol

or, from Python (the book does this)::

    from metacadi.bench import run_benchmark, summary_table, to_markdown
    results = run_benchmark(preset="tiny", seeds=2)       # one row per seed x data x intervention x method
    print(to_markdown(summary_table(results)))

Protocol (paper §5), for every seed ``s``, data source and intervention type:

1. :func:`build_protocol`: one random DAG and SCM (seed ``s``), meta-training tasks (observational
   and interventional, ``train_rows`` rows each) and meta-test tasks (``test_rows`` = 10 rows each,
   new experiments). GP-ANM data come from :func:`~metacadi.tasks.make_meta_protocol`
   (Erdős–Rényi graph, GP mechanisms; ``hard`` or ``soft`` interventions); SERGIO data from
   :func:`~metacadi.sergio.make_sergio_protocol` (scale-free gene network; ``hard`` =
   knockouts, ``soft`` = knock-downs). The same seed gives the same graph and mechanisms for
   hard and soft, so the two columns of a table are paired.
2. :func:`run_method`: MetaCaDI and the MAML ablations are meta-trained on the meta-training tasks
   and then adapt to **one meta-test dataset at a time** (each adaptation timed). The baselines
   instead see **all** datasets at once, the meta-training tasks and every meta-test dataset, as
   in the paper (Appendix C); their target scores for the meta-test tasks are read off their
   result. The ``distribution-shift`` reference scores every meta-test dataset against the pooled
   observational meta-training data (it is given the observational tasks and the test tasks).
3. :func:`evaluate`: E-SHD and E-SID, the means over ``n_graph_samples`` graphs drawn from the
   method's graph posterior (a point-estimate method contributes its single graph); edge AUROC /
   AUPRC from the edge probabilities; Intv-AUROC / Intv-AUPRC of the target probabilities
   against the true targets, pooled over the meta-test tasks; fit time; median adaptation time
   per meta-test task; meta-training seconds per step.
4. :func:`summary_table` (mean ± sd over seeds), :func:`welch_tests` (Welch's t-test of each
   method against MetaCaDI, per metric, when there are at least two seeds), :func:`speed_table`
   (adaptation and training speed of the three MetaCaDI variants on the same tasks, as ratios),
   :func:`to_markdown`, :func:`figure` (plotly).

Presets (exact sizes; every model argument not listed keeps MetaCaDI's default):

``tiny`` (tests and the book, ~20 s): ``d = 5`` variables, ER graph with expected degree 1,
2 observational + 10 interventional meta-training tasks of 40 rows, 5 meta-test tasks of
10 rows, 40 meta-training steps, 32 graph samples for E-SHD/E-SID; hard interventions on GP-ANM
data; 2 seeds.

``small`` (the command-line default): ``d = 10`` variables, ER graph with expected degree 1,
2 observational + 20 interventional meta-training tasks of 100 rows (support 10, query up to 64),
10 meta-test tasks of 10 rows, MetaCaDI's default number of steps, 100 graph samples; the
settings ``hard``, ``soft``, ``soft-subtle`` and ``soft-scale`` on GP-ANM data (two easy ones and
two where the shift score fails); 10 seeds; methods MetaCaDI, Intv-MAML, Full-MAML and the
shift score, plus the floors and the oracle. ``d = 20`` is the ``headline`` size: Full-MAML's
second-order meta-training costs several times MetaCaDI's per step, which makes every method at
``d = 20`` and 10 seeds an hours-long run on two cores.

``headline``: the paper-sized problem for the four main methods only: ``d = 20`` variables, ER
graph with expected degree 1, 2 observational + 40 interventional meta-training tasks of 100 rows,
20 meta-test tasks of 10 rows, MetaCaDI's default number of steps, 200 graph samples; hard and
soft interventions on GP-ANM data; MetaCaDI, Intv-MAML, Full-MAML and the distribution-shift
reference; 3 seeds (about 40 minutes on one core, Full-MAML's second-order training dominating).

``paper``: the paper's protocol as far as the text states it (its numbers were lost, see
``METHOD.md``): ``d = 20`` variables, ER graph with expected degree 1, 2 observational + 40
interventional meta-training tasks of 100 rows (support 10), 20 meta-test tasks of 10 rows,
MetaCaDI's default number of steps (300), 1000 graph samples, hard and soft interventions, GP-ANM
and SERGIO data, 20 seeds, every method.

Settings (``--setting``, the ``intervention`` column; :mod:`metacadi.bench_settings`): ``hard`` and
``soft`` as above, and harder ones by name: ``soft-subtle`` (weaker mechanism, a mean shift of
about one noise sd, noisier), ``soft-scale`` (noise sd x3, no mean shift),
``hard-mean-preserving``, ``hard-offtarget`` and ``soft-scale-offtarget`` (off-target rate 0.3);
a ``mlp-``/``linear-`` and an ``sf-`` prefix change the mechanism and the graph family
(``mlp-sf-soft-scale``). SERGIO: ``hard`` (knockouts), ``soft`` (knock-downs to 25 %),
``knockdown-mild`` (50 %), ``knockout-dropout`` (80 % dropout), ``knockdown-dropout``. The
``small`` preset runs ``hard``, ``soft``, ``soft-subtle`` and ``soft-scale``. Measured without
training (``--methods distribution-shift --first-seed 100 --seeds 5``, preset ``small``),
shift-score / oracle Intv-AUROC: hard 0.990 / 1.000, soft 0.968 / 0.978, soft-subtle
0.790 / 0.999, soft-scale 0.752 / 0.996, hard-mean-preserving 0.834 / 0.980, hard-offtarget
0.968 / 1.000; SERGIO (approximate oracle) hard 0.946 / 0.926, knockdown-mild 0.749 / 0.775.

Floors and a ceiling in every table (:mod:`metacadi.reference_scores`; ``references=False`` /
``--no-references`` leaves them out): the shift score (the ``distribution-shift`` baseline,
``|mean - mean_obs| / sd_obs + |log(sd / sd_obs)|`` against the pooled observational training
rows), the empty graph (E-SHD = number of true edges), on SERGIO the zero-count score, and the
oracle that scores targets with the true graph and mechanisms. Each table's heading names the
setting's difficulty (by the shift score's Intv-AUROC: easy >= 0.95, medium >= 0.85, hard), the
oracle's Intv-AUROC and the true number of edges; ``SHD@0.5`` is the SHD of the edges with
probability >= 0.5 and ``edges/sample`` the mean number of edges of a posterior graph sample.

Timings are wall-clock seconds on whatever machine runs the benchmark; each job runs torch with
one thread (the models are small; intra-op threads only add contention).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import MetaCaDIInputError
from .tasks import TaskSet

__all__ = [
    "DATA_SOURCES",
    "INTERVENTIONS",
    "METHODS",
    "METHOD_LABELS",
    "METRICS",
    "MethodOutput",
    "PRESETS",
    "Preset",
    "build_protocol",
    "evaluate",
    "figure",
    "main",
    "run_benchmark",
    "run_method",
    "run_setting",
    "speed_table",
    "summarise",
    "summary_table",
    "to_markdown",
    "welch_tests",
]

DATA_SOURCES: tuple[str, ...] = ("gp-anm", "sergio")
#: the BaCaDI authors' protocol (preset ``bacadi``): data kind x graph family, see metacadi.bacadi_protocol
BACADI_DATA: tuple[str, ...] = ("linear-er", "linear-sf", "mlp-er", "mlp-sf", "sergio-sf")
ALL_DATA: tuple[str, ...] = DATA_SOURCES + BACADI_DATA
#: ``--methods baselines``: the four baselines of the BaCaDI comparison
BASELINE_METHODS: tuple[str, ...] = ("jci-pc", "ut-igsp", "dcdi-g", "bacadi")
INTERVENTIONS: tuple[str, ...] = ("hard", "soft")
MODEL_METHODS: tuple[str, ...] = ("metacadi", "intv-maml", "full-maml")


def _baseline_names() -> tuple[str, ...]:
    from .baselines import BASELINES

    return tuple(BASELINES)


#: floors and the ceiling (no training; see metacadi.reference_scores). With the shift-score
#: floor (the ``distribution-shift`` baseline) they are added to every run unless
#: ``references=False``; ``zero-count`` only on SERGIO data.
REFERENCE_METHODS: tuple[str, ...] = ("empty-graph", "zero-count", "oracle")

#: every method name the runner knows: the three MetaCaDI variants, the baselines, the references
METHODS: tuple[str, ...] = MODEL_METHODS + _baseline_names() + REFERENCE_METHODS

METHOD_LABELS: dict[str, str] = {
    "metacadi": "MetaCaDI",
    "intv-maml": "MetaCaDI-Intv-MAML",
    "full-maml": "MetaCaDI-Full-MAML",
    "distribution-shift": "Shift score (floor, non-causal)",
    "empty-graph": "Empty graph (floor)",
    "zero-count": "Zero count (floor)",
    "oracle": "Oracle: true graph + mechanisms (ceiling)",
    "jci-pc": "JCI-PC",
    "ut-igsp": "UT-IGSP",
    "dcdi-g": "DCDI-G",
    "bacadi": "BaCaDI",
}

#: metric column -> (label, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "e_shd": ("E-SHD", False),
    "e_sid": ("E-SID", False),
    "thr_shd": ("SHD@0.5", False),
    "edges_per_sample": ("edges/sample", False),
    "edge_auroc": ("Edge-AUROC", True),
    "edge_auprc": ("Edge-AUPRC", True),
    "intv_auroc": ("Intv-AUROC", True),
    "intv_auprc": ("Intv-AUPRC", True),
    "obs_nll_gap": ("obs-NLL gap", False),
    "obs_nll_gap_true_graph": ("obs-NLL gap, true graph", False),
    "fit_seconds": ("fit [s]", False),
    "adapt_seconds": ("adapt/task [ms]", False),
}

#: the metrics Welch's t-test compares (timings are compared in :func:`speed_table`)
TESTED_METRICS: tuple[str, ...] = ("e_shd", "e_sid", "edge_auroc", "edge_auprc", "intv_auroc", "intv_auprc")


# --------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """Sizes of one benchmark configuration (see the module docstring for the three presets).

    Attributes:
        protocol: arguments of :func:`~metacadi.tasks.make_meta_protocol` /
            :func:`~metacadi.sergio.make_sergio_protocol` (``intervention`` and ``seed`` are set
            per run).
        model: arguments of every MetaCaDI variant (the rest keep MetaCaDI's defaults).
        maml: extra arguments of the two MAML ablations.
        baselines: baseline name -> constructor arguments.
        n_graph_samples: graphs drawn from a posterior for E-SHD / E-SID.
        seeds, methods, data, interventions: defaults of :func:`run_benchmark` for this preset.
    """

    protocol: dict[str, Any]
    model: dict[str, Any]
    maml: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_graph_samples: int = 100
    seeds: int = 3
    methods: tuple[str, ...] = ("metacadi", "intv-maml", "full-maml", "distribution-shift")
    data: tuple[str, ...] = ("gp-anm",)
    interventions: tuple[str, ...] = ("hard", "soft")


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        protocol=dict(
            n_variables=5, expected_degree=1.0, n_observational=2, n_interventional=10,
            train_rows=40, n_test=5, test_rows=10,
        ),
        model=dict(n_steps=40, n_edge_samples=200),
        maml=dict(inner_steps=5),
        baselines={
            "dcdi-g": dict(inner_steps=100, max_outer=5),
            "bacadi": dict(n_steps=300, n_particles=5),
        },
        n_graph_samples=32,
        seeds=2,
        interventions=("hard",),
    ),
    "small": Preset(
        protocol=dict(
            n_variables=10, expected_degree=1.0, n_observational=2, n_interventional=20,
            train_rows=100, n_test=10, test_rows=10,
        ),
        model=dict(),
        maml=dict(inner_steps=5),
        n_graph_samples=100,
        seeds=10,
        # easy settings and two where the shift score fails but the oracle does not
        # (metacadi.bench_settings; measured difficulty in the module docstring)
        interventions=("hard", "soft", "soft-subtle", "soft-scale"),
    ),
    "headline": Preset(
        protocol=dict(
            n_variables=20, expected_degree=1.0, n_observational=2, n_interventional=40,
            train_rows=100, n_test=20, test_rows=10,
        ),
        model=dict(),
        maml=dict(inner_steps=5),
        n_graph_samples=200,
        seeds=3,
    ),
    "paper": Preset(
        protocol=dict(
            n_variables=20, expected_degree=1.0, n_observational=2, n_interventional=40,
            train_rows=100, n_test=20, test_rows=10,
        ),
        model=dict(),
        maml=dict(inner_steps=5),
        n_graph_samples=1000,
        seeds=20,
        methods=METHODS,
        data=DATA_SOURCES,
    ),
    # The BaCaDI authors' protocol (metacadi.bacadi_protocol): d = 20, ER / SF-2, 100 observational
    # rows, one 10-row environment per node (synthetic) or 10 knockouts (SERGIO). Baselines see
    # exactly that data; MetaCaDI additionally meta-trains on 40 single-target experiments of
    # 100 rows from the same system and adapts to each 10-row environment on its own.
    # Baseline settings: the CI-test levels the recorded runs used (their tuned values), BaCaDI's
    # edge prior at their 2 edges per node; iteration budgets are our defaults (paper preset).
    "bacadi": Preset(
        protocol=dict(n_variables=20, n_meta_train=40, meta_train_rows=100),
        model=dict(),
        maml=dict(inner_steps=5),
        baselines={
            "jci-pc": dict(alpha=0.00078),
            "ut-igsp": dict(alpha=0.00079, alpha_invariance=0.059),
            "bacadi": dict(expected_degree=2.0),
        },
        n_graph_samples=100,
        seeds=30,
        methods=BASELINE_METHODS,
        data=BACADI_DATA,
        interventions=("hard",),
    ),
}


def _get_preset(preset: str | Preset) -> Preset:
    if isinstance(preset, Preset):
        return preset
    if preset not in PRESETS:
        raise MetaCaDIInputError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[preset]


# --------------------------------------------------------------------------------------------
# One setting: protocol -> methods -> metrics
# --------------------------------------------------------------------------------------------


def build_protocol(preset: str | Preset, data: str, intervention: str, seed: int):
    """The meta-learning problem of one seed: ``(graph, train TaskSet, test TaskSet)`` bundle.

    ``data`` is ``"gp-anm"`` (GP mechanisms, ER graph, ``intervention`` ``"hard"``/``"soft"``) or
    ``"sergio"`` (``"hard"`` = knockouts, ``"soft"`` = knock-downs). Returns the protocol object
    (``.graph``, ``.train``, ``.test``, ``.names``).
    """
    config = _get_preset(preset)
    if data in DATA_SOURCES:
        from .bench_settings import setting_protocol

        setting = setting_protocol(data, intervention)  # raises for an unknown setting
    elif intervention not in INTERVENTIONS:
        raise MetaCaDIInputError(f"intervention must be one of {INTERVENTIONS}; got {intervention!r}.")
    if data in BACADI_DATA:
        from .bacadi_protocol import make_bacadi_problem

        if intervention != "hard":
            raise MetaCaDIInputError(f"the BaCaDI protocol ({data}) has hard interventions (knockouts) only.")
        return make_bacadi_problem(data, **config.protocol, seed=seed)
    if data == "gp-anm":
        from .tasks import make_meta_protocol

        return make_meta_protocol(**{**config.protocol, **setting}, seed=seed)
    if data == "sergio":
        from .sergio import make_sergio_protocol

        return make_sergio_protocol(**{**config.protocol, **setting}, seed=seed)
    raise MetaCaDIInputError(f"data must be one of {DATA_SOURCES}; got {data!r}.")


@dataclass
class MethodOutput:
    """What one method produced on one protocol (inputs of :func:`evaluate`).

    Attributes:
        method: method name (a key of :data:`METHOD_LABELS`).
        edge_probs: ``(d, d)`` edge probabilities / scores, or ``None`` (no graph claim).
        graph_samples: ``(S, d, d)`` int DAGs from the graph posterior (a point estimate: ``S = 1``),
            or ``None``.
        target_probs: ``(T_test, d)`` target probabilities of the meta-test tasks, or ``None``
            (no target claim: the empty-graph floor).
        fit_seconds: meta-training (or, for a baseline, fitting) wall time.
        adapt_seconds: ``(T_test,)`` adaptation time of each meta-test task (empty for baselines,
            which do not adapt).
        step_seconds: meta-training seconds per step (NaN for baselines).
    """

    method: str
    edge_probs: np.ndarray | None
    graph_samples: np.ndarray | None
    target_probs: np.ndarray | None
    fit_seconds: float
    adapt_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    step_seconds: float = float("nan")
    obs_nll_gap: float = float("nan")
    obs_nll_gap_true_graph: float = float("nan")


def _model_class(method: str):
    from .maml import FullMAML, IntvMAML
    from .model import MetaCaDI

    return {"metacadi": MetaCaDI, "intv-maml": IntvMAML, "full-maml": FullMAML}[method]


def _seeded(cls, options: dict[str, Any], seed: int) -> dict[str, Any]:
    options = dict(options)
    if "seed" in inspect.signature(cls.__init__).parameters and "seed" not in options:
        options["seed"] = seed
    return options


#: fresh observational rows on which :func:`mechanism_nll_gaps` scores the learned mechanisms
MECHANISM_CHECK_ROWS = 1000


def mechanism_check_rows(scm, seed: int) -> np.ndarray:
    """The :data:`MECHANISM_CHECK_ROWS` fresh observational rows of ``scm`` that seed ``seed``'s
    mechanism check scores (a noise seed of their own, never used in training)."""
    return scm.sample(MECHANISM_CHECK_ROWS, seed=10_000 + seed)


def mechanism_nll_gaps_per_variable(model, scm, graph, rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per variable, ``(d,)`` each: the model's held-out NLL of ``rows``
    (:meth:`~metacadi.model.MetaCaDI.observational_nll`) minus the true mechanisms'
    (:func:`~metacadi.reference_scores.scm_observational_nll`), with graphs from the posterior
    (drawn with ``seed``) and with the true ``graph``, in nats per row."""
    from .reference_scores import scm_observational_nll

    truth = scm_observational_nll(scm, rows)
    posterior = model.observational_nll(rows, seed=seed).to_numpy()
    true_graph = model.observational_nll(rows, graph=graph).to_numpy()
    return posterior - truth, true_graph - truth


def mechanism_nll_gaps(model, protocol, seed: int) -> tuple[float, float]:
    """How far the learned observational mechanisms are from the true ones, in nats per row and variable.

    On :func:`mechanism_check_rows` (fresh observational rows of the simulator, never seen in
    training): :func:`mechanism_nll_gaps_per_variable` averaged over variables, with graphs from
    the posterior and with the true graph (the mechanisms alone). 0 is the ceiling;
    ``(NaN, NaN)`` when the simulator has no additive-noise SCM to compare with (SERGIO, the
    BaCaDI protocol).
    """
    from .scm import SCM

    scm = getattr(protocol, "scm", None)
    if not isinstance(scm, SCM):
        return float("nan"), float("nan")
    posterior, true_graph = mechanism_nll_gaps_per_variable(
        model, scm, protocol.graph, mechanism_check_rows(scm, seed), seed
    )
    return float(np.mean(posterior)), float(np.mean(true_graph))


def run_method(method: str, protocol, preset: str | Preset, seed: int = 0, device: str = "cpu") -> MethodOutput:
    """Fit one method on ``protocol`` and collect its graph posterior and meta-test target probabilities.

    MetaCaDI and the MAML ablations are meta-trained on ``protocol.train`` and adapt to each
    meta-test dataset on its own (timed); baselines see the training and all test tasks at once
    (the distribution-shift reference: the observational training tasks and the test tasks).
    ``device`` is the torch device of the MetaCaDI variants (the baselines run on the CPU).
    The adaptation time is that of ``model.adapt(data)`` end to end: input checks, the
    adaptation on ``n_graph_samples`` graphs and the :class:`~metacadi.posterior.Posterior`.
    """
    config = _get_preset(preset)
    train, test = protocol.train, protocol.test
    n_test = len(test)
    if method in REFERENCE_METHODS:
        return _reference_output(method, protocol)
    if method in MODEL_METHODS:
        cls = _model_class(method)
        options = dict(config.model, device=device)
        if method != "metacadi":
            options.update(config.maml)
        model = cls(**_seeded(cls, options, seed)).fit(train, progress=False)
        adapt_seconds, target_probs = [], []
        for task in test:
            start = time.perf_counter()
            posterior = model.adapt(task.data)
            adapt_seconds.append(time.perf_counter() - start)
            target_probs.append(posterior.target_probs.to_numpy())
        samples = model.graph_posterior().sample_graphs(config.n_graph_samples, seed=seed)
        gaps = mechanism_nll_gaps(model, protocol, seed)
        return MethodOutput(
            method=method,
            edge_probs=model.edge_probs_.to_numpy(),
            graph_samples=samples,
            target_probs=np.stack(target_probs),
            fit_seconds=float(model.fit_seconds_),
            adapt_seconds=np.asarray(adapt_seconds),
            step_seconds=float(model.fit_seconds_) / max(model.steps_run_, 1),
            obs_nll_gap=gaps[0],
            obs_nll_gap_true_graph=gaps[1],
        )
    from .baselines import BASELINES

    if method not in BASELINES:
        raise MetaCaDIInputError(f"unknown method {method!r}; choose from {list(METHODS)}.")
    cls = BASELINES[method]
    baseline = cls(**_seeded(cls, config.baselines.get(method, {}), seed))
    seen = list(train.observational()) if method == "distribution-shift" else list(train)
    if hasattr(protocol, "baseline_train"):  # the BaCaDI protocol: baselines see exactly its data
        seen = list(protocol.baseline_train)
    result = baseline.fit(TaskSet(seen + list(test), graph=protocol.graph))
    if result.graph_samples is not None:
        samples = np.asarray(result.graph_samples)
    elif result.graph is not None:
        samples = np.asarray(result.graph)[None]
    else:
        samples = None
    return MethodOutput(
        method=method,
        edge_probs=None if result.edge_scores is None else np.asarray(result.edge_scores, dtype=float),
        graph_samples=samples,
        target_probs=np.asarray(result.target_scores[-n_test:], dtype=float),
        fit_seconds=float(result.fit_seconds),
    )


def _reference_output(method: str, protocol) -> MethodOutput:
    """A floor or the ceiling (:mod:`metacadi.reference_scores`): no training, timed like a fit."""
    from .reference_scores import oracle_scores, zero_count_scores

    start = time.perf_counter()
    d = protocol.n_variables
    edge_probs = graph_samples = target_probs = None
    if method == "empty-graph":
        edge_probs = np.zeros((d, d))
        graph_samples = np.zeros((1, d, d), dtype=np.int64)
    elif method in ("zero-count", "oracle") and hasattr(protocol, "baseline_train"):
        from .bacadi_protocol import reference_target_scores

        target_probs = reference_target_scores(method, protocol)
    elif method == "zero-count":
        observational = [task.data for task in protocol.train.observational()]
        target_probs = zero_count_scores(observational, protocol.test)
    elif method == "oracle":
        target_probs = oracle_scores(protocol)
    else:
        raise MetaCaDIInputError(f"unknown reference {method!r}; choose from {list(REFERENCE_METHODS)}.")
    return MethodOutput(method, edge_probs, graph_samples, target_probs, time.perf_counter() - start)


def evaluate(output: MethodOutput, protocol) -> dict[str, float]:
    """Metrics of one method on one protocol (keys of :data:`METRICS` plus ``step_seconds``).

    Graph metrics are NaN for a method without a graph; AUROCs are NaN when undefined (one class).
    ``thr_shd`` is the SHD of the edges with probability >= 0.5, ``edges_per_sample`` the mean
    number of edges of the graph samples, ``true_edges`` that of the true graph; target metrics
    are NaN for a method without target scores (the empty-graph floor).
    """
    from .metrics import (
        UndefinedMetricWarning,
        edge_auprc,
        edge_auroc,
        expected_shd,
        expected_sid,
        target_auprc,
        target_auroc,
        thresholded_shd,
    )

    nan = float("nan")
    truth = protocol.graph
    targets = protocol.test.target_matrix()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        row = {
            "e_shd": expected_shd(truth, output.graph_samples) if output.graph_samples is not None else nan,
            "e_sid": expected_sid(truth, output.graph_samples) if output.graph_samples is not None else nan,
            "edge_auroc": edge_auroc(truth, np.clip(output.edge_probs, 0, 1)) if output.edge_probs is not None else nan,
            "edge_auprc": edge_auprc(truth, np.clip(output.edge_probs, 0, 1)) if output.edge_probs is not None else nan,
            "thr_shd": float(thresholded_shd(truth, np.clip(output.edge_probs, 0, 1))) if output.edge_probs is not None else nan,
            "edges_per_sample": float(np.asarray(output.graph_samples).sum(axis=(1, 2)).mean())
            if output.graph_samples is not None else nan,
            "true_edges": float(np.asarray(truth).sum()),
            "intv_auroc": target_auroc(targets, np.clip(output.target_probs, 0, 1)) if output.target_probs is not None else nan,
            "intv_auprc": target_auprc(targets, np.clip(output.target_probs, 0, 1)) if output.target_probs is not None else nan,
        }
    row["fit_seconds"] = output.fit_seconds
    row["adapt_seconds"] = float(np.median(output.adapt_seconds)) if output.adapt_seconds.size else nan
    row["step_seconds"] = output.step_seconds
    row["obs_nll_gap"] = output.obs_nll_gap
    row["obs_nll_gap_true_graph"] = output.obs_nll_gap_true_graph
    return row


def run_setting(
    preset: str | Preset, seed: int, data: str, intervention: str, methods: Sequence[str], device: str = "cpu"
) -> list[dict[str, Any]]:
    """One job: build the protocol of ``seed`` and run every method on it (one torch thread).

    All methods of a job run one after the other in the same process, so their timings are
    taken under the same conditions (the speed ratios compare like with like).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        protocol = build_protocol(preset, data, intervention, seed)
        rows = []
        for method in methods:
            if method == "zero-count" and data not in ("sergio", "sergio-sf"):
                continue  # continuous data have no exact zeros
            output = run_method(method, protocol, preset, seed, device)
            rows.append(
                {
                    "seed": seed,
                    "data": data,
                    "intervention": intervention,
                    "method": method,
                    "label": METHOD_LABELS.get(method, method),
                    "n_variables": protocol.n_variables,
                    "n_train_tasks": len(protocol.train),
                    "n_test_tasks": len(protocol.test),
                    **evaluate(output, protocol),
                }
            )
            if hasattr(protocol, "baseline_train"):
                from .bacadi_protocol import bacadi_row_metrics

                rows[-1].update(bacadi_row_metrics(output, protocol))
        return rows
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# Many settings
# --------------------------------------------------------------------------------------------


def _as_list(value: str | Sequence[str] | None, default: Sequence[str], allowed: Sequence[str], name: str) -> list[str]:
    if value is None:
        return list(default)
    if isinstance(value, str):
        value = {"both": list(allowed), "all": list(allowed)}.get(value, [value])
    items = list(value)
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        raise MetaCaDIInputError(f"{name} must be chosen from {list(allowed)}; got {items}.")
    return items


def _settings_of(data: str, intervention: str | Sequence[str] | None, preset: Preset) -> list[str]:
    """The settings to run on ``data``: explicit names are checked; preset defaults it lacks are skipped."""
    from .bench_settings import is_setting, setting_protocol

    if data not in DATA_SOURCES:  # protocols without named settings (e.g. the BaCaDI protocol)
        return _as_list(intervention, preset.interventions, INTERVENTIONS, "intervention")
    if intervention is None:
        return [name for name in preset.interventions if is_setting(data, name)]
    names = list(INTERVENTIONS) if intervention in ("both", "all") else [intervention] if isinstance(intervention, str) else list(intervention)
    if not names:
        raise MetaCaDIInputError("intervention is empty; give a setting name.")
    for name in names:
        setting_protocol(data, name)  # raises, naming the valid settings
    return names


def _resolve_methods(methods: str | Sequence[str] | None, preset: Preset) -> list[str]:
    if methods is None or methods == "default":
        chosen = list(preset.methods)
    elif methods == "all":
        chosen = list(METHODS)
    elif methods == "baselines":
        chosen = list(BASELINE_METHODS)
    else:
        chosen = _as_list(methods, preset.methods, METHODS, "methods")
    return chosen


def run_benchmark(
    preset: str | Preset = "small",
    seeds: int | Sequence[int] | None = None,
    methods: str | Sequence[str] | None = None,
    data: str | Sequence[str] | None = None,
    intervention: str | Sequence[str] | None = None,
    n_jobs: int = 1,
    progress: bool = False,
    device: str = "cpu",
    references: bool = True,
) -> pd.DataFrame:
    """Run the benchmark; one row per seed x data x intervention x method with every metric.

    Args:
        preset: ``"tiny"``, ``"small"``, ``"paper"`` (or a :class:`Preset`).
        seeds: a number of seeds (``0 .. N-1``) or explicit seeds (default: the preset's).
        methods: method names, ``"all"`` or ``None`` (the preset's list).
        data: ``"gp-anm"``, ``"sergio"``, ``"both"``, a list, or ``None`` (the preset's).
        intervention: a setting name of :mod:`metacadi.bench_settings` (``"hard"``, ``"soft"``,
            ``"soft-subtle"``, ``"mlp-sf-soft-scale"``, ...), ``"both"`` (hard and soft), a list,
            or ``None`` (the preset's; a preset setting that a data source lacks is skipped).
        n_jobs: parallel jobs over (seed, data, intervention) settings (joblib processes).
        progress: print a line per finished setting to stderr.
        device: torch device of the MetaCaDI variants (``"cuda"`` on a GPU machine).
        references: add the floors and the ceiling (shift score, empty graph, zero count on
            SERGIO, oracle) to the methods, after them.
    Returns:
        DataFrame with columns ``seed, data, intervention, method, label, n_variables,
        n_train_tasks, n_test_tasks`` and the metrics (:data:`METRICS`, ``step_seconds``).
    """
    from joblib import Parallel, delayed

    config = _get_preset(preset)
    if seeds is None:
        seeds = config.seeds
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise MetaCaDIInputError(f"seeds must be >= 1; got {seeds}.")
        seed_list = list(range(int(seeds)))
    else:
        seed_list = [int(s) for s in seeds]
        if not seed_list:
            raise MetaCaDIInputError("seeds is empty; give a number of seeds or a list of seeds.")
    chosen_methods = _resolve_methods(methods, config)
    chosen_data = _as_list(data, config.data, ALL_DATA, "data")
    if references:
        chosen_methods += [m for m in ("distribution-shift", *REFERENCE_METHODS) if m not in chosen_methods]
    jobs = [(s, d, i) for d in chosen_data for i in _settings_of(d, intervention, config) for s in seed_list]
    if not jobs:
        raise MetaCaDIInputError(f"none of the preset's settings {list(config.interventions)} applies to data {chosen_data}.")
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    runner = Parallel(n_jobs=n_jobs, return_as="generator_unordered") if n_jobs != 1 else None
    calls = (delayed(run_setting)(preset, s, d, i, chosen_methods, device) for s, d, i in jobs)
    finished = runner(calls) if runner is not None else (func(*args, **kwargs) for func, args, kwargs in calls)
    for count, job_rows in enumerate(finished, start=1):
        rows.extend(job_rows)
        if progress:
            first = job_rows[0]
            print(
                f"[{count}/{len(jobs)}] seed {first['seed']} {first['data']} {first['intervention']} "
                f"done ({time.perf_counter() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    results = pd.DataFrame(rows)
    order = {m: k for k, m in enumerate(chosen_methods)}
    results = results.sort_values(
        ["data", "intervention", "seed", "method"], key=lambda col: col.map(order) if col.name == "method" else col
    )
    return results.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

GROUP = ["data", "intervention", "method"]


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds of every metric, per data x intervention x method.

    Returns a DataFrame indexed by ``(data, intervention, method)`` with columns
    ``<metric>_mean``, ``<metric>_sd`` (sample sd, NaN for one seed) and ``n_seeds``, in the
    order the methods appear in ``results``.
    """
    _check_results(results)
    metrics = [m for m in list(METRICS) + ["step_seconds", "true_edges"] if m in results.columns]
    grouped = results.groupby(GROUP, sort=False)[metrics]
    means, sds = grouped.mean(), grouped.std(ddof=1)
    table = pd.concat({"mean": means, "sd": sds}, axis=1)
    table.columns = [f"{metric}_{stat}" for stat, metric in table.columns]
    ordered = [f"{m}_{s}" for m in metrics for s in ("mean", "sd")]
    table = table[ordered]
    table["n_seeds"] = results.groupby(GROUP, sort=False)["seed"].nunique()
    return table


#: alias: the summary of a results frame
summarise = summary_table


def welch_tests(results: pd.DataFrame, reference: str = "metacadi") -> pd.DataFrame:
    """Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) of each method against ``reference``.

    One row per data x intervention x method (other than the reference) x metric, with the two
    means, their difference (method minus reference), ``t``, the two-sided ``p_value`` and
    ``n`` seeds per group. Empty when fewer than two seeds; ``p_value`` is NaN when both groups
    are constant or a metric is undefined.
    """
    from scipy.stats import ttest_ind

    _check_results(results)
    columns = ["data", "intervention", "method", "metric", "mean", "reference_mean", "difference", "t", "p_value", "n"]
    rows = []
    for (data, intervention), block in results.groupby(["data", "intervention"], sort=False):
        base = block[block.method == reference]
        if base.seed.nunique() < 2:
            continue
        for method, other in block[block.method != reference].groupby("method", sort=False):
            if other.seed.nunique() < 2:
                continue
            for metric in TESTED_METRICS:
                a = other[metric].dropna().to_numpy(dtype=float)
                b = base[metric].dropna().to_numpy(dtype=float)
                if len(a) < 2 or len(b) < 2:
                    t, p = float("nan"), float("nan")
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        test = ttest_ind(a, b, equal_var=False)
                    t, p = float(test.statistic), float(test.pvalue)
                mean_a = float(np.mean(a)) if len(a) else float("nan")
                mean_b = float(np.mean(b)) if len(b) else float("nan")
                rows.append([data, intervention, method, metric, mean_a, mean_b, mean_a - mean_b, t, p, min(len(a), len(b))])
    return pd.DataFrame(rows, columns=columns)


def speed_table(results: pd.DataFrame) -> pd.DataFrame:
    """Adaptation and meta-training speed of the MetaCaDI variants, relative to MetaCaDI.

    Per data x intervention x variant: the median over seeds of the median adaptation time per
    meta-test task and of the meta-training time per step, and their ratios to MetaCaDI's
    (ratio > 1: slower than MetaCaDI). The ratios are taken per seed (every seed's methods ran
    one after the other in one process, on the same tasks) and then summarised by their median.
    """
    _check_results(results)
    variants = results[results.method.isin(MODEL_METHODS)]
    rows = []
    for (data, intervention), block in variants.groupby(["data", "intervention"], sort=False):
        base = block[block.method == "metacadi"].set_index("seed")
        if base.empty:
            continue
        for method, other in block.groupby("method", sort=False):
            other = other.set_index("seed")
            common = other.index.intersection(base.index)
            adapt_ratio = other.loc[common, "adapt_seconds"] / base.loc[common, "adapt_seconds"]
            step_ratio = other.loc[common, "step_seconds"] / base.loc[common, "step_seconds"]
            rows.append(
                {
                    "data": data,
                    "intervention": intervention,
                    "method": method,
                    "adapt_ms_per_task": 1000 * float(other.adapt_seconds.median()),
                    "adapt_vs_metacadi": float(adapt_ratio.median()),
                    "seconds_per_step": float(other.step_seconds.median()),
                    "step_vs_metacadi": float(step_ratio.median()),
                }
            )
    return pd.DataFrame(rows)


def _check_results(results: pd.DataFrame) -> None:
    missing = [c for c in ("seed", *GROUP) if c not in results.columns]
    if missing:
        raise MetaCaDIInputError(f"results lacks the columns {missing}; pass the DataFrame run_benchmark returned.")
    if results.empty:
        raise MetaCaDIInputError("results is empty; run at least one method on one seed.")


def _format_cell(mean: float, sd: float, metric: str) -> str:
    if not np.isfinite(mean):
        return "–"
    scale, digits = (1000.0, 1) if metric == "adapt_seconds" else (1.0, 1 if metric in ("e_shd", "e_sid", "thr_shd", "edges_per_sample", "fit_seconds") else 3)
    text = f"{mean * scale:.{digits}f}"
    if np.isfinite(sd):
        text += f" ± {sd * scale:.{digits}f}"
    return text


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _markdown(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def to_markdown(
    summary: pd.DataFrame,
    welch: pd.DataFrame | None = None,
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
) -> str:
    """Markdown tables (one per data x intervention) of ``mean ± sd`` per method and metric.

    With ``welch`` (from :func:`welch_tests`), a cell whose difference to MetaCaDI is significant
    at ``alpha`` is marked ``*``. Adaptation time is shown in milliseconds.
    """
    metrics = [m for m in (metrics or METRICS) if f"{m}_mean" in summary.columns]
    blocks = []
    significant: set[tuple[str, str, str, str]] = set()
    if welch is not None and not welch.empty:
        hits = welch[welch.p_value < alpha]
        significant = set(zip(hits.data, hits.intervention, hits.method, hits.metric))
    for (data, intervention), block in summary.groupby(level=["data", "intervention"], sort=False):
        n_seeds = int(block["n_seeds"].max())
        body = []
        for (_, _, method), row in block.iterrows():
            cells = [METHOD_LABELS.get(method, method)]
            for metric in metrics:
                cell = _format_cell(row[f"{metric}_mean"], row[f"{metric}_sd"], metric)
                if (data, intervention, method, metric) in significant:
                    cell += " *"
                cells.append(cell)
            body.append(cells)
        header = ["method"] + [METRICS[m][0] for m in metrics]
        title = f"**{data}, {intervention} interventions** ({_plural(n_seeds, 'seed')}; mean ± sd)"
        title += _difficulty_note(block)
        blocks.append(title + "\n\n" + _markdown(header, body))
    note = f"\n\n`*`: Welch's t-test against MetaCaDI, p < {alpha}." if significant else ""
    return "\n\n".join(blocks) + note


def _difficulty_note(block: pd.DataFrame) -> str:
    """Where the floors and the ceiling sit in one setting's summary block ("" if none ran)."""
    from .bench_settings import difficulty

    methods = block.index.get_level_values("method")
    parts = []
    if "distribution-shift" in methods:
        shift = float(block.loc[methods == "distribution-shift", "intv_auroc_mean"].iloc[0])
        parts.append(f"difficulty **{difficulty(shift)}**: shift-score Intv-AUROC {shift:.3f}")
    if "oracle" in methods:
        if any(str(data).startswith("sergio") for data in block.index.get_level_values("data")):
            parts.append("oracle approximate on SERGIO (regressions on the true regulators, see metacadi.reference_scores)")
        parts.append(f"oracle {float(block.loc[methods == 'oracle', 'intv_auroc_mean'].iloc[0]):.3f}")
    if "empty-graph" in methods:
        parts.append(f"empty-graph E-SHD {float(block.loc[methods == 'empty-graph', 'e_shd_mean'].iloc[0]):.1f}")
    if "true_edges_mean" in block.columns and np.isfinite(block["true_edges_mean"]).any():
        parts.append(f"true graphs {float(np.nanmax(block['true_edges_mean'])):.1f} edges")
    return ("\n\n" + "; ".join(parts) + ".") if parts else ""


def speed_markdown(speed: pd.DataFrame) -> str:
    """The adaptation / training speed comparison as markdown (ratios relative to MetaCaDI)."""
    if speed.empty:
        return "(no MetaCaDI run: no speed comparison)"
    blocks = []
    for (data, intervention), block in speed.groupby(["data", "intervention"], sort=False):
        body = [
            [
                METHOD_LABELS.get(row.method, row.method),
                f"{row.adapt_ms_per_task:.1f}",
                f"{row.adapt_vs_metacadi:.2f}x",
                f"{row.seconds_per_step:.3f}",
                f"{row.step_vs_metacadi:.2f}x",
            ]
            for row in block.itertuples()
        ]
        header = ["method", "adapt/task [ms]", "vs MetaCaDI", "train s/step", "vs MetaCaDI"]
        blocks.append(f"**speed, {data}, {intervention}** (medians over seeds)\n\n" + _markdown(header, body))
    return "\n\n".join(blocks)


def welch_markdown(welch: pd.DataFrame) -> str:
    """Welch's t-tests against MetaCaDI as a markdown table (``p`` per method and metric)."""
    if welch.empty:
        return "(fewer than two seeds: no t-tests)"
    pivot = welch.pivot_table(index=["data", "intervention", "method"], columns="metric", values="p_value", sort=False)
    metrics = [m for m in TESTED_METRICS if m in pivot.columns]
    body = [
        [f"{data}/{intervention}", METHOD_LABELS.get(method, method)]
        + ["–" if not np.isfinite(row[m]) else f"{row[m]:.3g}" for m in metrics]
        for (data, intervention, method), row in pivot.iterrows()
    ]
    return _markdown(["setting", "method vs MetaCaDI"] + [f"p {METRICS[m][0]}" for m in metrics], body)


def figure(results: pd.DataFrame, metrics: Sequence[str] = ("intv_auroc", "intv_auprc", "e_shd", "e_sid")):
    """Plotly figure: per-seed values (points) and their spread (box) per method, one panel per metric.

    Data x intervention settings are distinguished by colour.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    _check_results(results)
    metrics = [m for m in metrics if m in results.columns]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[METRICS[m][0] for m in metrics])
    settings = list(dict.fromkeys(zip(results.data, results.intervention)))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for index, metric in enumerate(metrics, start=1):
        for k, (data, intervention) in enumerate(settings):
            block = results[(results.data == data) & (results.intervention == intervention)]
            fig.add_trace(
                go.Box(
                    x=block.label, y=block[metric], name=f"{data}, {intervention}", legendgroup=f"{data}-{intervention}",
                    showlegend=index == 1, boxpoints="all", jitter=0.3, pointpos=0,
                    marker_color=palette[k % len(palette)], offsetgroup=str(k),
                ),
                row=1, col=index,
            )
    fig.update_layout(
        boxmode="group", height=420, width=max(360 * len(metrics), 600), template="plotly_white",
        title="MetaCaDI benchmark: one point per seed", margin=dict(t=70, b=120),
    )
    fig.update_xaxes(tickangle=30)
    return fig


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m metacadi.bench",
        description="Benchmark MetaCaDI, its MAML ablations and the baselines (tables to stdout, files to --out).",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small", help="problem sizes (default: small)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds 0..N-1 (default: the preset's)")
    parser.add_argument(
        "--first-seed", type=int, default=0,
        help="start the seeds here: FIRST..FIRST+N-1 (e.g. 100 for probing settings apart from the reported seeds)",
    )
    parser.add_argument(
        "--methods", default="default",
        help=f"comma-separated subset of {', '.join(METHODS)}; 'all' for every method; 'baselines' for "
        "JCI-PC, UT-IGSP, DCDI-G and BaCaDI; 'default' for the preset's",
    )
    parser.add_argument("--data", choices=[*ALL_DATA, "both"], default=None, help="data source (default: the preset's)")
    parser.add_argument(
        "--setting", "--intervention", dest="intervention", default=None,
        help="comma-separated data settings (metacadi.bench_settings), e.g. 'soft-subtle,soft-scale' or "
        "'mlp-sf-hard'; 'both' for hard and soft (default: the preset's)",
    )
    parser.add_argument("--list-settings", action="store_true", help="print the named settings of each data source and exit")
    parser.add_argument(
        "--no-references", dest="references", action="store_false",
        help="leave out the floors (shift score, empty graph, zero count) and the oracle ceiling",
    )
    parser.add_argument(
        "--n-steps", type=int, default=None,
        help="meta-training steps of MetaCaDI and the MAML ablations (default: the model's default)",
    )
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel jobs over seeds and settings (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device of the MetaCaDI variants (default cpu)")
    parser.add_argument("--out", type=Path, default=None, help="folder for results.csv, summary.csv, welch.csv, speed.csv, report.md, figure.html")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.list_settings:
        from .bench_settings import ANM_GRAPHS, ANM_MECHANISMS, setting_names

        for source in DATA_SOURCES:
            print(f"{source}: {', '.join(setting_names(source))}")
        print(f"  (gp-anm names take a mechanism prefix {'/'.join(ANM_MECHANISMS)} and a graph prefix {'/'.join(ANM_GRAPHS)}, e.g. mlp-sf-soft-scale)")
        return 0
    intervention = args.intervention
    if intervention is not None and intervention not in ("both", "all"):
        intervention = [name.strip() for name in intervention.split(",") if name.strip()]
    methods: str | list[str] = args.methods
    seeds: int | list[int] | None = args.seeds
    if args.first_seed:
        count = args.seeds if args.seeds is not None else _get_preset(args.preset).seeds
        seeds = list(range(args.first_seed, args.first_seed + count))
    if methods not in ("all", "default", "baselines"):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    preset: str | Preset = args.preset
    if args.n_steps is not None:
        if args.n_steps < 1:
            print(f"error: --n-steps must be a positive integer; got {args.n_steps}.", file=sys.stderr)
            return 2
        chosen = _get_preset(args.preset)
        preset = dataclasses.replace(chosen, model={**chosen.model, "n_steps": args.n_steps})
    try:
        started = time.perf_counter()
        results = run_benchmark(
            preset=preset, seeds=seeds, methods=methods, data=args.data,
            intervention=intervention, n_jobs=args.n_jobs, progress=not args.quiet, device=args.device,
            references=args.references,
        )
    except MetaCaDIInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    summary = summary_table(results)
    welch = welch_tests(results)
    speed = speed_table(results)
    report = "\n\n".join(
        [
            f"# MetaCaDI benchmark (preset {args.preset}, {_plural(results.seed.nunique(), 'seed')}, {elapsed:.0f} s wall)",
            to_markdown(summary, welch),
            "## Welch's t-tests against MetaCaDI (p-values)",
            welch_markdown(welch),
            "## Adaptation and meta-training speed (same tasks, same process)",
            speed_markdown(speed),
        ]
    )
    if set(results.data) & set(BACADI_DATA):
        from .bacadi_protocol import comparison_markdown, recorded_comparison

        report += "\n\n## Ours vs the BaCaDI authors' recorded runs (their metric conventions)\n\n"
        report += comparison_markdown(recorded_comparison(results[results.data.isin(BACADI_DATA)]))
    print(report)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        results.to_csv(args.out / "results.csv", index=False)
        summary.to_csv(args.out / "summary.csv")
        welch.to_csv(args.out / "welch.csv", index=False)
        speed.to_csv(args.out / "speed.csv", index=False)
        (args.out / "report.md").write_text(report + "\n")
        figure(results).write_html(args.out / "figure.html", include_plotlyjs=True)
        print(f"\nwrote {', '.join(sorted(p.name for p in args.out.iterdir()))} to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
