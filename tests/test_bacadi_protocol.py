"""The BaCaDI benchmark protocol: generators, metric conventions, recorded table, table code path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metacadi.bacadi_protocol import (
    BACADI_SETTINGS,
    RawGaussianBN,
    bacadi_graph,
    bacadi_metrics,
    comparison_markdown,
    intervention_values,
    load_recorded,
    make_bacadi_problem,
    recorded_comparison,
    reference_target_scores,
)
from metacadi.errors import MetaCaDIInputError
from metacadi.graphs import barabasi_albert_dag, is_dag


# ------------------------------------------------------------------------------ graphs


def test_sf2_has_37_edges_at_d20_and_hubs():
    for seed in range(5):
        graph = barabasi_albert_dag(20, 2, seed=seed)
        assert is_dag(graph)
        assert graph.sum() == 37  # 1 + 2 * 18: the second node can only attach to the first
        assert graph.sum(axis=0).max() <= 2  # at most m parents per node
        assert graph.sum(axis=1).max() >= 4  # preferential attachment makes hubs of children


def test_sf_edge_count_formula_and_seed():
    graph = barabasi_albert_dag(7, 3, seed=1)
    assert graph.sum() == 0 + 1 + 2 + 3 * 4
    np.testing.assert_array_equal(graph, barabasi_albert_dag(7, 3, seed=1))
    assert not np.array_equal(barabasi_albert_dag(20, 2, seed=1), barabasi_albert_dag(20, 2, seed=2))


def test_er_has_two_edges_per_node_on_average():
    counts = [bacadi_graph(20, "er", 2, seed=s).sum() for s in range(200)]
    assert abs(np.mean(counts) - 40) < 1.5
    with pytest.raises(MetaCaDIInputError):
        bacadi_graph(20, "grid")


# ------------------------------------------------------------------------------ mechanisms


def _chain(d: int = 3) -> np.ndarray:
    graph = np.zeros((d, d), dtype=int)
    for i in range(d - 1):
        graph[i, i + 1] = 1
    return graph


def test_linear_weights_and_noise_variances_in_range():
    network = RawGaussianBN(bacadi_graph(20, "er", seed=3), "linear", seed=3)
    weights = np.concatenate([p["w"] for p in network.params if p is not None])
    assert np.all((np.abs(weights) >= 0.5) & (np.abs(weights) <= 2.0))
    assert (weights > 0).any() and (weights < 0).any()
    assert np.all((network.noise_variance >= 0.05) & (network.noise_variance <= 0.15))


def test_linear_raw_scale_regression_recovers_weight():
    network = RawGaussianBN(_chain(2), "linear", noise_variance=0.1, seed=0)
    data = network.sample(20000, seed=1)
    slope = np.polyfit(data[:, 0], data[:, 1], 1)[0]
    assert slope == pytest.approx(network.params[1]["w"][0], abs=0.02)
    assert data[:, 0].var() == pytest.approx(0.1, rel=0.05)  # root = its noise, not standardised


def test_mlp_is_one_sigmoid_layer_of_five_units():
    network = RawGaussianBN(_chain(3), "mlp", noise_variance=1e-8, seed=4)
    params = network.params[1]
    assert params["W1"].shape == (1, 5) and params["b1"].shape == (5,) and params["w2"].shape == (5,)
    data = network.sample(50, seed=0)
    hidden = 1 / (1 + np.exp(-(data[:, [0]] @ params["W1"] + params["b1"])))
    np.testing.assert_allclose(data[:, 1], hidden @ params["w2"] + params["b2"][0], atol=1e-3)
    with pytest.raises(MetaCaDIInputError):
        RawGaussianBN(_chain(3), "gp")


def test_hard_intervention_value_and_noise():
    network = RawGaussianBN(_chain(3), "linear", seed=0)
    data = network.sample(20000, target=1, value=6.5, seed=2)
    assert data[:, 1].mean() == pytest.approx(6.5, abs=0.03)
    assert data[:, 1].std() == pytest.approx(np.sqrt(0.5), rel=0.03)  # their 'noise' 0.5 is a variance
    values = intervention_values(10000, seed=0)
    assert np.all(np.abs(values) >= 5.0)
    assert abs(np.mean(values > 0) - 0.5) < 0.03
    assert np.median(np.abs(values)) == pytest.approx(5 + 2 * 0.6745, abs=0.1)


# ------------------------------------------------------------------------------ the problem


@pytest.mark.parametrize("setting", ["linear-er", "mlp-sf"])
def test_synthetic_problem_shapes_targets_and_raw_scale(setting):
    problem = make_bacadi_problem(setting, n_variables=8, seed=0)
    assert len(problem.baseline_train) == 1 and problem.baseline_train[0].n_rows == 100
    assert problem.baseline_train[0].is_observational
    assert len(problem.test) == 8 and all(task.n_rows == 10 for task in problem.test)
    targets = problem.test.target_matrix()
    np.testing.assert_array_equal(targets.sum(axis=1), 1)
    np.testing.assert_array_equal(targets.sum(axis=0), 1)  # every node intervened on once
    assert not problem.standardized
    for task in problem.test:
        node = int(np.flatnonzero(task.targets)[0])
        assert abs(task.data[:, node].mean()) > 3.0  # |value| >= 5, noise sd 0.7
    assert len(problem.train) == 1  # no meta-training experiments by default


def test_problem_is_reproducible_and_meta_training_does_not_change_baseline_data():
    a = make_bacadi_problem("linear-sf", n_variables=10, seed=5)
    b = make_bacadi_problem("linear-sf", n_variables=10, seed=5, n_meta_train=12, meta_train_rows=30)
    np.testing.assert_array_equal(a.graph, b.graph)
    np.testing.assert_array_equal(a.baseline_train[0].data, b.baseline_train[0].data)
    for x, y in zip(a.test, b.test):
        np.testing.assert_array_equal(x.data, y.data)
    assert len(b.train) == 13 and all(task.n_rows == 30 for task in list(b.train)[1:])
    assert b.train.target_matrix()[1:].sum(axis=0).min() >= 1  # dealt over all nodes
    c = make_bacadi_problem("linear-sf", n_variables=10, seed=6)
    assert not np.array_equal(a.baseline_train[0].data, c.baseline_train[0].data)


def test_sergio_problem_knockouts_and_pooled_standardisation():
    problem = make_bacadi_problem("sergio-sf", n_variables=12, n_environments=5, n_meta_train=3, meta_train_rows=20, seed=1)
    assert problem.graph.sum() == 1 + 2 * 10
    assert problem.standardized
    targets = problem.test.target_matrix()
    assert len(problem.test) == 5 and np.all(targets.sum(axis=1) == 1)
    assert targets.sum(axis=0).max() == 1  # distinct knocked-out genes
    pooled = np.vstack([problem.baseline_train[0].data] + [task.data for task in problem.test])
    np.testing.assert_allclose(pooled.mean(axis=0), 0, atol=1e-9)
    spread = pooled.std(axis=0)
    np.testing.assert_allclose(spread[spread > 0], 1, atol=1e-9)
    for task in problem.test:
        node = int(np.flatnonzero(task.targets)[0])
        assert np.ptp(task.data[:, node]) == 0  # a knocked-out gene is constant (0 before scaling)
    with pytest.raises(MetaCaDIInputError):
        make_bacadi_problem("sergio-er")


def test_raw_scale_restores_exact_zeros_and_values():
    problem = make_bacadi_problem("sergio-sf", n_variables=12, n_environments=5, n_meta_train=6, meta_train_rows=20, seed=1)
    for task in problem.test:
        node = int(np.flatnonzero(task.targets)[0])
        raw = problem.raw(task)
        assert np.all(raw[:, node] == 0.0)  # exactly 0, as simulated
        mean, sd = problem.standardization
        np.testing.assert_allclose((raw - mean) / sd, task.data, atol=1e-9)
    synthetic = make_bacadi_problem("linear-er", n_variables=6, seed=0)
    assert synthetic.standardization is None
    np.testing.assert_array_equal(synthetic.raw(synthetic.test[0]), synthetic.test[0].data)


def test_references_floor_and_ceiling_on_the_protocol():
    linear = make_bacadi_problem("linear-er", n_variables=8, seed=3)
    truth = linear.test.target_matrix().astype(bool)
    oracle = reference_target_scores("oracle", linear)
    assert oracle.shape == truth.shape
    assert np.all(oracle[truth] > np.max(np.where(truth, -np.inf, oracle), axis=1))  # true mechanisms: every target first
    rows = linear.test[0].data
    values = linear.network.mechanism_values(rows)
    for node in range(8):
        np.testing.assert_array_equal(values[:, node], linear.network.mean(rows, node))
    sergio = make_bacadi_problem("sergio-sf", n_variables=10, n_environments=4, n_meta_train=20, meta_train_rows=30, seed=2)
    zero = reference_target_scores("zero-count", sergio)
    targets = sergio.test.target_matrix().astype(bool)
    # a knocked-out gene is 0 in every row on the raw scale (the observational rows have few zeros)
    assert np.all(zero[targets] >= 0.9) and np.all(zero[targets] == zero.max(axis=1))
    assert reference_target_scores("oracle", sergio).shape == targets.shape
    with pytest.raises(MetaCaDIInputError, match="zero-count"):
        reference_target_scores("shift", linear)
    with pytest.raises(MetaCaDIInputError, match="meta-training"):
        reference_target_scores("oracle", make_bacadi_problem("sergio-sf", n_variables=10, n_environments=4, seed=2))


# ------------------------------------------------------------------------------ metrics


def test_bacadi_metrics_conventions():
    truth = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    reversed_one = np.array([[0, 0, 0], [1, 0, 1], [0, 0, 0]])
    targets = np.eye(3, dtype=int)
    row = bacadi_metrics(truth, targets, truth * 0.9, np.stack([truth, reversed_one]), np.eye(3) * 0.8)
    assert row["e_shd"] == pytest.approx(0.5)  # a reversed edge counts once
    assert row["bacadi_auroc"] == pytest.approx(1.0) and row["bacadi_auprc"] == pytest.approx(1.0)
    assert row["intv_auroc"] == pytest.approx(1.0)
    # all d^2 entries count: a score on the diagonal is ranked like any other non-edge
    noisy = truth * 0.9 + np.eye(3) * 0.95
    assert bacadi_metrics(truth, targets, noisy, None, np.eye(3))["bacadi_auroc"] < 1.0
    assert np.isnan(bacadi_metrics(truth, targets, None, None, np.eye(3))["e_shd"])


# ------------------------------------------------------------------------------ recorded table


def test_recorded_table_parses():
    recorded = load_recorded()
    assert len(recorded) == 21  # 4 methods x 4 synthetic settings + 5 SERGIO rows
    assert set(recorded.setting) == set(BACADI_SETTINGS)
    row = recorded[(recorded.setting == "linear-er") & (recorded.method == "JCI-PC")].iloc[0]
    assert row.eshd_mean == pytest.approx(38.967) and row.eshd_sd == pytest.approx(4.522)
    assert row.n_seeds == 30
    sergio = recorded[recorded.setting == "sergio-sf"].set_index("method")
    assert sergio.loc["UT-IGSP", "n_seeds"] == 16


def test_recorded_table_rejects_bad_cells(tmp_path):
    text = "data,graph,method,n_seeds,eshd,esid,auroc,auprc,intv_auroc,intv_auprc\n"
    text += "SERGIO,SF-2,JCI-PC,3,44.0,1 ± 2,0.5 ± 0,0.1 ± 0,0.3 ± 0,0.1 ± 0\n"
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(MetaCaDIInputError, match="mean ± sd"):
        load_recorded(path)


def test_recorded_comparison_difference_in_sd():
    results = pd.DataFrame(
        {
            "data": ["linear-er"] * 2,
            "method": ["jci-pc"] * 2,
            "seed": [0, 1],
            "e_shd": [38.967 + 4.522, 38.967 + 3 * 4.522],  # mean = recorded + 2 sd
            "e_sid": [200.0, 210.0],
            "bacadi_auroc": [0.5, 0.5],
            "bacadi_auprc": [0.5, 0.6],
            "intv_auroc": [0.551, 0.551],
            "bacadi_intv_auprc": [0.5, 0.5],
        }
    )
    table = recorded_comparison(results).set_index("metric")
    assert table.loc["e_shd", "difference_in_sd"] == pytest.approx(2.0)
    assert table.loc["intv_auroc", "difference_in_sd"] == pytest.approx(0.0)
    assert table.loc["e_shd", "recorded_method"] == "JCI-PC" and table.loc["e_shd", "recorded_n"] == 30
    text = comparison_markdown(recorded_comparison(results))
    assert "linear Gaussian, ER" in text and "JCI-PC" in text and "+2.0" in text


def test_table_code_path_runs_in_seconds():
    from metacadi.bench import Preset, run_benchmark

    preset = Preset(
        protocol=dict(n_variables=6, n_observational_rows=40, env_rows=10, n_meta_train=0),
        model=dict(),
        baselines={"jci-pc": dict(alpha=0.01)},
        n_graph_samples=4,
        seeds=1,
        methods=("jci-pc",),
        data=("linear-sf",),
        interventions=("hard",),
    )
    results = run_benchmark(preset=preset, methods=["jci-pc", "distribution-shift", "empty-graph", "oracle"])
    empty = results[results.method == "empty-graph"].iloc[0]
    assert empty.e_shd == results.true_edges.iloc[0] and np.isnan(empty.intv_auroc)
    assert results[results.method == "oracle"].intv_auroc.iloc[0] == 1.0
    assert {"bacadi_auroc", "bacadi_auprc", "bacadi_intv_auprc"} <= set(results.columns)
    assert (results.n_train_tasks == 1).all() and (results.n_test_tasks == 6).all()
    comparison = recorded_comparison(results)
    jci = comparison[comparison.method == "jci-pc"]
    assert (jci.recorded_n == 30).all() and jci.difference_in_sd.notna().any()
    shift = comparison[comparison.method == "distribution-shift"]
    assert shift.recorded_mean.isna().all()
    text = comparison_markdown(comparison)
    assert "linear Gaussian, SF-2" in text and "Intv-AUROC" in text
