"""Nine-block target-predictor features and Deep Sets pooling (paper §4.2)."""

import pytest
import torch

from metacadi.features import FEATURE_BLOCKS, DeepSetsPooling, TargetPredictor, feature_matrix


def _inputs(batch=2, n_rows=6, d=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_rows, d, generator=generator)
    obs = torch.randn(batch, n_rows, d, generator=generator)
    intv = torch.randn(batch, n_rows, d, generator=generator)
    sigma = torch.rand(d, generator=generator) + 0.5
    return x, obs, intv, sigma


def test_shape_and_block_names():
    x, obs, intv, sigma = _inputs(batch=4, n_rows=7, d=5)
    features = feature_matrix(x, obs, intv, sigma)
    assert features.shape == (4, 7, 5, 9)
    assert len(FEATURE_BLOCKS) == 9
    assert FEATURE_BLOCKS[0] == "data" and FEATURE_BLOCKS[-2:] == ("column_mean", "column_std")


def test_blocks_match_their_definitions_on_a_hand_computed_case():
    # one task, two rows, two variables
    x = torch.tensor([[[1.0, 4.0], [3.0, 0.0]]])
    obs = torch.tensor([[[0.0, 4.0], [3.0, 2.0]]])
    intv = torch.tensor([[[1.0, 1.0], [2.0, 0.0]]])
    sigma = torch.tensor([0.5, 2.0])
    features = feature_matrix(x, obs, intv, sigma)[0]  # (n, d, 9)
    expected = {
        "data": [[1, 4], [3, 0]],
        "obs_prediction": [[0, 4], [3, 2]],
        "int_prediction": [[1, 1], [2, 0]],
        "obs_residual": [[2, 0], [0, -1]],  # (x - obs) / sigma
        "int_residual": [[0, 1.5], [2, 0]],
        "obs_residual_abs": [[2, 0], [0, 1]],
        "int_residual_abs": [[0, 1.5], [2, 0]],
        "column_mean": [[2, 2], [2, 2]],
        "column_std": [[1, 2], [1, 2]],  # population sd of (1, 3) and (4, 0)
    }
    for index, name in enumerate(FEATURE_BLOCKS):
        torch.testing.assert_close(features[..., index], torch.tensor(expected[name], dtype=torch.float32), msg=name)


def test_per_task_noise_scale_broadcasts_like_a_shared_one():
    x, obs, intv, sigma = _inputs()
    shared = feature_matrix(x, obs, intv, sigma)
    per_task = feature_matrix(x, obs, intv, sigma.expand(2, -1))
    torch.testing.assert_close(shared, per_task)
    doubled = feature_matrix(x, obs, intv, torch.stack([sigma, 2 * sigma]))
    torch.testing.assert_close(doubled[1, ..., 3], shared[1, ..., 3] / 2)
    torch.testing.assert_close(doubled[0], shared[0])


def test_noise_scale_gets_no_gradient_through_the_features():
    x, obs, intv, sigma = _inputs()
    sigma.requires_grad_(True)
    obs.requires_grad_(True)
    features = feature_matrix(x, obs, intv, sigma)
    features.sum().backward()
    assert sigma.grad is None and obs.grad is not None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pooled_features_and_logits_are_invariant_to_row_order(seed):
    torch.manual_seed(seed)
    x, obs, intv, sigma = _inputs(batch=3, n_rows=9, d=4, seed=seed)
    permutation = torch.randperm(9, generator=torch.Generator().manual_seed(seed + 10))
    features = feature_matrix(x, obs, intv, sigma)
    shuffled = feature_matrix(x[:, permutation], obs[:, permutation], intv[:, permutation], sigma)
    torch.testing.assert_close(shuffled, features[:, permutation])
    pooling = DeepSetsPooling(embedding_size=8)
    pooled = pooling(features)
    assert pooled.shape == (3, 4, 16)
    torch.testing.assert_close(pooling(shuffled), pooled, rtol=1e-5, atol=1e-6)
    predictor = TargetPredictor(4, embedding_size=8)
    logits = predictor(features)
    assert logits.shape == (3, 4)
    torch.testing.assert_close(predictor(shuffled), logits, rtol=1e-5, atol=1e-6)
    # but not to which rows are present: dropping rows changes the summary
    assert not torch.allclose(pooling(features[:, :5]), pooled)


def test_pooling_is_mean_of_embeddings_and_embedding_of_mean():
    torch.manual_seed(0)
    pooling = DeepSetsPooling(embedding_size=5)
    features = feature_matrix(*_inputs(batch=1, n_rows=4, d=2))
    pooled = pooling(features)
    rows = [pooling.embed(features[0, i]) for i in range(4)]
    torch.testing.assert_close(pooled[0, :, :5], torch.stack(rows).mean(0))
    torch.testing.assert_close(pooled[0, :, 5:], pooling.embed(features[0].mean(0)))


def test_predictor_without_variable_embedding_treats_variables_alike():
    """``variable_embedding_size=0``: a variable's logit depends on its evidence alone, so
    permuting the variables' columns permutes the logits."""
    torch.manual_seed(1)
    features = feature_matrix(*_inputs(batch=2, n_rows=6, d=4, seed=3))
    permutation = torch.tensor([2, 0, 3, 1])
    plain = TargetPredictor(4, embedding_size=8, variable_embedding_size=0)
    torch.testing.assert_close(plain(features[:, :, permutation]), plain(features)[:, permutation])
    # with the embedding (the default) a variable's identity enters its logit
    embedded = TargetPredictor(4, embedding_size=8)
    with torch.no_grad():
        embedded.variable_embedding.normal_()
    assert not torch.allclose(embedded(features[:, :, permutation]), embedded(features)[:, permutation])
