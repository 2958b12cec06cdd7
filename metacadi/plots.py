"""Plotly figure factories shared by the book and the explorer.

Every function takes the package's friendly types (DataFrames, Series, adjacency matrices with
``A[i, j] = 1`` iff ``i -> j``) and returns a ``plotly.graph_objects.Figure``; nothing here runs a
model. Graph drawings share one node layout (:func:`node_positions`), so the ground truth and the
posterior can be compared side by side.

* :func:`graph_figure` — the posterior graph: every edge with ``P(i -> j) >= threshold`` drawn
  with width and colour growing with its probability; true edges solid, spurious ones dotted,
  true edges the posterior missed in light grey dashes.
* :func:`true_graph_figure` — the ground-truth DAG.
* :func:`edge_heatmap` — the ``d x d`` matrix of edge probabilities (rows = causes, columns =
  effects), true edges outlined.
* :func:`target_bar_chart` — ``P(r_j = 1 | data)`` per variable, true targets marked.
* :func:`target_calibration` — reliability diagram of target probabilities pooled over
  experiments: binned predicted probability against the observed fraction of true targets.
* :func:`training_curve` — the loss terms of meta-training against the step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import get_colorscale, sample_colorscale

from .errors import MetaCaDIInputError
from .validation import _to_numpy, check_names

EDGE_COLORSCALE = "Blues"
TRUE_COLOR = "#d62728"
OFF_TARGET_COLOR = "#ff7f0e"
BAR_COLOR = "#1f77b4"
MISSED_COLOR = "#b0b0b0"
NODE_COLOR = "#f2f2f2"
DESCENDANT_COLOR = "#fdd0a2"  # light orange: downstream of a target (its distribution moves too)

_EDGE_SCALE = get_colorscale(EDGE_COLORSCALE)  # resolved once: looking a scale up by name is slow


def _edge_colors(probabilities: Sequence[float]) -> list[str]:
    """Colours of edges with these probabilities: the light quarter of the scale is skipped so
    that weak edges stay visible on white."""
    if len(probabilities) == 0:
        return []
    return sample_colorscale(_EDGE_SCALE, [0.25 + 0.75 * float(p) for p in probabilities])


Positions = Mapping[str, tuple[float, float]]

__all__ = [
    "node_positions",
    "descendant_mask",
    "graph_figure",
    "true_graph_figure",
    "edge_heatmap",
    "target_bar_chart",
    "target_calibration",
    "training_curve",
]


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _edge_prob_frame(edge_probs: Any) -> pd.DataFrame:
    """A square DataFrame of probabilities in ``[0, 1]`` with the same labels on both axes."""
    if isinstance(edge_probs, pd.DataFrame):
        frame = edge_probs.astype(float)
        if frame.shape[0] != frame.shape[1]:
            raise MetaCaDIInputError(f"edge_probs must be square (d, d); got shape {frame.shape}.")
        if list(map(str, frame.index)) != list(map(str, frame.columns)):
            raise MetaCaDIInputError(
                "edge_probs must have the same variables, in the same order, as rows (causes) and "
                f"columns (effects); got rows {list(frame.index)} and columns {list(frame.columns)}."
            )
        frame = frame.set_axis(list(map(str, frame.columns)), axis=0).set_axis(list(map(str, frame.columns)), axis=1)
    else:
        array = np.asarray(edge_probs, dtype=float)
        if array.ndim != 2:
            raise MetaCaDIInputError(f"edge_probs must be a (d, d) matrix; got shape {array.shape}.")
        names = check_names(None, array.shape[1])
        frame = pd.DataFrame(array, index=names, columns=names)
    if frame.shape[0] != frame.shape[1]:
        raise MetaCaDIInputError(f"edge_probs must be square (d, d); got shape {frame.shape}.")
    values = frame.to_numpy()
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise MetaCaDIInputError("edge_probs must hold finite probabilities in [0, 1].")
    return frame


def _adjacency(adjacency: Any, d: int, name: str = "true_adjacency") -> np.ndarray:
    array = np.asarray(adjacency.to_numpy() if isinstance(adjacency, pd.DataFrame) else adjacency)
    if array.shape != (d, d):
        raise MetaCaDIInputError(f"{name} must have shape ({d}, {d}) to match the variables; got {array.shape}.")
    if not np.isin(array, (0, 1)).all():
        raise MetaCaDIInputError(f"{name} must contain only 0 and 1; got values {np.unique(array)[:5]}.")
    return array.astype(bool)


def _target_mask(targets: Any, names: Sequence[str], name: str) -> np.ndarray:
    """``(d,)`` bool mask from a bool/0-1 vector, a bool Series indexed by name, or a list of names."""
    if isinstance(targets, pd.Series):
        missing = sorted(set(map(str, targets.index)) - set(names))
        if missing:
            raise MetaCaDIInputError(f"{name} names unknown variables {missing}; the variables are {list(names)}.")
        targets = targets.rename(index=str).reindex(list(names), fill_value=False).to_numpy()
    values = list(targets) if not isinstance(targets, np.ndarray) else targets
    if len(values) and all(isinstance(v, str) for v in values):
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise MetaCaDIInputError(f"{name} names unknown variables {unknown}; the variables are {list(names)}.")
        return np.isin(np.asarray(names), values)
    array = np.asarray(values)
    if array.shape != (len(names),):
        raise MetaCaDIInputError(
            f"{name} must be a ({len(names)},) 0/1 vector or a list of variable names; got shape {array.shape}."
        )
    if not np.isin(array, (0, 1)).all():
        raise MetaCaDIInputError(f"{name} must be 0/1 or boolean; got values {np.unique(array)[:5]}.")
    return array.astype(bool)


# --------------------------------------------------------------------------------------------
# graphs
# --------------------------------------------------------------------------------------------


def node_positions(
    names: Sequence[str], adjacency: Any | None = None, layout_seed: int = 0, *, layout: str = "layered"
) -> dict[str, tuple[float, float]]:
    """2-D coordinates for drawing a graph over ``names``; coordinates lie in ``[-1, 1]``.

    * ``layout="layered"`` (default, with an ``adjacency`` that has edges): a topological
      drawing that stays readable up to about 20 variables. Each node sits in the layer of its
      longest path from a root (causes above effects, edges point downwards); nodes within a
      layer are ordered by the mean position of their parents and children (a few barycentre
      sweeps, which removes most edge crossings) and alternate layers are shifted by a quarter
      step, so that an edge skipping a layer rarely runs through a node. Variables without any
      edge are not stacked into the first layer: they fill the shortest layers.
    * ``layout="spring"``: a force-directed layout (``networkx.spring_layout`` seeded by
      ``layout_seed``).
    * Without an adjacency, or an adjacency without edges: the nodes on a circle.

    The same graph always gets the same coordinates.
    """
    names = [str(n) for n in names]
    if layout not in ("layered", "spring"):
        raise MetaCaDIInputError(f"layout must be 'layered' or 'spring'; got {layout!r}.")
    if adjacency is not None:
        mask = _adjacency(adjacency, len(names), name="adjacency")
        if mask.any():
            if layout == "layered":
                return _layered_positions(names, mask)
            graph = nx.DiGraph()
            graph.add_nodes_from(names)
            graph.add_edges_from((names[i], names[j]) for i, j in zip(*np.nonzero(mask)))
            spring = nx.spring_layout(graph.to_undirected(), seed=layout_seed, k=1.6 / np.sqrt(len(names)))
            return {name: (float(x), float(y)) for name, (x, y) in spring.items()}
    circle = nx.circular_layout(names)
    return {name: (float(x), float(y)) for name, (x, y) in circle.items()}


def _layered_positions(names: list[str], mask: np.ndarray) -> dict[str, tuple[float, float]]:
    """Layered (Sugiyama-style) coordinates of the DAG ``mask`` (``mask[i, j]`` iff ``i -> j``)."""
    d = len(names)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(d))
    graph.add_edges_from((int(i), int(j)) for i, j in zip(*np.nonzero(mask)))
    if not nx.is_directed_acyclic_graph(graph):
        raise MetaCaDIInputError("a layered layout needs a DAG; the adjacency has a directed cycle.")
    connected = [k for k in range(d) if graph.degree(k) > 0]
    isolated = [k for k in range(d) if graph.degree(k) == 0]
    depth = {k: 0 for k in range(d)}
    for node in nx.topological_sort(graph.subgraph(connected)):
        for child in graph.successors(node):
            depth[child] = max(depth[child], depth[node] + 1)
    n_layers = max(depth[k] for k in connected) + 1
    layers: list[list[int]] = [[k for k in connected if depth[k] == level] for level in range(n_layers)]
    for node in isolated:  # into the currently shortest layer (the top one on ties)
        min(layers, key=len).append(node)

    def order_by(layer: list[int], neighbours, rank: dict[int, float]) -> list[int]:
        keyed = []
        for position, node in enumerate(layer):
            around = [rank[m] for m in neighbours(node) if m in rank]
            keyed.append((float(np.mean(around)) if around else rank.get(node, position), position, node))
        return [node for _, _, node in sorted(keyed)]

    def ranks() -> dict[int, float]:
        return {node: index / max(len(layer) - 1, 1) for layer in layers for index, node in enumerate(layer)}

    for _ in range(4):  # barycentre sweeps: down by parents, up by children
        for level in range(1, n_layers):
            layers[level] = order_by(layers[level], graph.predecessors, ranks())
        for level in range(n_layers - 2, -1, -1):
            layers[level] = order_by(layers[level], graph.successors, ranks())

    widest = max(len(layer) for layer in layers)
    step = min(2.0 / max(widest - 1, 1), 0.8)  # the widest layer spans the whole width
    gap = 2.0 / max(n_layers - 1, 1)
    positions: dict[str, tuple[float, float]] = {}
    for level, layer in enumerate(layers):
        y = 1.0 - gap * level if n_layers > 1 else 0.0
        shift = 0.25 * step if level % 2 and len(layer) < widest else 0.0
        start = -0.5 * step * (len(layer) - 1) + shift
        # a crowded layer zigzags (every other node a little lower) so that labels do not touch
        zigzag = 0.3 * min(gap, 0.8) if len(layer) > 5 else 0.0
        for index, node in enumerate(layer):
            x = min(1.0, max(-1.0, start + index * step))
            dy = zigzag * (index % 2) if level < n_layers - 1 or n_layers == 1 else -zigzag * (index % 2)
            positions[names[node]] = (float(x), float(y - dy))
    return positions


def descendant_mask(adjacency: Any, targets: Any, names: Sequence[str] | None = None) -> np.ndarray:
    """``(d,)`` bool: the variables downstream of ``targets`` (a mask or names), targets excluded.

    An intervention on a target changes the distribution of every descendant too, so these are
    the variables a target detector can confuse with the target."""
    array = np.asarray(adjacency.to_numpy() if isinstance(adjacency, pd.DataFrame) else adjacency)
    if names is None:
        names = [str(c) for c in adjacency.columns] if isinstance(adjacency, pd.DataFrame) else None
    names = check_names(names, array.shape[0])
    truth = _adjacency(array, len(names), name="adjacency")
    hit = _target_mask(targets, names, "targets")
    reach = hit.copy()
    frontier = hit.copy()
    while frontier.any():
        frontier = truth[frontier].any(axis=0) & ~reach
        reach |= frontier
    return reach & ~hit


def _edge_segment(
    start: tuple[float, float], end: tuple[float, float], shrink: float, offset: float
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The segment ``start -> end`` shortened by ``shrink`` at both ends (so it stops at the node
    markers) and shifted ``offset`` to its right (so ``i -> j`` and ``j -> i`` do not overlap)."""
    p, q = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
    direction = q - p
    length = float(np.hypot(*direction))
    if length == 0.0:
        return tuple(p), tuple(q)  # type: ignore[return-value]
    unit = direction / length
    normal = np.array([unit[1], -unit[0]])
    cut = min(shrink, 0.4 * length)
    a = p + cut * unit + offset * normal
    b = q - cut * unit + offset * normal
    return (float(a[0]), float(a[1])), (float(b[0]), float(b[1]))


