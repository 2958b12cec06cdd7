"""Floors and a ceiling for the benchmark: what no causal learning, or perfect knowledge, achieves.

Every benchmark table places the methods between these references:

* **Empty-graph floor** (:func:`empty_graph_metrics`): the E-SHD and E-SID of the graph with no
  edges. With a reversed edge counted once, its SHD is the number of true edges; a method whose
  E-SHD is above it does worse than claiming nothing.
* **Shift-score floor** (:func:`shift_scores`): a per-variable score that knows nothing about
  causality, how far each variable's marginal in a test experiment moved from the pooled
  observational training rows,

  ``s_tj = |mean_tj - mean_obs_j| / sd_obs_j + |log(sd_tj / sd_obs_j)|``

  A target's marginal moves, but so do its descendants'; a method that explains the
  descendants' shifts away through the graph beats it.
* **Zero-count floor** (:func:`zero_count_scores`, SERGIO only): the fraction of exact zeros of
  each gene in a test experiment minus its fraction in the observational rows. A knocked-out gene
  is 0 in every cell, so counting zeros alone finds knockouts.
* **Oracle ceiling** (:func:`oracle_scores`): scores the targets with the *true* graph and
  mechanisms. For an additive-noise SCM the standardised residuals of a test experiment are

  ``e_ij = (x_ij - f_j(x_i,pa(j))) / sigma_j``        (``f_j``, ``sigma_j``: the true mechanism
  and noise scale; ``e ~ N(0, 1)`` for every variable that is not a target),

  and the score of variable ``j`` is the log-likelihood ratio of a fitted ``N(m_j, v_j)`` against
  ``N(0, 1)`` (:func:`gaussian_llr`):

  ``LLR_j = (n / 2) (m_j^2 + v_j - 1 - log v_j)``,  ``m_j``, ``v_j`` the mean and (ML) variance
  of ``e_.j`` over the ``n`` rows.

  It is ``>= 0``, and 0 only for ``m = 0, v = 1``. A descendant of a target keeps its mechanism,
  so its residuals stay standard normal: the oracle explains every downstream shift away.
  For SERGIO (:func:`sergio_oracle_scores`) the simulator's clean expression is hidden behind
  library-size scaling, dropout and Poisson counts, so a faithful likelihood of the measured
  counts would need integrating those out per cell; instead the oracle fits, for every gene, a
  regression of its ``log1p`` counts on its **true** regulators (and the cell's log library
  size), on the training experiments in which that gene was **not** a true target, and scores
  test residuals with the same LLR. It uses the true graph and the true training targets, but
  not the simulator's production function: an approximation of the ceiling, labelled as such.

Scores are mapped to ``[0, 1]`` by the monotone ``s / (1 + s)`` (ranking metrics such as
AUROC/AUPRC only depend on the order; ``s / (1 + s)`` keeps large scores apart where
``1 - exp(-s)`` would round them all to 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import MetaCaDIInputError
from .validation import check_adjacency, check_data_matrix

__all__ = [
    "empty_graph_metrics",
    "gaussian_llr",
    "oracle_scores",
    "scm_observational_nll",
    "scm_oracle_scores",
    "sergio_oracle_scores",
    "shift_statistic",
    "shift_scores",
    "to_unit_interval",
    "zero_count_scores",
]


def to_unit_interval(score: np.ndarray) -> np.ndarray:
    """Monotone map of scores ``s >= 0`` to ``[0, 1)``: ``s / (1 + s)`` (negative scores are clipped to 0)."""
    score = np.maximum(np.asarray(score, dtype=float), 0.0)
    return score / (1.0 + score)


def _datasets(datasets: Any, d: int | None, name: str, min_rows: int = 2) -> list[np.ndarray]:
    if isinstance(datasets, np.ndarray) and datasets.ndim == 2:
        datasets = [datasets]
    out = []
    for index, data in enumerate(datasets):
        array = getattr(data, "data", data)  # a Task or an array
        array, _ = check_data_matrix(array, name=f"{name}[{index}]", n_variables=d, min_rows=min_rows)
        out.append(array)
    if not out:
        raise MetaCaDIInputError(f"{name} is empty; give at least one dataset.")
    return out


# --------------------------------------------------------------------------------------------
# Graph floor
# --------------------------------------------------------------------------------------------


def empty_graph_metrics(true_adj: Any) -> dict[str, float]:
    """E-SHD and E-SID of the empty graph (a method that claims no edge).

    Args:
        true_adj: ``(d, d)`` 0/1 true DAG.

    Returns:
        ``{"e_shd": SHD(G, 0), "e_sid": SID(G, 0)}``; ``e_shd`` equals the number of true edges.
    """
    from .metrics import shd, sid

    truth = check_adjacency(true_adj, name="true_adj")
    empty = np.zeros_like(truth)
    return {"e_shd": float(shd(truth, empty)), "e_sid": float(sid(truth, empty))}


# --------------------------------------------------------------------------------------------
# Shift-score floor
# --------------------------------------------------------------------------------------------


def shift_statistic(data: Any, reference: Any, variance_weight: float = 1.0) -> np.ndarray:
    """Per-variable marginal shift of ``data`` ``(n, d)`` against ``reference`` ``(m, d)``.

    ``s_j = |mean_j - mean_ref_j| / sd_ref_j + variance_weight * |log(sd_j / sd_ref_j)|``

    with sample standard deviations (``ddof = 1``). Zero spreads are handled so that a silenced
    gene gets a large but finite score: both sds are floored at ``1e-3 sd_ref_j`` (and at
    ``1e-12``), and a variable constant in the reference is measured in units of 1.

    Returns:
        ``(d,)`` float array ``s >= 0``.
    """
    data, _ = check_data_matrix(getattr(data, "data", data), name="data", min_rows=2)
    reference, _ = check_data_matrix(
        getattr(reference, "data", reference), name="reference", n_variables=data.shape[1], min_rows=2
    )
    ref_mean, ref_sd = reference.mean(axis=0), reference.std(axis=0, ddof=1)
    mean, sd = data.mean(axis=0), data.std(axis=0, ddof=1)
    unit = np.where(ref_sd > 1e-12, ref_sd, 1.0)
    floor = 1e-3 * ref_sd + 1e-12
    log_ratio = np.log(np.maximum(sd, floor) / np.maximum(ref_sd, floor))
    return np.abs(mean - ref_mean) / unit + variance_weight * np.abs(log_ratio)


def shift_scores(observational: Any, datasets: Any) -> np.ndarray:
    """Shift-score floor: :func:`shift_statistic` of every test dataset against the pooled observational rows.

    Args:
        observational: ``(m, d)`` pooled observational training rows, or a sequence of arrays /
            :class:`~metacadi.tasks.Task` objects to pool.
        datasets: ``T`` test datasets ``(n_t, d)`` (arrays or Tasks).

    Returns:
        ``(T, d)`` scores in ``[0, 1)``: ``to_unit_interval(s_tj)``.
    """
    reference = _pool(observational)
    tests = _datasets(datasets, reference.shape[1], "datasets")
    return np.stack([to_unit_interval(shift_statistic(data, reference)) for data in tests])


def _pool(observational: Any) -> np.ndarray:
    if isinstance(observational, np.ndarray) and observational.ndim == 2:
        pooled = observational
    else:
        pooled = np.vstack(_datasets(observational, None, "observational", min_rows=1))
    pooled, _ = check_data_matrix(pooled, name="observational", min_rows=2)
    return pooled


# --------------------------------------------------------------------------------------------
# Zero-count floor (SERGIO)
# --------------------------------------------------------------------------------------------


def zero_count_scores(observational: Any, datasets: Any) -> np.ndarray:
    """Zero-count floor: fraction of exact zeros per variable in a test dataset minus that in the observational rows.

    ``z_tj = mean_i 1[x_tij == 0] - mean_i 1[x_obs,ij == 0]`` in ``[-1, 1]``, mapped to ``[0, 1]``
    by ``(1 + z) / 2``.

    Args:
        observational: ``(m, d)`` pooled observational rows or a sequence of datasets to pool.
        datasets: ``T`` test datasets ``(n_t, d)``.

    Returns:
        ``(T, d)`` scores in ``[0, 1]``.
    """
    reference = _pool(observational)
    base = (reference == 0).mean(axis=0)
    tests = _datasets(datasets, reference.shape[1], "datasets")
    return np.stack([(1.0 + (data == 0).mean(axis=0) - base) / 2.0 for data in tests])


# --------------------------------------------------------------------------------------------
# Oracle ceiling
# --------------------------------------------------------------------------------------------


def gaussian_llr(residuals: np.ndarray) -> np.ndarray:
    """Log-likelihood ratio of ``N(m, v)`` fitted by maximum likelihood against ``N(0, 1)``, per column.

    ``residuals`` ``(n, d)`` standardised residuals; returns ``(d,)``
    ``(n / 2) (m^2 + v - 1 - log v)`` with ``m``, ``v`` the column mean and ML variance
    (``v`` floored at ``1e-12``).
    """
    residuals = np.asarray(residuals, dtype=float)
    if residuals.ndim != 2 or residuals.shape[0] < 1:
        raise MetaCaDIInputError(f"residuals must have shape (n, d) with n >= 1; got {residuals.shape}.")
    n = residuals.shape[0]
    mean = residuals.mean(axis=0)
    var = np.maximum(residuals.var(axis=0), 1e-12)
    return 0.5 * n * (mean**2 + var - 1.0 - np.log(var))


def scm_oracle_scores(scm, datasets: Any) -> np.ndarray:
    """Oracle ceiling for an additive-noise :class:`~metacadi.scm.SCM`: true mechanisms, true noise scales.

    For each test dataset ``X`` ``(n, d)``: ``e = (X - scm.mechanism_values(X)) / scm.noise_scales``
    and the score is :func:`gaussian_llr` of ``e`` mapped by :func:`to_unit_interval`. The
    residuals are row-wise, so the rows of all datasets go through the mechanisms in one pass.

    Returns:
        ``(T, d)`` scores in ``[0, 1)``.
    """
    tests = _datasets(datasets, scm.n_variables, "datasets")
    rows = np.concatenate(tests)
    residuals = (rows - scm.mechanism_values(rows)) / scm.noise_scales
    per_dataset = np.split(residuals, np.cumsum([len(data) for data in tests])[:-1])
    return np.stack([to_unit_interval(gaussian_llr(e)) for e in per_dataset])


def scm_observational_nll(scm, data: Any) -> np.ndarray:
    """Mean Gaussian NLL per row of each variable under the *true* mechanisms, ``(d,)`` nats.

    ``0.5 e_ij^2 + log sigma_j + 0.5 log 2 pi`` with ``e = (x - f(x_pa)) / sigma`` averaged over
    the rows of observational ``data`` ``(n, d)``: the ceiling that a learned observational
    mechanism's held-out NLL (:meth:`~metacadi.model.MetaCaDI.observational_nll`, same units) is
    compared with.
    """
    (rows,) = _datasets([data], scm.n_variables, "data", min_rows=1)
    residuals = (rows - scm.mechanism_values(rows)) / scm.noise_scales
    return (0.5 * residuals**2).mean(axis=0) + np.log(scm.noise_scales) + 0.5 * np.log(2 * np.pi)


def _sergio_features(data: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Design matrix of one gene: intercept, log library size, and per true regulator its
    ``log1p`` count, its square and an indicator of an exact zero."""
    library = np.log1p(np.expm1(data).sum(axis=1, keepdims=True))
    blocks = [np.ones((data.shape[0], 1)), library]
    if parents.size:
        regulators = data[:, parents]
        blocks += [regulators, regulators**2, (regulators == 0).astype(float)]
    return np.hstack(blocks)


