"""The BaCaDI benchmark protocol (Hägele, Rothfuss & Krause, AISTATS 2023), reproduced.

The BaCaDI authors published per-seed results of JCI-PC, UT-IGSP, DCDI-G and BaCaDI with their
code (``haeggee/bacadi``, folder ``results/``). This module simulates data the way their code
does, so that our baselines can be run on the same kind of data and compared with those recorded
numbers (:func:`load_recorded`, :func:`recorded_comparison`), and so that MetaCaDI can be placed
among them (:func:`make_bacadi_problem` with ``n_meta_train > 0``).

Protocol, as their code runs it (read from ``bacadi/eval/target.py``, ``bacadi/models/*.py``,
``bacadi/graph/graph.py``, ``sergio/sergio_sampler.py`` and the ``params`` of every recorded
result file; where this differs from a summary of the paper, the code wins):

* ``d = 20`` variables. Graphs: Erdős–Rényi with ``2 d`` expected edges (edge probability
  ``2 * 2 / (d - 1)`` on a random order, :func:`~metacadi.graphs.erdos_renyi_dag` with
  ``expected_degree=2``) or scale-free "SF-2" (``igraph.Graph.Barabasi(d, 2)`` transposed, hubs
  have many children, 37 edges at ``d = 20``: :func:`~metacadi.graphs.barabasi_albert_dag`).
* **Synthetic data** (``linear``, ``mlp``): ``x_j = f_j(x_pa(j)) + eps_j`` on the *raw* scale
  (no standardisation anywhere: their ``*_normalize_data`` flags are False), noise variances
  ``v_j ~ U(0.05, 0.15)`` (their ``obs_noise = 0.1`` with ``random_noise``: ``0.1 U + 0.05``).
  ``linear``: ``f_j = sum_i w_ij x_i`` with ``|w_ij| ~ U(0.5, 2)`` and a random sign. ``mlp``:
  ``f_j = w2 . sigmoid(W1 x_pa + b1) + b2`` with 5 hidden units and every weight and bias
  ``N(0, 1)``. Roots: ``x_j = eps_j``.
* **Interventions on synthetic data** (their ``intervention_type = "random_all"``): one
  observational dataset of 100 rows and **one environment per variable** (``d`` environments of
  10 rows, each a single hard intervention on a different node), not the 10 environments their
  ``n_intervention_sets = 10`` parameter suggests (that parameter is ignored by "random_all").
  The intervened node is set to ``c_j + N(0, 0.5)`` (0.5 is a *variance* in their code) with
  ``c_j = sign(u) 5 + u``, ``u ~ N(0, 2^2)``: about +-5 to +-9, a fresh value per node.
* **SERGIO**: their ``sergio_clean`` (no technical noise: their sampler's comment says it is
  "not used for BaCaDI"), SF-2 graph, interaction strengths ``|K| ~ U(1, 5)`` with signs
  activating with a probability ``~ Beta(0.2588, 0.2499)``, master-regulator basal rates
  ``U(1, 3)``, Hill coefficient 2, decay 0.8, noise 1.0, 10 cell types; 100 observational cells
  and 10 knockout environments of 10 cells (10 distinct genes); clean expression standardised with
  the mean and sd pooled over all training cells (observational and knockout).
  Ours uses :class:`~metacadi.sergio.SergioSimulator` with ``technical_noise=False`` and the raw
  clean expression; what differs: one cell type (theirs mixes 10 cell types with different
  basal rates) and one sign probability per network (theirs draws one per regulator).

Metric conventions (their ``eval/result.py`` and ``bacadi/eval/metrics.py``), in
:func:`bacadi_metrics`: E-SHD counts a reversed edge once (as :func:`metacadi.metrics.shd`);
E-SID the mean SID over graph samples; edge AUROC / AUPRC over **all** ``d^2`` entries of the
edge-marginal matrix (diagonal included, as their ``threshold_metrics`` flattens the matrix),
AUPRC as the trapezoidal area under the precision-recall curve (``auc(recall, precision)``,
not average precision); Intv-AUROC / Intv-AUPRC over the ``(environments x d)`` target marginals
of the interventional environments. Their JCI-PC and UT-IGSP rows are bootstrap mixtures
(20 resamples, weighted by training likelihood) scored against the interventional CPDAG of the
true graph; DCDI-G's 5 resamples; ours run once on the full data (see ``benchmarks/README.md``).

Floors and ceiling on the same environments, as in every other benchmark table: the empty graph,
the shift score, on SERGIO the zero count (on the simulator's scale, :meth:`BacadiProblem.raw`),
and the oracle (the true network and noise scales; on SERGIO regressions on the true
regulators), :func:`reference_target_scores`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from ._random import SeedLike, as_rng
from .errors import MetaCaDIInputError
from .graphs import barabasi_albert_dag, erdos_renyi_dag, topological_order
from .tasks import SharedGraphProblem, Task, TaskSet
from .validation import check_adjacency, check_data_matrix, check_positive_int

__all__ = [
    "BACADI_SETTINGS",
    "BacadiProblem",
    "RawGaussianBN",
    "bacadi_graph",
    "bacadi_metrics",
    "comparison_markdown",
    "intervention_values",
    "load_recorded",
    "make_bacadi_problem",
    "recorded_comparison",
    "reference_target_scores",
]

#: the five data x graph settings of the recorded results, as ``"<data>-<graph>"`` names
BACADI_SETTINGS: tuple[str, ...] = ("linear-er", "linear-sf", "mlp-er", "mlp-sf", "sergio-sf")
DATA_LABELS: dict[str, str] = {"linear": "linear Gaussian", "mlp": "nonlinear Gaussian (MLP)", "sergio": "SERGIO"}
GRAPH_LABELS: dict[str, str] = {"er": "ER", "sf": "SF-2"}
#: metric column of our results -> column stem in the recorded CSV
RECORDED_METRICS: dict[str, str] = {
    "e_shd": "eshd",
    "e_sid": "esid",
    "bacadi_auroc": "auroc",
    "bacadi_auprc": "auprc",
    "intv_auroc": "intv_auroc",
    "bacadi_intv_auprc": "intv_auprc",
}
METRIC_LABELS: dict[str, str] = {
    "e_shd": "E-SHD",
    "e_sid": "E-SID",
    "bacadi_auroc": "AUROC",
    "bacadi_auprc": "AUPRC",
    "intv_auroc": "Intv-AUROC",
    "bacadi_intv_auprc": "Intv-AUPRC",
}
#: our method name -> recorded method label per data kind (our BaCaDI is linear-Gaussian)
RECORDED_METHOD: dict[str, str] = {"jci-pc": "JCI-PC", "ut-igsp": "UT-IGSP", "dcdi-g": "DCDI-G"}

NOISE_VARIANCE_RANGE: tuple[float, float] = (0.05, 0.15)
LINEAR_WEIGHT_RANGE: tuple[float, float] = (0.5, 2.0)
INTERVENTION_OFFSET = 5.0
INTERVENTION_SPREAD = 2.0
INTERVENTION_VARIANCE = 0.5


def split_setting(setting: str) -> tuple[str, str]:
    """``"linear-er"`` -> ``("linear", "er")``; raises for a setting the recorded runs do not have."""
    if setting not in BACADI_SETTINGS:
        raise MetaCaDIInputError(f"setting must be one of {BACADI_SETTINGS}; got {setting!r}.")
    data, graph = setting.split("-")
    return data, graph


# --------------------------------------------------------------------------------------------
# Graphs and mechanisms
# --------------------------------------------------------------------------------------------


def bacadi_graph(n_variables: int, family: str, edges_per_node: int = 2, seed: SeedLike = None) -> np.ndarray:
    """A graph of the protocol: ``"er"`` (``edges_per_node * d`` expected edges) or ``"sf"`` (SF-k)."""
    if family == "er":
        return erdos_renyi_dag(n_variables, float(edges_per_node), seed)
    if family == "sf":
        return barabasi_albert_dag(n_variables, edges_per_node, seed)
    raise MetaCaDIInputError(f"family must be 'er' or 'sf'; got {family!r}.")


def intervention_values(n_values: int, seed: SeedLike = None) -> np.ndarray:
    """Intervention means ``c = sign(u) * 5 + u``, ``u ~ N(0, 2^2)``: ``|c| >= 5`` with a random sign."""
    u = INTERVENTION_SPREAD * as_rng(seed).standard_normal(n_values)
    return np.sign(u) * INTERVENTION_OFFSET + u


class RawGaussianBN:
    """Additive-Gaussian-noise network on the raw scale: ``x_j = f_j(x_pa(j)) + eps_j``.

    Unlike :class:`~metacadi.scm.SCM`, nothing is standardised: parents enter the mechanism as
    they are and the mechanism's output is not rescaled, so variances grow along the causal order
    as in the BaCaDI simulator.

    Args:
        adjacency: ``(d, d)`` 0/1 DAG, ``A[i, j] = 1`` iff ``i -> j``.
        mechanism: ``"linear"`` (``f_j = sum_i w_ij x_i``, ``|w| ~ U(0.5, 2)``, random sign) or
            ``"mlp"`` (``f_j = w2 . sigmoid(W1 x_pa + b1) + b2``, ``hidden_units`` units, every
            weight and bias ``N(0, 1)``).
        noise_variance: ``(d,)`` variances, a number, or ``None`` to draw ``U(0.05, 0.15)`` each.
        hidden_units: hidden units of each MLP (default 5).
        seed: fixes the mechanisms and noise variances.
    """

    def __init__(
        self,
        adjacency: Any,
        mechanism: str = "linear",
        noise_variance: float | np.ndarray | None = None,
        hidden_units: int = 5,
        seed: SeedLike = None,
    ) -> None:
        self.adjacency = check_adjacency(adjacency)
        d = self.adjacency.shape[0]
        if mechanism not in ("linear", "mlp"):
            raise MetaCaDIInputError(f"mechanism must be 'linear' or 'mlp'; got {mechanism!r}.")
        self.mechanism = mechanism
        self.hidden_units = check_positive_int(hidden_units, "hidden_units")
        rng = as_rng(seed)
        if noise_variance is None:
            low, high = NOISE_VARIANCE_RANGE
            self.noise_variance = rng.uniform(low, high, size=d)
        else:
            variance = np.broadcast_to(np.asarray(noise_variance, dtype=float), (d,)).copy()
            if not np.all(np.isfinite(variance)) or np.any(variance <= 0):
                raise MetaCaDIInputError(f"noise_variance must be positive and finite; got {noise_variance!r}.")
            self.noise_variance = variance
        self.order = topological_order(self.adjacency)
        self.parents = [np.flatnonzero(self.adjacency[:, j]) for j in range(d)]
        self.params: list[dict[str, np.ndarray] | None] = []
        for j in range(d):
            p = len(self.parents[j])
            if p == 0:
                self.params.append(None)
            elif mechanism == "linear":
                low, high = LINEAR_WEIGHT_RANGE
                self.params.append({"w": rng.uniform(low, high, p) * rng.choice((-1.0, 1.0), p)})
            else:
                h = self.hidden_units
                self.params.append(
                    {
                        "W1": rng.standard_normal((p, h)),
                        "b1": rng.standard_normal(h),
                        "w2": rng.standard_normal(h),
                        "b2": rng.standard_normal(1),
                    }
                )
        self._rng = rng

    @property
    def n_variables(self) -> int:
        return int(self.adjacency.shape[0])

    def mean(self, values: np.ndarray, node: int) -> np.ndarray:
        """``f_j`` on the rows of ``values`` ``(n, d)`` (zeros for a root)."""
        params = self.params[node]
        if params is None:
            return np.zeros(values.shape[0])
        parents = values[:, self.parents[node]]
        if self.mechanism == "linear":
            return parents @ params["w"]
        hidden = 1.0 / (1.0 + np.exp(-(parents @ params["W1"] + params["b1"])))
        return hidden @ params["w2"] + params["b2"][0]

    @property
    def noise_scales(self) -> np.ndarray:
        """``(d,)`` noise standard deviations ``sqrt(v_j)``."""
        return np.sqrt(self.noise_variance)

    def mechanism_values(self, data: Any) -> np.ndarray:
        """``(n, d)`` matrix of ``f_j(x_pa(j))`` on the rows of ``data`` (0 for roots), the
        interface :func:`~metacadi.reference_scores.scm_oracle_scores` reads."""
        values, _ = check_data_matrix(data, n_variables=self.n_variables, min_rows=1)
        return np.stack([self.mean(values, j) for j in range(self.n_variables)], axis=1)

    def sample(
        self,
        n_rows: int,
        target: int | None = None,
        value: float = 0.0,
        intervention_variance: float = INTERVENTION_VARIANCE,
        seed: SeedLike = None,
    ) -> np.ndarray:
        """``(n_rows, d)`` rows, observational or with node ``target`` set to ``value + N(0, var)``."""
        n_rows = check_positive_int(n_rows, "n_rows")
        d = self.n_variables
        if target is not None and not 0 <= int(target) < d:
            raise MetaCaDIInputError(f"target must be a node index in [0, {d - 1}]; got {target!r}.")
        rng = self._rng if seed is None else as_rng(seed)
        noise = rng.standard_normal((n_rows, d)) * np.sqrt(self.noise_variance)
        values = np.zeros((n_rows, d))
        for j in self.order:
            if target is not None and j == int(target):
                values[:, j] = value + np.sqrt(intervention_variance) * rng.standard_normal(n_rows)
            else:
                values[:, j] = self.mean(values, j) + noise[:, j]
        return values


# --------------------------------------------------------------------------------------------
# The problem: baselines' data (BaCaDI protocol) plus optional meta-training tasks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BacadiProblem(SharedGraphProblem):
    """One seed of the BaCaDI protocol (see the module docstring).

    Attributes:
        graph, train, test, names: as :class:`~metacadi.tasks.SharedGraphProblem`. ``test`` holds
            the protocol's interventional environments (10 rows each); ``train`` the observational
            dataset followed by the extra meta-training experiments (if any) for MetaCaDI.
        baseline_train: the protocol's observational dataset alone; a baseline fitted on
            ``baseline_train + test`` sees exactly the data of the recorded runs.
        setting: ``"linear-er"``, ``"linear-sf"``, ``"mlp-er"``, ``"mlp-sf"`` or ``"sergio-sf"``.
        network: the true :class:`RawGaussianBN` of synthetic data (``None`` for SERGIO); the
            oracle ceiling scores targets with it.
        standardization: ``(mean, sd)`` ``(d,)`` arrays of the standardisation (pooled over the
            protocol data), ``None`` if the data are on the simulator's scale.
    """

    baseline_train: TaskSet
    setting: str
    network: RawGaussianBN | None = None
    standardization: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def standardized(self) -> bool:
        """Whether the data were standardised (pooled mean and sd of the protocol data)."""
        return self.standardization is not None

    def raw(self, data: Any) -> np.ndarray:
        """``data`` ``(n, d)`` back on the simulator's scale, exact zeros kept exact (a knocked-out
        gene's standardised value maps back to 0, not to a rounding error of it)."""
        values = np.asarray(getattr(data, "data", data), dtype=float)
        if self.standardization is None:
            return values
        mean, sd = self.standardization
        zero_level = (0.0 - mean) / sd  # the very operation that standardised the data
        return np.where(values == zero_level, 0.0, values * sd + mean)


