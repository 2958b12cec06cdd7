"""Batched closed-form ridge regression (paper eqs. 5–6).

For every system ``b`` of a batch (one per task and variable in MetaCaDI), with features
``H_b in R^{n x m}`` and targets ``y_b in R^n``,

    w_b = argmin_w ||y_b - H_b w||^2 + lambda ||w||^2
        = (H_bᵀ H_b + lambda I_m)^{-1} H_bᵀ y_b          (primal, m x m system)
        = H_bᵀ (H_b H_bᵀ + lambda I_n)^{-1} y_b          (dual, n x n system)

The two forms are equal (push-through identity); the smaller system is solved, by Cholesky
factorisation, never an explicit inverse. The solve runs in float64 whatever the input dtype, so
tiny support sets and small ``lambda`` stay well conditioned, and the result is differentiable
with respect to ``H`` and ``y`` (the outer loop trains the feature extractor through it).
"""

from __future__ import annotations

from typing import Literal

import torch

from .errors import MetaCaDIInputError

RidgeForm = Literal["auto", "primal", "dual"]


def _check_system(features: torch.Tensor, targets: torch.Tensor, ridge_lambda: float) -> None:
    """Shapes ``(..., n, m)`` and ``(..., n)`` and ``lambda > 0``, or a clear error."""
    if features.dim() < 2 or targets.shape != features.shape[:-1]:
        raise MetaCaDIInputError(
            f"features must be (..., n, m) and targets (..., n); got {tuple(features.shape)} and {tuple(targets.shape)}."
        )
    if not ridge_lambda > 0:
        raise MetaCaDIInputError(f"ridge_lambda must be > 0; got {ridge_lambda}.")


def ridge_solve(
    features: torch.Tensor, targets: torch.Tensor, ridge_lambda: float, form: RidgeForm = "auto"
) -> torch.Tensor:
    """Solve a batch of ridge regressions.

    Args:
        features: ``(..., n, m)`` design matrices ``H``.
        targets: ``(..., n)`` responses ``y``.
        ridge_lambda: ``lambda > 0``.
        form: ``"primal"``, ``"dual"`` or ``"auto"`` (dual iff ``n < m``).
    Returns:
        ``(..., m)`` weights ``w``, in the dtype of ``features``.
    """
    _check_system(features, targets, ridge_lambda)
    n_rows, n_features = features.shape[-2], features.shape[-1]
    if form == "auto":
        form = "dual" if n_rows < n_features else "primal"
    if form not in ("primal", "dual"):
        raise MetaCaDIInputError(f"form must be 'auto', 'primal' or 'dual'; got {form!r}.")
    design = features.to(torch.float64)
    response = targets.to(torch.float64).unsqueeze(-1)
    if form == "primal":
        gram = design.transpose(-1, -2) @ design
        gram = gram + ridge_lambda * torch.eye(n_features, dtype=gram.dtype, device=gram.device)
        factor = torch.linalg.cholesky(gram)
        weights = torch.cholesky_solve(design.transpose(-1, -2) @ response, factor)
    else:
        gram = design @ design.transpose(-1, -2)
        gram = gram + ridge_lambda * torch.eye(n_rows, dtype=gram.dtype, device=gram.device)
        factor = torch.linalg.cholesky(gram)
        weights = design.transpose(-1, -2) @ torch.cholesky_solve(response, factor)
    return weights.squeeze(-1).to(features.dtype)