def _base_layout(fig: go.Figure, title: str | None, height: int) -> go.Figure:
    # constrain="domain": keeping the 1:1 aspect shrinks the drawing area instead of widening
    # the range. With the default ("range"), plotly widens the range to fit the pane's aspect
    # and writes it back into the layout, so a pane first drawn narrow (Panel panes often are)
    # kept a range of +-3 to +-4 and a tiny graph.
    axis = dict(visible=False, range=[-1.35, 1.35], autorange=False, constrain="domain")
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        plot_bgcolor="white",
        xaxis=axis,
        yaxis=dict(axis, scaleanchor="x", scaleratio=1),
        legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0),
        hovermode="closest",
    )
    return fig


def _node_size(d: int) -> int:
    """Marker size (px) of a node: smaller for larger graphs so that 20 variables fit a pane."""
    return 30 if d <= 10 else 24 if d <= 15 else 21


def _node_trace(positions: Positions, names: Sequence[str], node_text: Sequence[str] | None = None) -> go.Scatter:
    xs = [positions[n][0] for n in names]
    ys = [positions[n][1] for n in names]
    size = _node_size(len(names))
    return go.Scatter(
        x=xs,
        y=ys,
        mode="markers+text",
        text=list(names),
        textposition="middle center",
        textfont=dict(size=12 if size >= 30 else 10 if size >= 24 else 9),
        marker=dict(size=size, color=NODE_COLOR, line=dict(color="#333333", width=1.5)),
        hovertext=list(node_text) if node_text is not None else list(names),
        hoverinfo="text",
        name="variables",
        showlegend=False,
    )


