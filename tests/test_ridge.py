"""Batched closed-form ridge regression (eqs. 5-6) against numpy, in both forms."""

import numpy as np
import pytest
import torch

from metacadi import MetaCaDIInputError
from metacadi.likelihood import Likelihood
from metacadi.ridge import ridge_solve


def _problem(shape, n_rows, n_features, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(*shape, n_rows, n_features, generator=generator, dtype=dtype)
    targets = torch.randn(*shape, n_rows, generator=generator, dtype=dtype)
    return features, targets


def _augmented_lstsq(features: np.ndarray, targets: np.ndarray, lam: float) -> np.ndarray:
    """Ridge as ordinary least squares on ``[H; sqrt(lam) I] w = [y; 0]``."""
    m = features.shape[1]
    design = np.vstack([features, np.sqrt(lam) * np.eye(m)])
    response = np.concatenate([targets, np.zeros(m)])
    return np.linalg.lstsq(design, response, rcond=None)[0]


@pytest.mark.parametrize("n_rows, n_features", [(30, 5), (10, 17), (2, 9), (8, 8)])
@pytest.mark.parametrize("form", ["auto", "primal", "dual"])
def test_matches_augmented_least_squares_and_closed_form(n_rows, n_features, form):
    lam = 0.3
    features, targets = _problem((), n_rows, n_features)
    weights = ridge_solve(features, targets, lam, form=form).numpy()
    h, y = features.numpy(), targets.numpy()
    np.testing.assert_allclose(weights, _augmented_lstsq(h, y, lam), rtol=1e-8, atol=1e-10)
    closed_form = np.linalg.solve(h.T @ h + lam * np.eye(n_features), h.T @ y)
    np.testing.assert_allclose(weights, closed_form, rtol=1e-8, atol=1e-10)
    # optimality: the gradient of ||y - Hw||^2 + lam ||w||^2 vanishes
    np.testing.assert_allclose(h.T @ (h @ weights - y), -lam * weights, atol=1e-9)


def test_primal_and_dual_agree_batched():
    features, targets = _problem((3, 4), 6, 11, seed=1)
    primal = ridge_solve(features, targets, 0.1, form="primal")
    dual = ridge_solve(features, targets, 0.1, form="dual")
    assert primal.shape == dual.shape == (3, 4, 11)
    torch.testing.assert_close(primal, dual, rtol=1e-9, atol=1e-10)
    for index in np.ndindex(3, 4):  # each batch item is its own regression
        single = ridge_solve(features[index], targets[index], 0.1)
        torch.testing.assert_close(primal[index], single)


@pytest.mark.parametrize("n_rows, n_features, size", [(3, 10, 3), (12, 4, 4)])
def test_auto_factorises_the_smaller_system(monkeypatch, n_rows, n_features, size):
    factorised = []
    cholesky = torch.linalg.cholesky

    def recording(matrix, *args, **kwargs):
        factorised.append(matrix.shape[-1])
        return cholesky(matrix, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, "cholesky", recording)
    features, targets = _problem((), n_rows, n_features)
    ridge_solve(features, targets, 0.1)
    assert factorised == [size]


def test_few_rows_tiny_lambda_gives_the_minimum_norm_interpolant():
    features, _ = _problem((), 3, 10)
    ones = torch.ones(3, dtype=torch.float64)
    weights = ridge_solve(features, ones, 1e-10)
    torch.testing.assert_close(features @ weights, ones, atol=1e-6, rtol=0)
    minimum_norm = torch.linalg.pinv(features) @ ones
    torch.testing.assert_close(weights, minimum_norm, atol=1e-6, rtol=0)


@pytest.mark.parametrize("lam", [1e-3, 1e-6, 1e-9])
def test_tiny_support_and_small_lambda_are_stable_in_float32(lam):
    features, targets = _problem((5,), 2, 17, seed=2, dtype=torch.float32)
    weights = ridge_solve(features, targets, lam)
    assert weights.dtype == torch.float32 and torch.isfinite(weights).all()
    expected = np.stack(
        [_augmented_lstsq(f.double().numpy(), t.double().numpy(), lam) for f, t in zip(features, targets)]
    )
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-4, atol=1e-5)
    # two rows, 17 features: the fit interpolates the support set
    fitted = torch.einsum("bnm,bm->bn", features, weights)
    torch.testing.assert_close(fitted, targets, atol=1e-3, rtol=0)


