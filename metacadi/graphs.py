"""Random DAGs and conversions.

Convention used throughout the package: ``A[i, j] = 1`` iff there is an edge ``i -> j``
(row = cause, column = effect), so ``A[:, j]`` is the parent mask of node ``j``.

``expected_degree`` is the expected number of edges per node, ``E[#edges] = expected_degree * d``
(the "ER-k" convention of the causal-discovery literature: ER-2 on 20 nodes has 40 edges on
average). Each node then has ``expected_degree`` parents on average.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import networkx as nx
import numpy as np

from ._random import SeedLike, as_rng
from .errors import MetaCaDIInputError
from .validation import check_adjacency, check_names, check_positive_int

GraphFamily = Literal["er", "sf"]
GRAPH_FAMILIES: tuple[str, ...] = ("er", "sf")


def _check_degree(n_nodes: int, expected_degree: float) -> float:
    check_positive_int(n_nodes, "n_nodes", minimum=1)
    try:
        expected_degree = float(expected_degree)
    except (TypeError, ValueError) as exc:
        raise MetaCaDIInputError(f"expected_degree must be a number; got {expected_degree!r}.") from exc
    max_degree = (n_nodes - 1) / 2
    if not 0.0 <= expected_degree <= max_degree + 1e-12:
        raise MetaCaDIInputError(
            f"expected_degree must be in [0, (n_nodes - 1) / 2] = [0, {max_degree:g}] for "
            f"{n_nodes} nodes (a complete DAG has (d - 1) / 2 edges per node); got {expected_degree}."
        )
    return expected_degree


def _permute(upper: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Relabel the nodes of a DAG given in topological order 0..d-1 by a random permutation."""
    order = rng.permutation(upper.shape[0])
    adjacency = np.zeros_like(upper)
    adjacency[np.ix_(order, order)] = upper
    return adjacency


def erdos_renyi_dag(n_nodes: int, expected_degree: float = 1.0, seed: SeedLike = None) -> np.ndarray:
    """Erdős–Rényi DAG: each pair of a random node order gets an edge with probability ``p``.

    ``p = 2 * expected_degree / (d - 1)``, so ``E[#edges] = p * d (d - 1) / 2 = expected_degree * d``.

    Returns an ``(d, d)`` int64 adjacency matrix.
    """
    expected_degree = _check_degree(n_nodes, expected_degree)
    rng = as_rng(seed)
    if n_nodes == 1:
        return np.zeros((1, 1), dtype=np.int64)
    edge_prob = min(1.0, 2.0 * expected_degree / (n_nodes - 1))
    upper = np.triu(rng.random((n_nodes, n_nodes)) < edge_prob, k=1).astype(np.int64)
    return _permute(upper, rng)


def scale_free_dag(n_nodes: int, expected_degree: float = 1.0, seed: SeedLike = None) -> np.ndarray:
    """Scale-free DAG by preferential attachment (Barabási–Albert, edges from old to new nodes).

    Nodes arrive in a random order; node ``k`` picks its parents among the ``k`` earlier nodes
    with probability proportional to (their degree + 1), so early nodes become hubs with many
    children (like master regulators in a gene network). The number of parents per node is
    spread so that ``E[#edges] = expected_degree * d`` exactly whenever capacity allows (node
    ``k`` can have at most ``k`` parents).

    Returns an ``(d, d)`` int64 adjacency matrix.
    """
    expected_degree = _check_degree(n_nodes, expected_degree)
    rng = as_rng(seed)
    upper = np.zeros((n_nodes, n_nodes), dtype=np.int64)
    # Parent counts: base floor(k) each, the fractional remainder as Bernoulli extras, then
    # the deficit of the first nodes (who cannot have k parents) handed on to later ones.
    capacity = np.arange(n_nodes)
    whole, fraction = divmod(expected_degree, 1.0)
    n_parents = np.full(n_nodes, int(whole)) + (rng.random(n_nodes) < fraction)
    deficit = int(np.maximum(n_parents - capacity, 0).sum())
    n_parents = np.minimum(n_parents, capacity)
    while deficit > 0:
        room = np.flatnonzero(n_parents < capacity)
        if room.size == 0:
            break
        n_parents[rng.choice(room)] += 1
        deficit -= 1
    degree = np.zeros(n_nodes)
    for node in range(1, n_nodes):
        weights = degree[:node] + 1.0
        parents = rng.choice(node, size=n_parents[node], replace=False, p=weights / weights.sum())
        upper[parents, node] = 1
        degree[parents] += 1
        degree[node] += n_parents[node]
    return _permute(upper, rng)


