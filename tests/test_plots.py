"""The figure factories in metacadi.plots draw what they are given."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from metacadi import plots
from metacadi.errors import MetaCaDIInputError

NAMES = ["A", "B", "C", "D"]
TRUTH = np.array(
    [
        [0, 1, 1, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
)


@pytest.fixture
def edge_probs() -> pd.DataFrame:
    probs = np.array(
        [
            [0.0, 0.9, 0.02, 0.0],  # A->B true & confident, A->C true but below threshold
            [0.1, 0.0, 0.6, 0.0],  # B->A spurious, B->C true
            [0.0, 0.0, 0.0, 0.3],  # C->D spurious
            [0.0, 0.0, 0.0, 0.0],
        ]
    )
    return pd.DataFrame(probs, index=NAMES, columns=NAMES)


def edge_traces(fig: go.Figure) -> list:
    return [t for t in fig.data if t.mode == "lines"]


def test_graph_figure_draws_edges_above_threshold_with_width_growing_with_probability(edge_probs):
    fig = plots.graph_figure(edge_probs, threshold=0.05)
    edges = {(t.meta["cause"], t.meta["effect"]): t for t in edge_traces(fig)}
    assert set(edges) == {("A", "B"), ("B", "A"), ("B", "C"), ("C", "D")}
    widths = {pair: trace.line.width for pair, trace in edges.items()}
    assert widths[("A", "B")] > widths[("B", "C")] > widths[("C", "D")] > widths[("B", "A")]
    assert edges[("B", "C")].customdata[0][2] == pytest.approx(0.6)
    assert len(fig.layout.annotations) == 4  # one arrowhead per edge
    nodes = [t for t in fig.data if t.name == "variables"]
    assert list(nodes[0].text) == NAMES


def test_graph_figure_tells_true_spurious_and_missed_edges_apart(edge_probs):
    fig = plots.graph_figure(edge_probs, true_adjacency=TRUTH, threshold=0.05)
    kinds = {(t.meta["cause"], t.meta["effect"]): t.name for t in edge_traces(fig)}
    assert kinds == {
        ("A", "B"): "true edge",
        ("B", "C"): "true edge",
        ("B", "A"): "spurious edge",
        ("C", "D"): "spurious edge",
        ("A", "C"): "missed true edge",
    }
    dashes = {t.name: t.line.dash for t in edge_traces(fig)}
    assert dashes["true edge"] == "solid" and dashes["spurious edge"] == "dot"
    assert len({dashes["true edge"], dashes["spurious edge"], dashes["missed true edge"]}) == 3


def test_graph_figure_threshold_hides_weak_edges(edge_probs):
    fig = plots.graph_figure(edge_probs, threshold=0.5)
    assert {(t.meta["cause"], t.meta["effect"]) for t in edge_traces(fig)} == {("A", "B"), ("B", "C")}


def test_truth_and_posterior_share_node_positions(edge_probs):
    posterior = plots.graph_figure(edge_probs, true_adjacency=TRUTH, layout_seed=3)
    truth = plots.true_graph_figure(TRUTH, NAMES, layout_seed=3)
    p_nodes = next(t for t in posterior.data if t.name == "variables")
    t_nodes = next(t for t in truth.data if t.name == "variables")
    np.testing.assert_allclose(p_nodes.x, t_nodes.x)
    np.testing.assert_allclose(p_nodes.y, t_nodes.y)


def test_true_graph_figure_has_one_trace_per_edge_and_highlights_targets():
    fig = plots.true_graph_figure(TRUTH, NAMES, highlight=["C"])
    assert {(t.meta["cause"], t.meta["effect"]) for t in edge_traces(fig)} == {("A", "B"), ("A", "C"), ("B", "C")}
    nodes = next(t for t in fig.data if t.name == "variables")
    assert nodes.marker.color[2] == plots.TRUE_COLOR
    assert nodes.marker.color[0] != plots.TRUE_COLOR


def test_edge_heatmap_values_blank_diagonal_and_true_edge_marks(edge_probs):
    fig = plots.edge_heatmap(edge_probs, true_adjacency=TRUTH)
    heat = fig.data[0]
    assert isinstance(heat, go.Heatmap)
    assert heat.z[0][1] == pytest.approx(0.9) and heat.z[1][2] == pytest.approx(0.6)
    assert all(heat.z[k][k] is None for k in range(4))
    assert list(heat.x) == NAMES and list(heat.y) == NAMES
    marks = fig.data[1]
    assert marks.name == "true edge"
    assert set(zip(marks.y, marks.x)) == {("A", "B"), ("A", "C"), ("B", "C")}
    # each outline is exactly one cell: category k spans k - 0.5 .. k + 0.5 on both axes
    outlined = {(NAMES[round(s.y0 + 0.5)], NAMES[round(s.x0 + 0.5)]) for s in fig.layout.shapes}
    assert outlined == {("A", "B"), ("A", "C"), ("B", "C")}
    assert all(s.x1 - s.x0 == 1 and s.y1 - s.y0 == 1 for s in fig.layout.shapes)
    assert sum(bool(s.showlegend) for s in fig.layout.shapes) == 1


def test_edge_heatmap_writes_cell_values_only_while_they_fit():
    small = plots.edge_heatmap(np.full((4, 4), 0.5))
    large = plots.edge_heatmap(np.full((20, 20), 0.5))
    assert small.data[0].texttemplate and not large.data[0].texttemplate


def test_graph_drawings_keep_their_range_whatever_the_pane_aspect(edge_probs):
    for fig in (plots.graph_figure(edge_probs, TRUTH), plots.true_graph_figure(TRUTH, NAMES)):
        assert list(fig.layout.xaxis.range) == [-1.35, 1.35] and list(fig.layout.yaxis.range) == [-1.35, 1.35]
        # "domain": the 1:1 aspect shrinks the drawing area; "range" would widen the range instead
        assert fig.layout.xaxis.constrain == "domain" and fig.layout.yaxis.constrain == "domain"


@pytest.mark.parametrize("d", [8, 12, 20])
def test_layered_layout_puts_causes_above_effects_and_keeps_nodes_apart(d):
    from metacadi.graphs import erdos_renyi_dag

    adjacency = erdos_renyi_dag(d, expected_degree=1.0, seed=d)
    names = [f"X{k}" for k in range(d)]
    positions = plots.node_positions(names, adjacency)
    xy = np.array([positions[n] for n in names])
    assert np.abs(xy).max() <= 1.0
    for i, j in zip(*np.nonzero(adjacency)):
        assert xy[i, 1] > xy[j, 1], f"edge {names[i]} -> {names[j]} does not point downwards"
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(d) * 9
    assert gaps.min() >= 2.0 / d - 1e-9, "two nodes overlap"
    assert plots.node_positions(names, adjacency) == positions  # deterministic


def test_descendants_are_marked_on_the_truth_and_the_target_chart():
    chain = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])  # A -> B -> C, D alone
    below = plots.descendant_mask(chain, ["A"], NAMES)
    assert below.tolist() == [False, True, True, False]
    truth = plots.true_graph_figure(chain, NAMES, highlight=["A"], downstream=below)
    colors = truth.data[-1].marker.color
    assert colors[0] == plots.TRUE_COLOR and colors[1] == colors[2] == plots.DESCENDANT_COLOR
    assert colors[3] == plots.NODE_COLOR
    chart = plots.target_bar_chart(pd.Series([0.9, 0.8, 0.2, 0.1], index=NAMES), ["A"], descendants=below)
    marks = {trace.name: list(trace.x) for trace in chart.data[1:]}
    assert marks["descendant of a target"] == ["B", "C"]


def test_target_bar_chart_marks_true_and_off_targets():
    probs = pd.Series([0.05, 0.8, 0.55, 0.1], index=NAMES)
    fig = plots.target_bar_chart(probs, true_targets=["B", "C"], intended_targets=["B"])
    bars = fig.data[0]
    assert list(bars.x) == NAMES
    np.testing.assert_allclose(bars.y, probs.to_numpy())
    assert bars.marker.color[1] == plots.TRUE_COLOR and bars.marker.color[0] == plots.BAR_COLOR
    marks = {t.name: list(t.x) for t in fig.data[1:]}
    assert marks == {"true target": ["B"], "off-target": ["C"]}


def test_target_bar_chart_accepts_a_boolean_mask_and_no_truth():
    probs = pd.Series([0.05, 0.8, 0.55, 0.1], index=NAMES)
    masked = plots.target_bar_chart(probs, true_targets=np.array([0, 0, 0, 1]))
    assert list(masked.data[1].x) == ["D"]
    plain = plots.target_bar_chart(probs)
    assert len(plain.data) == 1


def test_training_curve_one_line_per_term_loss_first():
    history = [{"reconstruction": 2.0, "loss": 3.0}, {"reconstruction": 1.0, "loss": 1.0}, {"reconstruction": 0.0, "loss": 2.0}]
    fig = plots.training_curve(history)
    assert [t.name for t in fig.data] == ["loss", "reconstruction"]
    assert list(fig.data[0].x) == [1, 2, 3]
    assert list(fig.data[0].y) == [3.0, 1.0, 2.0]
    smooth = plots.training_curve(history, terms=["loss"], smoothing=2)
    np.testing.assert_allclose(smooth.data[0].y, [3.0, 2.0, 1.5])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: plots.graph_figure(e.iloc[:, :3]), "square"),
        (lambda e: plots.graph_figure(e * 2), r"\[0, 1\]"),
        (lambda e: plots.graph_figure(e, true_adjacency=np.zeros((3, 3))), r"\(4, 4\)"),
        (lambda e: plots.graph_figure(e, threshold=1.5), "threshold"),
        (lambda e: plots.edge_heatmap(e, true_adjacency=np.full((4, 4), 2)), "0 and 1"),
        (lambda e: plots.target_bar_chart(pd.Series([0.1, 0.2], index=["A", "B"]), true_targets=["Z"]), "unknown"),
        (lambda e: plots.training_curve([]), "empty"),
        (lambda e: plots.training_curve([{"loss": 1.0}], terms=["hsic"]), "hsic"),
    ],
)
def test_bad_input_raises_a_clear_error(edge_probs, call, message):
    with pytest.raises(MetaCaDIInputError, match=message):
        call(edge_probs)


# A small example worked by hand: 12 (experiment, variable) pairs in 4 bins of width 0.25.
CALIBRATION_TRUTH = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 1]])
CALIBRATION_PROBS = np.array([[0.9, 0.1, 0.2, 0.6], [0.05, 0.3, 0.8, 0.4], [0.0, 0.7, 0.25, 1.0]])


def test_target_calibration_bins_match_a_hand_computation():
    fig = plots.target_calibration(CALIBRATION_TRUTH, CALIBRATION_PROBS, n_bins=4)
    diagonal, observed, counts = fig.data
    assert diagonal.name == "perfectly calibrated" and list(diagonal.x) == [0.0, 1.0] == list(diagonal.y)
    # [0, .25): 0.1 0.2 0.05 0.0, no target | [.25, .5): 0.3 (target) 0.4 0.25 | [.5, .75): 0.6 (target) 0.7
    # [.75, 1]: 0.9 0.8 1.0, all targets (1.0 falls into the last, closed bin)
    np.testing.assert_allclose(observed.x, [0.35 / 4, 0.95 / 3, 0.65, 0.9])
    np.testing.assert_allclose(observed.y, [0.0, 1 / 3, 0.5, 1.0])
    assert [row[0] for row in observed.customdata] == [4, 3, 2, 3]
    np.testing.assert_allclose([row[1:] for row in observed.customdata], [[0, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1]])
    np.testing.assert_allclose(counts.x, [0.125, 0.375, 0.625, 0.875])
    assert list(counts.y) == [4, 3, 2, 3] and sum(counts.y) == CALIBRATION_TRUTH.size


def test_target_calibration_skips_empty_bins_and_pools_like_a_flat_vector():
    fig = plots.target_calibration(CALIBRATION_TRUTH, CALIBRATION_PROBS, n_bins=10)
    # 0.0 0.05 | 0.1 | 0.2 0.25 | 0.3 | 0.4 | - | 0.6 | 0.7 | 0.8 | 0.9 1.0: a value on an edge opens its bin
    assert list(fig.data[2].y) == [2, 1, 2, 1, 1, 0, 1, 1, 1, 2]
    assert len(fig.data[1].x) == 9  # the empty bin [0.5, 0.6) gets a bar of 0 but no point
    edge = plots.target_calibration([1, 0], [0.57, 0.56], n_bins=100)
    assert list(np.nonzero(edge.data[2].y)[0]) == [56, 57]
    flat = plots.target_calibration(CALIBRATION_TRUTH.ravel().astype(bool), CALIBRATION_PROBS.ravel(), n_bins=10)
    np.testing.assert_allclose(flat.data[1].y, fig.data[1].y)
    np.testing.assert_allclose(flat.data[1].x, fig.data[1].x)
    # one bin: a single point at the overall mean probability and the overall fraction of targets
    one = plots.target_calibration(CALIBRATION_TRUTH, CALIBRATION_PROBS, n_bins=1)
    np.testing.assert_allclose(one.data[1].x, [CALIBRATION_PROBS.mean()])
    np.testing.assert_allclose(one.data[1].y, [CALIBRATION_TRUTH.mean()])


@pytest.mark.parametrize(
    "truth, probs, n_bins, message",
    [
        (CALIBRATION_TRUTH, CALIBRATION_PROBS[:, :3], 10, r"shape \(3, 3\) but true_targets has shape \(3, 4\)"),
        (CALIBRATION_TRUTH[None], CALIBRATION_PROBS[None], 10, r"\(n_experiments, d\) or \(d,\)"),
        (np.zeros((0, 4)), np.zeros((0, 4)), 10, "empty"),
        (CALIBRATION_TRUTH * 2, CALIBRATION_PROBS, 10, "0/1"),
        (CALIBRATION_TRUTH, CALIBRATION_PROBS + 0.5, 10, r"\[0, 1\]"),
        (CALIBRATION_TRUTH, np.where(CALIBRATION_PROBS > 0.5, np.nan, CALIBRATION_PROBS), 10, "finite"),
        (CALIBRATION_TRUTH, CALIBRATION_PROBS, 0, "n_bins"),
        (CALIBRATION_TRUTH, CALIBRATION_PROBS, 2.5, "n_bins"),
    ],
)
def test_target_calibration_rejects_bad_input_with_a_clear_error(truth, probs, n_bins, message):
    with pytest.raises(MetaCaDIInputError, match=message):
        plots.target_calibration(truth, probs, n_bins=n_bins)
