import time

import numpy as np
import pytest
from scipy import stats

from metacadi import MetaCaDIInputError
from metacadi.graphs import ancestors, descendants, random_dag
from metacadi.scm import (
    DEFAULT_NOISE_RANGE,
    SCM,
    Intervention,
    _FourierGPMechanism,
    random_intervention,
)

MECHANISMS = ["gp", "linear", "mlp"]


def chain(n_nodes):
    adjacency = np.zeros((n_nodes, n_nodes), dtype=int)
    adjacency[np.arange(n_nodes - 1), np.arange(1, n_nodes)] = 1
    return adjacency


# ---------------------------------------------------------------- observational sampling


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_samples_are_finite_float64_and_of_sane_scale(mechanism):
    for seed in range(5):
        adjacency = random_dag(15, 2.0, family="sf" if seed % 2 else "er", seed=seed)
        scm = SCM(adjacency, mechanism, seed=seed)
        data = scm.sample(10000, seed=seed)
        assert data.shape == (10000, 15) and data.dtype == np.float64
        assert np.all(np.isfinite(data))
        non_roots = adjacency.sum(0) > 0
        # every mechanism output is standardised, so Var(x_j) = 1 + sigma_j^2 for non-roots
        expected_std = np.sqrt(non_roots + scm.noise_scales**2)
        np.testing.assert_allclose(data.std(0), expected_std, rtol=0.1)
        np.testing.assert_allclose(data.mean(0), 0.0, atol=0.1)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_strong_interventions_on_deep_graphs_stay_finite(mechanism):
    scm = SCM(chain(12), mechanism, seed=0)
    for kind, params in [("hard", {"loc": 10.0, "scale": 3.0}), ("soft", {"gain": 4.0, "shift": -10.0})]:
        data = scm.sample(500, Intervention.at([0, 5], 12, kind=kind, **params), seed=1)
        assert np.all(np.isfinite(data))
        assert np.abs(data).max() < 1e3


def test_residuals_are_the_additive_gaussian_noise():
    scm = SCM(random_dag(8, 1.5, seed=3), "gp", noise_scale=np.linspace(0.1, 0.8, 8), seed=3)
    data = scm.sample(20000, seed=4)
    residuals = data - scm.mechanism_values(data)
    np.testing.assert_allclose(residuals.std(0), scm.noise_scales, rtol=0.03)
    np.testing.assert_allclose(residuals.mean(0), 0.0, atol=0.02)
    # independent noise: residual correlation matrix is the identity
    correlations = np.corrcoef(residuals.T)
    assert np.abs(correlations - np.eye(8)).max() < 0.04
    for column in range(8):
        assert stats.normaltest(residuals[:5000, column]).pvalue > 1e-4


def test_default_noise_scales_and_explicit_ones():
    scm = SCM(random_dag(200, 1.0, seed=0), "linear", seed=0)
    low, high = DEFAULT_NOISE_RANGE
    assert scm.noise_scales.min() >= low and scm.noise_scales.max() <= high
    assert scm.noise_scales.std() > 0.05  # drawn, not constant
    np.testing.assert_array_equal(SCM(chain(3), noise_scale=0.3, seed=0).noise_scales, [0.3] * 3)


def test_roots_are_pure_noise():
    scm = SCM(chain(3), "gp", noise_scale=[0.5, 0.2, 0.2], seed=0)
    data = scm.sample(20000, seed=1)
    assert data[:, 0].std() == pytest.approx(0.5, rel=0.03)
    assert np.all(scm.mechanism_values(data)[:, 0] == 0)


def test_gp_mechanism_covariance_matches_the_rbf_kernel():
    """Random Fourier features: over independent draws, Cov(g(z), g(z')) = exp(-|z - z'|^2 / (2 l^2))."""
    lengthscale = 0.8
    points = np.array([[0.0, 0.0], [0.3, -0.2], [1.0, 0.5], [-1.5, 1.0]])
    rng = np.random.default_rng(0)
    draws = np.stack(
        [_FourierGPMechanism(2, rng, lengthscale, 200)(points) for _ in range(3000)]
    )  # (3000, 4)
    empirical = draws.T @ draws / len(draws)
    squared_distances = ((points[:, None] - points[None]) ** 2).sum(-1)
    kernel = np.exp(-squared_distances / (2 * lengthscale**2))
    np.testing.assert_allclose(empirical, kernel, atol=0.08)