def barabasi_albert_dag(n_nodes: int, edges_per_node: int = 2, seed: SeedLike = None) -> np.ndarray:
    """Scale-free DAG with exactly ``min(k, edges_per_node)`` parents for the ``k``-th arriving node.

    The construction of ``igraph.Graph.Barabasi(n, m, directed=True)`` (default ``psumtree``
    sampler, no multi-edges) transposed so that edges run from older to newer nodes, as the
    BaCaDI/DiBS scale-free prior draws it: nodes arrive one at a time; node ``k`` picks
    ``min(k, m)`` distinct parents among the earlier nodes with probability proportional to
    (their number of children + 1), so hubs have many children; then the labels are permuted
    at random. Unlike :func:`scale_free_dag`, the first nodes' missing parents are *not* handed
    on to later nodes, so ``#edges = sum_k min(k, m)``: 37 for ``d = 20``, ``m = 2`` (the "SF-2"
    graphs of the BaCaDI benchmark).

    Returns an ``(d, d)`` int64 adjacency matrix.
    """
    check_positive_int(n_nodes, "n_nodes", minimum=1)
    check_positive_int(edges_per_node, "edges_per_node", minimum=0)
    rng = as_rng(seed)
    upper = np.zeros((n_nodes, n_nodes), dtype=np.int64)
    n_children = np.zeros(n_nodes)
    for node in range(1, n_nodes):
        weights = n_children[:node] + 1.0
        parents = rng.choice(node, size=min(node, edges_per_node), replace=False, p=weights / weights.sum())
        upper[parents, node] = 1
        n_children[parents] += 1
    return _permute(upper, rng)


def random_dag(
    n_nodes: int, expected_degree: float = 1.0, family: GraphFamily = "er", seed: SeedLike = None
) -> np.ndarray:
    """A random DAG of the given family: ``"er"`` (Erdős–Rényi) or ``"sf"`` (scale-free)."""
    if family == "er":
        return erdos_renyi_dag(n_nodes, expected_degree, seed)
    if family == "sf":
        return scale_free_dag(n_nodes, expected_degree, seed)
    raise MetaCaDIInputError(f"family must be one of {GRAPH_FAMILIES}; got {family!r}.")


def find_cycle(adjacency: np.ndarray) -> list[int] | None:
    """Return one directed cycle as a node list ``[a, b, ..., a]``, or ``None`` for a DAG."""
    graph = nx.from_numpy_array(np.asarray(adjacency) != 0, create_using=nx.DiGraph)
    try:
        edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return None
    return [int(u) for u, _ in edges] + [int(edges[0][0])]


def is_dag(adjacency: np.ndarray) -> bool:
    """True iff the square 0/1 matrix has no directed cycle (self-loops count as cycles)."""
    adjacency = np.asarray(adjacency)
    return bool(adjacency.ndim == 2 and not np.any(np.diag(adjacency)) and find_cycle(adjacency) is None)


def topological_order(adjacency: np.ndarray) -> list[int]:
    """A topological order of the nodes (causes before effects); raises if there is a cycle."""
    adjacency = check_adjacency(adjacency)
    graph = nx.from_numpy_array(adjacency, create_using=nx.DiGraph)
    graph.add_nodes_from(range(adjacency.shape[0]))
    return [int(node) for node in nx.lexicographical_topological_sort(graph)]


def descendants(adjacency: np.ndarray, node: int) -> set[int]:
    """Nodes reachable from ``node`` by a directed path (excluding ``node`` itself)."""
    graph = nx.from_numpy_array(np.asarray(adjacency) != 0, create_using=nx.DiGraph)
    return {int(n) for n in nx.descendants(graph, node)}


def ancestors(adjacency: np.ndarray, node: int) -> set[int]:
    """Nodes with a directed path to ``node`` (excluding ``node`` itself)."""
    graph = nx.from_numpy_array(np.asarray(adjacency) != 0, create_using=nx.DiGraph)
    return {int(n) for n in nx.ancestors(graph, node)}


def to_networkx(
    adjacency: np.ndarray,
    names: Sequence[str] | None = None,
    weights: np.ndarray | None = None,
    weight_name: str = "weight",
) -> nx.DiGraph:
    """A ``networkx.DiGraph`` with one node per variable (named by ``names``) and one edge per 1.

    With ``weights`` (same shape), every pair with ``weights > 0`` becomes an edge carrying the
    weight as the ``weight_name`` attribute (used for edge probabilities).
    """
    adjacency = np.asarray(adjacency)
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise MetaCaDIInputError(f"adjacency must be square (d, d); got shape {adjacency.shape}.")
    names = check_names(names, adjacency.shape[0])
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    values = adjacency if weights is None else np.asarray(weights, dtype=float)
    for i, j in zip(*np.nonzero(values)):
        attrs = {} if weights is None else {weight_name: float(values[i, j])}
        graph.add_edge(names[i], names[j], **attrs)
    return graph


def from_networkx(graph: nx.DiGraph, nodes: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Adjacency matrix (int64, ``A[i, j] = 1`` iff ``i -> j``) and node names of a DiGraph.

    ``nodes`` fixes the order of the rows/columns (default: the graph's node order).
    """
    if not isinstance(graph, nx.DiGraph):
        raise MetaCaDIInputError(f"expected a networkx.DiGraph; got {type(graph).__name__}.")
    nodes = list(graph.nodes) if nodes is None else list(nodes)
    missing = set(graph.nodes) - set(nodes)
    if missing:
        raise MetaCaDIInputError(f"nodes is missing graph nodes {sorted(map(str, missing))}.")
    adjacency = nx.to_numpy_array(graph, nodelist=nodes, weight=None).astype(np.int64)
    return adjacency, [str(n) for n in nodes]