def _arrow(start, end, color: str, width: float) -> dict[str, Any]:
    """A plotly annotation drawing only an arrowhead at ``end``, pointing along ``start -> end``."""
    return dict(
        x=end[0], y=end[1], ax=start[0], ay=start[1],
        xref="x", yref="y", axref="x", ayref="y",
        showarrow=True, arrowhead=2, arrowsize=1.1, arrowwidth=max(1.0, width * 0.6),
        arrowcolor=color, standoff=0, text="",
    )


def graph_figure(
    edge_probs: pd.DataFrame,
    true_adjacency: Any | None = None,
    threshold: float = 0.05,
    layout_seed: int = 0,
    *,
    positions: Positions | None = None,
    title: str | None = "Posterior graph",
    height: int = 420,
) -> go.Figure:
    """Draw the edge posterior ``P(i -> j)`` as a graph.

    Every edge with probability ``>= threshold`` becomes one line trace whose width
    (``1 + 7 p``; ``1 + 4 p`` above 10 variables) and colour (``EDGE_COLORSCALE`` at ``p``)
    grow with its probability, with an arrowhead at the effect. With ``true_adjacency`` ``(d, d)``, true edges are solid (legend
    "true edge"), edges absent from the truth dotted ("spurious edge"), and true edges below the
    threshold thin grey dashes ("missed true edge"); nodes are placed by the layout of the true
    graph (the same as :func:`true_graph_figure`). Each edge trace carries
    ``customdata = [[cause, effect, p], ...]`` and ``meta = {"cause", "effect", "probability",
    "true"}``.

    Args:
        edge_probs: ``(d, d)`` DataFrame, rows = causes, columns = effects (``Posterior.edge_probs``).
        true_adjacency: optional ``(d, d)`` 0/1 ground truth.
        threshold: smallest probability drawn, in ``[0, 1]``.
        layout_seed: seed of the force-directed layout (ignored when ``positions`` is given).
        positions: optional ``{name: (x, y)}`` to reuse a layout.
    """
    frame = _edge_prob_frame(edge_probs)
    names = list(frame.columns)
    d = len(names)
    if not 0.0 <= float(threshold) <= 1.0:
        raise MetaCaDIInputError(f"threshold must be in [0, 1]; got {threshold}.")
    truth = _adjacency(true_adjacency, d) if true_adjacency is not None else None
    if positions is None:
        positions = node_positions(names, truth.astype(int) if truth is not None else None, layout_seed)
    missing = [n for n in names if n not in positions]
    if missing:
        raise MetaCaDIInputError(f"positions lacks coordinates for {missing}.")

    probs = frame.to_numpy().copy()
    np.fill_diagonal(probs, 0.0)
    drawn = probs >= max(float(threshold), 1e-12)
    max_extra_width = 7.0 if d <= 10 else 4.0  # thinner edges (and arrowheads) in larger graphs
    traces: list[Any] = []  # plain dicts: go.Figure validates them once, not twice
    annotations = []
    legend_shown: set[str] = set()

    def add_edge(i: int, j: int, p: float, kind: str, color: str) -> None:
        offset = 0.03 if (drawn[j, i] or (truth is not None and truth[j, i])) else 0.0
        a, b = _edge_segment(positions[names[i]], positions[names[j]], shrink=0.1, offset=offset)
        if kind == "missed true edge":
            width, dash = 1.5, "dash"
        else:
            width, dash = 1.0 + max_extra_width * p, ("dot" if kind == "spurious edge" else "solid")
        traces.append(
            dict(
                type="scatter",
                x=[a[0], b[0]],
                y=[a[1], b[1]],
                mode="lines",
                line=dict(color=color, width=width, dash=dash),
                name=kind,
                legendgroup=kind,
                showlegend=kind not in legend_shown and truth is not None,
                customdata=[[names[i], names[j], p]] * 2,
                hovertemplate="%{customdata[0]} → %{customdata[1]}: P = %{customdata[2]:.2f}<extra></extra>",
                meta={"cause": names[i], "effect": names[j], "probability": float(p),
                      "true": None if truth is None else bool(truth[i, j])},
            )
        )
        legend_shown.add(kind)
        annotations.append(_arrow(a, b, color, width))

    order = sorted(zip(*np.nonzero(drawn)), key=lambda ij: probs[ij])  # strongest drawn last (on top)
    colors = _edge_colors([probs[ij] for ij in order])
    for (i, j), color in zip(order, colors):
        kind = "edge" if truth is None else ("true edge" if truth[i, j] else "spurious edge")
        add_edge(int(i), int(j), float(probs[i, j]), kind, color)
    if truth is not None:
        for i, j in zip(*np.nonzero(truth & ~drawn)):
            add_edge(int(i), int(j), float(probs[i, j]), "missed true edge", MISSED_COLOR)

    # An invisible marker carries the colour bar that explains edge colour = probability.
    low, high = _edge_colors([0.0, 1.0])
    traces.append(
        go.Scatter(
            x=[None], y=[None], mode="markers", name="edge probability", showlegend=False, hoverinfo="skip",
            marker=dict(
                color=[0.0], cmin=0.0, cmax=1.0, showscale=True,
                colorscale=[[0, low], [1, high]],
                # horizontal, in the title row: a vertical bar would take width from the drawing
                colorbar=dict(
                    title=dict(text="P(edge)", side="top"), orientation="h", thickness=10, len=0.35,
                    x=1.0, xanchor="right", y=1.0, yanchor="bottom",
                ),
            ),
        )
    )
    traces.append(_node_trace(positions, names))
    fig = go.Figure(data=traces, layout=dict(annotations=annotations))
    return _base_layout(fig, title, height)


