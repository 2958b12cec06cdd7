"""The explorer's logic without a browser: training in the background, closed-form re-adaptation,
cancellation on system changes, errors shown on the page, the what-if view, the accuracy-vs-support-size
curve."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `widgets` lives next to `metacadi`

from widgets.explorer import Explorer, ExplorerSystem, SystemSpec, whatif_sample_count  # noqa: E402

# A tiny system; the small learning rate keeps the few-step model's target probabilities away from
# 0 and 1, so that a different support set visibly changes them (these tests check the wiring,
# not how well the model learns).
SMALL = dict(
    n_variables=4, n_steps=10, callback_every=5, min_update_seconds=0.0, n_metric_graphs=20,
    model_params={"learning_rate": 1e-3},
)


def wait_until(condition, timeout: float = 120.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def trained() -> Explorer:
    explorer = Explorer(**SMALL)
    explorer.wait(timeout=300)
    wait_until(lambda: explorer._target_metrics, message="the target metrics")
    yield explorer
    explorer.close()


def figure_role(pane) -> str | None:
    return pane.object.layout.meta


def test_training_publishes_every_view(trained):
    fit = trained.fit
    assert fit.done and fit.step == SMALL["n_steps"]
    assert trained.errors == []
    assert not trained.progress.visible
    assert "Trained" in trained.status.object
    assert [figure_role(p) for p in (trained.truth_pane, trained.posterior_pane, trained.heatmap_pane,
                                     trained.target_pane, trained.curve_pane, trained.whatif_pane,
                                     trained.support_pane)] == [
        "truth", "posterior", "heatmap", "targets", "training", "whatif", "support-curve"]
    heat = trained.heatmap_pane.object.data[0]
    np.testing.assert_allclose(heat.z[0][1], fit.model.edge_probs_.iloc[0, 1])
    assert len(trained.curve_pane.object.data[0].y) == SMALL["n_steps"]
    for label in ("Edge AUROC", "E-SHD", "Intv-AUROC", "Intv-AUPRC"):
        assert label in trained.metrics_pane.object
    assert list(trained.param.targets.objects) == fit.system.names


def test_support_size_change_readapts_without_retraining(trained):
    fit_before, run_before = trained.fit, trained.run
    trained.support_size = 10
    before = trained.target_probs.copy()
    chart_before = list(trained.target_pane.object.data[0].y)

    trained.support_size = 3
    after = trained.target_probs
    experiment = fit_before.system.experiment([], trained.experiment_seed)
    expected = fit_before.model.adapt(experiment.rows[:3], seed=trained.experiment_seed).target_probs
    np.testing.assert_allclose(after.to_numpy(), expected.to_numpy())
    assert not np.allclose(after.to_numpy(), before.to_numpy())
    assert list(trained.target_pane.object.data[0].y) != chart_before
    assert "(3 rows)" in trained.target_pane.object.layout.title.text
    assert trained.fit is fit_before and trained.run is run_before  # nothing retrained
    wait_until(lambda: "3 rows" in trained.metrics_pane.object and "Intv-AUROC (8 new" in trained.metrics_pane.object,
               message="Intv metrics at 3 rows")


def test_support_size_slices_one_cached_pool(trained):
    system = trained.fit.system
    first = system.experiment(["X1"], 5)
    assert system.experiment(["X1"], 5) is first
    assert first.rows.shape == (trained.pool_rows, 4)
    assert first.intended.tolist() == [False, True, False, False]


def test_chosen_targets_are_marked_on_the_chart(trained):
    trained.targets = ["X2"]
    marks = {trace.name: list(trace.x) for trace in trained.target_pane.object.data[1:]}
    assert "X2" in marks["true target"]
    trained.targets = []


def test_error_in_a_callback_shows_an_alert_and_the_session_survives(trained, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("adaptation exploded")

    monkeypatch.setattr(trained.fit.model, "adapt", broken)
    trained.support_size = 17
    assert trained.alert.visible
    assert "adaptation exploded" in trained.alert.object
    assert any("adaptation exploded" in message for message in trained.errors)

    monkeypatch.undo()
    trained.support_size = 18
    assert "(18 rows)" in trained.target_pane.object.layout.title.text


def test_system_change_cancels_the_running_training_and_starts_another():
    explorer = Explorer(**{**SMALL, "n_steps": 100_000})
    try:
        first = explorer.run
        wait_until(lambda: explorer.fit is not None, message="the first posterior")
        assert explorer.progress.visible and "Meta-training" in explorer.status.object
        assert not explorer.fit.done

        explorer.expected_degree = 1.5
        second = explorer.run
        assert second is not first and second.spec.expected_degree == 1.5
        assert first.cancelled
        assert first.finished.wait(120), "the cancelled training did not stop"
        assert first.cancelled_at_step is not None and first.cancelled_at_step < 100_000

        wait_until(lambda: explorer.fit is not None, message="the new run's first posterior")
        assert explorer.fit.generation == second.generation
        assert explorer.fit.system.spec.expected_degree == 1.5
        assert explorer.progress.visible
    finally:
        explorer.close()
    assert explorer.run.finished.wait(120)


def test_returning_to_a_trained_system_restores_it_from_the_cache():
    explorer = Explorer(**SMALL)
    try:
        explorer.wait(timeout=300)
        trained_model = explorer.fit.model
        explorer.intervention = "soft"
        explorer.wait(timeout=300)
        assert explorer.fit.model is not trained_model
        explorer.intervention = "hard"
        assert explorer.run.thread is None  # no training thread was started
        assert explorer.fit.done and explorer.fit.model is trained_model
    finally:
        explorer.close()


def test_changing_the_number_of_variables_updates_the_target_choices():
    explorer = Explorer(**SMALL)
    try:
        explorer.wait(timeout=300)
        explorer.targets = ["X3"]
        explorer.n_variables = 3
        explorer.wait(timeout=300)
        assert list(explorer.param.targets.objects) == ["X0", "X1", "X2"]
        assert explorer.widgets["targets"].options == ["X0", "X1", "X2"]
        assert explorer.targets == []
        assert len(explorer.target_probs) == 3
        # the what-if controls move to the new system's variables too
        assert explorer.whatif_variable in ["X0", "X1", "X2"]
        assert explorer.widgets["whatif_variable"].options == ["X0", "X1", "X2"]
        assert f"do({explorer.whatif_variable} = " in explorer.whatif_pane.object.layout.title.text
        assert list(explorer.whatif_pane.object.data[0].text) == ["X0", "X1", "X2"]
        assert explorer.param.expected_degree.bounds[1] == 1.0  # (d - 1) / 2 edges per node at most
    finally:
        explorer.close()


def test_a_failing_training_shows_an_alert():
    explorer = Explorer(**{**SMALL, "model_params": {"learning_rate": -1.0}})
    try:
        explorer.run.finished.wait(120)
        wait_until(lambda: explorer.alert.visible, message="the alert")
        assert "Meta-training failed" in explorer.alert.object
        assert "learning_rate" in explorer.alert.object
        assert not explorer.progress.visible
    finally:
        explorer.close()


def test_system_is_seeded():
    spec = SystemSpec(4, 1.0, "er", "hard", 0.2, seed=3)
    a, b = ExplorerSystem(spec, pool_rows=20), ExplorerSystem(spec, pool_rows=20)
    np.testing.assert_array_equal(a.graph, b.graph)
    np.testing.assert_array_equal(a.batch_rows, b.batch_rows)
    np.testing.assert_array_equal(a.experiment([], 4).rows, b.experiment([], 4).rows)
    assert not np.array_equal(a.experiment([], 4).rows, a.experiment([], 5).rows)


def test_edge_threshold_redraws_only_the_posterior_graph(trained):
    fit_before, heatmap_before = trained.fit, trained.heatmap_pane.object
    probs = fit_before.model.edge_probs_.to_numpy().copy()
    np.fill_diagonal(probs, 0.0)

    def drawn() -> set[tuple[str, str]]:
        return {(t.meta["cause"], t.meta["effect"]) for t in trained.posterior_pane.object.data
                if isinstance(t.meta, dict) and "cause" in t.meta and t.name != "missed true edge"}

    names = fit_before.system.names
    for threshold in (0.0, 0.5, 1.0):
        trained.edge_threshold = threshold
        expected = {(names[i], names[j]) for i, j in zip(*np.nonzero(probs >= max(threshold, 1e-12)))}
        assert drawn() == expected
        assert f"P ≥ {threshold:.2f}" in trained.posterior_pane.object.layout.title.text
    trained.edge_threshold = 0.5
    assert trained.fit is fit_before and trained.heatmap_pane.object is heatmap_before  # nothing else redone


def test_truth_marks_the_experiment_targets_and_their_descendants(trained):
    from metacadi import plots

    trained.targets = ["X0"]
    system = trained.fit.system
    experiment = system.experiment(["X0"], trained.experiment_seed)
    colors = list(trained.truth_pane.object.data[-1].marker.color)
    below = plots.descendant_mask(system.graph, experiment.targets, system.names)
    for name, hit, low, color in zip(system.names, experiment.targets, below, colors):
        expected = plots.TRUE_COLOR if hit else plots.DESCENDANT_COLOR if low else plots.NODE_COLOR
        assert color == expected, name
    # the support-size slider keeps the experiment, so the graph is not sent again; a new
    # experiment redraws it
    drawn = trained.truth_pane.object
    trained.support_size = 7 if trained.support_size != 7 else 8
    assert trained.truth_pane.object is drawn
    trained.targets = []
    assert trained.truth_pane.object is not drawn


def test_metrics_explain_themselves(trained):
    from widgets.explorer import METRIC_HELP

    for name, text in METRIC_HELP.items():
        assert f'title="{text}"' in trained.metrics_pane.object.replace("&#x27;", "'"), name


def test_whatif_predicts_from_the_trained_model_without_retraining(trained):
    from metacadi.whatif import predict_intervention

    fit_before, run_before, errors_before = trained.fit, trained.run, len(trained.errors)
    system = fit_before.system
    assert [t.name for t in trained.whatif_pane.object.data] == ["predicted", "true", "do"]

    trained.whatif_variable = "X1"  # a new variable: its own slider range and default value
    start, end, step = system.value_range("X1")
    slider = trained.widgets["whatif_value"]
    assert (slider.start, slider.end, slider.step) == (start, end, step)
    assert (trained.whatif_variable, trained.whatif_value) == system.default_do("X1")
    assert start < trained.whatif_value < end

    trained.whatif_value = end
    fig = trained.whatif_pane.object
    assert fig.layout.title.text.startswith(f"do(X1 = {end:g})")
    assert fig.layout.meta == "whatif"
    n = whatif_sample_count(len(system.names), trained.whatif_samples)
    expected = predict_intervention(fit_before.model, {"X1": end}, n_samples=n, seed=0).mean()
    np.testing.assert_allclose(fig.data[0].y, expected.to_numpy())
    assert fig.data[2].y[0] == end  # the do-marker
    truth = fig.data[1].y
    assert np.isclose(truth[1], end)  # the simulator holds X1 at the do-value too
    assert trained.fit is fit_before and trained.run is run_before  # nothing retrained
    assert len(trained.errors) == errors_before
    trained.whatif_value = start
    assert list(trained.whatif_pane.object.data[0].y) != list(expected.to_numpy())


def test_whatif_sample_count_shrinks_with_the_system():
    assert whatif_sample_count(8, 2000) == whatif_sample_count(10, 2000) == 2000
    assert whatif_sample_count(20, 2000) == 500
    assert 500 < whatif_sample_count(14, 2000) < 2000
    assert whatif_sample_count(20, 300) == 300  # never more than asked for


def test_whatif_range_and_default_intervention():
    from metacadi import plots

    system = ExplorerSystem(SystemSpec(6, 1.5, "er", "hard", 0.0, seed=1), pool_rows=20)
    name, value = system.default_do()
    below = [plots.descendant_mask(system.graph, [n], system.names).sum() for n in system.names]
    assert below[system.names.index(name)] == max(below)  # the variable that moves most others
    for variable in system.names:
        start, end, step = system.value_range(variable)
        j = system.names.index(variable)
        assert start <= system.data_mean[j] - 3 * system.data_std[j] and end >= system.data_mean[j] + 3 * system.data_std[j]
        assert round(step / 10 ** np.floor(np.log10(step)), 6) in (1, 2, 5)
        assert 60 <= (end - start) / step <= 130
        assert start <= system.default_do(variable)[1] <= end
    truth = system.true_intervention(name, value, 50)
    assert system.true_intervention(name, value, 50) is truth  # cached
    np.testing.assert_allclose(truth[name], value)


def test_support_curve_sizes_are_capped_by_the_rows_of_an_experiment():
    from widgets.explorer import support_curve_sizes

    assert support_curve_sizes(100) == (2, 3, 5, 10, 20, 50, 100)
    assert support_curve_sizes(30) == (2, 3, 5, 10, 20, 30)
    assert support_curve_sizes(2) == (2,)


def test_support_curve_is_adapt_many_per_size_and_the_slider_only_moves_its_marker(trained, monkeypatch):
    from metacadi import metrics
    from metacadi.model import MetaCaDI
    from metacadi.reference_scores import scm_oracle_scores, shift_scores
    from widgets.explorer import CEILING_CURVE, FLOOR_CURVE, MODEL_CURVE

    fit, run, errors_before = trained.fit, trained.run, len(trained.errors)
    system = fit.system
    steps = len(fit.model.history_)
    weights = {name: value.clone() for name, value in fit.model.network_.state_dict().items()}
    view = trained.support_view
    assert view is not None and view.system is system and view.curve is not None
    curve = view.curve
    assert curve.sizes == system.curve_sizes == (2, 3, 5, 10, 20, 50, 100)

    # one support size computed directly: adapt_many on the first n rows of every batch experiment
    n = 5
    k = curve.sizes.index(n)
    posteriors = fit.model.adapt_many(list(system.batch_rows[:, :n]), seed=0)
    probs = np.stack([posterior.target_probs.to_numpy() for posterior in posteriors])
    assert probs.shape == system.batch_targets.shape == (8, 4)
    assert curve.auroc[k] == metrics.target_auroc(system.batch_targets, probs)
    assert curve.auprc[k] == metrics.target_auprc(system.batch_targets, probs)
    # the floor and the ceiling at that size are metacadi.reference_scores' scores
    observational = [task.data for task in system.protocol.train.observational()]
    floor = shift_scores(observational, list(system.batch_rows[:, :n]))
    oracle = scm_oracle_scores(system.protocol.scm, list(system.batch_rows[:, :n]))
    assert view.curves[FLOOR_CURVE].auroc[k] == pytest.approx(metrics.target_auroc(system.batch_targets, floor), abs=1e-12)
    assert view.curves[CEILING_CURVE].auroc[k] == pytest.approx(metrics.target_auroc(system.batch_targets, oracle), abs=1e-12)
    assert view.curves[CEILING_CURVE].auroc[-1] >= view.curves[FLOOR_CURVE].auroc[-1]  # the oracle explains descendants away

    # the figure draws the curves (AUROC left on x, AUPRC right on x2) and the caption reads them
    def traces(name: str) -> dict:
        return {t.xaxis: t for t in trained.support_pane.object.data if t.name == name}

    fig = trained.support_pane.object
    assert fig.layout.meta == "support-curve"
    np.testing.assert_allclose(traces(MODEL_CURVE)["x"].y, curve.auroc)
    np.testing.assert_allclose(traces(MODEL_CURVE)["x2"].y, curve.auprc)
    assert set(traces(FLOOR_CURVE)) == set(traces(CEILING_CURVE)) == {"x", "x2"}
    assert "beats the floor at" in trained.support_caption.object and "ceiling" in trained.support_caption.object
    # the metrics table agrees with the curve at a size on it (the same batch, the same seed)
    trained.support_size = n
    assert trained._target_metrics["target_auroc"] == curve.auroc[k]

    # the support-size slider moves the marker only: no retraining, no new curve
    def boom(*args, **kwargs):
        raise AssertionError("the support-size curve retrained the model")

    monkeypatch.setattr(MetaCaDI, "fit", boom)
    for support in (7, 50, 2):
        trained.support_size = support
        assert [list(t.x) for t in traces("current support").values()] == [[support, support]] * 2
        assert trained.support_view.curve is curve
        np.testing.assert_allclose(traces(MODEL_CURVE)["x"].y, curve.auroc)
    assert trained.fit is fit and trained.run is run and len(fit.model.history_) == steps
    for name, value in fit.model.network_.state_dict().items():
        assert torch.equal(value, weights[name]), name
    assert len(trained.errors) == errors_before
    trained.support_size = 10