def test_gradients_are_finite_and_correct():
    features, targets = _problem((2,), 4, 6, seed=3)
    features.requires_grad_(True)
    targets.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda h, y: ridge_solve(h, y, 0.5), (features, targets))
    for form in ("primal", "dual"):
        small_h = features.detach().float().requires_grad_(True)
        small_y = targets.detach().float().requires_grad_(True)
        ridge_solve(small_h, small_y, 1e-6, form=form).pow(2).sum().backward()
        assert torch.isfinite(small_h.grad).all() and torch.isfinite(small_y.grad).all()
        assert small_h.grad.abs().sum() > 0


def test_likelihood_head_solves_one_ridge_per_task_and_variable():
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(2, 7, 3, 5, generator=generator)  # (B, n, d, m + 1)
    support = torch.randn(2, 7, 3, generator=generator)
    weights = Likelihood.fit_intervention_weights(features, support, 0.2)
    assert weights.shape == (2, 3, 5)
    for b in range(2):
        for j in range(3):
            expected = _augmented_lstsq(features[b, :, j].double().numpy(), support[b, :, j].double().numpy(), 0.2)
            np.testing.assert_allclose(weights[b, j].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_bad_input_raises():
    features, targets = _problem((), 5, 3)
    with pytest.raises(MetaCaDIInputError, match="targets"):
        ridge_solve(features, targets[:4], 0.1)
    with pytest.raises(MetaCaDIInputError, match="ridge_lambda"):
        ridge_solve(features, targets, 0.0)
    with pytest.raises(MetaCaDIInputError, match="form"):
        ridge_solve(features, targets, 0.1, form="cholesky")


@pytest.mark.parametrize("form", ["auto", "primal", "dual"])
@pytest.mark.parametrize("n_rows, n_features", [(10, 17), (30, 5), (3, 2)])
def test_leave_one_out_residuals_equal_explicit_refits(n_rows, n_features, form):
    lam = 0.7
    features, targets = _problem((2, 3), n_rows, n_features, seed=4)
    from metacadi.ridge import ridge_solve_loo

    weights, loo = ridge_solve_loo(features, targets, lam, form=form)
    torch.testing.assert_close(weights, ridge_solve(features, targets, lam))
    h, y = features.numpy(), targets.numpy()
    for index in np.ndindex(2, 3):
        for row in range(n_rows):
            keep = np.arange(n_rows) != row
            refit = _augmented_lstsq(h[index][keep], y[index][keep], lam)
            expected = y[index][row] - h[index][row] @ refit
            np.testing.assert_allclose(loo[index][row].item(), expected, rtol=1e-7, atol=1e-9)


def test_task_noise_scale_is_the_shrunk_leave_one_out_variance():
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(2, 10, 3, 5, generator=generator, dtype=torch.float64)
    x = torch.randn(2, 10, 3, generator=generator, dtype=torch.float64)
    shared = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    weights, scale = Likelihood.fit_intervention_head(features, x, 1.0, shared, prior_rows=4.0)
    from metacadi.ridge import ridge_solve_loo

    _, loo = ridge_solve_loo(features.permute(0, 2, 1, 3), x.transpose(1, 2), 1.0)
    expected = ((loo.pow(2).sum(-1) + 4.0 * shared.pow(2)) / 14.0).sqrt()
    torch.testing.assert_close(scale, expected)
    # a variable whose values are blown up three-fold gets a larger task noise scale
    _, wider = Likelihood.fit_intervention_head(features, x * torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64), 1.0, shared, 4.0)
    assert torch.all(wider[:, 2] > scale[:, 2])