def true_graph_figure(
    adjacency: Any,
    names: Sequence[str] | None = None,
    layout_seed: int = 0,
    *,
    positions: Positions | None = None,
    highlight: Any | None = None,
    downstream: Any | None = None,
    title: str | None = "Ground-truth graph",
    height: int = 420,
) -> go.Figure:
    """Draw a DAG ``A`` (``A[i, j] = 1`` iff ``i -> j``): one line trace per edge (legend "true
    edge", ``meta = {"cause", "effect"}``), an arrowhead at each effect, and the nodes.

    Node placement is :func:`node_positions` of ``adjacency`` with ``layout_seed``, identical to
    :func:`graph_figure` given the same truth. ``highlight`` (a ``(d,)`` mask or names) fills
    those nodes in red, e.g. the targets of an experiment; ``downstream`` fills nodes in light
    orange, e.g. the targets' descendants (:func:`descendant_mask`), whose distributions the
    intervention moves as well. The node hover text names each node's role.
    """
    array = np.asarray(adjacency.to_numpy() if isinstance(adjacency, pd.DataFrame) else adjacency)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise MetaCaDIInputError(f"adjacency must be a square (d, d) matrix; got shape {array.shape}.")
    if names is None and isinstance(adjacency, pd.DataFrame):
        names = [str(c) for c in adjacency.columns]
    names = check_names(names, array.shape[0])
    truth = _adjacency(array, len(names), name="adjacency")
    if positions is None:
        positions = node_positions(names, truth.astype(int), layout_seed)
    fig = go.Figure()
    annotations = []
    for k, (i, j) in enumerate(zip(*np.nonzero(truth))):
        offset = 0.03 if truth[j, i] else 0.0
        a, b = _edge_segment(positions[names[i]], positions[names[j]], shrink=0.1, offset=offset)
        fig.add_trace(
            go.Scatter(
                x=[a[0], b[0]], y=[a[1], b[1]], mode="lines", line=dict(color="#333333", width=2),
                name="true edge", legendgroup="true edge", showlegend=False,
                hovertemplate=f"{names[i]} → {names[j]}<extra></extra>",
                meta={"cause": names[i], "effect": names[j]},
            )
        )
        annotations.append(_arrow(a, b, "#333333", 2.0))
    nodes = _node_trace(positions, names)
    if highlight is not None or downstream is not None:
        hit = _target_mask(highlight, names, "highlight") if highlight is not None else np.zeros(len(names), bool)
        below = _target_mask(downstream, names, "downstream") if downstream is not None else np.zeros(len(names), bool)
        below = below & ~hit
        nodes.marker.color = [TRUE_COLOR if h else DESCENDANT_COLOR if b else NODE_COLOR for h, b in zip(hit, below)]
        nodes.hovertext = [f"{n}: target" if h else f"{n}: descendant of a target" if b else n
                           for n, h, b in zip(names, hit, below)]
    fig.add_trace(nodes)
    _base_layout(fig, title, height)
    fig.update_layout(annotations=annotations, showlegend=False)
    return fig


