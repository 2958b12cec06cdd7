"""Terms of the training objective: closed-form target optimum, target fit, Occam penalty, order probabilities."""

import numpy as np
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
