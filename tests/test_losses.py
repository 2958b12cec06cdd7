"""Terms of the training objective: closed-form target optimum, target fit, Occam penalty, order probabilities,
the exact (local expectation) gradient of the edge probabilities."""

import numpy as np
import pytest
import torch

from metacadi.dpdag import DPDAG
from metacadi.losses import edge_occam_penalty, target_entropy, target_logit_decay


def test_target_logit_decay_has_a_gradient_where_the_sigmoid_terms_have_none():
    saturated = torch.tensor([[-30.0, 0.0, 4.0]], requires_grad=True)
    (target_logit_decay(saturated).sum() + target_entropy(saturated).sum()).backward()
    torch.testing.assert_close(saturated.grad[0, 0], torch.tensor(-60.0), atol=1e-6, rtol=1e-6)
    assert float(target_logit_decay(saturated.detach())[0]) == 30.0**2 + 4.0**2
    entropy_only = torch.tensor([[-30.0]], requires_grad=True)
    target_entropy(entropy_only).sum().backward()
    assert abs(float(entropy_only.grad[0, 0])) < 1e-9


def test_occam_penalty_is_the_expected_number_of_edges():
    torch.manual_seed(0)
    graph = DPDAG(4)
    with torch.no_grad():
        graph.node_scores.copy_(torch.tensor([1.0, -0.5, 0.3, 2.0]))
        graph.edge_logits.copy_(torch.randn(4, 4))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        monte_carlo = graph.sample(40000, generator).sum((1, 2)).mean()
        exact = edge_occam_penalty(graph.expected_edges())
    assert abs(float(exact) - float(monte_carlo)) < 0.05
    # P(i before j) under Gumbel-perturbed scores is sigmoid(s_i - s_j), exactly
    order = graph.order_probs().detach()
    assert abs(float(order[3, 1]) - float(torch.sigmoid(torch.tensor(2.5)))) < 1e-6
    torch.testing.assert_close(order + order.T, 1.0 - torch.eye(4))


def test_order_entropy_is_log_two_for_a_uniform_order_and_small_for_a_sharp_one():
    graph = DPDAG(5)
    assert abs(graph.order_entropy() - np.log(2)) < 1e-6
    with torch.no_grad():
        graph.node_scores.copy_(torch.arange(5.0) * 20)
    assert graph.order_entropy() < 1e-4


def _observational_nll(likelihood, x, adjacency, noise_scale, params=None):
    mean = likelihood.observational_mean(x, adjacency, params)
    return 0.5 * ((x - mean) / noise_scale).pow(2).mean(1)  # (B, d)