def _nonlinear_share(mechanism, seed):
    """1 - R^2 of the best linear fit of f_j on its single parent (0 for a linear mechanism)."""
    scm = SCM(chain(2), mechanism, noise_scale=0.1, seed=seed)
    data = scm.sample(3000, seed=seed)
    signal = scm.mechanism_values(data)[:, 1]
    design = np.column_stack([np.ones(len(data)), data[:, 0]])
    coefficients, *_ = np.linalg.lstsq(design, signal, rcond=None)
    return np.var(signal - design @ coefficients) / np.var(signal)


def test_gp_and_mlp_mechanisms_are_nonlinear_linear_is_linear():
    for mechanism in ["gp", "mlp"]:
        shares = [_nonlinear_share(mechanism, seed) for seed in range(20)]
        assert np.mean(shares) > 0.15, mechanism
    assert max(_nonlinear_share("linear", seed) for seed in range(5)) < 1e-10


def test_linear_weights_are_bounded_away_from_zero():
    scm = SCM(random_dag(30, 2.0, seed=1), "linear", seed=1)
    weights = np.concatenate([m.weights for m in scm._mechanisms if m is not None])
    assert np.abs(weights).min() >= 0.5 and np.abs(weights).max() <= 2.0
    assert (weights > 0).any() and (weights < 0).any()


# ---------------------------------------------------------------- interventions


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_hard_intervention_cuts_parents_soft_keeps_them(mechanism):
    adjacency = np.zeros((3, 3), dtype=int)
    adjacency[0, 2] = adjacency[1, 2] = 1  # 0 -> 2 <- 1
    scm = SCM(adjacency, mechanism, noise_scale=0.2, seed=7)
    n_rows = 20000

    def dependence_on_parents(data):
        # f_2 is a function of the parents only; under a hard intervention x_2 is independent
        # of the parents, so it is uncorrelated with any function of them.
        return abs(np.corrcoef(data[:, 2], scm.mechanism_values(data)[:, 2])[0, 1])

    observational = scm.sample(n_rows, seed=1)
    hard = scm.sample(n_rows, Intervention.at([2], 3, "hard"), seed=1)
    soft = scm.sample(n_rows, Intervention.at([2], 3, "soft"), seed=1)
    assert dependence_on_parents(observational) > 0.9
    assert dependence_on_parents(hard) < 0.03
    assert dependence_on_parents(soft) > 0.8
    # and the plain correlation with each parent vanishes under the hard intervention
    for parent in (0, 1):
        assert abs(np.corrcoef(hard[:, 2], hard[:, parent])[0, 1]) < 0.03


def test_hard_intervention_distribution_fresh_and_constant():
    scm = SCM(chain(3), "gp", seed=2)
    mean, std = scm.observational_mean[1], scm.observational_std[1]
    fresh = scm.sample(20000, Intervention.at([1], 3, loc=2.0, scale=0.5), seed=0)[:, 1]
    assert fresh.mean() == pytest.approx(mean + 2.0 * std, abs=0.03)
    assert fresh.std() == pytest.approx(0.5 * std, rel=0.03)
    constant = scm.sample(100, Intervention.at([1], 3, loc=-1.0, constant=True), seed=0)[:, 1]
    np.testing.assert_allclose(constant, mean - std)


def test_soft_intervention_rescales_and_shifts_the_mechanism():
    scm = SCM(chain(3), "mlp", noise_scale=0.3, seed=4)
    gain, shift = -1.5, 2.0
    data = scm.sample(20000, Intervention.at([1], 3, "soft", gain=gain, shift=shift), seed=0)
    signal = scm.mechanism_values(data)[:, 1]
    residual = data[:, 1] - gain * signal
    assert residual.mean() == pytest.approx(shift * scm.observational_std[1], abs=0.02)
    assert residual.std() == pytest.approx(0.3, rel=0.03)
    # soft on a root: a mean shift
    root = scm.sample(20000, Intervention.at([0], 3, "soft", shift=1.0), seed=0)[:, 0]
    assert root.mean() == pytest.approx(scm.observational_std[0], abs=0.02)


def test_scale_only_soft_intervention_changes_the_noise_scale_not_the_mean():
    scm = SCM(chain(3), "gp", noise_scale=0.3, seed=4)
    scaled = Intervention.at([1, 0], 3, "soft", gain=1.0, shift=0.0, noise_gain=2.5)
    data = scm.sample(20000, scaled, seed=0)
    residual = data[:, 1] - scm.mechanism_values(data)[:, 1]
    assert residual.mean() == pytest.approx(0.0, abs=0.02)
    assert residual.std() == pytest.approx(2.5 * 0.3, rel=0.03)
    assert data[:, 0].std() == pytest.approx(2.5 * 0.3, rel=0.03)  # a root: its noise is its value
    assert data[:, 0].mean() == pytest.approx(0.0, abs=0.02)
    untouched = scm.sample(20000, Intervention.at([1], 3, "soft", gain=1.0, shift=0.0), seed=0)
    residual = untouched[:, 1] - scm.mechanism_values(untouched)[:, 1]
    assert residual.std() == pytest.approx(0.3, rel=0.03)
    with pytest.raises(MetaCaDIInputError, match="noise_gain"):
        Intervention.at([1], 3, "soft", noise_gain=0.0)