def edge_heatmap(
    edge_probs: pd.DataFrame,
    true_adjacency: Any | None = None,
    *,
    title: str | None = "Edge probabilities P(cause → effect)",
    height: int = 420,
    cell_text: bool | None = None,
) -> go.Figure:
    """Heatmap of ``P(i -> j)``: rows = causes, columns = effects, the diagonal left blank.

    Trace 0 is the ``go.Heatmap`` (``z`` = the probabilities, ``None`` on the diagonal). With
    ``true_adjacency``, each true edge's cell is outlined by a cell-sized rectangle
    (``layout.shapes``, named "true edge", shown once in the legend), and an invisible trace
    "true edge" (``x`` = effects, ``y`` = causes) carries the hover text. ``cell_text`` writes
    each probability into its cell (default: only up to 10 variables, where the numbers fit).
    """
    frame = _edge_prob_frame(edge_probs)
    names = list(frame.columns)
    d = len(names)
    z = frame.to_numpy().astype(object)
    for k in range(d):
        z[k, k] = None
    if cell_text is None:
        cell_text = d <= 10
    tick_size = 12 if d <= 10 else 10 if d <= 16 else 8
    heat = dict(
        type="heatmap", z=z.tolist(), x=names, y=names, zmin=0.0, zmax=1.0, colorscale=EDGE_COLORSCALE,
        name="P(edge)", colorbar=dict(title=dict(text="P(edge)"), thickness=12),
        hovertemplate="%{y} → %{x}: P = %{z:.3f}<extra></extra>", xgap=1, ygap=1,
    )
    if cell_text:
        heat.update(texttemplate="%{z:.2f}", textfont=dict(size=10 if d <= 8 else 8))
    traces: list[dict[str, Any]] = [heat]
    shapes = []
    if true_adjacency is not None:
        truth = _adjacency(true_adjacency, d)
        rows, cols = np.nonzero(truth)
        for k, (i, j) in enumerate(zip(rows, cols)):
            # numeric coordinates on a category axis: category k sits at k, its cell spans k +- 0.5
            shapes.append(dict(
                type="rect", xref="x", yref="y", x0=int(j) - 0.5, x1=int(j) + 0.5, y0=int(i) - 0.5,
                y1=int(i) + 0.5, line=dict(color=TRUE_COLOR, width=2.5 if d <= 10 else 1.5),
                fillcolor="rgba(0,0,0,0)", name="true edge", legendgroup="true edge", showlegend=k == 0,
            ))
        traces.append(dict(
            type="scatter", x=[names[j] for j in cols], y=[names[i] for i in rows], mode="markers",
            name="true edge", showlegend=False, marker=dict(size=1, opacity=0),
            hovertemplate="%{y} → %{x}: a true edge<extra></extra>",
        ))
    layout = dict(
        title=dict(text=title) if title else None, height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        xaxis=dict(title=dict(text="effect"), side="bottom", constrain="domain", tickfont=dict(size=tick_size),
                   tickangle=-90 if d > 10 else 0),
        yaxis=dict(title=dict(text="cause"), autorange="reversed", scaleanchor="x", constrain="domain",
                   tickfont=dict(size=tick_size)),
        plot_bgcolor="white", shapes=shapes,
        legend=dict(orientation="h", yanchor="top", y=-0.15, xanchor="left", x=0),
    )
    return go.Figure(data=traces, layout=layout)


