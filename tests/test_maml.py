"""The MAML ablations: fit/adapt/save/load, the inner loop, and second-order meta-gradients."""

import numpy as np
import pandas as pd
import pytest
import torch

from metacadi import MetaCaDIInputError, make_meta_protocol
from metacadi.errors import CheckpointError
from metacadi.likelihood import Likelihood
from metacadi.maml import MECHANISM_PARAMS, FullMAML, FullMAMLNetwork, IntvMAML, IntvMAMLNetwork, inner_sgd
from metacadi.model import MetaCaDI

ESTIMATORS = [IntvMAML, FullMAML]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def protocol():
    return make_meta_protocol(n_variables=4, seed=3, train_rows=30, n_interventional=6, n_test=3)


@pytest.fixture(scope="module")
def fitted(protocol):
    return {
        cls: cls(n_steps=15, inner_steps=3, hidden_size=8, n_features=6, embedding_size=8, seed=1, n_edge_samples=64).fit(
            protocol.train, progress=False
        )
        for cls in ESTIMATORS
    }


def _config(**changes):
    config = {
        "hidden_size": 6, "n_features": 5, "embedding_size": 8, "ridge_lambda": 0.1,
        "order_temperature": 0.5, "edge_temperature": 0.5, "relaxation": "softsort",
        "initial_edge_logit": 0.0, "inner_steps": 3, "inner_learning_rate": 0.2,
    }
    config.update(changes)
    return config


# ------------------------------------------------------------------ estimator behaviour


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_adapt_save_load_roundtrip(cls, fitted, protocol, tmp_path):
    model = fitted[cls]
    assert isinstance(model, MetaCaDI) and isinstance(model.network_, cls._network_class)
    assert len(model.history_) == 15 and all(np.isfinite(h["loss"]) for h in model.history_)
    frame = protocol.test[0].to_frame()
    posterior = model.adapt(frame, seed=4)
    assert list(posterior.target_probs.index) == list(frame.columns)
    assert ((posterior.target_probs >= 0) & (posterior.target_probs <= 1)).all()
    path = model.save(tmp_path / "maml.pt")
    loaded = cls.load(path)
    assert type(loaded) is cls
    assert loaded.get_params() == model.get_params()
    assert loaded.inner_steps == 3 and loaded.network_.inner_steps == 3
    again = loaded.adapt(frame, seed=4)
    pd.testing.assert_series_equal(again.target_probs, posterior.target_probs)
    pd.testing.assert_frame_equal(loaded.edge_probs_, model.edge_probs_)
    # a checkpoint of one estimator is not silently read as another
    other = FullMAML if cls is IntvMAML else IntvMAML
    with pytest.raises(CheckpointError, match=f"holds a {cls.__name__}"):
        other.load(path)
    with pytest.raises(CheckpointError, match=f"holds a {cls.__name__}"):
        MetaCaDI.load(path)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_parameters_are_validated_and_exposed(cls):
    model = cls(inner_steps=2, inner_learning_rate=0.05, n_steps=7)
    params = model.get_params()
    assert params["inner_steps"] == 2 and params["inner_learning_rate"] == 0.05 and params["n_steps"] == 7
    assert set(MetaCaDI().get_params()) < set(params)
    assert model._network_config()["inner_steps"] == 2
    model.set_params(inner_steps=4)
    assert model.inner_steps == 4
    with pytest.raises(MetaCaDIInputError, match="unknown parameter"):
        cls(inner_stepz=3)
    data = [np.random.default_rng(0).normal(size=(20, 3)) for _ in range(3)]
    with pytest.raises(MetaCaDIInputError, match="inner_steps"):
        cls(inner_steps=0, n_steps=1).fit(data, progress=False)
    with pytest.raises(MetaCaDIInputError, match="inner_learning_rate"):
        cls(inner_learning_rate=-1.0, n_steps=1).fit(data, progress=False)


def test_the_ablations_share_metacadis_objective_and_change_only_the_adaptation():
    base = MetaCaDI().get_params()
    for cls in (IntvMAML, FullMAML):
        params = cls().get_params()
        assert {name: value for name, value in params.items() if name in base} == base
        assert set(params) - set(base) == {"inner_steps", "inner_learning_rate"}
    assert FullMAML().inner_learning_rate < IntvMAML().inner_learning_rate