@pytest.mark.parametrize("kind", ["hard", "soft"])
def test_interventions_change_descendants_but_not_non_descendants(kind):
    for seed in range(3):
        adjacency = random_dag(10, 1.5, seed=seed)
        scm = SCM(adjacency, "gp", seed=seed)
        target = int(np.argmax([len(descendants(adjacency, j)) for j in range(10)]))
        downstream = sorted(descendants(adjacency, target))
        others = [j for j in range(10) if j != target and j not in downstream]
        intervention = Intervention.at([target], 10, kind)
        observational = scm.sample(5000, seed=11)
        intervened = scm.sample(5000, intervention, seed=11)
        # Same noise draw: every non-descendant takes exactly the same values.
        np.testing.assert_array_equal(observational[:, others], intervened[:, others])
        assert not np.allclose(observational[:, target], intervened[:, target])
        # Independent noise draws: non-descendants pass a two-sample test, the target and its
        # children (direct effects) fail it.
        fresh = scm.sample(5000, intervention, seed=12)
        for j in others:
            assert stats.ks_2samp(observational[:, j], fresh[:, j]).pvalue > 1e-4
        assert stats.ks_2samp(observational[:, target], fresh[:, target]).pvalue < 1e-6
        children = np.flatnonzero(adjacency[target])
        p_values = [stats.ks_2samp(observational[:, c], fresh[:, c]).pvalue for c in children]
        assert min(p_values) < 1e-6


def test_linear_chain_shift_propagates_to_descendants_only():
    scm = SCM(chain(4), "linear", noise_scale=0.2, seed=0)
    observational = scm.sample(20000, seed=1)
    intervened = scm.sample(20000, Intervention.at([1], 4, loc=3.0), seed=2)
    assert ancestors(chain(4), 1) == {0}
    assert abs(observational[:, 0].mean() - intervened[:, 0].mean()) < 0.03
    for node in (1, 2, 3):
        assert abs(observational[:, node].mean() - intervened[:, node].mean()) > 0.5


def test_sample_batch_applies_each_intervention_to_its_own_rows():
    scm = SCM(chain(4), "gp", seed=5)
    interventions = [None, Intervention.at([2], 4, loc=1.0, constant=True), Intervention.at([0], 4, "soft")]
    datasets = scm.sample_batch(interventions, [30, 20, 10], seed=0)
    assert [x.shape for x in datasets] == [(30, 4), (20, 4), (10, 4)]
    expected = scm.observational_mean[2] + scm.observational_std[2]
    np.testing.assert_allclose(datasets[1][:, 2], expected)
    assert np.ptp(datasets[0][:, 2]) > 0 and np.ptp(datasets[2][:, 2]) > 0


# ---------------------------------------------------------------- seeds


def test_seeds_reproduce():
    adjacency = random_dag(12, 1.0, seed=0)
    first = SCM(adjacency, "gp", seed=42)
    second = SCM(adjacency, "gp", seed=42)
    np.testing.assert_array_equal(first.noise_scales, second.noise_scales)
    np.testing.assert_array_equal(first.sample(50, seed=1), second.sample(50, seed=1))
    # without a sample seed, the SCM's own stream continues: fresh data, same sequence
    a1, a2 = first.sample(50), first.sample(50)
    b1, b2 = second.sample(50), second.sample(50)
    assert not np.allclose(a1, a2)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    # a different seed gives a different model
    other = SCM(adjacency, "gp", seed=43)
    assert not np.allclose(other.sample(50, seed=1), first.sample(50, seed=1))
    # a numpy Generator works as a seed too
    np.testing.assert_array_equal(
        first.sample(5, seed=np.random.default_rng(9)), first.sample(5, seed=np.random.default_rng(9))
    )


def test_gp_sampling_is_fast():
    scm = SCM(random_dag(20, 2.0, seed=0), "gp", seed=0)
    scm.sample(100)
    best = min(_timed(lambda: scm.sample(10000)) for _ in range(3))
    assert best < 1.0


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


# ---------------------------------------------------------------- random interventions, off-targets


