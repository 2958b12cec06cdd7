"""Floors and the oracle ceiling of the benchmark tables."""

import numpy as np
import pytest

from metacadi import MetaCaDIInputError
from metacadi.bench_settings import difficulty, is_setting, setting_protocol
from metacadi.graphs import random_dag
from metacadi.metrics import sid, target_auroc
from metacadi.reference_scores import (
    empty_graph_metrics,
    gaussian_llr,
    oracle_scores,
    scm_observational_nll,
    scm_oracle_scores,
    sergio_oracle_scores,
    shift_scores,
    shift_statistic,
    to_unit_interval,
    zero_count_scores,
)
from metacadi.scm import SCM, Intervention
from metacadi.sergio import make_sergio_protocol
from metacadi.tasks import make_meta_protocol


def test_empty_graph_shd_is_the_number_of_true_edges():
    for seed in range(4):
        graph = random_dag(8, 1.5, seed=seed)
        metrics = empty_graph_metrics(graph)
        assert metrics["e_shd"] == graph.sum()
        assert metrics["e_sid"] == sid(graph, np.zeros_like(graph))
    chain = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    # do(x0) affects x1 and x2, do(x1) affects x2: the empty graph gets all three pairs wrong
    assert empty_graph_metrics(chain) == {"e_shd": 2.0, "e_sid": 3.0}


def test_shift_statistic_matches_a_hand_computation():
    reference = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])  # means 2, 2; sds 2, sqrt(3)
    data = np.array([[5.0, 2.0], [7.0, 2.0]])  # means 6, 2; sds sqrt(2), 0
    statistic = shift_statistic(data, reference)
    expected_0 = abs(6 - 2) / 2 + abs(np.log(np.sqrt(2) / 2))
    # sd 0 is floored at 1e-3 sd_ref (+1e-12)
    expected_1 = 0.0 + abs(np.log((1e-3 * np.sqrt(3) + 1e-12) / np.sqrt(3)))
    np.testing.assert_allclose(statistic, [expected_0, expected_1])
    scores = shift_scores([reference[:2], reference[2:]], [data, reference])
    np.testing.assert_allclose(scores[0], statistic / (1 + statistic))
    assert scores.shape == (2, 2) and (scores >= 0).all() and (scores < 1).all()


def test_to_unit_interval_is_monotone():
    values = np.array([0.0, 0.5, 3.0, 40.0, 1e6])
    mapped = to_unit_interval(values)
    assert mapped[0] == 0 and (np.diff(mapped) > 0).all() and mapped[-1] < 1


def test_zero_count_scores_subtract_the_observational_fraction():
    observational = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [3.0, 1.0]])  # zeros: 1/4, 1/4
    test = np.array([[0.0, 1.0], [0.0, 2.0]])  # zeros: 1, 0
    np.testing.assert_allclose(zero_count_scores(observational, [test]), [[(1 + 0.75) / 2, (1 - 0.25) / 2]])


def test_gaussian_llr_is_zero_for_a_standard_normal_fit_and_grows_with_a_shift():
    assert gaussian_llr(np.array([[-1.0], [1.0]]))[0] == pytest.approx(0.0)  # mean 0, variance 1
    residuals = np.array([[1.0, 0.0], [3.0, 0.0]])  # mean 2, variance 1; mean 0, variance 0 (floored)
    llr = gaussian_llr(residuals)
    assert llr[0] == pytest.approx(0.5 * 2 * 4.0)
    assert llr[1] == pytest.approx(0.5 * 2 * (1e-12 - 1 - np.log(1e-12)))


def test_scm_oracle_separates_targets_from_their_shifted_children():
    chain = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    scm = SCM(chain, "linear", noise_scale=0.2, seed=0)
    datasets = [scm.sample(10, Intervention.at([node], 3, "hard", loc=3.0), seed=node) for node in range(3)]
    truth = np.eye(3, dtype=bool)
    oracle = scm_oracle_scores(scm, datasets)
    assert target_auroc(truth, oracle) == 1.0
    # the shift score also lights up the children of the target: it cannot tell them apart
    observational = scm.sample(200, seed=9)
    assert target_auroc(truth, shift_scores(observational, datasets)) < 1.0
    with pytest.raises(MetaCaDIInputError, match="variables"):
        scm_oracle_scores(scm, [np.zeros((10, 4))])


@pytest.mark.parametrize("setting", ["hard", "soft-scale"])
def test_oracle_reaches_one_where_the_shift_score_does_not(setting):
    protocol = make_meta_protocol(
        n_variables=10, n_interventional=4, train_rows=50, n_test=10, test_rows=10, seed=100,
        **setting_protocol("gp-anm", setting),
    )
    targets = protocol.test.target_matrix()
    oracle = target_auroc(targets, oracle_scores(protocol))
    shift = target_auroc(targets, shift_scores([t.data for t in protocol.train.observational()], protocol.test))
    assert oracle >= 0.98
    if setting == "soft-scale":
        assert shift < 0.9 < oracle


def test_sergio_oracle_fits_on_intact_mechanisms_and_beats_chance():
    protocol = make_sergio_protocol(n_variables=8, n_interventional=16, train_rows=60, n_test=8, seed=3)
    scores = oracle_scores(protocol)
    assert scores.shape == (8, 8) and (scores >= 0).all() and (scores < 1).all()
    assert target_auroc(protocol.test.target_matrix(), scores) > 0.7
    train = [t.data for t in protocol.train]
    everywhere = np.ones((len(train), 8), dtype=bool)
    with pytest.raises(MetaCaDIInputError, match="target in"):
        sergio_oracle_scores(protocol.graph, train, everywhere, [t.data for t in protocol.test])


def test_settings_parse_names_and_prefixes():
    assert setting_protocol("gp-anm", "hard") == dict(mechanism="gp", graph_family="er", intervention="hard")
    mlp = setting_protocol("gp-anm", "mlp-sf-soft-scale")
    assert mlp["mechanism"] == "mlp" and mlp["graph_family"] == "sf" and mlp["intervention_params"]["noise_gain"] == 3.0
    assert setting_protocol("gp-anm", "linear-hard-offtarget")["off_target_rate"] == 0.3
    assert setting_protocol("sergio", "soft") == dict(intervention="knockdown")
    assert is_setting("sergio", "knockout-dropout") and not is_setting("sergio", "soft-scale")
    with pytest.raises(MetaCaDIInputError, match="intervention must be one of"):
        setting_protocol("gp-anm", "mlp-sf-magic")
    assert [difficulty(x) for x in (0.99, 0.9, 0.7, float("nan"))] == ["easy", "medium", "hard", "unmeasured"]


def test_scm_observational_nll_is_the_true_mechanisms_gaussian_nll():
    from scipy.stats import norm

    scm = SCM(random_dag(5, 1.0, seed=2), mechanism="gp", seed=2)
    rows = scm.sample(300, seed=3)
    expected = -norm.logpdf(rows, loc=scm.mechanism_values(rows), scale=scm.noise_scales).mean(axis=0)
    np.testing.assert_allclose(scm_observational_nll(scm, rows), expected, rtol=1e-10)
