import itertools
import warnings

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from metacadi import MetaCaDIInputError
from metacadi.graphs import random_dag
from metacadi.metrics import (
    UndefinedMetricWarning,
    edge_auprc,
    edge_auroc,
    expected_shd,
    expected_sid,
    graph_metrics,
    sid,
    shd,
    target_auprc,
    thresholded_shd,
    target_auroc,
    target_metrics,
)

CHAIN = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])  # 0 -> 1 -> 2
EMPTY = np.zeros((3, 3), dtype=int)


# ---------------------------------------------------------------- reference SID by brute force


def _is_valid_adjustment_set(graph: nx.DiGraph, cause: int, effect: int, adjustment: set[int]) -> bool:
    """Generalised adjustment criterion (Shpitser et al. 2010; Perković et al. 2018), singletons.

    Z is valid for (x, y) iff (a) no Z is a descendant of a node W != x on a directed path
    x -> ... -> y (nor x itself), and (b) Z d-separates x and y in the proper back-door graph:
    G without the first edge of every directed path from x to y.
    """
    descendants_of_cause = nx.descendants(graph, cause)
    ancestors_of_effect = nx.ancestors(graph, effect) | {effect}
    causal_nodes = descendants_of_cause & ancestors_of_effect  # W on directed paths x -> y, W != x
    forbidden = {cause} | causal_nodes | set().union(*(nx.descendants(graph, w) for w in causal_nodes))
    if adjustment & forbidden:
        return False
    backdoor_graph = graph.copy()
    backdoor_graph.remove_edges_from([(cause, w) for w in causal_nodes if graph.has_edge(cause, w)])
    return nx.is_d_separator(backdoor_graph, {cause}, {effect}, adjustment)


def reference_sid(true_adj: np.ndarray, pred_adj: np.ndarray) -> int:
    """SID(G, H) straight from Peters & Bühlmann (2015), Definition 3 / Proposition 8.

    For each ordered pair (i, j): H estimates p(x_j | do(x_i)) by adjusting for pa_H(i), or as
    "no effect" when j is in pa_H(i). Count the pairs where that is wrong in G.
    """
    d = true_adj.shape[0]
    graph = nx.DiGraph()
    graph.add_nodes_from(range(d))
    graph.add_edges_from(zip(*np.nonzero(true_adj)))
    errors = 0
    for i, j in itertools.permutations(range(d), 2):
        parents_in_estimate = set(np.flatnonzero(pred_adj[:, i]).tolist())
        if j in parents_in_estimate:
            errors += j in nx.descendants(graph, i)
        else:
            errors += not _is_valid_adjustment_set(graph, i, j, parents_in_estimate)
    return errors


def test_reference_sid_reproduces_the_worked_examples():
    # chain vs empty: pairs (1,0), (2,0), (2,1) are wrongly predicted as "no confounding"
    assert reference_sid(CHAIN, EMPTY) == 3


def test_sid_of_chain_against_empty_graph():
    assert sid(CHAIN, EMPTY) == 3
    assert sid(CHAIN, EMPTY, normalized=True) == pytest.approx(3 / 6)
    assert sid(EMPTY, CHAIN) == 0  # an empty truth: parents of i never confound anything
    assert sid(CHAIN, CHAIN) == 0


def test_same_shd_different_sid():
    """Peters & Bühlmann's point: graphs at equal SHD from G can differ a lot in SID.

    G = 0 -> 1 -> 2. H1 adds 0 -> 2 (a supergraph respecting the order: every effect is still
    estimated by a valid adjustment), H2 reverses 1 -> 2. Both have SHD 1.
    By hand for H2 = 0 -> 1 <- 2, pa(0) = {}, pa(1) = {0, 2}, pa(2) = {}:
      (1, 2): 2 in pa_H2(1) -> "no effect", but 2 is a descendant of 1 in G: wrong;
      (2, 0), (2, 1): empty adjustment, but 2 and 0/1 are dependent in G with no causal path: wrong;
      (0, 1), (0, 2): empty set valid; (1, 0): 0 in pa_H2(1), not a descendant of 1: right.
    """
    superset = CHAIN.copy()
    superset[0, 2] = 1
    reversed_edge = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0]])
    assert shd(CHAIN, superset) == shd(CHAIN, reversed_edge) == 1
    assert sid(CHAIN, superset) == reference_sid(CHAIN, superset) == 0
    assert sid(CHAIN, reversed_edge) == reference_sid(CHAIN, reversed_edge) == 3