@pytest.mark.parametrize("per_task", [False, True])
@pytest.mark.parametrize("mask_indicators", [False, True])
def test_edge_flip_nll_equals_switching_each_edge_by_hand(per_task, mask_indicators):
    from metacadi.likelihood import Likelihood

    torch.manual_seed(0)
    d, batch = 4, 3
    likelihood = Likelihood(d, hidden_size=5, n_features=3, mask_indicators=mask_indicators)
    names = ("obs_w1", "obs_b1", "obs_w2", "obs_b2") + (("obs_u1",) if mask_indicators else ())
    if mask_indicators:  # they start at 0; the flips must see them once trained
        with torch.no_grad():
            likelihood.obs_u1.normal_()
    params = None
    if per_task:  # MAML-style per-task copies of the observational mechanism
        params = {
            name: (getattr(likelihood, name) + 0.1 * torch.randn(batch, *getattr(likelihood, name).shape)).detach()
            for name in names
        }
    x = torch.randn(batch, 7, d)
    adjacency = (torch.rand(batch, d, d) < 0.5).float() * (1 - torch.eye(d))
    weights = torch.rand(batch, d)
    sigma = torch.rand(d) + 0.5
    flip = likelihood.edge_flip_nll(x, adjacency, weights, sigma, params)
    with torch.no_grad():
        for i in range(d):
            for j in range(d):
                on, off = adjacency.clone(), adjacency.clone()
                on[:, i, j], off[:, i, j] = 1.0, 0.0
                expected = weights[:, j] * (
                    _observational_nll(likelihood, x, on, sigma, params)[:, j]
                    - _observational_nll(likelihood, x, off, sigma, params)[:, j]
                )
                torch.testing.assert_close(flip[:, i, j], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mask_indicators", [False, True])
def test_profile_edge_flip_is_the_log_ratio_of_mean_squared_residuals(mask_indicators):
    """``with_profile``: ``w_bj 0.5 log(MSE_j(on) / MSE_j(off))`` by hand, independent of sigma,
    and the plain change comes back unchanged beside it."""
    from metacadi.likelihood import Likelihood

    torch.manual_seed(2)
    d, batch = 4, 2
    likelihood = Likelihood(d, hidden_size=5, n_features=3, mask_indicators=mask_indicators)
    if mask_indicators:
        with torch.no_grad():
            likelihood.obs_u1.normal_()
    x = torch.randn(batch, 9, d)
    adjacency = (torch.rand(batch, d, d) < 0.5).float() * (1 - torch.eye(d))
    weights = torch.rand(batch, d)
    sigma = torch.rand(d) + 0.5
    plain = likelihood.edge_flip_nll(x, adjacency, weights, sigma)
    flip, profile = likelihood.edge_flip_nll(x, adjacency, weights, sigma, with_profile=True)
    _, profile_other_sigma = likelihood.edge_flip_nll(x, adjacency, weights, 3 * sigma, with_profile=True)
    torch.testing.assert_close(flip, plain)
    torch.testing.assert_close(profile, profile_other_sigma)
    with torch.no_grad():
        for i in range(d):
            for j in range(d):
                on, off = adjacency.clone(), adjacency.clone()
                on[:, i, j], off[:, i, j] = 1.0, 0.0
                mse = [(x - likelihood.observational_mean(x, a)).pow(2).mean(1)[:, j] for a in (on, off)]
                expected = weights[:, j] * 0.5 * torch.log(mse[0] / mse[1])
                torch.testing.assert_close(profile[:, i, j], expected, rtol=1e-4, atol=1e-5)


def test_pairwise_order_gradient_pushes_each_pair_towards_the_edge_that_explains_more():
    """Zero-valued; its gradient in the node scores is ``sum_ij dP(i<j)/ds min(0, mean_b flip + c)``,
    so for two variables the node put first is the one whose outgoing edge gains more."""
    from metacadi.dpdag import DPDAG
    from metacadi.losses import pairwise_order_gradient

    graph = DPDAG(2)
    flip = torch.tensor([[[0.0, -1.2], [-0.5, 0.0]], [[0.0, -0.8], [0.3, 0.0]]])  # 0 -> 1 gains more
    value = pairwise_order_gradient(graph.order_probs(), flip, edge_cost=0.05)
    assert float(value.detach()) == 0.0
    value.backward()
    slope = (flip.mean(0) + 0.05).clamp(max=0.0)  # [[0, -0.95], [-0.05, 0]]
    # P(0 < 1) = sigmoid(s0 - s1) = 1/2 at s = 0: dP01/ds0 = 1/4 = -dP10/ds0
    expected_s0 = 0.25 * (slope[0, 1] - slope[1, 0])
    torch.testing.assert_close(graph.node_scores.grad, torch.stack([expected_s0, -expected_s0]))
    assert graph.node_scores.grad[0] < 0  # a gradient step raises node 0's score: 0 goes first


def test_local_edge_gradient_is_zero_valued_with_the_exact_bernoulli_gradient():
    from metacadi.losses import local_edge_gradient

    theta = torch.randn(3, 3, requires_grad=True)
    probs = torch.sigmoid(theta)
    order = (torch.rand(5, 3, 3) < 0.5).float()
    flip = torch.randn(5, 3, 3)
    value = local_edge_gradient(probs, order, flip)
    assert float(value.detach()) == 0.0
    value.backward()
    expected = probs.detach() * (1 - probs.detach()) * (order * flip).mean(0)
    torch.testing.assert_close(theta.grad, expected)


def test_local_edge_gradient_matches_the_expectation_over_one_edge():
    """For one free edge the surrogate's gradient equals d/dtheta of the exact expectation
    ``p L(1) + (1 - p) L(0)`` computed by enumeration."""
    from metacadi.likelihood import Likelihood
    from metacadi.losses import local_edge_gradient

    torch.manual_seed(1)
    likelihood = Likelihood(2, hidden_size=4, n_features=2)
    x = torch.randn(1, 9, 2)
    sigma = torch.ones(2)
    order = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]])  # 0 before 1: only edge 0 -> 1 allowed
    theta = torch.zeros(2, 2, requires_grad=True)
    p = torch.sigmoid(theta)
    flip = likelihood.edge_flip_nll(x, torch.zeros(1, 2, 2), torch.ones(1, 2), sigma)
    local_edge_gradient(p, order, flip).backward()
    with torch.no_grad():
        losses = [_observational_nll(likelihood, x, order * on, sigma).sum() for on in (0.0, 1.0)]
    theta_exact = torch.zeros((), requires_grad=True)
    q = torch.sigmoid(theta_exact)
    (q * losses[1] + (1 - q) * losses[0]).backward()
    torch.testing.assert_close(theta.grad[0, 1], theta_exact.grad)


def test_spread_initialisation_bends_the_hidden_units_across_the_data_range():
    """``"spread"`` starts every first layer at unit scale with N(0, 1) biases, so on standardised
    inputs the hidden units' bends (where ``w x + b = 0``) fall inside the data's range; ``"fan-in"``
    puts every bend at the centre (bias 0) with a small slope."""
    from metacadi.likelihood import Likelihood

    torch.manual_seed(0)
    spread, fan_in = Likelihood(10, hidden_size=64, init="spread"), Likelihood(10, hidden_size=64, init="fan-in")
    for name in ("obs_b1", "ext_b1"):
        assert torch.all(getattr(fan_in, name) == 0)
        assert 0.8 < float(getattr(spread, name).detach().std()) < 1.2
    for name in ("obs_w1", "ext_w1"):
        assert 0.8 < float(getattr(spread, name).detach().std()) < 1.2
        assert abs(float(getattr(fan_in, name).detach().std()) - 10 ** -0.5) < 0.05
    # bends -b/w of one-parent units: most within +-3 data sd under "spread"
    bends = (-spread.obs_b1[0] / spread.obs_w1[0, 1]).detach()
    assert float((bends.abs() < 3).float().mean()) > 0.7
    with pytest.raises(ValueError, match="init must be one of"):
        Likelihood(3, init="xavier")