def target_bar_chart(
    target_probs: pd.Series,
    true_targets: Any | None = None,
    intended_targets: Any | None = None,
    *,
    descendants: Any | None = None,
    title: str | None = "Intervention-target probabilities",
    height: int = 320,
) -> go.Figure:
    """Bar chart of ``P(r_j = 1 | data)`` for every variable ``j`` (``Posterior.target_probs``).

    Trace 0 is the ``go.Bar`` (``x`` = names, ``y`` = probabilities; true targets' bars red).
    With ``true_targets`` (a ``(d,)`` mask, a bool Series or a list of names) a marker trace
    "true target" puts a star above each true target; with ``intended_targets`` as well, targets
    that were hit without being intended get a separate "off-target" marker. ``descendants`` (a
    mask or names, e.g. :func:`descendant_mask`) marks the variables downstream of the targets,
    whose distributions the intervention also moves, with a "descendant of a target" triangle
    and light-orange bars. A dashed line marks ``P = 0.5``.
    """
    if not isinstance(target_probs, pd.Series):
        array = np.asarray(target_probs, dtype=float)
        if array.ndim != 1:
            raise MetaCaDIInputError(f"target_probs must be a (d,) vector or Series; got shape {array.shape}.")
        target_probs = pd.Series(array, index=check_names(None, array.shape[0]))
    probs = target_probs.astype(float)
    names = [str(n) for n in probs.index]
    values = probs.to_numpy()
    if not np.isfinite(values).all() or values.min(initial=0) < 0 or values.max(initial=0) > 1:
        raise MetaCaDIInputError("target_probs must hold finite probabilities in [0, 1].")
    truth = _target_mask(true_targets, names, "true_targets") if true_targets is not None else np.zeros(len(names), bool)
    below = _target_mask(descendants, names, "descendants") if descendants is not None else np.zeros(len(names), bool)
    below = below & ~truth
    # Plain dicts, validated once by go.Figure: this chart is redrawn on every slider move.
    traces: list[dict[str, Any]] = [
        dict(
            type="bar", x=names, y=values.tolist(), name="P(target)",
            marker=dict(color=[TRUE_COLOR if hit else DESCENDANT_COLOR if low else BAR_COLOR
                               for hit, low in zip(truth, below)]),
            hovertemplate="%{x}: P(target) = %{y:.3f}<extra></extra>",
        )
    ]
    if true_targets is not None:
        off = np.zeros(len(names), dtype=bool)
        if intended_targets is not None:
            off = truth & ~_target_mask(intended_targets, names, "intended_targets")
        for label, mask, color, symbol in (
            ("true target", truth & ~off, TRUE_COLOR, "star"),
            ("off-target", off, OFF_TARGET_COLOR, "star-diamond"),
        ):
            if label == "off-target" and not mask.any():
                continue
            traces.append(
                dict(
                    type="scatter",
                    x=[n for n, hit in zip(names, mask) if hit],
                    y=[min(float(v) + 0.07, 1.1) for v, hit in zip(values, mask) if hit],
                    mode="markers", name=label, marker=dict(symbol=symbol, size=14, color=color),
                    hoverinfo="skip",
                )
            )
    if below.any():
        traces.append(
            dict(
                type="scatter",
                x=[n for n, low in zip(names, below) if low],
                y=[min(float(v) + 0.07, 1.1) for v, low in zip(values, below) if low],
                mode="markers", name="descendant of a target",
                marker=dict(symbol="triangle-down", size=11, color="#e6550d"), hoverinfo="skip",
            )
        )
    layout = dict(
        title=dict(text=title) if title else None, height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=40),
        yaxis=dict(title=dict(text="P(intervened)"), range=[0, 1.15]), xaxis=dict(type="category"),
        plot_bgcolor="white", bargap=0.25,
        legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="right", x=1),
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=0.5, y1=0.5,
                     line=dict(color="#888888", dash="dash", width=1))],
    )
    return go.Figure(data=traces, layout=layout)