def test_sid_is_not_symmetric():
    collider = np.array([[0, 0, 1], [0, 0, 1], [0, 0, 0]])  # 0 -> 2 <- 1
    fork = np.array([[0, 0, 0], [0, 0, 0], [1, 1, 0]])  # 0 <- 2 -> 1
    assert sid(collider, fork) == reference_sid(collider, fork)
    assert sid(fork, collider) == reference_sid(fork, collider)
    assert sid(collider, fork) == 6  # every effect estimated wrongly in both directions
    superset = CHAIN.copy()
    superset[0, 2] = 1
    assert sid(CHAIN, superset) == 0 and sid(superset, CHAIN) == reference_sid(superset, CHAIN) > 0
    assert sid(CHAIN, EMPTY) == 3 and sid(EMPTY, CHAIN) == 0


def test_sid_matches_brute_force_reference_on_random_pairs():
    rng = np.random.default_rng(0)
    nonzero = 0
    for case in range(30):
        d = int(rng.integers(3, 7))
        true = random_dag(d, float(rng.uniform(0.5, (d - 1) / 2)), seed=rng)
        if case % 3 == 0:  # a perturbed copy of the truth: flip a few entries, keep acyclic
            pred = true.copy()
            for _ in range(2):
                i, j = rng.choice(d, 2, replace=False)
                candidate = pred.copy()
                candidate[i, j], candidate[j, i] = 1 - candidate[i, j], 0
                if nx.is_directed_acyclic_graph(nx.DiGraph(candidate)):
                    pred = candidate
        else:
            pred = random_dag(d, float(rng.uniform(0.0, (d - 1) / 2)), seed=rng)
        expected = reference_sid(true, pred)
        assert sid(true, pred) == expected, (true, pred)
        nonzero += expected > 0
    assert nonzero >= 20  # the comparison is not trivially 0 == 0


# ---------------------------------------------------------------- SHD


def test_shd_hand_examples():
    assert shd(CHAIN, EMPTY) == 2  # two missing edges
    assert shd(CHAIN, CHAIN) == 0
    reversed_chain = CHAIN.T
    assert shd(CHAIN, reversed_chain) == 2  # two reversals, one each
    one_reversal = np.array([[0, 0, 0], [1, 0, 1], [0, 0, 0]])
    assert shd(CHAIN, one_reversal) == 1
    extra = CHAIN.copy()
    extra[0, 2] = 1
    assert shd(CHAIN, extra) == 1
    both_directions = CHAIN.copy()
    both_directions[1, 0] = 1  # a 2-cycle in a thresholded prediction differs in pair {0, 1}
    assert shd(CHAIN, both_directions) == 1


def test_shd_with_reversals_counted_twice():
    assert shd(CHAIN, CHAIN.T, double_for_anticausal=True) == 4  # each reversal: one missing + one extra
    assert shd(CHAIN, EMPTY, double_for_anticausal=True) == 2  # missing edges count once either way
    one_reversal = np.array([[0, 0, 0], [1, 0, 1], [0, 0, 0]])
    assert shd(CHAIN, one_reversal, double_for_anticausal=True) == 2
    samples = np.stack([CHAIN.T, CHAIN])
    assert expected_shd(CHAIN, samples) == 1.0
    assert expected_shd(CHAIN, samples, double_for_anticausal=True) == 2.0


def test_thresholded_shd_keeps_edges_at_or_above_the_threshold():
    probs = np.array([[0.0, 0.9, 0.3], [0.1, 0.0, 0.5], [0.2, 0.49, 0.0]])
    assert thresholded_shd(CHAIN, probs) == 0  # 0->1 (0.9) and 1->2 (0.5) kept, nothing else
    assert thresholded_shd(CHAIN, probs, threshold=0.6) == 1  # 1->2 dropped
    assert thresholded_shd(CHAIN, probs, threshold=0.15) == 2  # pairs {0, 2} (extra both ways) and {1, 2} (extra 2->1) differ
    assert thresholded_shd(CHAIN, np.zeros((3, 3))) == shd(CHAIN, EMPTY) == 2
    with pytest.raises(MetaCaDIInputError, match="probabilities"):
        thresholded_shd(CHAIN, probs + 1)


