"""MetaCaDI estimator: training signal, adaptation, input errors, checkpoints, callbacks."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from metacadi import MetaCaDIInputError, NotFittedError, make_meta_protocol
from metacadi.errors import CheckpointError
from metacadi.losses import edge_prior_probability
from metacadi.model import MetaCaDI, TrainingState

NAMES = ["gene_a", "gene_b", "gene_c", "gene_d", "gene_e"]
SMALL = dict(hidden_size=8, n_features=6, embedding_size=8, n_edge_samples=128, seed=0)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def protocol():
    return make_meta_protocol(n_variables=5, seed=11, train_rows=40, n_test=5, names=NAMES)


@pytest.fixture(scope="module")
def model(protocol):
    return MetaCaDI(n_steps=30, **SMALL).fit(protocol.train, progress=False)


# ------------------------------------------------------------------ training signal


@pytest.mark.parametrize("relaxation", ["softsort", "sinkhorn"])
def test_one_objective_step_reaches_every_shared_parameter(protocol, relaxation):
    model = MetaCaDI(n_steps=1, relaxation=relaxation, target_expectation="sample", **SMALL)
    model.fit(protocol.train, progress=False)
    data, valid = model._prepare_training_data(protocol.train)
    generator = torch.Generator().manual_seed(3)
    support, query = model._split(data, valid, 20, generator)
    network = model.network_.train()
    network.zero_grad(set_to_none=True)
    prior = edge_prior_probability(5, model.prior_expected_degree)
    terms = model._objective(support, query, prior, model.loss_weights, generator)
    assert set(terms) >= {"loss", "reconstruction", "sparsity", "hsic", "edge_kl"}
    terms["loss"].backward()
    missing = [name for name, p in network.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in network.parameters())


def test_fit_records_history_and_learns_attributes(model, protocol):
    assert len(model.history_) == 30 and model.fit_seconds_ > 0
    assert all(np.isfinite(step["loss"]) for step in model.history_)
    assert model.names_ == NAMES and model.n_variables_ == 5
    edges = model.edge_probs_
    assert list(edges.index) == NAMES and list(edges.columns) == NAMES
    assert ((edges.to_numpy() >= 0) & (edges.to_numpy() <= 1)).all()
    assert (np.diag(edges.to_numpy()) == 0).all()


def test_training_is_reproducible_with_a_seed(protocol):
    first = MetaCaDI(n_steps=3, **SMALL).fit(protocol.train, progress=False)
    second = MetaCaDI(n_steps=3, **SMALL).fit(protocol.train, progress=False)
    assert [h["loss"] for h in first.history_] == [h["loss"] for h in second.history_]
    pd.testing.assert_frame_equal(first.edge_probs_, second.edge_probs_)


# ------------------------------------------------------------------ adaptation


def test_adapt_keeps_names_and_returns_probabilities(model, protocol):
    frame = protocol.test[0].to_frame()
    assert list(frame.columns) == NAMES
    posterior = model.adapt(frame)
    assert list(posterior.target_probs.index) == NAMES
    assert list(posterior.edge_probs.columns) == NAMES
    assert ((posterior.target_probs >= 0) & (posterior.target_probs <= 1)).all()
    assert posterior.n_rows == 10
    # columns are matched by name, not by position
    shuffled = model.adapt(frame[NAMES[::-1]])
    pd.testing.assert_series_equal(shuffled.target_probs, posterior.target_probs)
    # arrays work too, the same seed gives the same posterior
    again = model.adapt(frame.to_numpy())
    np.testing.assert_allclose(again.target_probs.to_numpy(), posterior.target_probs.to_numpy(), rtol=1e-6)
    samples = posterior.sample_graphs(20, seed=0)
    assert samples.shape == (20, 5, 5) and set(np.unique(samples)) <= {0, 1}
    graph = posterior.to_networkx(0.0)
    assert set(graph.nodes) == set(NAMES)


def test_adapt_many_matches_one_at_a_time(model, protocol):
    tasks = list(protocol.test)
    together = model.adapt_many(tasks)
    for task, posterior in zip(tasks, together):
        alone = model.adapt(task)
        np.testing.assert_allclose(posterior.target_probs.to_numpy(), alone.target_probs.to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda f: f.assign(gene_a=[np.nan] + list(f.gene_a[1:])), "NaN or infinite"),
        (lambda f: f.iloc[:, :4].to_numpy(), "has 4 columns but 5 variables"),
        (lambda f: f.iloc[:1], "at least 2 are needed"),
        (lambda f: f.rename(columns={"gene_a": "gene_z"}), r"missing \['gene_a'\], unexpected \['gene_z'\]"),
        (lambda f: f.assign(extra=1.0), r"unexpected \['extra'\]"),
        (lambda f: f.to_numpy()[None], "must be 2-D"),
        (lambda f: f.astype(str), "must hold numbers"),
    ],
)
def test_adapt_rejects_bad_input_with_a_helpful_message(model, protocol, make_bad, message):
    frame = protocol.test[0].to_frame()
    with pytest.raises(MetaCaDIInputError, match=message):
        model.adapt(make_bad(frame))


def test_adapt_many_rejects_an_empty_list(model):
    with pytest.raises(MetaCaDIInputError, match="at least one dataset"):
        model.adapt_many([])


def test_observational_nll_is_the_gaussian_nll_of_the_mechanisms_in_data_units(model, protocol):
    """With a fixed graph: the hand-computed NLL of f^obs in standardised units plus log sd_j."""
    rows = protocol.scm.sample(200, seed=5)
    nll = model.observational_nll(rows, graph=protocol.graph)
    assert list(nll.index) == NAMES
    network = model.network_
    x = model.standardize(rows).unsqueeze(0)
    adjacency = torch.as_tensor(protocol.graph, dtype=torch.float32).unsqueeze(0)
    with torch.no_grad():
        mean = network.likelihood.observational_mean(x, adjacency)[0].double().numpy()
    sigma = network.likelihood.noise_scale().detach().double().numpy()
    standardized = (x[0].double().numpy() - mean) / sigma
    expected = (0.5 * standardized**2).mean(0) + np.log(sigma) + 0.5 * np.log(2 * np.pi)
    expected += np.log(model.data_std_.double().numpy())
    np.testing.assert_allclose(nll.to_numpy(), expected, rtol=1e-4, atol=1e-4)
    # graphs from the posterior: a finite number per variable, and a fixed seed repeats itself
    posterior = model.observational_nll(rows, n_graph_samples=8, seed=1)
    assert np.isfinite(posterior.to_numpy()).all()
    np.testing.assert_array_equal(posterior.to_numpy(), model.observational_nll(rows, n_graph_samples=8, seed=1).to_numpy())


def test_observational_nll_rejects_a_graph_of_the_wrong_size_or_with_a_cycle(model, protocol):
    rows = protocol.scm.sample(20, seed=5)
    with pytest.raises(MetaCaDIInputError, match="graph must be"):
        model.observational_nll(rows, graph=np.zeros((3, 3)))
    cycle = np.zeros((5, 5))
    cycle[0, 1] = cycle[1, 0] = 1
    with pytest.raises(MetaCaDIInputError, match="cycle"):
        model.observational_nll(rows, graph=cycle)


def test_not_fitted_raises():
    fresh = MetaCaDI()
    for call in (lambda: fresh.adapt(np.zeros((5, 3))), fresh.graph_posterior, lambda: fresh.save("never.pt")):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


def test_bad_configuration_raises(protocol):
    with pytest.raises(MetaCaDIInputError, match="ridge_lambda"):
        MetaCaDI(ridge_lambda=0.0).fit(protocol.train, progress=False)
    with pytest.raises(MetaCaDIInputError, match="support_size"):
        MetaCaDI(support_size=40, n_steps=1).fit(protocol.train, progress=False)
    with pytest.raises(MetaCaDIInputError, match="unknown parameter"):
        MetaCaDI().set_params(learning_rat=0.1)
    with pytest.raises(MetaCaDIInputError, match="mechanism_init must be one of"):
        MetaCaDI(mechanism_init="xavier").fit(protocol.train, progress=False)
    with pytest.raises(MetaCaDIInputError, match="mask_indicators must be True or False"):
        MetaCaDI(mask_indicators="yes").fit(protocol.train, progress=False)


def test_restarts_keep_the_one_with_the_lowest_held_out_nll(protocol, model):
    restarted = MetaCaDI(n_steps=30, n_restarts=3, validation_every=5, **SMALL).fit(protocol.train, progress=False)
    single = MetaCaDI(n_steps=30, validation_every=5, **SMALL).fit(protocol.train, progress=False)
    scores = restarted.restart_validation_nll_
    assert len(scores) == 3 and len(set(scores)) == 3  # other initial weights, other fits
    # restart 0 is the single fit, scored on the same held-out rows
    assert scores[0] == pytest.approx(min(nll for _, nll in single.validation_history_))
    assert restarted.best_restart_ == int(np.argmin(scores))
    assert min(nll for _, nll in restarted.validation_history_) == pytest.approx(min(scores))
    assert restarted.steps_run_ == 90 and len(restarted.history_) == 30
    held_out = restarted._hold_out(*restarted._prepare_training_data(protocol.train), torch.Generator().manual_seed(0))[2]
    anchored = restarted._anchored_tasks(protocol.train)
    assert restarted._validation_nll(*held_out, anchored=anchored) == pytest.approx(min(scores))
    with pytest.raises(MetaCaDIInputError, match="n_restarts"):
        MetaCaDI(n_restarts=0).fit(protocol.train, progress=False)


def test_random_parent_sets_train_the_input_weights_of_both_directions_of_every_pair(protocol, model):
    from metacadi.losses import gaussian_nll_per_variable

    data, _ = model._prepare_training_data(protocol.train)
    query = data[:, :20]
    n_tasks, _, d = query.shape
    network = model.network_
    logits = torch.zeros(n_tasks, d)  # p = 1/2: every row weighs 1/2
    network.zero_grad()
    value = model._random_parent_set_nll(query, logits, network.likelihood.noise_scale(), {}, torch.Generator().manual_seed(1))
    value.backward()
    reaches = network.likelihood.obs_w1.grad.abs().sum(-1)  # [j, i]: input i of f_j
    off_diagonal = ~torch.eye(d, dtype=torch.bool)
    assert bool((reaches[off_diagonal] > 0).all())  # i -> j and j -> i alike, whatever the order
    subsets = (torch.rand(n_tasks, d, d, generator=torch.Generator().manual_seed(1)) < 0.5).float() * off_diagonal
    with torch.no_grad():
        mean = network.likelihood.observational_mean(query, subsets)
        expected = (0.5 * gaussian_nll_per_variable(query, mean, network.likelihood.noise_scale())).sum(-1).mean()
    assert float(value.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert network.likelihood.log_noise_scale.grad is None or float(network.likelihood.log_noise_scale.grad.abs().sum()) == 0
    network.zero_grad()


def test_random_parent_sets_near_the_sampled_graph_flip_each_entry_with_the_given_probability(protocol, model):
    data, _ = model._prepare_training_data(protocol.train)
    query = data[:, :20]
    n_tasks, _, d = query.shape
    network = model.network_
    adjacency = network.graph.sample(n_tasks, torch.Generator().manual_seed(3))
    seen = []
    original = network.likelihood.observational_mean

    def spy(x, subsets, params=None):
        seen.append(subsets.detach().clone())
        return original(x, subsets, params)

    network.likelihood.observational_mean = spy
    try:
        near = MetaCaDI(**{**model.get_params(), "mechanism_subset_flip": 0.1})
        near.network_ = network
        logits = torch.zeros(n_tasks, d)
        with torch.no_grad():
            near._random_parent_set_nll(query, logits, network.likelihood.noise_scale(), {}, torch.Generator().manual_seed(1), adjacency)
    finally:
        network.likelihood.observational_mean = original
    off_diagonal = ~torch.eye(d, dtype=torch.bool)
    disagree = (seen[0] != adjacency)[:, off_diagonal].float().mean()
    assert 0.03 < float(disagree) < 0.2  # about 10 % of the entries flipped
    assert bool((seen[0][:, ~off_diagonal] == 0).all())
    with pytest.raises(MetaCaDIInputError, match="mechanism_subset_flip"):
        MetaCaDI(mechanism_subset_flip=0.7, n_steps=1).fit(protocol.train, progress=False)


def test_pairwise_order_gradient_moves_the_order_without_the_straight_through_path(protocol):
    """``order_gradient="pairwise"``: the node scores learn from the pairwise surrogate alone
    (the reconstruction sees the order detached), and an unknown name is refused."""
    torch.manual_seed(0)
    model = MetaCaDI(n_steps=3, order_gradient="pairwise", validation_fraction=0.0, seed=1).fit(protocol.train, progress=False)
    scores = model.network_.graph.node_scores.detach()
    assert torch.isfinite(scores).all() and float(scores.abs().sum()) > 0  # they start at 0
    data, _ = model._prepare_training_data(protocol.train)
    support, query = data[:, :10], data[:, 10:40]
    network = model.network_
    network.zero_grad()
    terms = model._objective(support, query, 0.2, model.loss_weights, torch.Generator().manual_seed(2))
    terms["reconstruction"].backward()
    grad = network.graph.node_scores.grad
    assert grad is None or float(grad.abs().sum()) == 0.0
    with pytest.raises(MetaCaDIInputError, match="order_gradient must be one of"):
        MetaCaDI(order_gradient="swap", n_steps=1).fit(protocol.train, progress=False)


# ------------------------------------------------------------------ checkpoints


def test_save_load_roundtrip_gives_identical_posteriors(model, protocol, tmp_path):
    path = model.save(tmp_path / "model.pt")
    loaded = MetaCaDI.load(path)
    assert loaded.get_params() == model.get_params()
    assert loaded.names_ == NAMES
    pd.testing.assert_frame_equal(loaded.edge_probs_, model.edge_probs_)
    for task in protocol.test:
        pd.testing.assert_series_equal(loaded.adapt(task).target_probs, model.adapt(task).target_probs)
    np.testing.assert_array_equal(
        loaded.graph_posterior().sample_graphs(10, seed=1), model.graph_posterior().sample_graphs(10, seed=1)
    )


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoints_written_before_mask_indicators_load_without_them(protocol, tmp_path):
    from metacadi.model import _checksum

    older = MetaCaDI(n_steps=3, mask_indicators=False, **SMALL).fit(protocol.train, progress=False)
    payload = torch.load(older.save(tmp_path / "model.pt"), weights_only=True)
    config = json.loads(payload["config"])
    del config["mask_indicators"]  # as such files were written
    payload["config"] = json.dumps(config, sort_keys=True)
    payload["checksum"] = _checksum(payload["estimator"], payload["config"], payload["names"], payload["state"])
    torch.save(payload, tmp_path / "older.pt")
    loaded = MetaCaDI.load(tmp_path / "older.pt")
    assert loaded.mask_indicators is False and not hasattr(loaded.network_.likelihood, "obs_u1")
    pd.testing.assert_series_equal(loaded.adapt(protocol.test[0]).target_probs, older.adapt(protocol.test[0]).target_probs)
    assert MetaCaDI().mask_indicators is True


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_tampered_checkpoint_is_refused(model, tmp_path):
    path = model.save(tmp_path / "model.pt")
    # a changed weight inside an otherwise valid file fails the checksum
    payload = torch.load(path, weights_only=True)
    payload["state"]["likelihood.obs_b2"] = payload["state"]["likelihood.obs_b2"] + 1e-3
    edited = tmp_path / "edited.pt"
    torch.save(payload, edited)
    with pytest.raises(CheckpointError, match="checksum"):
        MetaCaDI.load(edited)
    # flipped bytes inside a stored weight: refused
    raw = path.read_bytes()
    weights = torch.load(path, weights_only=True)["state"]["likelihood.obs_w1"].numpy().tobytes()
    start = raw.find(weights)
    assert start > 0
    for offset in (start, start + len(weights) // 2, start + len(weights) - 1):
        corrupted = tmp_path / f"flipped_{offset}.pt"
        corrupted.write_bytes(_flip(raw, offset))
        with pytest.raises(CheckpointError):
            MetaCaDI.load(corrupted)
    # flipped bytes anywhere else: refused, or (zip timestamps, padding, pickle memo slots) the
    # file still holds exactly the same model -- never a different model loaded silently
    reference = model.network_.state_dict()
    refused = 0
    for offset in range(0, len(raw), max(len(raw) // 25, 1)):
        corrupted = tmp_path / "flipped.pt"
        corrupted.write_bytes(_flip(raw, offset))
        try:
            loaded = MetaCaDI.load(corrupted)
        except CheckpointError:
            refused += 1
            continue
        state = loaded.network_.state_dict()
        assert all(torch.equal(state[name], reference[name]) for name in reference), offset
        assert loaded.names_ == model.names_ and loaded.get_params() == model.get_params()
    assert refused > 0


def _flip(raw: bytes, offset: int) -> bytes:
    flipped = bytearray(raw)
    flipped[offset] ^= 0xFF
    return bytes(flipped)


def test_non_checkpoint_files_are_refused(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    with pytest.raises(CheckpointError, match="not a loadable metacadi checkpoint"):
        MetaCaDI.load(text)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, plain)
    with pytest.raises(CheckpointError, match="missing format tag"):
        MetaCaDI.load(plain)
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        MetaCaDI.load(tmp_path / "absent.pt")


def test_failed_save_leaves_no_file(model, tmp_path, monkeypatch):
    with pytest.raises(MetaCaDIInputError, match="does not exist"):
        model.save(tmp_path / "missing_folder" / "model.pt")
    assert not (tmp_path / "missing_folder").exists()

    def broken_save(obj, stream, *args, **kwargs):
        stream.write(b"partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    target = tmp_path / "model.pt"
    with pytest.raises(OSError, match="disk full"):
        model.save(target)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_previous_file(model, tmp_path, monkeypatch):
    target = model.save(tmp_path / "model.pt")
    before = target.read_bytes()

    def broken_save(obj, stream, *args, **kwargs):
        raise OSError("interrupted")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        model.save(target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


# ------------------------------------------------------------------ callbacks


def test_callback_receives_states_and_can_stop_training(protocol):
    states: list[TrainingState] = []

    def callback(state: TrainingState):
        states.append(state)
        assert state.model.graph_posterior().edge_probs.shape == (5, 5)  # usable mid-training
        return state.step < 10

    model = MetaCaDI(n_steps=50, **SMALL).fit(protocol.train, callback=callback, callback_every=5, progress=False)
    assert [s.step for s in states] == [5, 10]
    assert all(s.n_steps == 50 and np.isfinite(s.loss) and "reconstruction" in s.terms for s in states)
    assert states[1].elapsed_seconds >= states[0].elapsed_seconds > 0
    assert len(model.history_) == 10 and model.stopped_early_
    assert model.adapt(protocol.test[0]).target_probs.between(0, 1).all()


def test_callback_runs_after_the_last_step(protocol):
    steps = []
    MetaCaDI(n_steps=7, **SMALL).fit(protocol.train, callback=lambda s: steps.append(s.step), callback_every=5, progress=False)
    assert steps == [5, 7]


def test_refinement_freezes_the_graph_and_fits_the_rest(protocol):
    base = dict(n_steps=20, validation_fraction=0.0, **SMALL)
    plain = MetaCaDI(**base).fit(protocol.train, progress=False)
    refined = MetaCaDI(refine_fraction=1.5, **base).fit(protocol.train, progress=False)
    assert refined.refine_steps == 30 and len(refined.history_) == 50 and refined.steps_run_ == 50
    for name, value in plain.network_.graph.state_dict().items():  # the graph is where meta-training left it
        assert torch.equal(refined.network_.graph.state_dict()[name], value), name
    moved = [name for name, value in plain.network_.likelihood.state_dict().items()
             if not torch.equal(refined.network_.likelihood.state_dict()[name], value)]
    assert "obs_w1" in moved and "log_noise_scale" in moved
    assert all(p.requires_grad for p in refined.network_.parameters())  # unfrozen for later use
    assert all(record["edge_kl"] == 0.0 for record in refined.history_[20:])
    pd.testing.assert_frame_equal(refined.edge_probs_, plain.edge_probs_)
    with pytest.raises(MetaCaDIInputError, match="refine_fraction"):
        MetaCaDI(refine_fraction=-0.5).fit(protocol.train, progress=False)


def test_checkpoints_are_chosen_over_both_phases(protocol):
    refined = MetaCaDI(n_steps=30, refine_fraction=1.0, validation_every=5, **SMALL).fit(protocol.train, progress=False)
    steps = [step for step, _ in refined.validation_history_]
    assert steps[-1] == 60 and any(step > 30 for step in steps)
    best = min(refined.validation_history_, key=lambda item: item[1])
    assert refined.best_step_ == best[0]


def test_anchored_tasks_are_the_observational_ones_and_only_with_the_option(protocol):
    kinds = [task.is_observational for task in protocol.train]
    assert any(kinds) and not all(kinds)
    anchored = MetaCaDI(anchor_observational=True, **SMALL)._anchored_tasks(protocol.train)
    assert anchored.tolist() == kinds
    assert not MetaCaDI(anchor_observational=False, **SMALL)._anchored_tasks(protocol.train).any()


def test_anchored_tasks_have_no_targets_in_the_objective_and_pay_no_target_prior(protocol):
    from metacadi.model import ANCHORED_LOGIT, _anchor_logits

    logits = torch.randn(4, 3)
    anchored = torch.tensor([True, False, True, False])
    fixed = _anchor_logits(logits, anchored)
    assert torch.equal(fixed[~anchored], logits[~anchored]) and (fixed[anchored] == ANCHORED_LOGIT).all()
    assert _anchor_logits(logits, None) is logits

    model = MetaCaDI(n_steps=1, anchor_observational=True, **SMALL).fit(protocol.train, progress=False)
    data, valid = model._prepare_training_data(protocol.train)
    flags = model._anchored_tasks(protocol.train)
    generator = torch.Generator().manual_seed(3)
    support, query = model._split(data, valid, 20, generator)
    prior = edge_prior_probability(5, model.prior_expected_degree)
    network = model.network_.train()
    # every task anchored: the predictor gets no gradient and no target is charged
    network.zero_grad(set_to_none=True)
    everything = torch.ones(len(flags), dtype=torch.bool)
    terms = model._objective(support, query, prior, model.loss_weights, generator, anchored=everything)
    terms["loss"].backward()
    assert float(terms["sparsity"].detach()) == 0.0
    assert all(p.grad is None or not p.grad.abs().sum() > 0 for p in network.predictor.parameters())
    # the observational ones anchored: the sparsity is the mean over the others
    network.zero_grad(set_to_none=True)
    terms = model._objective(support, query, prior, model.loss_weights, torch.Generator().manual_seed(3), anchored=flags)
    assert float(terms["sparsity"].detach()) > 0.0
    terms["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in network.predictor.parameters())


def test_sparsity_warmup_ramps_the_target_charge(protocol):
    model = MetaCaDI(n_steps=10, sparsity_warmup=0.5, edge_penalty_warmup=0.0, **SMALL)
    weights = model.loss_weights
    ramp = [model._weights_at(step, weights).sparsity for step in range(10)]
    np.testing.assert_allclose(ramp[:5], weights.sparsity * np.arange(1, 6) / 5)
    assert ramp[5:] == [weights.sparsity] * 5
    assert MetaCaDI(n_steps=10, sparsity_warmup=0.0, **SMALL)._weights_at(0, weights).sparsity == weights.sparsity
    with pytest.raises(MetaCaDIInputError, match="sparsity_warmup"):
        MetaCaDI(sparsity_warmup=1.5, n_steps=2, **SMALL).fit(protocol.train, progress=False)
    with pytest.raises(MetaCaDIInputError, match="anchor_observational"):
        MetaCaDI(anchor_observational="yes", n_steps=2, **SMALL).fit(protocol.train, progress=False)
