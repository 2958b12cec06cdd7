import networkx as nx
import numpy as np
import pytest

from metacadi import MetaCaDIInputError
from metacadi.graphs import (
    erdos_renyi_dag,
    from_networkx,
    is_dag,
    random_dag,
    scale_free_dag,
    to_networkx,
    topological_order,
)


@pytest.mark.parametrize("family", ["er", "sf"])
@pytest.mark.parametrize("expected_degree", [1.0, 1.5, 2.0])
def test_random_dags_are_acyclic_with_requested_mean_degree(family, expected_degree):
    n_nodes = 20
    edge_counts = []
    for seed in range(200):
        adjacency = random_dag(n_nodes, expected_degree, family=family, seed=seed)
        assert adjacency.shape == (n_nodes, n_nodes)
        assert is_dag(adjacency)
        edge_counts.append(adjacency.sum())
    mean_edges_per_node = np.mean(edge_counts) / n_nodes
    assert mean_edges_per_node == pytest.approx(expected_degree, rel=0.05)


def test_same_seed_same_graph_different_seed_different_graph():
    assert np.array_equal(erdos_renyi_dag(10, 2, seed=3), erdos_renyi_dag(10, 2, seed=3))
    assert not np.array_equal(scale_free_dag(10, 2, seed=3), scale_free_dag(10, 2, seed=4))


def test_scale_free_has_hubs():
    out_degrees = np.concatenate([scale_free_dag(50, 2, seed=s).sum(1) for s in range(20)])
    in_degrees = np.concatenate([scale_free_dag(50, 2, seed=s).sum(0) for s in range(20)])
    assert out_degrees.max() > 3 * in_degrees.max() / 2
    assert out_degrees.max() >= 10


def test_topological_order_puts_causes_first():
    adjacency = erdos_renyi_dag(15, 2, seed=0)
    order = topological_order(adjacency)
    position = {node: k for k, node in enumerate(order)}
    for i, j in zip(*np.nonzero(adjacency)):
        assert position[i] < position[j]


def test_networkx_round_trip_keeps_names():
    adjacency = erdos_renyi_dag(6, 1.5, seed=1)
    names = ["gata1", "spi1", "klf1", "fli1", "cebpa", "runx1"]
    graph = to_networkx(adjacency, names)
    assert list(graph.nodes) == names
    assert graph.number_of_edges() == adjacency.sum()
    back, back_names = from_networkx(graph)
    assert back_names == names
    assert np.array_equal(back, adjacency)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(MetaCaDIInputError, match="expected_degree"):
        erdos_renyi_dag(5, 10)
    with pytest.raises(MetaCaDIInputError, match="family"):
        random_dag(5, 1, family="small-world")
    with pytest.raises(MetaCaDIInputError, match="cycle"):
        topological_order(np.array([[0, 1], [1, 0]]))
    with pytest.raises(MetaCaDIInputError, match="names"):
        to_networkx(np.zeros((3, 3)), ["a", "b"])
    with pytest.raises(MetaCaDIInputError, match="DiGraph"):
        from_networkx(nx.Graph())