@st.composite
def dag_pairs(draw):
    d = draw(st.integers(2, 8))
    seeds = draw(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)))
    degree = draw(st.floats(0.0, (d - 1) / 2))
    return random_dag(d, degree, seed=seeds[0]), random_dag(d, degree, seed=seeds[1])


@settings(max_examples=60, deadline=None)
@given(dag_pairs())
def test_distances_properties(pair):
    first, second = pair
    assert shd(first, first) == 0 and sid(first, first) == 0
    assert shd(first, second) == shd(second, first)
    d = first.shape[0]
    assert 0 <= shd(first, second) <= d * (d - 1) // 2
    assert 0 <= sid(first, second) <= d * (d - 1)
    assert shd(first, second) == 0 or not np.array_equal(first, second)


def test_expected_distances_average_over_samples():
    rng = np.random.default_rng(1)
    true = random_dag(6, 1.5, seed=rng)
    samples = np.stack([random_dag(6, 1.0, seed=rng) for _ in range(7)])
    assert expected_shd(true, samples) == pytest.approx(np.mean([shd(true, s) for s in samples]))
    assert expected_sid(true, samples) == pytest.approx(np.mean([sid(true, s) for s in samples]))
    assert expected_sid(true, samples, normalized=True) == pytest.approx(expected_sid(true, samples) / 30)
    assert expected_shd(true, samples[0]) == shd(true, samples[0])  # a single (d, d) graph is S = 1
    assert expected_shd(CHAIN, np.stack([CHAIN, EMPTY])) == 1.0
    assert expected_sid(CHAIN, np.stack([CHAIN, EMPTY])) == 1.5


# ---------------------------------------------------------------- ranking metrics


def test_edge_auroc_auprc_hand_computed():
    true = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    # off-diagonal entries in row-major order: (0,1) (0,2) (1,0) (1,2) (2,0) (2,1)
    probs = np.array([[1.0, 0.9, 0.5], [0.1, 1.0, 0.4], [0.2, 0.3, 1.0]])  # diagonal ignored
    # positives {0.9, 0.4}, negatives {0.5, 0.1, 0.2, 0.3}: 7 of 8 pairs ordered correctly
    assert edge_auroc(true, probs) == pytest.approx(7 / 8)
    # ranking: 0.9 (+), 0.5 (-), 0.4 (+): AP = 0.5 * 1 + 0.5 * 2/3
    assert edge_auprc(true, probs) == pytest.approx(0.5 + 1 / 3)
    assert edge_auroc(true, true) == 1.0 and edge_auprc(true, true) == 1.0
    assert edge_auroc(true, 1 - true) == 0.0


def test_edge_metrics_equal_sklearn_on_off_diagonal_entries():
    rng = np.random.default_rng(2)
    for _ in range(5):
        true = random_dag(8, 1.5, seed=rng)
        probs = rng.random((8, 8))
        mask = ~np.eye(8, dtype=bool)
        assert edge_auroc(true, probs) == pytest.approx(roc_auc_score(true[mask], probs[mask]))
        assert edge_auprc(true, probs) == pytest.approx(average_precision_score(true[mask], probs[mask]))


