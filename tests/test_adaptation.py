"""The fast closed-form adaptation equals the plain computation it replaces.

``MetaCaDI.adapt_many`` reads every distinct (variable, parent set) column of the cached graph
samples once for all datasets; the reference here is the direct computation on every (dataset,
graph sample) pair: ``adapt_support`` (ridge head and noise scale), ``target_logits``, mean over
graph samples.
"""

import numpy as np
import pytest
import torch

from metacadi import make_meta_protocol
from metacadi.maml import IntvMAML
from metacadi.model import MetaCaDI
from metacadi.posterior import Posterior

SMALL = dict(hidden_size=8, n_features=6, embedding_size=8, n_edge_samples=128, seed=0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def protocol():
    return make_meta_protocol(n_variables=6, seed=3, train_rows=40, n_test=6)


@pytest.fixture(scope="module")
def model(protocol):
    return MetaCaDI(n_steps=20, **SMALL).fit(protocol.train, progress=False)


def reference_target_probs(model, data: np.ndarray, n_graph_samples: int, seed: int) -> np.ndarray:
    """``E_{A ~ q}[sigmoid(gamma(A))]`` computed pair by pair, as meta-training computes it."""
    network = model.network_
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        graphs = network.graph.sample(n_graph_samples, generator)
        support = model.standardize(data).unsqueeze(0).expand(n_graph_samples, -1, -1)
        task_params, obs_mean, int_mean = network.adapt_support(support, graphs, training=False)
        logits = network.target_logits(support, obs_mean, int_mean, network.noise_scale(task_params))
    return torch.sigmoid(logits).mean(0).double().numpy()


@pytest.mark.parametrize("n_graph_samples, seed, block_elements", [(16, 0, None), (5, 7, None), (16, 0, 1)])
def test_adapt_many_equals_adapt_and_the_reference(model, protocol, n_graph_samples, seed, block_elements, monkeypatch):
    if block_elements is not None:  # one task per block on the CPU
        monkeypatch.setattr(model.network_, "column_block_elements", block_elements)
    tasks = [task.data for task in protocol.test]
    tasks.append(tasks[0][:7])  # a second support size is adapted in its own batch
    together = model.adapt_many(tasks, n_graph_samples=n_graph_samples, seed=seed)
    for data, posterior in zip(tasks, together):
        reference = reference_target_probs(model, data, n_graph_samples, seed)
        alone = model.adapt(data, n_graph_samples=n_graph_samples, seed=seed).target_probs.to_numpy()
        np.testing.assert_allclose(posterior.target_probs.to_numpy(), reference, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(alone, reference, rtol=1e-5, atol=1e-6)
        assert posterior.n_rows == data.shape[0]
        assert list(posterior.target_probs.index) == model.names_


def test_mask_indicators_keep_adapt_and_the_reference_equal(protocol):
    """With mask indicators a column's parent mask enters its first-layer bias."""
    model = MetaCaDI(n_steps=5, mask_indicators=True, **SMALL).fit(protocol.train, progress=False)
    with torch.no_grad():  # trained for 5 steps they are still small: make them matter
        model.network_.likelihood.obs_u1.normal_()
        model.network_.likelihood.ext_u1.normal_()
    data = protocol.test[0].data
    reference = reference_target_probs(model, data, 8, 0)
    adapted = model.adapt(data, n_graph_samples=8, seed=0).target_probs.to_numpy()
    np.testing.assert_allclose(adapted, reference, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        model.network_.likelihood.obs_u1.zero_()
        model.network_.likelihood.ext_u1.zero_()
    assert not np.allclose(model.adapt(data, n_graph_samples=8, seed=0).target_probs.to_numpy(), adapted)


@pytest.fixture(scope="module")
def leave_one_out_model(protocol):
    return MetaCaDI(n_steps=5, int_prediction="leave-one-out", **SMALL).fit(protocol.train, progress=False)


def test_leave_one_out_int_prediction_keeps_adapt_and_the_reference_equal(leave_one_out_model, protocol):
    data = protocol.test[0].data
    reference = reference_target_probs(leave_one_out_model, data, 8, 0)
    adapted = leave_one_out_model.adapt(data, n_graph_samples=8, seed=0).target_probs.to_numpy()
    np.testing.assert_allclose(adapted, reference, rtol=1e-5, atol=1e-6)
    in_sample = MetaCaDI(n_steps=5, **SMALL).fit(protocol.train, progress=False)
    assert not np.allclose(in_sample.adapt(data, n_graph_samples=8, seed=0).target_probs.to_numpy(), adapted)


def test_leave_one_out_int_prediction_is_the_head_refitted_without_the_row(leave_one_out_model, protocol):
    """Blocks 3, 5, 7 of the target features see each support row predicted by a ridge head
    fitted on the other rows: refit it by hand, row by row, and compare."""
    from metacadi.likelihood import Likelihood

    model = leave_one_out_model
    network = model.network_
    support = model.standardize(protocol.test[0].data[:10]).unsqueeze(0)
    adjacency = network.graph.sample(1, torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, _, int_mean = network.adapt_support(support, adjacency, training=False)
        features = network.likelihood.intervention_features(support, adjacency)
        for row in range(support.shape[1]):
            keep = torch.arange(support.shape[1]) != row
            weights = Likelihood.fit_intervention_weights(features[:, keep], support[:, keep], network.ridge_lambda)
            predicted = Likelihood.interventional_mean(features[:, row : row + 1], weights)
            torch.testing.assert_close(int_mean[:, row], predicted[:, 0], rtol=1e-4, atol=1e-5)


def test_the_graph_cache_follows_the_parameters(model, protocol):
    data = protocol.test[0].data
    before = model.adapt(data).target_probs.to_numpy()
    assert model._posterior_graphs(16, 0) is model._posterior_graphs(16, 0)
    with torch.no_grad():
        model.network_.graph.edge_logits.add_(3.0)  # in place, as an optimiser step is
        model.network_.likelihood.ext_b2.add_(0.5)
    try:
        changed = model.adapt(data).target_probs.to_numpy()
        np.testing.assert_allclose(changed, reference_target_probs(model, data, 16, 0), rtol=1e-5, atol=1e-6)
        assert not np.allclose(changed, before)
    finally:
        with torch.no_grad():
            model.network_.graph.edge_logits.sub_(3.0)
            model.network_.likelihood.ext_b2.sub_(0.5)
    np.testing.assert_allclose(model.adapt(data).target_probs.to_numpy(), before, rtol=1e-6, atol=1e-7)


def test_gradient_adaptation_keeps_its_own_path(protocol):
    model = IntvMAML(n_steps=5, inner_steps=2, **SMALL).fit(protocol.train, progress=False)
    data = protocol.test[1].data
    np.testing.assert_allclose(
        model.adapt(data).target_probs.to_numpy(), reference_target_probs(model, data, 16, 0), rtol=1e-5, atol=1e-6
    )


def test_posterior_builds_pandas_objects_lazily_and_is_read_only(model, protocol):
    posterior = model.adapt(protocol.test[0].data)
    assert posterior.names == model.names_ and posterior.n_variables == len(model.names_)
    assert posterior.target_probs is posterior.target_probs  # built once
    posterior.edge_probs.iloc[0, 1] = 0.123  # a posterior's tables are its own
    assert model.edge_probs_.iloc[0, 1] != 0.123
    assert model.adapt(protocol.test[0].data).edge_probs.iloc[0, 1] != 0.123
    with pytest.raises(AttributeError):
        posterior.n_rows = 3
    assert isinstance(posterior, Posterior)


@pytest.mark.parametrize("n_rows, n_features", [(6, 9), (9, 6)])
def test_ridge_fitted_values_equal_the_fitted_weights_predictions(n_rows, n_features):
    from metacadi.ridge import ridge_fitted_values, ridge_solve

    generator = torch.Generator().manual_seed(0)
    features = torch.randn(4, 3, n_rows, n_features, generator=generator)
    targets = torch.randn(4, 3, n_rows, generator=generator)
    weights = ridge_solve(features.double(), targets.double(), 0.7)
    expected = (features.double() @ weights.unsqueeze(-1)).squeeze(-1)
    np.testing.assert_allclose(ridge_fitted_values(features, targets, 0.7).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
