"""DP-DAG sampler: every hard sample is a DAG; the edge posterior is a probability matrix."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from metacadi import MetaCaDIInputError
from metacadi.dpdag import DPDAG, binary_concrete, is_acyclic_batch, order_mask, soft_sort
from metacadi.graphs import is_dag

finite = st.floats(-8.0, 8.0, allow_nan=False, allow_infinity=False, width=32)
temperature = st.floats(0.05, 5.0, allow_nan=False)


@st.composite
def samplers(draw):
    d = draw(st.integers(2, 7))
    relaxation = draw(st.sampled_from(["softsort", "sinkhorn"]))
    model = DPDAG(d, order_temperature=draw(temperature), edge_temperature=draw(temperature), relaxation=relaxation)
    with torch.no_grad():
        model.edge_logits.copy_(torch.as_tensor(draw(arrays(np.float32, (d, d), elements=finite))))
        if relaxation == "softsort":
            model.node_scores.copy_(torch.as_tensor(draw(arrays(np.float32, (d,), elements=finite))))
        else:
            model.order_weights.copy_(torch.as_tensor(draw(arrays(np.float32, (d, d), elements=finite))))
    return model, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=40, deadline=None)
@given(samplers())
def test_every_sample_is_a_binary_dag(case):
    model, seed = case
    values = model.sample(12, torch.Generator().manual_seed(seed)).detach()
    d = model.n_variables
    assert values.shape == (12, d, d)
    # straight-through samples carry exactly the hard 0/1 value (the soft part is added as ``soft - soft.detach()``)
    graphs = values.round()
    assert torch.isin(graphs, torch.tensor([0.0, 1.0])).all()
    assert torch.equal(values, graphs)
    assert (torch.diagonal(graphs, dim1=-2, dim2=-1) == 0).all()
    assert is_acyclic_batch(graphs).all()
    for graph in graphs.numpy().astype(int):  # independent check via the graph module
        assert is_dag(graph)


@settings(max_examples=25, deadline=None)
@given(samplers())
def test_edge_probs_are_probabilities_with_zero_diagonal(case):
    model, seed = case
    probs = model.edge_probs(32, torch.Generator().manual_seed(seed))
    assert probs.shape == (model.n_variables, model.n_variables)
    assert (probs >= 0).all() and (probs <= 1).all()
    assert (torch.diagonal(probs) == 0).all()
    # i -> j and j -> i can never both be on in one sample, so their probabilities sum to <= 1
    assert (probs + probs.T <= 1 + 1e-6).all()
    presence = model.edge_presence_probs()
    assert (torch.diagonal(presence) == 0).all() and (presence <= 1).all()


def test_strong_logits_and_scores_give_the_expected_graph():
    model = DPDAG(3, order_temperature=0.1)
    with torch.no_grad():
        model.node_scores.copy_(torch.tensor([30.0, 15.0, 0.0]))  # order X0, X1, X2 almost surely
        model.edge_logits.copy_(torch.full((3, 3), -30.0))
        model.edge_logits[0, 1] = model.edge_logits[1, 2] = 30.0
        model.edge_logits[2, 0] = 30.0  # allowed only against the order: never on
    probs = model.edge_probs(200, torch.Generator().manual_seed(0))
    expected = torch.zeros(3, 3)
    expected[0, 1] = expected[1, 2] = 1.0
    torch.testing.assert_close(probs, expected)


def test_samples_carry_gradients_to_scores_and_logits():
    model = DPDAG(4)
    graphs = model.sample(8, torch.Generator().manual_seed(1))
    (graphs * torch.arange(16.0).view(4, 4)).sum().backward()
    assert model.edge_logits.grad is not None and model.edge_logits.grad.abs().sum() > 0
    assert model.node_scores.grad is not None and model.node_scores.grad.abs().sum() > 0


def test_order_mask_and_soft_sort_agree_with_argsort():
    scores = torch.tensor([[0.3, 2.0, -1.0, 0.9]])
    soft, hard = soft_sort(scores, 0.01)
    order = [1, 3, 0, 2]
    torch.testing.assert_close(hard[0].argmax(-1), torch.tensor(order))
    torch.testing.assert_close(soft, hard, atol=1e-3, rtol=0)
    mask = order_mask(hard)[0]
    for a, i in enumerate(order):
        for b, j in enumerate(order):
            assert mask[i, j] == (1.0 if a < b else 0.0)


def test_binary_concrete_is_hard_forward_with_the_right_mean():
    logits = torch.full((20000,), 1.0)
    sample = binary_concrete(logits, 0.5, torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample, sample.round(), atol=1e-6, rtol=0)
    sample = sample.round()
    assert float(sample.mean()) == pytest.approx(float(torch.sigmoid(torch.tensor(1.0))), abs=0.015)


def test_bad_arguments_raise():
    with pytest.raises(MetaCaDIInputError, match="relaxation"):
        DPDAG(3, relaxation="gumbel")
    with pytest.raises(MetaCaDIInputError, match="order_temperature"):
        DPDAG(3, order_temperature=0.0)
    with pytest.raises(MetaCaDIInputError, match="n_samples"):
        DPDAG(3).sample(0)


def test_acyclicity_check_detects_a_cycle():
    cycle = np.array([[[0, 1, 0], [0, 0, 1], [1, 0, 0]], [[0, 1, 0], [0, 0, 1], [0, 0, 0]]])
    np.testing.assert_array_equal(is_acyclic_batch(cycle), [False, True])