def test_adaptation_names_differ_from_closed_form():
    assert len({MetaCaDI.adaptation, IntvMAML.adaptation, FullMAML.adaptation}) == 3


# ------------------------------------------------------------------ the inner loop


def _support(batch=3, n_rows=10, d=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    support = torch.randn(batch, n_rows, d, generator=generator)
    adjacency = torch.triu(torch.ones(d, d), diagonal=1).expand(batch, d, d).clone()
    return support, adjacency


@pytest.mark.parametrize(
    "network_class, mask_indicators", [(IntvMAMLNetwork, False), (FullMAMLNetwork, False), (FullMAMLNetwork, True)]
)
def test_inner_loop_lowers_support_loss(network_class, mask_indicators):
    torch.manual_seed(0)
    network = network_class(4, _config(inner_steps=5, mask_indicators=mask_indicators))
    network.track_inner_losses = True
    support, adjacency = _support()
    task_params, obs_mean, int_mean = network.adapt_support(support, adjacency, training=False)
    losses = network.last_inner_losses
    assert len(losses) == 6
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    if network_class is IntvMAMLNetwork:
        # the inner loss is the (scaled) ridge objective of eq. 6: never below its exact minimum,
        # and five steps close a good part of the gap to it
        features = network.likelihood.intervention_features(support, adjacency).detach()
        exact = Likelihood.fit_intervention_weights(features, support, network.ridge_lambda)
        residual = support - Likelihood.interventional_mean(features, exact)
        minimum = float(0.5 * residual.pow(2).mean(1).sum() + 0.5 * network.ridge_lambda * exact.pow(2).sum() / 10)
        assert losses[-1] > minimum - 1e-4
        assert losses[0] - losses[-1] > 0.3 * (losses[0] - minimum)
    else:
        # stage 2 starts from the Intv-MAML-adapted head, so it has less left to gain
        assert losses[-1] < losses[0]
    # the returned prediction is the adapted interventional mechanism, not the initial one
    initial = network.likelihood.intervention_features(support, adjacency) @ torch.zeros(5 + 1)
    assert (int_mean - support).pow(2).mean() < (initial - support).pow(2).mean()
    assert not task_params["int_weights"].requires_grad and not int_mean.requires_grad
    if network_class is FullMAMLNetwork:
        assert set(task_params["likelihood"]) == set(MECHANISM_PARAMS) & set(network.likelihood.shared_params())
        assert ("obs_u1" in task_params["likelihood"]) == mask_indicators
        adapted_w1 = task_params["likelihood"]["obs_w1"]
        assert adapted_w1.shape == (3, *network.likelihood.obs_w1.shape)
        # each task got its own copy: different support sets give different adapted parameters
        assert not torch.allclose(adapted_w1[0], adapted_w1[1])
        # the targets are read through the shared observational mechanism (so an adapted copy
        # cannot absorb the intervention); the query is scored with the adapted copies, which fit
        # the support better than the shared mechanism does
        shared_obs = network.likelihood.observational_mean(support, adjacency)
        torch.testing.assert_close(obs_mean, shared_obs)
        obs_query, _ = network.means(task_params, support, adjacency)
        assert (obs_query - support).pow(2).mean() < (shared_obs - support).pow(2).mean()


def test_inner_sgd_matches_hand_computed_steps():
    target = torch.tensor([1.0, -2.0])
    start = {"w": torch.zeros(2, requires_grad=True)}
    adapted, losses = inner_sgd(lambda p: 0.5 * (p["w"] - target).pow(2).sum(), start, 2, 0.5, False, True)
    # w1 = 0.5 target, w2 = 0.75 target
    torch.testing.assert_close(adapted["w"], 0.75 * target)
    np.testing.assert_allclose(losses, [2.5, 0.625, 0.15625])


def test_intv_maml_jacobian_wrt_initial_layer_is_second_order():
    """``dw_K/dw_0 = (I - eta A)^K`` with ``A = (HᵀH + lambda I)/n``: the Hessian of the inner loss
    appears in the meta-gradient, which a first-order (``create_graph=False``) loop would drop."""
    torch.manual_seed(1)
    steps, eta, lam = 3, 0.2, 0.1
    network = IntvMAMLNetwork(4, _config(inner_steps=steps, inner_learning_rate=eta, ridge_lambda=lam))
    support, adjacency = _support(batch=2, n_rows=7)
    task_params, _, _ = network.adapt_support(support, adjacency, training=True)
    weights = task_params["int_weights"]
    direction = torch.randn(weights.shape, generator=torch.Generator().manual_seed(2))
    (grad,) = torch.autograd.grad((weights * direction).sum(), network.initial_int_weights)
    features = network.likelihood.intervention_features(support, adjacency).detach().double()
    n_rows, m1 = features.shape[1], features.shape[-1]
    expected = torch.zeros(grad.shape, dtype=torch.float64)
    for b in range(features.shape[0]):
        for j in range(features.shape[2]):
            h = features[b, :, j]
            a = (h.T @ h + lam * torch.eye(m1, dtype=torch.float64)) / n_rows
            jacobian = torch.linalg.matrix_power(torch.eye(m1, dtype=torch.float64) - eta * a, steps)
            expected[j] += jacobian @ direction[b, j].double()
    torch.testing.assert_close(grad.double(), expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(grad, direction.sum(0), atol=1e-3)  # not the first-order identity


@pytest.mark.parametrize("network_class", [IntvMAMLNetwork, FullMAMLNetwork])
def test_meta_gradient_matches_finite_differences(network_class):
    """The outer loss on the query set, differentiated through the inner loop, agrees with central
    differences along a random direction in all shared parameters (float64)."""
    torch.manual_seed(2)
    network = network_class(3, _config(inner_steps=2, inner_learning_rate=0.3)).double()
    support, adjacency = _support(batch=2, n_rows=6, d=3, seed=5)
    query, _ = _support(batch=2, n_rows=8, d=3, seed=6)
    support, adjacency, query = support.double(), adjacency.double(), query.double()
    params = [p for p in network.likelihood.parameters()] + [network.initial_int_weights]

    def outer_loss() -> torch.Tensor:
        task_params, _, _ = network.adapt_support(support, adjacency, training=True)
        obs_query, int_query = network.means(task_params, query, adjacency)
        return (query - int_query).pow(2).mean() + (query - obs_query).pow(2).mean()

    grads = torch.autograd.grad(outer_loss(), params, allow_unused=True)
    generator = torch.Generator().manual_seed(7)
    directions = [torch.randn(p.shape, generator=generator, dtype=torch.float64) for p in params]
    # the target features use sigma as a fixed unit (detached), so the finite differences must not
    # move it: Full-MAML reads the targets before adapting and weights its inner loss by them
    names = [n for n, _ in network.likelihood.named_parameters()]
    directions[names.index("log_noise_scale")].zero_()
    analytic = sum(float((g * v).sum()) for g, v in zip(grads, directions) if g is not None)
    epsilon = 1e-5
    with torch.no_grad():
        for p, v in zip(params, directions):
            p.add_(epsilon * v)
    plus = float(outer_loss().detach())
    with torch.no_grad():
        for p, v in zip(params, directions):
            p.sub_(2 * epsilon * v)
    minus = float(outer_loss().detach())
    numeric = (plus - minus) / (2 * epsilon)
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    assert grads[-1] is not None and grads[-1].abs().sum() > 0  # reaches the initial last layer
    if network_class is FullMAMLNetwork:
        # the initial observational mechanism is trained through its adapted copies
        obs_grad = grads[[n for n, _ in network.likelihood.named_parameters()].index("obs_w2")]
        assert obs_grad is not None and obs_grad.abs().sum() > 0


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_objective_step_reaches_initial_layer(cls, protocol):
    model = cls(n_steps=1, inner_steps=2, hidden_size=8, n_features=6, embedding_size=8, seed=0, n_edge_samples=16)
    model.fit(protocol.train, progress=False)
    data, valid = model._prepare_training_data(protocol.train)
    generator = torch.Generator().manual_seed(0)
    support, query = model._split(data, valid, 10, generator)
    model.network_.train()
    model.network_.zero_grad()
    terms = model._objective(support, query, 0.3, model.loss_weights, generator)
    terms["loss"].backward()
    grad = model.network_.initial_int_weights.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
