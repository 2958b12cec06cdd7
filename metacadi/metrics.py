"""Evaluation metrics for graphs and intervention targets (paper §5).

Graph convention: ``A[i, j] = 1`` iff ``i -> j``; ``A[:, j]`` is the parent mask of ``j``.

* :func:`shd` — structural Hamming distance: the number of node pairs ``{i, j}`` whose edge
  status differs (missing, extra, or **reversed — a reversal counts 1**, not 2, the convention
  of the SHD in DiBS/BaCaDI and of ``cdt``'s ``double_for_anticausal=False``).
* :func:`sid` — structural intervention distance (Peters & Bühlmann 2015): the number of ordered
  pairs ``(i, j)``, ``i != j``, for which the interventional distribution ``p(x_j | do(x_i))`` is
  inferred wrongly when the estimated graph's parents of ``i`` are used as the adjustment set in
  the true graph. Computed with ``gadjid`` (Henckel, Würtzen & Weichwald 2024).
  ``double_for_anticausal=True`` switches to the other convention (a reversal counts 2: one
  missing plus one extra edge, ``cdt``'s default).
* :func:`expected_shd`, :func:`expected_sid` — the paper's E-SHD and E-SID: the mean over
  posterior graph samples ``(S, d, d)``.
* :func:`thresholded_shd` — SHD of the point estimate ``{i -> j : P(i -> j) >= 0.5}``.
* :func:`edge_auroc`, :func:`edge_auprc` — edge probabilities ``P(i -> j)`` against the true
  adjacency, over the ``d (d - 1)`` off-diagonal entries (the diagonal is never an edge).
* :func:`target_auroc`, :func:`target_auprc` — target probabilities against the true targets
  ``r_tj``, pooled over tasks (the paper's Intv-AUROC / Intv-AUPRC).

Undefined cases. AUROC needs both classes among the labels; with only one class it is
undefined, and the functions return ``nan`` and emit an :class:`UndefinedMetricWarning` (so one
degenerate task set does not abort a benchmark of many; ``np.nanmean`` skips it). AUPRC is
undefined without a positive label and returns ``nan`` with the same warning; with only
positives it is 1. Every other bad input (wrong shape, non-binary truth, probabilities outside
``[0, 1]``, NaN, cyclic graph where a DAG is needed) raises :class:`MetaCaDIInputError`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .errors import MetaCaDIInputError
from .validation import _to_numpy, check_adjacency


class UndefinedMetricWarning(RuntimeWarning):
    """A metric was undefined for the given labels (e.g. AUROC with one class); ``nan`` returned."""


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _as_array(value: Any, name: str) -> np.ndarray:
    array, _ = _to_numpy(value, name)
    if array.dtype != bool and not np.all(np.isfinite(array)):
        raise MetaCaDIInputError(f"{name} contains NaN or infinite values.")
    return array


def _binary(value: Any, name: str) -> np.ndarray:
    array = _as_array(value, name)
    if not np.isin(array, (0, 1)).all():
        bad = np.unique(array[~np.isin(array, (0, 1))])[:5]
        raise MetaCaDIInputError(f"{name} must contain only 0/1 (or booleans); found values {bad}.")
    return array.astype(np.int8)


def _probabilities(value: Any, name: str) -> np.ndarray:
    array = _as_array(value, name).astype(np.float64)
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise MetaCaDIInputError(
            f"{name} must be probabilities in [0, 1]; got values in [{array.min():g}, {array.max():g}]."
        )
    return array


def _square(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise MetaCaDIInputError(f"{name} must be a square (d, d) matrix; got shape {array.shape}.")
    return array


def _same_shape(array: np.ndarray, expected: tuple[int, ...], name: str, reference: str) -> None:
    if array.shape != expected:
        raise MetaCaDIInputError(f"{name} has shape {array.shape} but {reference} has shape {expected}.")


def _no_self_loops(array: np.ndarray, name: str) -> None:
    diagonal = np.diagonal(array, axis1=-2, axis2=-1)
    if np.any(diagonal):
        raise MetaCaDIInputError(f"{name} has self-loops (non-zero diagonal entries); a graph here has none.")


def _graph_stack(samples: Any, d: int, name: str = "graph_samples") -> np.ndarray:
    """``(S, d, d)`` int8 stack of binary graphs; a single ``(d, d)`` graph becomes ``S = 1``."""
    array = _binary(samples, name)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (d, d) or array.shape[0] == 0:
        raise MetaCaDIInputError(
            f"{name} must have shape (n_samples, {d}, {d}) (at least one sample); got {np.shape(samples)}."
        )
    _no_self_loops(array, name)
    return array


# --------------------------------------------------------------------------------------------
# Structural distances
# --------------------------------------------------------------------------------------------


def shd(true_adj: Any, pred_adj: Any, double_for_anticausal: bool = False) -> int:
    """Structural Hamming distance between two graphs on the same ``d`` nodes.

    ``SHD = #{ {i, j}, i < j : (A[i, j], A[j, i]) != (B[i, j], B[j, i]) }``: a missing, an extra
    or a reversed edge each count 1 (a reversed edge counts once). With
    ``double_for_anticausal=True`` it is ``sum_{i != j} |A[i, j] - B[i, j]|`` instead: a reversal
    counts 2. ``pred_adj`` need not be acyclic.

    Args:
        true_adj: ``(d, d)`` 0/1 true adjacency.
        pred_adj: ``(d, d)`` 0/1 predicted adjacency.
        double_for_anticausal: count a reversed edge twice (default False: once).
    """
    true = _square(_binary(true_adj, "true_adj"), "true_adj")
    pred = _binary(pred_adj, "pred_adj")
    _same_shape(pred, true.shape, "pred_adj", "true_adj")
    _no_self_loops(true, "true_adj")
    _no_self_loops(pred, "pred_adj")
    return _shd_stack(true, pred[None], double_for_anticausal)[0].item()


def _shd_stack(true: np.ndarray, preds: np.ndarray, double_for_anticausal: bool = False) -> np.ndarray:
    differs = true[None] != preds  # (S, d, d)
    if double_for_anticausal:
        return differs.sum(axis=(1, 2)).astype(np.int64)
    pair_differs = differs | np.swapaxes(differs, 1, 2)
    return np.triu(pair_differs, k=1).sum(axis=(1, 2)).astype(np.int64)


def _gadjid_sid(true: np.ndarray, pred: np.ndarray, name: str) -> int:
    import gadjid

    try:
        _, count = gadjid.sid(true, pred, edge_direction="from row to column")
    except RuntimeError as exc:  # gadjid reports a cyclic input as a RuntimeError with a backtrace
        reason = "is not acyclic" if "acyclic" in str(exc) else f"was rejected by gadjid: {str(exc).splitlines()[0]}"
        raise MetaCaDIInputError(f"{name} {reason}; SID is defined for DAGs only.") from None
    return int(count)


def sid(true_adj: Any, pred_adj: Any, normalized: bool = False) -> float:
    """Structural intervention distance ``SID(G, H)`` (Peters & Bühlmann 2015).

    For every ordered pair ``(i, j)``, ``i != j``, the estimate ``H`` infers
    ``p(x_j | do(x_i))`` by adjusting for ``Z = pa_H(i)`` (and infers "no effect" when
    ``j in pa_H(i)``). The pair counts as an error if that is wrong in the true DAG ``G``: if
    ``j in pa_H(i)`` but ``j`` is a descendant of ``i`` in ``G``, or otherwise if ``Z`` is not a
    valid adjustment set for ``(i, j)`` in ``G``. ``SID(G, G) = 0``; SID is not symmetric, and
    a supergraph of ``G`` that respects its order has SID 0 although its SHD is positive.

    Args:
        true_adj: ``(d, d)`` 0/1 true DAG ``G``.
        pred_adj: ``(d, d)`` 0/1 estimated DAG ``H`` (must be acyclic).
        normalized: divide by the number of ordered pairs ``d (d - 1)``.

    Returns:
        the count (an ``int``), or a float in ``[0, 1]`` when ``normalized``.
    """
    true = check_adjacency(_binary(true_adj, "true_adj"), name="true_adj").astype(np.int8)
    pred = check_adjacency(_binary(pred_adj, "pred_adj"), name="pred_adj").astype(np.int8)
    _same_shape(pred, true.shape, "pred_adj", "true_adj")
    count = _gadjid_sid(true, pred, "pred_adj")
    return _normalize(count, true.shape[0]) if normalized else count


def _normalize(count: float, d: int) -> float:
    return float(count) / (d * (d - 1)) if d > 1 else 0.0


def expected_shd(true_adj: Any, graph_samples: Any, double_for_anticausal: bool = False) -> float:
    """E-SHD: ``(1/S) sum_s SHD(G, A_s)`` over posterior graph samples ``(S, d, d)``.

    ``double_for_anticausal``: see :func:`shd` (default: a reversed edge counts once).
    """
    true = _square(_binary(true_adj, "true_adj"), "true_adj")
    _no_self_loops(true, "true_adj")
    samples = _graph_stack(graph_samples, true.shape[0])
    return float(_shd_stack(true, samples, double_for_anticausal).mean())


def thresholded_shd(
    true_adj: Any, edge_probs: Any, threshold: float = 0.5, double_for_anticausal: bool = False
) -> int:
    """SHD of the graph of confident edges: ``SHD(G, 1[P >= threshold])``.

    Args:
        true_adj: ``(d, d)`` 0/1 true adjacency.
        edge_probs: ``(d, d)`` edge probabilities in ``[0, 1]`` (the diagonal is ignored).
        threshold: an edge is kept when its probability is at least this (default 0.5).
        double_for_anticausal: see :func:`shd`.

    The thresholded graph need not be acyclic (with ``threshold >= 0.5`` it has no 2-cycle when
    ``P(i -> j) + P(j -> i) <= 1``, as for any distribution over DAGs, except for ties at 0.5).
    """
    probs = _square(_probabilities(edge_probs, "edge_probs"), "edge_probs")
    graph = (probs >= threshold).astype(np.int8)
    np.fill_diagonal(graph, 0)
    return shd(true_adj, graph, double_for_anticausal=double_for_anticausal)


def expected_sid(true_adj: Any, graph_samples: Any, normalized: bool = False) -> float:
    """E-SID: ``(1/S) sum_s SID(G, A_s)`` over posterior DAG samples ``(S, d, d)``."""
    true = check_adjacency(_binary(true_adj, "true_adj"), name="true_adj").astype(np.int8)
    samples = _graph_stack(graph_samples, true.shape[0])
    counts = [_gadjid_sid(true, np.ascontiguousarray(sample), f"graph_samples[{s}]") for s, sample in enumerate(samples)]
    mean = float(np.mean(counts))
    return _normalize(mean, true.shape[0]) if normalized else mean


# --------------------------------------------------------------------------------------------
# Ranking metrics
# --------------------------------------------------------------------------------------------


def _undefined(metric: str, reason: str) -> float:
    warnings.warn(f"{metric} is undefined: {reason}; returning nan.", UndefinedMetricWarning, stacklevel=3)
    return float("nan")


def _auroc(labels: np.ndarray, scores: np.ndarray, metric: str) -> float:
    from sklearn.metrics import roc_auc_score

    n_positive = int(labels.sum())
    if n_positive == 0 or n_positive == labels.size:
        only = "positive" if n_positive else "negative"
        return _undefined(metric, f"all {labels.size} true labels are {only} (AUROC needs both classes)")
    return float(roc_auc_score(labels, scores))


def _auprc(labels: np.ndarray, scores: np.ndarray, metric: str) -> float:
    from sklearn.metrics import average_precision_score

    if labels.sum() == 0:
        return _undefined(metric, f"none of the {labels.size} true labels is positive (precision has no positives to find)")
    return float(average_precision_score(labels, scores))


def _edge_labels_scores(true_adj: Any, edge_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    true = _square(_binary(true_adj, "true_adj"), "true_adj")
    _no_self_loops(true, "true_adj")
    probs = _probabilities(edge_probs, "edge_probs")
    _same_shape(probs, true.shape, "edge_probs", "true_adj")
    d = true.shape[0]
    if d < 2:
        raise MetaCaDIInputError("edge metrics need at least 2 variables (a 1x1 graph has no possible edge).")
    off_diagonal = ~np.eye(d, dtype=bool)
    return true[off_diagonal], probs[off_diagonal]


def edge_auroc(true_adj: Any, edge_probs: Any) -> float:
    """Area under the ROC curve of edge probabilities over the ``d (d - 1)`` off-diagonal pairs.

    Args:
        true_adj: ``(d, d)`` 0/1 true adjacency.
        edge_probs: ``(d, d)`` edge probabilities ``P(i -> j)`` in ``[0, 1]``.

    Returns ``nan`` (with :class:`UndefinedMetricWarning`) for an empty or complete true graph.
    """
    return _auroc(*_edge_labels_scores(true_adj, edge_probs), metric="edge AUROC")


def edge_auprc(true_adj: Any, edge_probs: Any) -> float:
    """Area under the precision–recall curve (average precision) of edge probabilities.

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over decreasing thresholds (scikit-learn's
    ``average_precision_score``), off-diagonal pairs only. ``nan`` for an empty true graph.
    """
    return _auprc(*_edge_labels_scores(true_adj, edge_probs), metric="edge AUPRC")


def _target_labels_scores(true_targets: Any, target_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    true = _binary(true_targets, "true_targets")
    probs = _probabilities(target_probs, "target_probs")
    if true.ndim == 1:
        true = true[None]
    if probs.ndim == 1:
        probs = probs[None]
    if true.ndim != 2:
        raise MetaCaDIInputError(f"true_targets must have shape (n_tasks, d) or (d,); got {np.shape(true_targets)}.")
    _same_shape(probs, true.shape, "target_probs", "true_targets")
    if true.size == 0:
        raise MetaCaDIInputError("true_targets is empty; need at least one task and one variable.")
    return true.ravel(), probs.ravel()


def target_auroc(true_targets: Any, target_probs: Any) -> float:
    """Intv-AUROC: target probabilities ``sigma(gamma_tj)`` against true ``r_tj``, pooled over tasks.

    Args:
        true_targets: ``(T, d)`` (or ``(d,)``) 0/1 true targets.
        target_probs: ``(T, d)`` (or ``(d,)``) probabilities in ``[0, 1]``.

    Returns ``nan`` (with :class:`UndefinedMetricWarning`) if no or every entry is a target.
    """
    return _auroc(*_target_labels_scores(true_targets, target_probs), metric="target AUROC")


def target_auprc(true_targets: Any, target_probs: Any) -> float:
    """Intv-AUPRC: average precision of target probabilities, pooled over tasks (``nan`` if no targets)."""
    return _auprc(*_target_labels_scores(true_targets, target_probs), metric="target AUPRC")


# --------------------------------------------------------------------------------------------
# Bundles
# --------------------------------------------------------------------------------------------


def graph_metrics(true_adj: Any, edge_probs: Any, graph_samples: Any | None = None) -> dict[str, float]:
    """All graph metrics in one dict.

    Keys: ``"edge_auroc"``, ``"edge_auprc"``, and, when ``graph_samples`` ``(S, d, d)`` are given,
    ``"expected_shd"`` and ``"expected_sid"``.
    """
    result = {"edge_auroc": edge_auroc(true_adj, edge_probs), "edge_auprc": edge_auprc(true_adj, edge_probs)}
    if graph_samples is not None:
        result["expected_shd"] = expected_shd(true_adj, graph_samples)
        result["expected_sid"] = expected_sid(true_adj, graph_samples)
    return result


def target_metrics(true_targets: Any, target_probs: Any) -> dict[str, float]:
    """Keys ``"target_auroc"`` and ``"target_auprc"`` (pooled over tasks)."""
    return {
        "target_auroc": target_auroc(true_targets, target_probs),
        "target_auprc": target_auprc(true_targets, target_probs),
    }
