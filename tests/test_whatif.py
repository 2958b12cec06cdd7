"""'What if' predictions: samples of p(x | do(...)) from a fitted MetaCaDI model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from metacadi.errors import MetaCaDIInputError, NotFittedError
from metacadi.model import MetaCaDI
from metacadi.plots import intervention_figure
from metacadi.tasks import make_meta_protocol
from metacadi.whatif import intervention_summary, predict_intervention, true_intervention


@pytest.fixture(scope="module")
def model():
    protocol = make_meta_protocol(n_variables=4, n_interventional=4, train_rows=40, seed=1)
    return MetaCaDI(n_steps=5, hidden_size=8, n_features=4, embedding_size=8, n_edge_samples=50, seed=0).fit(
        protocol.train, progress=False
    )


#: X0 -> X1 and X2 -> X3: X0 is a root; X2 and X3 are not its descendants
FIXED_GRAPH = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]])


def test_shape_names_and_clamped_values(model):
    samples = model.predict_intervention({"X2": 1.7}, n_samples=123, seed=0)
    assert isinstance(samples, pd.DataFrame)
    assert samples.shape == (123, 4)
    assert list(samples.columns) == model.names_
    assert (samples["X2"] == 1.7).all()
    assert np.isfinite(samples.to_numpy()).all()
    # the other variables are random
    assert samples.drop(columns="X2").std().min() > 0


def test_several_do_variables_and_the_empty_intervention(model):
    samples = predict_intervention(model, {"X0": -1.0, "X3": 2.5}, n_samples=50)
    assert (samples["X0"] == -1.0).all() and (samples["X3"] == 2.5).all()
    observational = predict_intervention(model, {}, n_samples=50)
    assert observational.std().min() > 0


def test_same_seed_same_samples_and_method_delegates(model):
    first = model.predict_intervention({"X1": 0.5}, n_samples=200, seed=3)
    again = predict_intervention(model, {"X1": 0.5}, n_samples=200, seed=3)
    other = predict_intervention(model, {"X1": 0.5}, n_samples=200, seed=4)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_root_intervention_leaves_non_descendants_unchanged_under_a_fixed_graph(model):
    observational = predict_intervention(model, {}, n_samples=500, seed=7, graph=FIXED_GRAPH)
    intervened = predict_intervention(model, {"X0": 3.0}, n_samples=500, seed=7, graph=FIXED_GRAPH)
    # same noise, and X2, X3 do not depend on X0 in this graph: identical samples
    np.testing.assert_allclose(intervened[["X2", "X3"]], observational[["X2", "X3"]])
    # the child of X0 moves
    assert not np.allclose(intervened["X1"], observational["X1"])
    frame_graph = pd.DataFrame(FIXED_GRAPH, index=model.names_, columns=model.names_)
    pd.testing.assert_frame_equal(
        predict_intervention(model, {"X0": 3.0}, n_samples=20, seed=1, graph=frame_graph),
        predict_intervention(model, {"X0": 3.0}, n_samples=20, seed=1, graph=FIXED_GRAPH),
    )



def test_residual_noise_keeps_observed_units(model):
    rows = model.observational_rows_.numpy().astype(np.float64)
    assert rows.shape[1] == 4 and len(rows) == 80  # the two 40-row observational training tasks
    # no intervention: every sample is an observed control row (abduction then prediction)
    samples = predict_intervention(model, {}, n_samples=300, seed=2, noise="residuals").to_numpy()
    distance = np.abs(samples[:, None, :] - rows[None, :, :]).max(axis=-1).min(axis=1)
    assert distance.max() < 1e-4
    # under a fixed graph the non-descendants of X0 keep their observed values exactly, its child moves
    before = predict_intervention(model, {}, n_samples=300, seed=2, graph=FIXED_GRAPH, noise="residuals")
    after = predict_intervention(model, {"X0": 3.0}, n_samples=300, seed=2, graph=FIXED_GRAPH, noise="residuals")
    np.testing.assert_allclose(after[["X2", "X3"]], before[["X2", "X3"]], atol=1e-5)
    np.testing.assert_allclose(after["X0"], 3.0)
    assert not np.allclose(after["X1"], before["X1"])
    # the default, Gaussian noise, draws new units
    gaussian = predict_intervention(model, {}, n_samples=300, seed=2).to_numpy()
    assert np.abs(gaussian[:, None, :] - rows[None, :, :]).max(axis=-1).min(axis=1).max() > 1e-2


def test_residual_noise_from_given_rows_and_its_errors(model):
    data = pd.DataFrame(np.random.default_rng(0).normal(size=(30, 4)), columns=model.names_[::-1])
    samples = predict_intervention(model, {}, n_samples=100, seed=0, noise="residuals", data=data)
    ordered = data[model.names_].to_numpy()  # columns matched by name
    assert np.abs(samples.to_numpy()[:, None, :] - ordered[None]).max(axis=-1).min(axis=1).max() < 1e-4
    with pytest.raises(MetaCaDIInputError, match="noise must be one of"):
        predict_intervention(model, {}, noise="laplace")
    with pytest.raises(MetaCaDIInputError, match="does not use it"):
        predict_intervention(model, {}, noise="gaussian", data=data)
    with pytest.raises(MetaCaDIInputError, match="columns"):
        predict_intervention(model, {}, noise="residuals", data=np.zeros((5, 3)))
    with pytest.raises(MetaCaDIInputError, match="finite|NaN"):
        predict_intervention(model, {}, noise="residuals", data=np.full((5, 4), np.nan))


def test_residual_noise_needs_control_rows():
    protocol = make_meta_protocol(n_variables=3, n_observational=0, n_interventional=3, train_rows=30, seed=2)
    model = MetaCaDI(n_steps=2, hidden_size=4, n_features=2, embedding_size=4, n_edge_samples=10, seed=0).fit(
        protocol.train, progress=False
    )
    assert model.observational_rows_ is None
    assert np.isfinite(predict_intervention(model, {"X0": 1.0}, n_samples=20).to_numpy()).all()
    with pytest.raises(MetaCaDIInputError, match="needs observational rows"):
        predict_intervention(model, {"X0": 1.0}, noise="residuals")


def test_checkpoint_keeps_the_observational_rows(model, tmp_path):
    loaded = MetaCaDI.load(model.save(tmp_path / "model.pt"))
    np.testing.assert_array_equal(loaded.observational_rows_.numpy(), model.observational_rows_.numpy())
    pd.testing.assert_frame_equal(
        loaded.predict_intervention({"X2": 1.0}, n_samples=40, seed=3, noise="residuals"),
        model.predict_intervention({"X2": 1.0}, n_samples=40, seed=3, noise="residuals"),
        atol=1e-5,
    )


def test_summary_has_ordered_bands(model):
    summary = model.predict_intervention({"X1": 1.0}, n_samples=400, summary=True, level=0.8)
    assert list(summary.columns) == ["mean", "sd", "lower", "median", "upper"]
    assert list(summary.index) == model.names_
    assert summary.loc["X1", "sd"] == 0 and summary.loc["X1", "mean"] == 1.0
    assert (summary["lower"] <= summary["median"]).all() and (summary["median"] <= summary["upper"]).all()
    wider = intervention_summary(model.predict_intervention({"X1": 1.0}, n_samples=400), level=0.98)
    assert (wider["upper"] - wider["lower"] >= summary["upper"] - summary["lower"] - 1e-12).all()


@pytest.mark.parametrize(
    ("do", "message"),
    [
        ({"X9": 1.0}, "unknown variables"),
        ({"X0": float("nan")}, "finite"),
        ({"X0": float("inf")}, "finite"),
        ({"X0": "high"}, "number"),
        ({"X0": True}, "number"),
        ([("X0", 1.0)], "mapping"),
    ],
)
def test_bad_do_gets_a_clear_error(model, do, message):
    with pytest.raises(MetaCaDIInputError, match=message):
        model.predict_intervention(do)


def test_bad_options_get_clear_errors(model):
    with pytest.raises(MetaCaDIInputError, match="n_samples"):
        predict_intervention(model, {"X0": 1.0}, n_samples=0)
    with pytest.raises(MetaCaDIInputError, match="graph"):
        predict_intervention(model, {"X0": 1.0}, graph=np.zeros((3, 3)))
    cyclic = FIXED_GRAPH.copy()
    cyclic[1, 0] = 1
    with pytest.raises(MetaCaDIInputError):
        predict_intervention(model, {"X0": 1.0}, graph=cyclic)
    with pytest.raises(MetaCaDIInputError, match="level"):
        predict_intervention(model, {"X0": 1.0}, summary=True, level=1.5)
    with pytest.raises(NotFittedError):
        predict_intervention(MetaCaDI(), {"X0": 1.0})


def test_intervention_figure(model):
    samples = model.predict_intervention({"X0": 1.0}, n_samples=100)
    truth = samples + 0.1
    figure = intervention_figure(samples, {"X0": 1.0}, truth)
    assert [trace.name for trace in figure.data] == ["predicted", "true", "do"]
    np.testing.assert_allclose(figure.data[0].y, samples.mean().to_numpy())
    assert "X0 = 1" in figure.layout.title.text
    with pytest.raises(MetaCaDIInputError):
        intervention_figure(samples, truth=truth.iloc[:, :2])


def test_true_intervention_samples_the_simulator():
    protocol = make_meta_protocol(n_variables=4, n_interventional=2, train_rows=20, seed=3)
    scm = protocol.scm
    samples = true_intervention(scm, "X2", 1.25, n_samples=300, seed=5)
    assert list(samples.columns) == list(scm.names) and samples.shape == (300, 4)
    np.testing.assert_allclose(samples["X2"], 1.25)
    pd.testing.assert_frame_equal(samples, true_intervention(scm, "X2", 1.25, n_samples=300, seed=5))
    # X2's non-descendants keep their observational distribution: same rows as without it
    observational = pd.DataFrame(scm.sample(300, seed=5), columns=list(scm.names))
    below = {j for j in range(4) if scm_descends(protocol.graph, 2, j)}
    for j in range(4):
        if j != 2 and j not in below:
            np.testing.assert_allclose(samples.iloc[:, j], observational.iloc[:, j])
    assert below and all(not np.allclose(samples.iloc[:, j], observational.iloc[:, j]) for j in below)
    with pytest.raises(MetaCaDIInputError, match="not one of"):
        true_intervention(scm, "Y", 1.0)
    with pytest.raises(MetaCaDIInputError, match="finite"):
        true_intervention(scm, "X0", float("nan"))


def scm_descends(graph, source: int, node: int) -> bool:
    reach, frontier = {source}, [source]
    while frontier:
        i = frontier.pop()
        for j in np.flatnonzero(np.asarray(graph)[i]):
            if j not in reach:
                reach.add(int(j))
                frontier.append(int(j))
    return node in reach and node != source