def test_random_intervention_intended_and_off_targets():
    n_variables, n_targets, rate = 40, 2, 0.15
    off_counts = []
    for seed in range(300):
        intervention = random_intervention(n_variables, n_targets, "soft", rate, seed=seed)
        assert intervention.kind == "soft"
        assert intervention.intended_targets.sum() == n_targets
        assert np.all(intervention.targets[intervention.intended_targets])
        np.testing.assert_array_equal(intervention.off_targets, intervention.targets & ~intervention.intended_targets)
        off_counts.append(intervention.off_targets.sum())
    realised_rate = np.mean(off_counts) / (n_variables - n_targets)
    assert realised_rate == pytest.approx(rate, abs=0.015)


def test_random_intervention_without_off_targets_and_with_candidates():
    hits = np.zeros(10, dtype=int)
    for seed in range(200):
        intervention = random_intervention(10, 1, off_target_rate=0.0, seed=seed, candidates=[2, 5, 7])
        np.testing.assert_array_equal(intervention.targets, intervention.intended_targets)
        hits += intervention.targets
    assert set(np.flatnonzero(hits)) == {2, 5, 7}
    assert hits[[2, 5, 7]].min() > 40  # uniform over the candidates
    mask = np.zeros(10, dtype=bool)
    mask[4] = True
    assert random_intervention(10, 1, seed=0, candidates=mask).target_indices.tolist() == [4]
    np.testing.assert_array_equal(
        random_intervention(10, 3, off_target_rate=0.5, seed=1).targets,
        random_intervention(10, 3, off_target_rate=0.5, seed=1).targets,
    )


def test_intervention_defaults_and_helpers():
    intervention = Intervention.at([1, 3], 5)
    assert intervention.kind == "hard" and intervention.n_variables == 5
    assert intervention.target_indices.tolist() == [1, 3]
    np.testing.assert_array_equal(intervention.intended_targets, intervention.targets)
    assert not intervention.off_targets.any()
    assert (intervention.loc, intervention.scale, intervention.constant) == (2.0, 1.0, False)
    assert (intervention.gain, intervention.shift) == (0.5, 1.0)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mechanism": "cubic"}, "mechanism must be one of"),
        ({"noise_scale": -0.1}, "positive"),
        ({"noise_scale": [0.1, 0.2]}, r"\(3,\) array"),
        ({"noise_scale": np.nan}, "positive and finite"),
        ({"noise_scale": "large"}, "positive number"),
        ({"noise_scale": [0.1, None, "x"]}, "positive number"),
        ({"names": ["a", "b"]}, "2 names for 3 variables"),
        ({"lengthscale": 0}, "lengthscale must be > 0"),
        ({"n_fourier_features": 0}, "n_fourier_features"),
    ],
)
def test_scm_rejects_bad_arguments(kwargs, message):
    with pytest.raises(MetaCaDIInputError, match=message):
        SCM(chain(3), **kwargs)


def test_scm_rejects_cyclic_graphs_and_bad_sample_calls():
    cyclic = chain(3)
    cyclic[2, 0] = 1
    with pytest.raises(MetaCaDIInputError, match="not acyclic"):
        SCM(cyclic)
    scm = SCM(chain(3), seed=0)
    with pytest.raises(MetaCaDIInputError, match="n_rows must be >= 1"):
        scm.sample(0)
    with pytest.raises(MetaCaDIInputError, match="covers 4 variables but the SCM has 3"):
        scm.sample(10, Intervention.at([0], 4))
    with pytest.raises(MetaCaDIInputError, match="must be an Intervention"):
        scm.sample(10, [0, 1, 0])
    with pytest.raises(MetaCaDIInputError, match="2 row counts for 3 interventions"):
        scm.sample_batch([None, None, None], [5, 5])
    assert scm.sample_batch([], 5) == []


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Intervention([0, 2, 1]), "only 0/1"),
        (lambda: Intervention(np.zeros((2, 2))), "1-D"),
        (lambda: Intervention([1, 0], kind="knockout"), "kind must be one of"),
        (lambda: Intervention([1, 0], intended_targets=[0, 1]), "subset of the realised targets"),
        (lambda: Intervention([1, 0], scale=0.0), "scale must be > 0"),
        (lambda: Intervention([1, 0], loc=np.inf), "loc must be finite"),
        (lambda: Intervention.at([5], 3), r"in \[0, 2\]"),
        (lambda: random_intervention(5, 6), "larger than the number of candidate nodes"),
        (lambda: random_intervention(5, 1, off_target_rate=1.5), "off_target_rate must be in"),
        (lambda: random_intervention(5, 1, kind="both"), "kind must be one of"),
        (lambda: random_intervention(5, 1, candidates=[7]), r"in \[0, 4\]"),
    ],
)
def test_interventions_reject_bad_arguments(build, message):
    with pytest.raises(MetaCaDIInputError, match=message):
        build()
