import numpy as np
import pytest

from metacadi import MetaCaDIInputError
from metacadi.graphs import descendants
from metacadi.sergio import SergioSimulator, make_sergio_protocol
from metacadi.tasks import TaskSet

# 0 -> 1 -> 2 and 0 -> 3: a master regulator with an activating cascade and a second target.
CASCADE = np.array(
    [
        [0, 1, 0, 1],
        [0, 0, 1, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
)


def test_knockout_silences_gene_and_lowers_activated_targets():
    simulator = SergioSimulator(CASCADE, seed=0, activation_prob=1.0, technical_noise=False)
    observational = simulator.simulate(400, seed=1)
    knocked_out = simulator.simulate(400, knockout=[1], seed=2)
    assert np.all(knocked_out.clean[:, 1] == 0.0)
    assert np.all(knocked_out.data[:, 1] == 0.0)
    # gene 2 is only activated by gene 1: it loses all production
    assert knocked_out.clean[:, 2].mean() < 0.1 * observational.clean[:, 2].mean()
    # genes not downstream of gene 1 are unaffected (up to sampling noise)
    for gene in (0, 3):
        assert knocked_out.clean[:, gene].mean() == pytest.approx(observational.clean[:, gene].mean(), rel=0.1)


def test_knockout_of_a_repressor_raises_its_target():
    simulator = SergioSimulator(CASCADE, seed=0, activation_prob=0.0, technical_noise=False)
    observational = simulator.simulate(400, seed=1)
    knocked_out = simulator.simulate(400, knockout=np.array([False, True, False, False]), seed=2)
    assert knocked_out.clean[:, 2].mean() > 1.2 * observational.clean[:, 2].mean()


def test_knockdown_lowers_expression_by_about_the_factor():
    simulator = SergioSimulator(CASCADE, seed=3, technical_noise=False, knockdown_factor=0.25)
    observational = simulator.simulate(600, seed=1).clean.mean(axis=0)
    knocked_down = simulator.simulate(600, knockdown=["G0"], seed=2).clean.mean(axis=0)
    assert knocked_down[0] == pytest.approx(0.25 * observational[0], rel=0.15)
    factors = np.array([1.0, 0.5, 1.0, 1.0])
    half = simulator.simulate(600, knockdown=factors, seed=2).clean.mean(axis=0)
    assert half[1] < 0.75 * observational[1]


def test_dropout_rate_is_as_configured_and_outputs_are_valid():
    adjacency = np.triu(np.ones((8, 8), dtype=int), k=1) * (np.random.default_rng(0).random((8, 8)) < 0.4)
    for rate in (0.2, 0.5):
        simulator = SergioSimulator(adjacency, seed=4, dropout_rate=rate)
        sample = simulator.simulate(800, seed=5)
        assert sample.dropout_mask.mean() == pytest.approx(rate, abs=0.04)
        for stage in (sample.clean, sample.expression, sample.counts):
            assert np.isfinite(stage).all() and (stage >= 0).all()
        assert np.all(sample.counts == np.round(sample.counts))  # UMI counts are integers
        assert np.all(sample.counts[sample.dropout_mask] == 0)
        np.testing.assert_allclose(sample.data, np.log1p(sample.counts))
    no_dropout = SergioSimulator(adjacency, seed=4, dropout_rate=0.0).simulate(200, seed=5)
    assert not no_dropout.dropout_mask.any()


def test_seeds_reproduce_and_differ():
    first = SergioSimulator(CASCADE, seed=7).sample(50, knockout=[0], seed=11)
    second = SergioSimulator(CASCADE, seed=7).sample(50, knockout=[0], seed=11)
    np.testing.assert_array_equal(first, second)
    other = SergioSimulator(CASCADE, seed=7).sample(50, knockout=[0], seed=12)
    assert not np.array_equal(first, other)
    # without a per-call seed the simulator's own stream is used: reproducible as a sequence
    a, b = SergioSimulator(CASCADE, seed=8), SergioSimulator(CASCADE, seed=8)
    np.testing.assert_array_equal(np.vstack([a.sample(20), a.sample(20)]), np.vstack([b.sample(20), b.sample(20)]))


def test_steady_state_matches_sergio_scsim_for_the_same_network():
    # sergio-scSim is a test dependency (pyproject [test] extra): a missing install must fail, not skip
    from SERGIO.GRN import GRN, Gene, SingleInteraction
    from SERGIO.MR import mrProfile

    simulator = SergioSimulator(CASCADE, seed=5, technical_noise=False)
    grn = GRN()
    for i, j in zip(*np.nonzero(CASCADE)):
        grn.add_interaction(
            SingleInteraction(
                reg=[Gene(name=f"G{i}", decay=0.8)],
                tar=Gene(name=f"G{j}", decay=0.8),
                k=float(simulator.interactions[i, j]),
                h=None,
                n=2,
            )
        )
    grn.setMRs()
    profile = mrProfile(MR_names=grn.get_mrs(), n_types=1)
    for name in grn.get_mrs():
        profile.profile[name] = np.array([simulator.basal_rates[int(name[1:])]])
    grn.init(profile)
    reference = np.array([grn.attr_["genes"][f"G{i}"].ss_conc_[0] for i in range(4)])
    np.testing.assert_allclose(simulator.wild_type_steady_state, reference, rtol=1e-10)
    # and our stochastic cells fluctuate around (close to) that steady state
    clean_mean = simulator.simulate(2000, seed=0).clean.mean(axis=0)
    np.testing.assert_allclose(clean_mean, reference, rtol=0.25)


def test_protocol_shapes_targets_and_kinds():
    protocol = make_sergio_protocol(
        n_variables=12, n_observational=2, n_interventional=6, train_rows=40, n_test=3, test_rows=10,
        targets_per_task=2, off_target_rate=0.1, seed=0,
    )
    assert isinstance(protocol.train, TaskSet) and isinstance(protocol.test, TaskSet)
    assert protocol.names == tuple(f"G{i}" for i in range(12))
    assert protocol.graph.shape == (12, 12)
    np.testing.assert_array_equal(protocol.train.graph, protocol.graph)
    assert len(protocol.train) == 8 and len(protocol.test) == 3
    assert [t.kind for t in protocol.train] == ["observational"] * 2 + ["knockout"] * 6
    for task in protocol.train.interventional():
        assert task.n_rows == 40
        assert task.intended_targets.sum() == 2
        assert np.all(task.targets[task.intended_targets])
        # a knocked-out gene has no expression at all
        assert np.all(task.data[:, task.targets] == 0.0)
    for task in protocol.test:
        assert task.n_rows == 10 and task.targets.dtype == bool and task.targets.shape == (12,)
    default = make_sergio_protocol(seed=0)
    assert (len(default.train), len(default.test), default.n_variables) == (2 + 20, 10, 10)
    assert default.test[0].n_rows == 10
    knockdown = make_sergio_protocol(n_variables=6, n_interventional=3, n_test=1, intervention="knockdown", seed=1)
    assert {t.kind for t in knockdown.train.interventional()} == {"knockdown"}
    again = make_sergio_protocol(n_variables=6, n_interventional=3, n_test=1, intervention="knockdown", seed=1)
    np.testing.assert_array_equal(knockdown.test[0].data, again.test[0].data)


def test_knocked_out_gene_descendants_change_in_protocol():
    protocol = make_sergio_protocol(
        n_variables=10, graph_family="er", n_observational=1, n_interventional=10, train_rows=300, n_test=1, seed=3
    )
    observational = protocol.train[0].data.mean(axis=0)
    compared = 0
    for task in protocol.train.interventional():
        (target,) = np.flatnonzero(task.targets)
        untouched = sorted(set(range(10)) - descendants(protocol.graph, target) - {int(target)})
        # genes outside the target's descendants move only through the library-size coupling
        shift = np.abs(task.data.mean(axis=0) - observational)
        if untouched:
            compared += 1
            assert shift[target] > shift[untouched].max()
    assert compared >= 5


def test_bad_input_is_rejected():
    with pytest.raises(MetaCaDIInputError):
        SergioSimulator(np.ones((3, 3)))  # not a DAG
    simulator = SergioSimulator(CASCADE, seed=0)
    with pytest.raises(MetaCaDIInputError):
        simulator.sample(10, knockout=np.array([True, False]))
    with pytest.raises(MetaCaDIInputError):
        simulator.sample(10, knockout=["nope"])
    with pytest.raises(MetaCaDIInputError):
        simulator.sample(0)
    with pytest.raises(MetaCaDIInputError):
        SergioSimulator(CASCADE, dropout_rate=1.5)
    with pytest.raises(MetaCaDIInputError):
        make_sergio_protocol(n_variables=5, intervention="overexpression")
    with pytest.raises(MetaCaDIInputError):
        make_sergio_protocol(n_variables=5, targets_per_task=6)


def test_technical_noise_options():
    adjacency = np.triu(np.ones((6, 6), dtype=int), k=1) * (np.random.default_rng(1).random((6, 6)) < 0.5)
    # no technical noise at all: the data are log1p of the clean dynamics, nothing dropped
    clean = SergioSimulator(adjacency, seed=2, technical_noise=False).simulate(300, seed=3)
    assert not clean.dropout_mask.any()
    np.testing.assert_allclose(clean.data, np.log1p(clean.clean))
    # continuous noisy expression instead of UMI counts: non-integer, dropped entries exactly 0
    continuous = SergioSimulator(adjacency, seed=2, counts=False, dropout_rate=0.3).simulate(300, seed=3)
    assert np.any(continuous.counts != np.round(continuous.counts))
    assert np.all(continuous.counts[continuous.dropout_mask] == 0)
    np.testing.assert_array_equal(continuous.counts[~continuous.dropout_mask], continuous.expression[~continuous.dropout_mask])
    # fixed library size: every cell's noisy expression sums to exp(library_log_mean)
    fixed = SergioSimulator(adjacency, seed=2, library_scale=0.0, library_log_mean=np.log(40.0)).simulate(200, seed=3)
    np.testing.assert_allclose(fixed.expression.sum(axis=1), 40.0, rtol=1e-10)
    # outlier genes: with probability 1 every gene gets a log-normal factor, drawn once per simulator
    outliers = SergioSimulator(adjacency, seed=2, outlier_prob=1.0)
    assert np.all(outliers.outlier_factors != 1.0)
    assert np.all(SergioSimulator(adjacency, seed=2, outlier_prob=0.0).outlier_factors == 1.0)


def test_protocol_has_the_meta_protocol_format():
    from metacadi.tasks import make_meta_protocol

    d = 8
    sergio = make_sergio_protocol(n_variables=d, train_rows=30, test_rows=10, off_target_rate=0.2, seed=4)
    reference = make_meta_protocol(n_variables=d, train_rows=30, test_rows=10, seed=4)
    for protocol in (sergio, reference):
        assert protocol.n_variables == d and len(protocol.names) == d
        assert (len(protocol.train), len(protocol.test)) == (2 + 2 * d, d)  # same defaults
        assert protocol.train.graph is not None and protocol.test.graph is not None
        assert protocol.train.target_matrix().shape == (2 + 2 * d, d)
        assert [t.is_observational for t in protocol.train] == [True, True] + [False] * (2 * d)
        assert all(t.meta["split"] == "train" for t in protocol.train)
        assert all(t.meta["split"] == "test" for t in protocol.test)
    # true targets: exactly the genes whose production the experiment scaled down; the intended
    # ones are dealt so that every gene is perturbed once among the d test experiments
    for task in list(sergio.train) + list(sergio.test):
        np.testing.assert_array_equal(task.targets, task.meta["production_scale"] < 1.0)
        assert np.all(task.targets[task.intended_targets])
    intended = np.stack([t.intended_targets for t in sergio.test])
    np.testing.assert_array_equal(intended.sum(axis=0), np.ones(d))
    assert sergio.test.target_matrix().sum() > intended.sum()  # off-targets at rate 0.2
    assert np.all(sergio.train.observational().target_matrix() == 0)