def _sergio_simulator(graph: np.ndarray, rng: np.random.Generator):
    from .sergio import SergioSimulator

    return SergioSimulator(
        graph,
        seed=rng,
        decay=0.8,
        hill_coefficient=2.0,
        interaction_strength=(1.0, 5.0),
        activation_prob=float(rng.beta(0.2588, 0.2499)),
        basal_low=(1.0, 3.0),
        basal_high=(1.0, 3.0),
        noise_scale=1.0,
        technical_noise=False,
    )


def make_bacadi_problem(
    setting: str,
    n_variables: int = 20,
    edges_per_node: int = 2,
    n_observational_rows: int = 100,
    env_rows: int = 10,
    n_environments: int | None = None,
    n_meta_train: int = 0,
    meta_train_rows: int = 100,
    standardize: bool | None = None,
    seed: SeedLike = 0,
) -> BacadiProblem:
    """Simulate one seed of the BaCaDI protocol (module docstring) for ``setting``.

    Args:
        setting: one of :data:`BACADI_SETTINGS`.
        n_variables, edges_per_node: graph size and density (20 and 2 in the recorded runs).
        n_observational_rows: rows of the observational dataset (100).
        env_rows: rows per interventional environment (10).
        n_environments: interventional environments; default ``d`` for synthetic data (one per
            node, every node once, their "random_all") and 10 for SERGIO (10 distinct knockouts).
        n_meta_train: extra interventional meta-training experiments for MetaCaDI (single
            targets dealt over the nodes in shuffled passes; same intervention law), simulated
            from the same system after the protocol data, so the baselines' data do not depend
            on it. 0: none.
        meta_train_rows: rows of each extra meta-training experiment.
        standardize: standardise with the mean and sd pooled over the protocol data
            (observational + environments); the extra meta-training data get the same
            transform. Default: as their code, only for SERGIO.
        seed: int / Generator / None.
    """
    data_kind, family = split_setting(setting)
    d = check_positive_int(n_variables, "n_variables", minimum=2)
    n_obs = check_positive_int(n_observational_rows, "n_observational_rows", minimum=2)
    env_rows = check_positive_int(env_rows, "env_rows", minimum=1)
    default_envs = d if data_kind != "sergio" else min(10, d)
    n_envs = check_positive_int(default_envs if n_environments is None else n_environments, "n_environments")
    n_meta_train = check_positive_int(n_meta_train, "n_meta_train", minimum=0)
    meta_train_rows = check_positive_int(meta_train_rows, "meta_train_rows", minimum=2)
    if standardize is None:
        standardize = data_kind == "sergio"
    rng = as_rng(seed)
    graph = bacadi_graph(d, family, edges_per_node, rng)
    names = tuple(f"X{i}" for i in range(d)) if data_kind != "sergio" else tuple(f"G{i}" for i in range(d))

    if data_kind == "sergio":
        if n_envs > d:
            raise MetaCaDIInputError(f"SERGIO knocks out distinct genes: n_environments ({n_envs}) must be <= d ({d}).")
        simulator = _sergio_simulator(graph, rng)
        env_targets = np.sort(rng.choice(d, size=n_envs, replace=False))

        def simulate(targets: list[int | None], n_rows: int) -> list[np.ndarray]:
            experiments = [(n_rows, None if t is None else [int(t)], None) for t in targets]
            return [sample.clean for sample in simulator.simulate_many(experiments, seed=rng)]

        kind = "knockout"
    else:
        network = RawGaussianBN(graph, data_kind, seed=rng)
        if n_envs % d == 0:
            env_targets = np.concatenate([np.arange(d)] * (n_envs // d))
        else:
            env_targets = rng.choice(d, size=n_envs, replace=n_envs > d)
        node_values = intervention_values(d, rng)

        def simulate(targets: list[int | None], n_rows: int) -> list[np.ndarray]:
            return [
                network.sample(n_rows, None if t is None else int(t), 0.0 if t is None else node_values[int(t)], seed=rng)
                for t in targets
            ]

        kind = "hard"

    observational = simulate([None], n_obs)[0]
    environments = simulate(list(env_targets), env_rows)
    meta_targets: list[int] = []
    while len(meta_targets) < n_meta_train:
        meta_targets.extend(rng.permutation(d).tolist())
    meta_targets = meta_targets[:n_meta_train]
    meta_data = simulate(meta_targets, meta_train_rows) if n_meta_train else []

    standardization = None
    if standardize:
        pooled = np.vstack([observational, *environments])
        mean, std = pooled.mean(axis=0), pooled.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        observational = (observational - mean) / std
        environments = [(x - mean) / std for x in environments]
        meta_data = [(x - mean) / std for x in meta_data]
        standardization = (mean, std)

    def one_hot(node: int) -> np.ndarray:
        mask = np.zeros(d, dtype=bool)
        mask[node] = True
        return mask

    none = np.zeros(d, dtype=bool)
    obs_task = Task(observational, none, "observational", names, none, {"split": "train", "index": 0})
    tests = [
        Task(x, one_hot(t), kind, names, one_hot(t), {"split": "test", "index": k})
        for k, (x, t) in enumerate(zip(environments, env_targets))
    ]
    extra = [
        Task(x, one_hot(t), kind, names, one_hot(t), {"split": "train", "index": k + 1})
        for k, (x, t) in enumerate(zip(meta_data, meta_targets))
    ]
    return BacadiProblem(
        graph=graph,
        train=TaskSet([obs_task, *extra], graph=graph),
        test=TaskSet(tests, graph=graph),
        baseline_train=TaskSet([obs_task], graph=graph),
        setting=setting,
        network=None if data_kind == "sergio" else network,
        standardization=standardization,
    )


def reference_target_scores(method: str, problem: BacadiProblem) -> np.ndarray:
    """Target scores ``(T, d)`` of a floor or the ceiling on the protocol's environments.

    * ``"zero-count"`` (SERGIO): :func:`~metacadi.reference_scores.zero_count_scores` of each
      environment against the protocol's observational dataset, on the simulator's scale (a
      knocked-out gene is exactly 0 there).
    * ``"oracle"``: synthetic data are scored with the true network and noise scales
      (:func:`~metacadi.reference_scores.scm_oracle_scores`); SERGIO with regressions on the true
      regulators fitted on the meta-training experiments with their true targets
      (:func:`~metacadi.reference_scores.sergio_oracle_scores`, an approximation).
    """
    from .reference_scores import scm_oracle_scores, sergio_oracle_scores, zero_count_scores

    tests = [problem.raw(task) for task in problem.test]
    if method == "zero-count":
        return zero_count_scores([problem.raw(task) for task in problem.baseline_train], tests)
    if method != "oracle":
        raise MetaCaDIInputError(f"method must be 'zero-count' or 'oracle'; got {method!r}.")
    if problem.network is not None:
        return scm_oracle_scores(problem.network, tests)
    train = list(problem.train)
    if len(train) < 2:
        raise MetaCaDIInputError(
            "the SERGIO oracle fits its regressions on meta-training experiments; the problem has none (n_meta_train=0)."
        )
    raw_train = [problem.raw(task) for task in train]
    return sergio_oracle_scores(problem.graph, raw_train, problem.train.target_matrix(), tests)


# --------------------------------------------------------------------------------------------
# Metrics with their conventions
# --------------------------------------------------------------------------------------------


def _roc_pr(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    labels = np.asarray(labels).reshape(-1).astype(int)
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if labels.min() == labels.max():
        return float("nan"), float("nan")
    fpr, tpr, _ = roc_curve(labels, scores)
    precision, recall, _ = precision_recall_curve(labels, scores)
    return float(auc(fpr, tpr)), float(auc(recall, precision))


def bacadi_metrics(
    true_graph: np.ndarray,
    true_targets: np.ndarray,
    edge_probs: np.ndarray | None,
    graph_samples: np.ndarray | None,
    target_probs: np.ndarray | None,
) -> dict[str, float]:
    """E-SHD, E-SID, AUROC, AUPRC, Intv-AUROC, Intv-AUPRC as the BaCaDI evaluation computes them.

    Args:
        true_graph: ``(d, d)`` 0/1 DAG.
        true_targets: ``(T, d)`` 0/1 targets of the interventional environments.
        edge_probs: ``(d, d)`` edge marginals (or scores), or ``None`` (graph metrics NaN).
        graph_samples: ``(S, d, d)`` DAGs (E-SHD / E-SID are their means), or ``None``.
        target_probs: ``(T, d)`` target marginals, or ``None`` (target metrics NaN: the empty graph).

    Returns keys ``e_shd``, ``e_sid``, ``bacadi_auroc``, ``bacadi_auprc``, ``intv_auroc``,
    ``bacadi_intv_auprc`` (see the module docstring for each convention).
    """
    from .metrics import expected_shd, expected_sid

    nan = float("nan")
    truth = np.asarray(true_graph)
    row = {"e_shd": nan, "e_sid": nan, "bacadi_auroc": nan, "bacadi_auprc": nan}
    if graph_samples is not None:
        row["e_shd"] = float(expected_shd(truth, graph_samples))
        row["e_sid"] = float(expected_sid(truth, graph_samples))
    if edge_probs is not None:
        # all d^2 entries, diagonal included (scored 0), as their threshold_metrics does
        row["bacadi_auroc"], row["bacadi_auprc"] = _roc_pr(truth, np.clip(edge_probs, 0, 1))
    row["intv_auroc"] = row["bacadi_intv_auprc"] = nan
    if target_probs is not None:
        row["intv_auroc"], row["bacadi_intv_auprc"] = _roc_pr(np.asarray(true_targets), np.clip(target_probs, 0, 1))
    return row


# --------------------------------------------------------------------------------------------
# Recorded results and the comparison table
# --------------------------------------------------------------------------------------------


def _split_mean_sd(cell: str) -> tuple[float, float]:
    parts = str(cell).replace("±", "+-").split("+-")
    if len(parts) != 2:
        raise MetaCaDIInputError(f"expected 'mean ± sd' in the recorded table; got {cell!r}.")
    return float(parts[0]), float(parts[1])


def load_recorded(path: Any = None) -> pd.DataFrame:
    """The BaCaDI authors' recorded results as a tidy DataFrame.

    Reads ``metacadi/data/bacadi_recorded.csv`` (shipped with the package; ``#`` lines are the
    attribution) or ``path``. Returns one row per recorded data x graph x method with columns
    ``data, graph, method, setting, n_seeds, seconds`` and ``<metric>_mean``, ``<metric>_sd`` for
    ``eshd, esid, auroc, auprc, intv_auroc, intv_auprc``.
    """
    if path is None:
        with resources.files("metacadi").joinpath("data/bacadi_recorded.csv").open("r", encoding="utf-8") as handle:
            raw = pd.read_csv(handle, comment="#")
    else:
        raw = pd.read_csv(path, comment="#")
    required = {"data", "graph", "method", "n_seeds", *RECORDED_METRICS.values()}
    missing = required - set(raw.columns)
    if missing:
        raise MetaCaDIInputError(f"the recorded table lacks the columns {sorted(missing)}.")
    data_keys = {label: key for key, label in DATA_LABELS.items()}
    graph_keys = {label: key for key, label in GRAPH_LABELS.items()}
    rows = []
    for record in raw.to_dict("records"):
        if record["data"] not in data_keys or record["graph"] not in graph_keys:
            raise MetaCaDIInputError(f"unknown data/graph in the recorded table: {record['data']!r}, {record['graph']!r}.")
        row = {
            "data": data_keys[record["data"]],
            "graph": graph_keys[record["graph"]],
            "method": record["method"],
            "setting": f"{data_keys[record['data']]}-{graph_keys[record['graph']]}",
            "n_seeds": int(record["n_seeds"]),
            "seconds": float(record.get("seconds", float("nan"))),
        }
        for stem in RECORDED_METRICS.values():
            row[f"{stem}_mean"], row[f"{stem}_sd"] = _split_mean_sd(record[stem])
        rows.append(row)
    return pd.DataFrame(rows)


def recorded_label(method: str, setting: str) -> str | None:
    """The recorded method our ``method`` is compared with (BaCaDI: LinG, except on MLP data)."""
    if method in RECORDED_METHOD:
        return RECORDED_METHOD[method]
    if method == "bacadi":
        return "BaCaDI (NonlinG)" if setting.startswith("mlp") else "BaCaDI (LinG)"
    return None


def recorded_comparison(results: pd.DataFrame, recorded: pd.DataFrame | None = None) -> pd.DataFrame:
    """Ours vs recorded: one row per setting x method x metric.

    ``results`` is :func:`metacadi.bench.run_benchmark`'s frame (``data`` = a setting name,
    one row per seed and method, with the :func:`bacadi_metrics` columns). Columns: ``setting,
    method, recorded_method, metric, ours_mean, ours_sd, ours_n, recorded_mean, recorded_sd,
    recorded_n, difference_in_sd`` (``(ours - recorded) / recorded sd``; NaN when the recorded
    sd is 0 and the means differ by less than 1e-9, ``inf`` with sign when they differ).
    Methods without a recorded counterpart (MetaCaDI) get NaN recorded columns.
    """
    recorded = load_recorded() if recorded is None else recorded
    rows = []
    for (setting, method), block in results.groupby(["data", "method"], sort=False):
        label = recorded_label(method, setting)
        match = recorded[(recorded.setting == setting) & (recorded.method == label)] if label else recorded.iloc[:0]
        for metric, stem in RECORDED_METRICS.items():
            values = block[metric].dropna().to_numpy(dtype=float) if metric in block else np.zeros(0)
            ours_mean = float(values.mean()) if values.size else float("nan")
            ours_sd = float(values.std(ddof=1)) if values.size > 1 else float("nan")
            rec_mean = float(match[f"{stem}_mean"].iloc[0]) if len(match) else float("nan")
            rec_sd = float(match[f"{stem}_sd"].iloc[0]) if len(match) else float("nan")
            gap = ours_mean - rec_mean
            if not np.isfinite(gap):
                z = float("nan")
            elif rec_sd > 0:
                z = gap / rec_sd
            else:
                z = float("nan") if abs(gap) < 1e-9 else float(np.sign(gap) * np.inf)
            rows.append(
                {
                    "setting": setting,
                    "method": method,
                    "recorded_method": label or "",
                    "metric": metric,
                    "ours_mean": ours_mean,
                    "ours_sd": ours_sd,
                    "ours_n": int(values.size),
                    "recorded_mean": rec_mean,
                    "recorded_sd": rec_sd,
                    "recorded_n": int(match["n_seeds"].iloc[0]) if len(match) else 0,
                    "difference_in_sd": z,
                }
            )
    return pd.DataFrame(rows)


def _cell(mean: float, sd: float, metric: str) -> str:
    if not np.isfinite(mean):
        return "–"
    digits = 1 if metric in ("e_shd", "e_sid") else 3
    text = f"{mean:.{digits}f}"
    if np.isfinite(sd):
        text += f" ± {sd:.{digits}f}"
    return text


def comparison_markdown(comparison: pd.DataFrame, flag: float = 2.0) -> str:
    """Markdown: per setting, one row per method, cells ``ours | recorded | difference in sd``.

    A difference beyond ``flag`` recorded sd is marked ``!``.
    """
    from .bench import METHOD_LABELS

    blocks = []
    metrics = list(RECORDED_METRICS)
    for setting, block in comparison.groupby("setting", sort=False):
        data, graph = split_setting(setting)
        body = []
        for method, rows in block.groupby("method", sort=False):
            rows = rows.set_index("metric")
            first = rows.iloc[0]
            label = METHOD_LABELS.get(method, method)
            if first.recorded_method:
                label += f" vs {first.recorded_method}"
            cells = [label, f"{int(first.ours_n)} / {int(first.recorded_n)}"]
            for metric in metrics:
                r = rows.loc[metric]
                ours = _cell(r.ours_mean, r.ours_sd, metric)
                rec = _cell(r.recorded_mean, r.recorded_sd, metric)
                z = r.difference_in_sd
                z_text = "–" if not np.isfinite(z) and not np.isinf(z) else f"{z:+.1f}"
                if np.isfinite(z) and abs(z) > flag or np.isinf(z):
                    z_text += " !"
                cells.append(f"{ours} \\| {rec} \\| {z_text}")
            body.append(cells)
        header = ["method", "seeds ours / rec."] + [METRIC_LABELS[m] for m in metrics]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        blocks.append(f"**{DATA_LABELS[data]}, {GRAPH_LABELS[graph]}** (ours \\| recorded \\| difference in recorded sd)\n\n" + "\n".join(lines))
    note = f"\n\n`!`: more than {flag:g} recorded sd from the recorded mean."
    return "\n\n".join(blocks) + note


def bacadi_row_metrics(output: Any, problem: BacadiProblem) -> dict[str, float]:
    """The AUROC / AUPRC columns of :func:`bacadi_metrics` for a :class:`metacadi.bench.MethodOutput`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = bacadi_metrics(problem.graph, problem.test.target_matrix(), output.edge_probs, None, output.target_probs)
    # E-SHD (a reversal counts once) and E-SID are the runner's own e_shd / e_sid columns
    return {key: row[key] for key in ("bacadi_auroc", "bacadi_auprc", "bacadi_intv_auprc")}