def _calibration_inputs(true_targets: Any, target_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flat 0/1 truth and probabilities from two arrays of the same ``(T, d)`` or ``(d,)`` shape."""
    truth, _ = _to_numpy(true_targets, "true_targets")
    probs, _ = _to_numpy(target_probs, "target_probs")
    if truth.ndim not in (1, 2):
        raise MetaCaDIInputError(f"true_targets must have shape (n_experiments, d) or (d,); got {truth.shape}.")
    if probs.shape != truth.shape:
        raise MetaCaDIInputError(
            f"target_probs has shape {probs.shape} but true_targets has shape {truth.shape}; "
            "they must be the same (one probability per experiment and variable)."
        )
    if truth.size == 0:
        raise MetaCaDIInputError("true_targets is empty; need at least one experiment and one variable.")
    if not np.isin(truth, (0, 1)).all():
        raise MetaCaDIInputError(f"true_targets must be 0/1 or boolean; got values {np.unique(truth)[:5]}.")
    probs = probs.astype(float)
    if not np.isfinite(probs).all() or probs.min() < 0 or probs.max() > 1:
        raise MetaCaDIInputError("target_probs must hold finite probabilities in [0, 1].")
    return truth.astype(bool).ravel(), probs.ravel()


def target_calibration(
    true_targets: Any,
    target_probs: Any,
    n_bins: int = 10,
    *,
    title: str | None = "Calibration of the target probabilities",
    height: int = 420,
) -> go.Figure:
    """Reliability diagram: does ``P(target) = p`` come true for a fraction ``p`` of the variables?

    The (experiment, variable) pairs of ``true_targets`` (0/1) and ``target_probs`` (both
    ``(T, d)`` or ``(d,)``, e.g. ``np.stack([p.target_probs for p in model.adapt_many(tasks)])``)
    are pooled and put into ``n_bins`` equal-width bins of the predicted probability
    (``[k / n_bins, (k + 1) / n_bins)``, the last bin closed). Top panel: for every non-empty bin,
    the mean predicted probability (``x``) against the fraction of its pairs that are true
    targets (``y``), beside the diagonal of perfect calibration. A point below the diagonal is an
    over-confident bin (fewer targets than predicted), one above it an under-confident bin. Bottom
    panel: how many pairs each bin holds, so that a point resting on a handful of pairs is seen
    as such.

    Traces: 0 "perfectly calibrated" (the diagonal); 1 "observed" (one point per non-empty bin,
    ``customdata`` rows ``[count, bin start, bin end]``); 2 "pairs per bin" (a bar per bin, empty
    bins included, ``x`` = bin centres).
    """
    from plotly.subplots import make_subplots

    truth, probs = _calibration_inputs(true_targets, target_probs)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise MetaCaDIInputError(f"n_bins must be a positive integer; got {n_bins!r}.")
    n_bins = int(n_bins)
    edges = np.arange(n_bins + 1) / n_bins  # k / n_bins, the double nearest to each edge
    # compared with the edges (floor(p * n_bins) would put 0.57 into [0.56, 0.57))
    index = np.clip(np.searchsorted(edges, probs, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    filled = counts > 0
    hits = np.bincount(index, weights=truth.astype(float), minlength=n_bins)
    summed = np.bincount(index, weights=probs, minlength=n_bins)
    mean_predicted = summed[filled] / counts[filled]
    observed = hits[filled] / counts[filled]

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=[0.0, 1.0], y=[0.0, 1.0], mode="lines", name="perfectly calibrated",
                             line=dict(color="#888888", dash="dash", width=1), hoverinfo="skip"), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=mean_predicted.tolist(), y=observed.tolist(), mode="markers", name="observed",
        marker=dict(size=10, color=BAR_COLOR, line=dict(color="#ffffff", width=1)),
        customdata=np.column_stack([counts[filled], edges[:-1][filled], edges[1:][filled]]).tolist(),
        hovertemplate=("bin [%{customdata[1]:.2f}, %{customdata[2]:.2f}]: mean P(target) %{x:.3f}, "
                       "targets %{y:.3f} of %{customdata[0]} pairs<extra></extra>"),
    ), row=1, col=1)
    fig.add_trace(go.Bar(
        x=((edges[:-1] + edges[1:]) / 2).tolist(), y=counts.tolist(), width=1.0 / n_bins, name="pairs per bin",
        marker=dict(color="#bbbbbb", line=dict(color="#ffffff", width=1)), showlegend=False,
        text=[str(c) for c in counts], textposition="outside", cliponaxis=False, textfont=dict(size=10),
        hovertemplate="bin centre %{x:.2f}: %{y} pairs<extra></extra>",
    ), row=2, col=1)
    fig.update_xaxes(range=[-0.02, 1.02], gridcolor="#eeeeee")
    fig.update_xaxes(title_text="predicted P(target)", row=2, col=1)
    fig.update_yaxes(range=[-0.03, 1.03], title_text="fraction that are targets", gridcolor="#eeeeee", row=1, col=1)
    fig.update_yaxes(title_text="pairs", range=[0, 1.3 * counts.max()], gridcolor="#eeeeee", row=2, col=1)  # room for the counts
    fig.update_layout(
        title=title, height=height, plot_bgcolor="white", margin=dict(l=10, r=10, t=40 if title else 10, b=40),
        legend=dict(orientation="h", yanchor="top", y=-0.14, xanchor="right", x=1), bargap=0,
    )
    return fig


def training_curve(
    history: Sequence[Mapping[str, float]] | pd.DataFrame,
    terms: Sequence[str] | None = None,
    *,
    smoothing: int = 1,
    title: str | None = "Meta-training loss",
    height: int = 320,
) -> go.Figure:
    """Loss terms against the training step (``MetaCaDI.history_``: one dict per step).

    One line per term (default: every column, ``"loss"`` first and thicker); step numbers are
    1-based. ``smoothing > 1`` plots a trailing moving average over that many steps.
    """
    frame = history if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))
    if frame.empty:
        raise MetaCaDIInputError("history is empty: there is no training step to plot.")
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, np.integer)) or smoothing < 1:
        raise MetaCaDIInputError(f"smoothing must be a positive integer; got {smoothing!r}.")
    if terms is None:
        terms = sorted(frame.columns, key=lambda c: (c != "loss", list(frame.columns).index(c)))
    unknown = [t for t in terms if t not in frame.columns]
    if unknown:
        raise MetaCaDIInputError(f"history has no terms {unknown}; it has {list(frame.columns)}.")
    steps = np.arange(1, len(frame) + 1)
    fig = go.Figure()
    for term in terms:
        values = frame[term].astype(float)
        if smoothing > 1:
            values = values.rolling(smoothing, min_periods=1).mean()
        fig.add_trace(
            go.Scatter(
                x=steps.tolist(), y=values.tolist(), mode="lines", name=term,
                line=dict(width=2.5 if term == "loss" else 1.2),
            )
        )
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=70),
        xaxis=dict(title="step"), yaxis=dict(title="value"), plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0),
    )
    return fig


def intervention_figure(
    samples: pd.DataFrame,
    do: Mapping[str, float] | None = None,
    truth: pd.DataFrame | None = None,
    *,
    level: float = 0.9,
    title: str | None = None,
    height: int = 340,
) -> go.Figure:
    """Predicted interventional distribution per variable: mean and central ``level`` band.

    ``samples`` is the ``(n, d)`` DataFrame of :func:`metacadi.whatif.predict_intervention`.
    Trace 0 ("predicted") has a marker at each variable's mean with an asymmetric error bar to
    the band's quantiles; with ``truth`` (samples of the true interventional distribution, same
    columns) trace 1 ("true") shows the same summary beside it. Clamped variables (the keys of
    ``do``) get a diamond marker labelled ``do``.
    """
    if not isinstance(samples, pd.DataFrame) or samples.empty:
        raise MetaCaDIInputError("samples must be a non-empty DataFrame (rows = samples, columns = variables).")
    if not 0.0 < float(level) < 1.0:
        raise MetaCaDIInputError(f"level must be in (0, 1); got {level!r}.")
    names = [str(c) for c in samples.columns]
    if truth is not None and [str(c) for c in truth.columns] != names:
        raise MetaCaDIInputError(f"truth must have the same columns as samples ({names}); got {list(truth.columns)}.")
    do = dict(do or {})
    tail = (1.0 - float(level)) / 2.0
    percent = f"{100 * float(level):g}%"

    def summary_trace(frame: pd.DataFrame, label: str, color: str, offset: float) -> dict[str, Any]:
        mean = frame.mean().to_numpy()
        lower, upper = frame.quantile(tail).to_numpy(), frame.quantile(1.0 - tail).to_numpy()
        return dict(
            type="scatter", x=[i + offset for i in range(len(names))], y=mean.tolist(), mode="markers", name=label,
            marker=dict(color=color, size=9),
            error_y=dict(type="data", symmetric=False, array=(upper - mean).tolist(), arrayminus=(mean - lower).tolist(),
                         color=color, thickness=1.5, width=4),
            customdata=np.column_stack([lower, upper]).tolist(), text=names,
            hovertemplate=f"%{{text}} ({label}): mean %{{y:.3f}}, {percent} band [%{{customdata[0]:.3f}}, %{{customdata[1]:.3f}}]<extra></extra>",
        )

    traces = [summary_trace(samples, "predicted", BAR_COLOR, -0.12 if truth is not None else 0.0)]
    if truth is not None:
        traces.append(summary_trace(truth, "true", TRUE_COLOR, 0.12))
    clamped = [i for i, name in enumerate(names) if name in do]
    if clamped:
        traces.append(dict(
            type="scatter", x=clamped, y=[float(do[names[i]]) for i in clamped], mode="markers+text", name="do",
            marker=dict(symbol="diamond", size=12, color="#333333"), text=["do"] * len(clamped), textposition="top center",
            hoverinfo="skip",
        ))
    if title is None:
        title = "do(" + ", ".join(f"{k} = {float(v):g}" for k, v in do.items()) + ")" if do else "Observational prediction"
    layout = dict(
        title=dict(text=title), height=height, margin=dict(l=10, r=10, t=40, b=40), plot_bgcolor="white",
        xaxis=dict(tickmode="array", tickvals=list(range(len(names))), ticktext=names, range=[-0.5, len(names) - 0.5]),
        yaxis=dict(title=dict(text=f"value (mean and {percent} band)"), gridcolor="#eeeeee"),
        legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="right", x=1),
    )
    return go.Figure(data=traces, layout=layout)


def graph_learning_curve(snapshots: pd.DataFrame, *, height: int = 320, title: str | None = None) -> go.Figure:
    """How the graph posterior sharpens over training, from callback snapshots.

    ``snapshots`` has a ``step`` column and any of ``order_entropy`` (mean binary entropy of
    ``P(i precedes j)``, ``log 2`` for a uniform order), ``p_true_edges`` / ``p_non_edges`` (mean
    edge probability over the true edges / the non-edges), ``expected_edges`` and
    ``true_edges``. Left panel: the order entropy; right panel: the edge probabilities, with
    the expected number of edges per sample against the truth on a second axis.
    """
    from plotly.subplots import make_subplots

    if not isinstance(snapshots, pd.DataFrame) or "step" not in snapshots.columns or snapshots.empty:
        raise MetaCaDIInputError("snapshots must be a non-empty DataFrame with a 'step' column.")
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("order entropy (nats per pair)", "edge posterior"),
        specs=[[{}, {"secondary_y": True}]],
    )
    steps = snapshots["step"].tolist()
    if "order_entropy" in snapshots:
        fig.add_trace(go.Scatter(x=steps, y=snapshots["order_entropy"].tolist(), name="order entropy",
                                 mode="lines+markers"), row=1, col=1)
        fig.add_hline(y=float(np.log(2)), line_dash="dot", line_color="grey", row=1, col=1,
                      annotation_text="uniform order", annotation_position="bottom right")
    for column, label, colour in (("p_true_edges", "mean P, true edges", "#2ca02c"),
                                  ("p_non_edges", "mean P, non-edges", "#d62728")):
        if column in snapshots:
            fig.add_trace(go.Scatter(x=steps, y=snapshots[column].tolist(), name=label, mode="lines+markers",
                                     line=dict(color=colour)), row=1, col=2, secondary_y=False)
    for column, label, dash in (("expected_edges", "edges per sample", "solid"), ("true_edges", "true edges", "dot")):
        if column in snapshots:
            fig.add_trace(go.Scatter(x=steps, y=snapshots[column].tolist(), name=label, mode="lines",
                                     line=dict(color="#7f7f7f", dash=dash)), row=1, col=2, secondary_y=True)
    fig.update_yaxes(range=[0, 0.75], row=1, col=1)
    fig.update_yaxes(range=[0, 1], title_text="probability", row=1, col=2, secondary_y=False)
    fig.update_yaxes(title_text="edges", rangemode="tozero", row=1, col=2, secondary_y=True)
    fig.update_xaxes(title_text="step")
    fig.update_layout(
        title=title, height=height, plot_bgcolor="white", margin=dict(l=10, r=10, t=50 if title else 30, b=70),
        legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0),
    )
    return fig