def sergio_oracle_scores(
    graph: Any,
    train_datasets: Sequence[Any],
    train_targets: Any,
    datasets: Any,
    ridge: float = 1e-3,
) -> np.ndarray:
    """Oracle approximation for SERGIO data: regressions on the true regulators, scored like the SCM oracle.

    For every gene ``j``: least squares (with a small ``ridge``) of its ``log1p`` counts on
    :func:`_sergio_features` of its true parents, fitted on the rows of the training experiments
    in which ``j`` is *not* a true target (so its mechanism is intact, while its regulators were
    perturbed: the fit covers knocked-out regulators too); ``sigma_j`` is the residual sd there.
    A test dataset's residuals ``e_.j / sigma_j`` are scored by :func:`gaussian_llr`.

    Args:
        graph: ``(d, d)`` true adjacency.
        train_datasets: ``K`` training datasets ``(n_k, d)`` (arrays or Tasks).
        train_targets: ``(K, d)`` true targets of the training datasets (0 for observational).
        datasets: ``T`` test datasets.

    Returns:
        ``(T, d)`` scores in ``[0, 1)``.
    """
    truth = check_adjacency(graph, name="graph")
    d = truth.shape[0]
    train = _datasets(train_datasets, d, "train_datasets")
    targets = np.asarray(train_targets, dtype=bool)
    if targets.shape != (len(train), d):
        raise MetaCaDIInputError(f"train_targets must have shape ({len(train)}, {d}); got {targets.shape}.")
    tests = _datasets(datasets, d, "datasets")
    rows = np.vstack(train)
    row_targets = np.repeat(targets, [len(x) for x in train], axis=0)
    residuals = [np.empty((len(x), d)) for x in tests]
    for j in range(d):
        parents = np.flatnonzero(truth[:, j])
        intact = ~row_targets[:, j]
        if intact.sum() < 3:
            raise MetaCaDIInputError(f"gene {j} is a target in (almost) every training row; no intact mechanism to fit.")
        design = _sergio_features(rows[intact], parents)
        response = rows[intact, j]
        gram = design.T @ design + ridge * np.eye(design.shape[1])
        coef = np.linalg.solve(gram, design.T @ response)
        sigma = max(float(np.std(response - design @ coef)), 1e-6)
        for out, data in zip(residuals, tests):
            out[:, j] = (data[:, j] - _sergio_features(data, parents) @ coef) / sigma
    return np.stack([to_unit_interval(gaussian_llr(r)) for r in residuals])


def oracle_scores(protocol) -> np.ndarray:
    """Oracle scores ``(T_test, d)`` of a benchmark protocol's test tasks.

    A :class:`~metacadi.tasks.MetaProtocol` (``.scm``) gets :func:`scm_oracle_scores`; a
    :class:`~metacadi.sergio.SergioProtocol` (``.simulator``) gets :func:`sergio_oracle_scores`
    fitted on its training tasks with their true targets.
    """
    test = [task.data for task in protocol.test]
    if getattr(protocol, "scm", None) is not None:
        return scm_oracle_scores(protocol.scm, test)
    if getattr(protocol, "simulator", None) is not None:
        train = list(protocol.train)
        return sergio_oracle_scores(
            protocol.graph, [t.data for t in train], protocol.train.target_matrix(), test
        )
    raise MetaCaDIInputError(
        f"no oracle for a {type(protocol).__name__}: it needs a protocol with the true SCM (.scm) or SERGIO simulator (.simulator)."
    )