def test_target_metrics_pool_over_tasks():
    rng = np.random.default_rng(3)
    true = rng.random((6, 10)) < 0.2
    probs = np.clip(true * 0.3 + rng.random((6, 10)) * 0.7, 0, 1)
    pooled_auroc = roc_auc_score(true.ravel(), probs.ravel())
    pooled_auprc = average_precision_score(true.ravel(), probs.ravel())
    assert target_auroc(true, probs) == pytest.approx(pooled_auroc)
    assert target_auprc(true, probs) == pytest.approx(pooled_auprc)
    # not the mean of per-task values
    assert target_metrics(true, probs) == {
        "target_auroc": pytest.approx(pooled_auroc),
        "target_auprc": pytest.approx(pooled_auprc),
    }
    assert target_auroc([0, 1, 0, 0], [0.1, 0.8, 0.3, 0.2]) == 1.0  # one task given as (d,)
    assert target_auprc([[0, 1, 0, 1]], [[0.9, 0.8, 0.3, 0.2]]) == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_graph_metrics_bundle():
    true = random_dag(6, 1.0, seed=0)
    samples = np.stack([random_dag(6, 1.0, seed=s) for s in range(4)])
    probs = samples.mean(0)
    result = graph_metrics(true, probs, samples)
    assert set(result) == {"edge_auroc", "edge_auprc", "expected_shd", "expected_sid"}
    assert result["edge_auroc"] == edge_auroc(true, probs)
    assert result["expected_sid"] == expected_sid(true, samples)
    assert set(graph_metrics(true, probs)) == {"edge_auroc", "edge_auprc"}


def test_degenerate_labels_return_nan_with_a_warning():
    probs = np.full((3, 3), 0.5)
    with pytest.warns(UndefinedMetricWarning, match="all 6 true labels are negative"):
        assert np.isnan(edge_auroc(EMPTY, probs))
    with pytest.warns(UndefinedMetricWarning, match="none of the 6 true labels is positive"):
        assert np.isnan(edge_auprc(EMPTY, probs))
    with pytest.warns(UndefinedMetricWarning, match="all 4 true labels are positive"):
        assert np.isnan(target_auroc(np.ones((2, 2)), np.full((2, 2), 0.3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert target_auprc(np.ones((2, 2)), np.full((2, 2), 0.3)) == 1.0  # only positives: defined


# ---------------------------------------------------------------- bad input


CYCLE = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: shd(CHAIN, np.zeros((4, 4))), r"pred_adj has shape \(4, 4\) but true_adj has shape \(3, 3\)"),
        (lambda: shd(CHAIN * 2, CHAIN), "true_adj must contain only 0/1"),
        (lambda: shd(np.zeros((2, 3)), np.zeros((2, 3))), "square"),
        (lambda: shd(CHAIN, np.eye(3)), "pred_adj has self-loops"),
        (lambda: shd(CHAIN, np.where(CHAIN, np.nan, 0)), "pred_adj contains NaN"),
        (lambda: sid(CHAIN, CYCLE), "pred_adj is not acyclic"),
        (lambda: sid(CYCLE, CHAIN), "true_adj is not acyclic"),
        (lambda: expected_sid(CHAIN, np.stack([CHAIN, CYCLE])), r"graph_samples\[1\] is not acyclic"),
        (lambda: expected_shd(CHAIN, np.zeros((2, 4, 4))), r"graph_samples must have shape \(n_samples, 3, 3\)"),
        (lambda: expected_shd(CHAIN, np.zeros((0, 3, 3))), "at least one sample"),
        (lambda: edge_auroc(CHAIN, np.full((3, 3), 1.5)), r"edge_probs must be probabilities in \[0, 1\]"),
        (lambda: edge_auprc(CHAIN, np.full((3, 3), np.nan)), "edge_probs contains NaN"),
        (lambda: edge_auroc(CHAIN, np.full((3, 2), 0.5)), r"edge_probs has shape \(3, 2\)"),
        (lambda: edge_auroc([[0]], [[0.5]]), "at least 2 variables"),
        (lambda: target_auroc([[0, 1]], [[0.1, 0.2, 0.3]]), r"target_probs has shape \(1, 3\)"),
        (lambda: target_auprc([[0, 0.5]], [[0.1, 0.2]]), "true_targets must contain only 0/1"),
        (lambda: target_auroc([[0, 1]], [[-0.1, 0.2]]), r"target_probs must be probabilities"),
        (lambda: target_auroc(np.zeros((1, 1, 2)), np.zeros((1, 1, 2))), r"shape \(n_tasks, d\)"),
        (lambda: target_metrics([["a", "b"]], [[0.1, 0.2]]), "must hold numbers"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(MetaCaDIInputError, match=message):
        call()
