"""Target-predictor features (paper §4.2, eq. 3–4) and Deep Sets pooling.

From a support set ``X_S`` (``n x d``) and the two mechanisms' predictions on it, every row ``i``
gets nine ``d``-vectors (nine ``n x d`` blocks, in this order, see :data:`FEATURE_BLOCKS`):

1. ``x``                      the data
2. ``x^obs``                  the observational mechanism's prediction ``f^obs(g ⊙ x)``
3. ``x^int``                  the interventional mechanism's prediction ``w_tᵀ h(g ⊙ x)``
4. ``(x - x^obs) / sigma``    observational residual, in units of the learned noise scale
5. ``(x - x^int) / sigma``    interventional residual, same units
6. ``|x - x^obs| / sigma``    its magnitude (the paper's "squares (or absolute values)"; absolute
                              values keep a single outlying row from saturating the embedding)
7. ``|x - x^int| / sigma``
8. ``mu``                     the column mean of ``X_S``, broadcast to every row
9. ``s``                      the column standard deviation of ``X_S``, broadcast

Scaling the residuals by ``sigma_j`` makes "how surprising is this value for variable ``j``"
comparable across variables: a large observational residual on a variable the model predicts
well is the signature of an intervention on it, while a change explained by the parents is not.

Pooling over rows (Deep Sets, Zaheer et al. 2017) with an MLP ``e``:
``z_j = [ mean_i e(F_ij), e(mean_i F_ij) ]`` ("mean of embeddings", "embedding of the mean").
``e`` acts on each variable's nine numbers and is shared across variables — a block-diagonal
``e`` on the full ``9d`` row with tied blocks — so the predictor learns "what an intervened
variable looks like" from every variable at once and works for variables rarely intervened on
in meta-training. A learned per-variable embedding is appended before the output MLP so the
logits can still depend on the variable. ``z`` is invariant to the order of the rows.
"""

from __future__ import annotations

import math

import torch
from torch import nn

FEATURE_BLOCKS: tuple[str, ...] = (
    "data",
    "obs_prediction",
    "int_prediction",
    "obs_residual",
    "int_residual",
    "obs_residual_abs",
    "int_residual_abs",
    "column_mean",
    "column_std",
)


def feature_matrix(
    x: torch.Tensor, obs_mean: torch.Tensor, int_mean: torch.Tensor, noise_scale: torch.Tensor
) -> torch.Tensor:
    """The nine-block feature matrix, ``(B, n, d, 9)`` (row ``i``'s ``9d`` features as ``d x 9``).

    Args:
        x, obs_mean, int_mean: ``(B, n, d)`` support data and the two mechanisms' predictions.
        noise_scale: ``(d,)`` or ``(B, d)`` learned ``sigma``.
    """
    sigma = noise_scale.detach()
    sigma = sigma.unsqueeze(-2) if sigma.dim() == 2 else sigma
    obs_residual = (x - obs_mean) / sigma
    int_residual = (x - int_mean) / sigma
    mean = x.mean(dim=1, keepdim=True).expand_as(x)
    std = x.std(dim=1, keepdim=True, unbiased=False).expand_as(x)
    blocks = (x, obs_mean, int_mean, obs_residual, int_residual, obs_residual.abs(), int_residual.abs(), mean, std)
    return torch.stack(blocks, dim=-1)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class DeepSetsPooling(nn.Module):
    """``z = [mean_i e(F_i), e(mean_i F_i)]`` over the rows ``i``: ``(B, n, d, 9) -> (B, d, 2k)``."""

    def __init__(self, n_blocks: int = len(FEATURE_BLOCKS), embedding_size: int = 32) -> None:
        super().__init__()
        self.embed = _mlp([n_blocks, embedding_size, embedding_size])
        self.embedding_size = embedding_size

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mean_of_embeddings = self.embed(features).mean(dim=1)
        embedding_of_mean = self.embed(features.mean(dim=1))
        return torch.cat([mean_of_embeddings, embedding_of_mean], dim=-1)


class TargetPredictor(nn.Module):
    """``gamma_t = NN_phi(z_t)``: intervention-target logits ``(B, d)`` from features ``(B, n, d, 9)``."""

    def __init__(self, n_variables: int, embedding_size: int = 32, variable_embedding_size: int = 8) -> None:
        super().__init__()
        self.pooling = DeepSetsPooling(len(FEATURE_BLOCKS), embedding_size)
        self.variable_embedding = nn.Parameter(torch.randn(n_variables, variable_embedding_size) * 0.1)
        self.head = _mlp([2 * embedding_size + variable_embedding_size, embedding_size, 1])
        # Start from about one target per task, so the sparsity term does not dominate early on.
        with torch.no_grad():
            self.head[-1].bias.fill_(-math.log(max(n_variables - 1, 1)))

    def forward(self, features: torch.Tensor, variables: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, d)``; with ``variables`` (``(U,)`` variable indices) the feature axis holds
        ``U`` columns (variable ``variables[u]`` under some parent set) and the logits are ``(B, U)``."""
        pooled = self.pooling(features)
        embedding = self.variable_embedding if variables is None else self.variable_embedding[variables]
        variable = embedding.unsqueeze(0).expand(pooled.shape[0], -1, -1)
        return self.head(torch.cat([pooled, variable], dim=-1)).squeeze(-1)