def ridge_solve_loo(
    features: torch.Tensor, targets: torch.Tensor, ridge_lambda: float, form: RidgeForm = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge weights and their leave-one-out residuals, from one Cholesky factorisation.

    The residual of row ``i`` when the fit leaves row ``i`` out is
    ``(y_i - ŷ_i) / (1 - h_ii)`` with ``h_ii`` the hat matrix's diagonal (no refit):

    * dual (``n < m``): with ``G = H Hᵀ + lambda I_n`` and ``alpha = G^{-1} y``, the in-sample
      residual is ``lambda alpha`` and ``I - hat = lambda G^{-1}``, so the leave-one-out residual
      is ``alpha_i / [G^{-1}]_ii``;
    * primal: with ``HᵀH + lambda I_m = L Lᵀ`` and ``Z = L^{-1} Hᵀ``, ``h_ii = ||Z_{:, i}||²``.

    These residuals measure how well the task-specific head *predicts* a row it has not seen,
    which the in-sample residuals of an ``m > n`` ridge fit (nearly zero) cannot.

    Args:
        features: ``(..., n, m)``. targets: ``(..., n)``. ridge_lambda: ``lambda > 0``.
        form: ``"primal"``, ``"dual"`` or ``"auto"`` (dual iff ``n < m``); the results agree.
    Returns:
        ``(weights (..., m), loo_residuals (..., n))`` in the dtype of ``features``.
    """
    _check_system(features, targets, ridge_lambda)
    n_rows, n_features = features.shape[-2], features.shape[-1]
    if form == "auto":
        form = "dual" if n_rows < n_features else "primal"
    if form not in ("primal", "dual"):
        raise MetaCaDIInputError(f"form must be 'auto', 'primal' or 'dual'; got {form!r}.")
    design = features.to(torch.float64)
    response = targets.to(torch.float64).unsqueeze(-1)
    if form == "dual":
        gram = design @ design.transpose(-1, -2)
        gram.diagonal(dim1=-2, dim2=-1).add_(ridge_lambda)
        factor = torch.linalg.cholesky(gram)
        alpha = torch.cholesky_solve(response, factor)
        weights = design.transpose(-1, -2) @ alpha
        inverse_diagonal = torch.cholesky_inverse(factor).diagonal(dim1=-2, dim2=-1)
        loo = alpha.squeeze(-1) / inverse_diagonal
    else:
        gram = design.transpose(-1, -2) @ design
        gram.diagonal(dim1=-2, dim2=-1).add_(ridge_lambda)
        factor = torch.linalg.cholesky(gram)
        weights = torch.cholesky_solve(design.transpose(-1, -2) @ response, factor)
        residual = (response - design @ weights).squeeze(-1)
        whitened = torch.linalg.solve_triangular(factor, design.transpose(-1, -2), upper=False)
        leverage = whitened.pow(2).sum(dim=-2)
        loo = residual / (1.0 - leverage)
    return weights.squeeze(-1).to(features.dtype), loo.to(features.dtype)


def ridge_fitted_values(features: torch.Tensor, targets: torch.Tensor, ridge_lambda: float) -> torch.Tensor:
    """In-sample predictions ``H w`` of :func:`ridge_solve` without forming ``w`` when ``n < m``.

    In the dual form ``H w = H Hᵀ alpha = (G - lambda I) alpha = y - lambda alpha`` with
    ``G = H Hᵀ + lambda I`` and ``alpha = G^{-1} y``: one Cholesky solve, no product with ``H``.

    Args:
        features: ``(..., n, m)``. targets: ``(..., n)``. ridge_lambda: ``lambda > 0``.
    Returns:
        ``(..., n)`` fitted values in the dtype of ``features``.
    """
    _check_system(features, targets, ridge_lambda)
    n_rows, n_features = features.shape[-2], features.shape[-1]
    if n_rows >= n_features:
        weights = ridge_solve(features, targets, ridge_lambda, form="primal")
        return (features @ weights.unsqueeze(-1)).squeeze(-1)
    design = features.to(torch.float64)
    response = targets.to(torch.float64).unsqueeze(-1)
    gram = design @ design.transpose(-1, -2)
    gram.diagonal(dim1=-2, dim2=-1).add_(ridge_lambda)
    alpha = torch.cholesky_solve(response, torch.linalg.cholesky(gram))
    return (response - ridge_lambda * alpha).squeeze(-1).to(features.dtype)
