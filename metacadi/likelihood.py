"""The likelihood of paper eq. 2: observational and interventional mechanisms.

For task ``t`` and variable ``j`` with parent mask ``g_j = A[:, j]``:

    x_j = (1 - r_tj) f_j^obs(g_j ⊙ x) + r_tj f_j^int(g_j ⊙ x) + eps_j,   eps_j ~ N(0, sigma_j^2)

* ``f_j^obs``: one MLP per variable, shared by all tasks (input ``d``, one hidden layer, SiLU).
* ``f_j^int(g_j ⊙ x) = w_tjᵀ h_j(g_j ⊙ x)``: a feature extractor ``h_j`` shared by all tasks
  (one MLP per variable, ``tanh`` features so the ridge solve stays well conditioned, plus a
  constant feature so the task-specific layer can shift the mean) and a **task-specific last
  layer** ``w_tj`` fitted in closed form on the support set (:func:`metacadi.ridge.ridge_solve`).
* ``sigma_j``: learnable noise scales (``log sigma`` is the parameter).

With ``mask_indicators`` the first layer of ``f^obs_j`` and ``h_j`` also sees the mask itself:
its pre-activation is ``W1_j (g_j ⊙ x) + U1_j g_j + b1_j``, so an absent parent and a parent
whose value is 0 (the data's mean) are told apart, and one network can represent the regression
of ``x_j`` on each parent set it is trained with (``U1`` starts at 0: the plain mechanism).

All tensors carry a leading batch axis ``B`` (a task, or a task × graph sample). Parameters are
passed explicitly (``params`` dict) so the MAML ablations can run the same mechanisms with
per-task adapted copies whose leading axis is ``B``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .ridge import ridge_solve, ridge_solve_loo

#: Number of dimensions of each shared parameter *without* a batch axis.
_BASE_DIMS = {
    "obs_w1": 3, "obs_b1": 2, "obs_w2": 2, "obs_b2": 1,
    "ext_w1": 3, "ext_b1": 2, "ext_w2": 3, "ext_b2": 2,
    "log_noise_scale": 1,
    "obs_u1": 3, "ext_u1": 3,
}


def _batched(param: torch.Tensor, name: str, batch_size: int) -> torch.Tensor:
    """View ``param`` with a leading batch axis of ``batch_size`` (a free expand if it has none)."""
    if param.dim() == _BASE_DIMS[name]:
        return param.unsqueeze(0).expand(batch_size, *param.shape)
    return param


def masked_inputs(x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """``(B, n, d_j, d_i)`` tensor of ``g_j ⊙ x``: entry ``[b, n, j, i] = x[b, n, i] * A[b, i, j]``.

    Args:
        x: ``(B, n, d)`` data. adjacency: ``(B, d, d)`` (gradients flow into it).
    """
    return x.unsqueeze(-2) * adjacency.transpose(-1, -2).unsqueeze(1)


#: first-layer initialisations of the per-variable MLPs (inputs are standardised data):
#: ``"fan-in"``: weights ``N(0, 1/d)``, biases 0 (every hidden unit starts near-linear at the data's
#: centre); ``"spread"``: weights and biases ``N(0, 1)``, so the units' bends cover the data's
#: range from the start.
MECHANISM_INITS = ("fan-in", "spread")


class Likelihood(nn.Module):
    """Observational MLPs, interventional feature extractors and noise scales for ``d`` variables.

    Args:
        n_variables: ``d``.
        hidden_size: width of the hidden layer of every per-variable MLP.
        n_features: ``m``, the number of features ``h_j`` gives the ridge head (a constant
            feature is appended, so the head has ``m + 1`` weights per variable).
        init: how the first layers of ``f^obs_j`` and ``h_j`` start (see :data:`MECHANISM_INITS`).
        mask_indicators: give both first layers the parent mask ``g_j`` as inputs too
            (parameters ``obs_u1``, ``ext_u1``: ``(d, d, hidden)``, zero at the start).
    """

    def __init__(
        self, n_variables: int, hidden_size: int = 32, n_features: int = 16, init: str = "fan-in",
        mask_indicators: bool = False,
    ) -> None:
        super().__init__()
        d, h, m = n_variables, hidden_size, n_features
        self.n_variables, self.hidden_size, self.n_features = d, h, m
        if init not in MECHANISM_INITS:
            raise ValueError(f"init must be one of {sorted(MECHANISM_INITS)}; got {init!r}.")
        scale_hidden = 1.0 / math.sqrt(h)
        spread = init == "spread"
        scale_in = 1.0 if spread else 1.0 / math.sqrt(max(d, 1))

        def first_bias() -> torch.Tensor:
            return torch.randn(d, h) if spread else torch.zeros(d, h)

        self.obs_w1 = nn.Parameter(torch.randn(d, d, h) * scale_in)
        self.obs_b1 = nn.Parameter(first_bias())
        self.obs_w2 = nn.Parameter(torch.randn(d, h) * scale_hidden)
        self.obs_b2 = nn.Parameter(torch.zeros(d))
        self.ext_w1 = nn.Parameter(torch.randn(d, d, h) * scale_in)
        self.ext_b1 = nn.Parameter(first_bias())
        self.ext_w2 = nn.Parameter(torch.randn(d, h, m) * scale_hidden)
        self.ext_b2 = nn.Parameter(torch.zeros(d, m))
        self.log_noise_scale = nn.Parameter(torch.zeros(d))
        self.mask_indicators = bool(mask_indicators)
        if self.mask_indicators:
            self.obs_u1 = nn.Parameter(torch.zeros(d, d, h))
            self.ext_u1 = nn.Parameter(torch.zeros(d, d, h))

    def shared_params(self) -> dict[str, torch.Tensor]:
        """The likelihood's parameters by name (no batch axis)."""
        return {name: getattr(self, name) for name in _BASE_DIMS if hasattr(self, name)}

    def _get(self, params: dict[str, torch.Tensor] | None, name: str, batch_size: int) -> torch.Tensor:
        source = params if params is not None and name in params else None
        value = source[name] if source is not None else getattr(self, name)
        return _batched(value, name, batch_size)

    def _value(self, params: dict[str, torch.Tensor] | None, name: str) -> torch.Tensor:
        return params[name] if params is not None and name in params else getattr(self, name)

    def _layer(self, params: dict[str, torch.Tensor] | None, name: str, operand: torch.Tensor, equation: str) -> torch.Tensor:
        """``einsum(equation, operand, W_name)`` with ``W`` per batch item (``b`` axis); a shared
        ``W`` (no batch axis) is contracted as it is, not expanded to one copy per batch item
        (one matrix product per variable instead of one per batch item and variable)."""
        value = self._value(params, name)
        if value.dim() == _BASE_DIMS[name]:
            return torch.einsum(equation.replace(",b", ","), operand, value)
        return torch.einsum(equation, operand, value)

    def _bias(self, params: dict[str, torch.Tensor] | None, name: str) -> torch.Tensor:
        """A bias that broadcasts against ``(B, n, ...)``."""
        value = self._value(params, name)
        return value if value.dim() == _BASE_DIMS[name] else value.unsqueeze(1)

    def _first_layer(
        self, params: dict[str, torch.Tensor] | None, network: str, x: torch.Tensor, adjacency: torch.Tensor
    ) -> torch.Tensor:
        """Pre-activations ``W1_j (g_j ⊙ x) [+ U1_j g_j] + b1_j`` of ``network`` (``"obs"``: ``f^obs``,
        ``"ext"``: ``h``) for all ``j``: ``(B, n, d, hidden)``."""
        pre = self._layer(params, f"{network}_w1", masked_inputs(x, adjacency), "bnji,bjih->bnjh")
        if self.mask_indicators:  # one term per (task, variable), broadcast over rows
            pre = pre + self._layer(params, f"{network}_u1", adjacency, "bij,bjih->bjh").unsqueeze(1)
        return pre + self._bias(params, f"{network}_b1")

    def noise_scale(self, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``sigma``: ``(d,)`` or ``(B, d)`` when the parameters are per task."""
        log_scale = params["log_noise_scale"] if params is not None and "log_noise_scale" in params else self.log_noise_scale
        return log_scale.exp()

    def observational_mean(
        self, x: torch.Tensor, adjacency: torch.Tensor, params: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``f^obs_j(g_j ⊙ x)`` for all ``j``: ``(B, n, d)`` from ``x (B, n, d)`` and ``adjacency (B, d, d)``."""
        hidden = nn.functional.silu(self._first_layer(params, "obs", x, adjacency))
        out = self._layer(params, "obs_w2", hidden, "bnjh,bjh->bnj")
        return out + self._bias(params, "obs_b2")

    def intervention_features(
        self, x: torch.Tensor, adjacency: torch.Tensor, params: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``[h_j(g_j ⊙ x), 1]`` for all ``j``: ``(B, n, d, m + 1)``."""
        hidden = nn.functional.silu(self._first_layer(params, "ext", x, adjacency))
        features = self._layer(params, "ext_w2", hidden, "bnjh,bjhm->bnjm")
        features = torch.tanh(features + self._bias(params, "ext_b2"))
        return torch.cat([features, torch.ones_like(features[..., :1])], dim=-1)

    #: elements of the widest intermediate per block of variables in :meth:`edge_flip_nll`
    flip_block_elements = 1 << 22

    @torch.no_grad()
    def edge_flip_nll(
        self,
        x: torch.Tensor,
        adjacency: torch.Tensor,
        weights: torch.Tensor,
        noise_scale: torch.Tensor,
        params: dict[str, torch.Tensor] | None = None,
        with_profile: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Exact effect of each single edge on the observational NLL, ``(B, d, d)``.

        Entry ``[b, i, j]`` is ``mean_n w_bj [NLL_j(x | A with A_ij = 1) - NLL_j(x | A with A_ij = 0)]``,
        every other entry of ``A[b]`` kept: the difference of the observational mechanism's
        Gaussian NLL (``0.5 ((x_j - f^obs_j) / sigma_j)^2``) of variable ``j`` between the two
        values of one edge. The first layer of ``f^obs_j`` is linear in its masked inputs, so
        switching edge ``i -> j`` adds ``±x_i W1[j, i]`` (and ``±U1[j, i]`` with mask indicators)
        to the hidden pre-activations and every
        ``(i, j)`` pair costs one hidden layer (``B x n x d x d x h`` numbers in all, computed in
        blocks of variables).

        Args:
            x: ``(B, n, d)`` rows. adjacency: ``(B, d, d)`` hard 0/1 graphs.
            weights: ``(B, d)`` weight of each variable's rows (``1 - p``: the rows the
                observational mechanism explains). noise_scale: ``(d,)`` or ``(B, d)`` sigma.
            params: per-task parameters (MAML), as in :meth:`observational_mean`.
            with_profile: also return the same switch's effect on the *profile* NLL, in which
                ``sigma_j`` is refitted to the rows on each side: ``w_bj 0.5 log(MSE_j(A_ij = 1) /
                MSE_j(A_ij = 0))``. At a fixed ``sigma_j`` the change is lopsided (removing an edge
                that ``sigma_j`` was fitted with costs ``1 / sigma_j^2`` times its residual growth,
                adding one to a loosely fitted variable gains little); the profile change is what
                a refitted noise scale would see, and compares the two directions of a pair on
                one scale (:func:`~metacadi.losses.pairwise_order_gradient`).
        Returns:
            ``(B, d, d)``, or with ``with_profile`` a pair ``(change, profile_change)``.
        """
        batch, n_rows, d = x.shape
        hidden = self.hidden_size
        sigma = noise_scale if noise_scale.dim() == 2 else noise_scale.expand(batch, d)
        sign = 1.0 - 2.0 * adjacency  # +1: switching on, -1: switching off
        pre = self._first_layer(params, "obs", x, adjacency)
        w1, w2 = self._value(params, "obs_w1"), self._value(params, "obs_w2")
        u1 = self._value(params, "obs_u1") if self.mask_indicators else None
        if w1.dim() == _BASE_DIMS["obs_w1"]:  # shared: (j, i, h) and (j, h) broadcast over (B, n)
            w1, w2 = w1.unsqueeze(0), w2.unsqueeze(0)
        if u1 is not None and u1.dim() == _BASE_DIMS["obs_u1"]:
            u1 = u1.unsqueeze(0)
        w1, w2 = w1.unsqueeze(1), w2.unsqueeze(1)  # (B or 1, 1, j, i, h), (B or 1, 1, j, h)
        signed_u1 = None if u1 is None else sign.transpose(1, 2).unsqueeze(-1) * u1  # (B, j, i, h): ±U1[j, i]
        b2 = self._bias(params, "obs_b2")
        current = (nn.functional.silu(pre) * w2).sum(-1) + b2
        current_sq = ((x - current) / sigma.unsqueeze(1)).pow(2)
        block = max(1, self.flip_block_elements // max(batch * n_rows * d * hidden, 1))
        signed_x = x.unsqueeze(2) * sign.transpose(1, 2).unsqueeze(1)  # (B, n, j, i): ±x_i for edge i -> j
        b2 = b2.unsqueeze(-1)  # broadcast against (B, n, j, i)
        out = x.new_empty(batch, d, d)
        profile = x.new_empty(batch, d, d) if with_profile else None
        current_mse = current_sq.mean(1).clamp_min(1e-12)  # (B, j)
        for start in range(0, d, block):
            cols = slice(start, start + block)
            hidden_flipped = pre[:, :, cols].unsqueeze(3) + signed_x[:, :, cols].unsqueeze(-1) * w1[:, :, cols]
            if signed_u1 is not None:
                hidden_flipped = hidden_flipped + signed_u1[:, cols].unsqueeze(1)
            activation = nn.functional.silu(hidden_flipped, inplace=True)
            flipped = (activation * w2[:, :, cols].unsqueeze(3)).sum(-1) + b2[..., cols, :]  # (B, n, j, i)
            flipped_sq = ((x[:, :, cols].unsqueeze(-1) - flipped) / sigma[:, cols].unsqueeze(1).unsqueeze(-1)).pow(2)
            change = 0.5 * (flipped_sq - current_sq[:, :, cols].unsqueeze(-1)).mean(1)  # (B, j, i): flipped - current
            out[:, :, cols] = (change * weights[:, cols].unsqueeze(-1)).transpose(1, 2)
            if profile is not None:
                ratio = flipped_sq.mean(1).clamp_min(1e-12) / current_mse[:, cols].unsqueeze(-1)  # (B, j, i)
                profile[:, :, cols] = (0.5 * ratio.log() * weights[:, cols].unsqueeze(-1)).transpose(1, 2)
        if profile is not None:
            return out * sign, profile * sign
        return out * sign  # on - off

    @staticmethod
    def fit_intervention_weights(features: torch.Tensor, x: torch.Tensor, ridge_lambda: float) -> torch.Tensor:
        """Closed-form task-specific last layer (eq. 6): ``w_tj = (H_jᵀH_j + λI)^{-1} H_jᵀ y_j``.

        Args:
            features: ``(B, n, d, m + 1)`` support-set features ``H``. x: ``(B, n, d)`` support data.
        Returns:
            ``(B, d, m + 1)`` weights, one ridge solve per (batch item, variable), all batched.
        """
        return ridge_solve(features.permute(0, 2, 1, 3), x.transpose(1, 2), ridge_lambda)

    @staticmethod
    def fit_intervention_loo(features: torch.Tensor, x: torch.Tensor, ridge_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The ridge last layer (eq. 6) and its leave-one-out residuals on the support set.

        Args:
            features: ``(B, n, d, m + 1)``. x: ``(B, n, d)``.
        Returns:
            ``(weights (B, d, m + 1), loo_residuals (B, n, d))``: ``loo_residuals[b, i, j]`` is
            ``x_ij`` minus the head's prediction of it when row ``i`` is left out of the solve
            (:func:`~metacadi.ridge.ridge_solve_loo`).
        """
        weights, loo = ridge_solve_loo(features.permute(0, 2, 1, 3), x.transpose(1, 2), ridge_lambda)
        return weights, loo.transpose(1, 2)

    @staticmethod
    def shrunk_noise_scale(loo_residuals: torch.Tensor, noise_scale: torch.Tensor, prior_rows: float) -> torch.Tensor:
        """``sigma_tj = sqrt((sum_i e_ij^2 + prior_rows sigma_j^2) / (n + prior_rows))``, ``(B, d)``
        from leave-one-out residuals ``e`` ``(B, n, d)`` and the shared ``sigma`` ``(d,)``."""
        n_rows = loo_residuals.shape[1]
        variance = (loo_residuals.pow(2).sum(1) + prior_rows * noise_scale.pow(2)) / (n_rows + prior_rows)
        return variance.sqrt()

    @staticmethod
    def fit_intervention_head(
        features: torch.Tensor, x: torch.Tensor, ridge_lambda: float, noise_scale: torch.Tensor, prior_rows: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Closed-form task-specific head: the ridge last layer (eq. 6) and a noise scale.

        The interventional noise scale of each (task, variable) is the posterior mode of its
        variance under a scaled-inverse-chi-square prior centred on the shared ``sigma_j`` with
        ``prior_rows`` pseudo-rows, given the head's leave-one-out residuals ``e`` on the
        support set (:meth:`fit_intervention_loo`, :meth:`shrunk_noise_scale`):

            sigma_tj^2 = (sum_i e_ij^2 + prior_rows sigma_j^2) / (n + prior_rows)

        An intervention that changes a variable's spread but not its mean (a scale-only soft
        intervention) is then visible to the likelihood: ``f^int`` explains it by a larger
        ``sigma_tj``, while a non-target's leave-one-out error stays above ``sigma_j``.

        Args:
            features: ``(B, n, d, m + 1)``. x: ``(B, n, d)``. noise_scale: shared ``(d,)`` sigma.
        Returns:
            ``(weights (B, d, m + 1), int_noise_scale (B, d))``.
        """
        weights, loo = Likelihood.fit_intervention_loo(features, x, ridge_lambda)
        return weights, Likelihood.shrunk_noise_scale(loo, noise_scale, prior_rows)

    @staticmethod
    def interventional_mean(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``w_tjᵀ h_j(g_j ⊙ x)``: ``(B, n, d)`` from features ``(B, n, d, m + 1)`` and weights ``(B, d, m + 1)``."""
        return torch.einsum("bnjm,bjm->bnj", features, weights)

    @staticmethod
    def mix(obs_mean: torch.Tensor, int_mean: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Eq. 2 mean: ``(1 - r) f^obs + r f^int`` with ``targets r (B, d)`` broadcast over rows."""
        r = targets.unsqueeze(1)
        return (1.0 - r) * obs_mean + r * int_mean
