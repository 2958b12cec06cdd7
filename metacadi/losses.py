"""The terms of the training objective (paper eq. 7, a negative ELBO with one sample of ``A, r``):

    L = mean_t [ L_rec(Q_t) + alpha * L_sparse(gamma_t) - kappa * H(q(r_t)) + lambda_gamma ||gamma_t||^2
                 + beta * L_HSIC(Q_t) ]
        + eta * KL(q_phi(E) || Bern(p0)) + c * E_q[|G|] + mu * L_sub

``L_sub`` regresses every observational mechanism on a random subset of the other variables
(:meth:`~metacadi.model.MetaCaDI._random_parent_set_nll`), so the input weights of edges the
current node order forbids stay trained. ``c E_q[|G|]`` is an Occam penalty on the expected
number of edges (see :func:`edge_occam_penalty` for why the KL alone cannot make the graph
posterior sparse).

``H(q(r_t))`` is the entropy of the Bernoulli target posterior: the part of the ELBO's
``KL(q(r_t) || p(r_t))`` that the L1 penalty leaves out. It keeps target logits finite (a
saturated sigmoid has no gradient, so a predictor pushed to ``p = 0`` early would never recover).

Each function documents its shapes; :class:`LossWeights` names the weights.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class LossWeights:
    """Weights of the objective's terms.

    Attributes:
        sparsity: ``alpha``, on the expected number of targets per task.
        hsic: ``beta``, on the residual-independence penalty.
        edge_prior: ``eta``, on the KL to the sparse edge prior (a per-edge mean).
        target_entropy: ``kappa``, on the (negated) entropy of the target posterior.
        edge_penalty: ``c``, nats per row charged for every expected edge (see :func:`edge_occam_penalty`).
        target_logit_decay: ``lambda_gamma``, on the squared target logits (see :func:`target_logit_decay`).
    """

    sparsity: float = 0.3
    hsic: float = 1.0
    edge_prior: float = 1.0
    target_entropy: float = 0.05
    edge_penalty: float = 0.05
    target_logit_decay: float = 1e-4

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def gaussian_nll_per_variable(x: torch.Tensor, mean: torch.Tensor, noise_scale: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood of each variable over the rows, ``(B, d)``.

    ``0.5 ((x - mean) / sigma)^2 + log sigma + 0.5 log 2 pi`` averaged over rows; for a fixed
    ``sigma`` this is the paper's mean squared error up to scale and constant, and learning
    ``sigma`` lets well-explained variables count more.

    Args:
        x, mean: ``(B, n, d)``. noise_scale: ``(d,)`` or ``(B, d)``.
    """
    sigma = noise_scale.unsqueeze(-2) if noise_scale.dim() == 2 else noise_scale
    standardized = (x - mean) / sigma
    per_entry = 0.5 * standardized.pow(2) + torch.log(sigma) + 0.5 * math.log(2 * math.pi)
    return per_entry.mean(dim=1)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, noise_scale: torch.Tensor) -> torch.Tensor:
    """Reconstruction term ``L_rec``: Gaussian NLL of a whole row (summed over the ``d``
    variables), averaged over rows, ``(B,)`` (see :func:`gaussian_nll_per_variable`).

    Summing over variables keeps the term on the scale of a log-likelihood, so the per-task
    target penalty (a sum over variables too) weighs against each variable's evidence with a
    weight that does not shrink as ``d`` grows.
    """
    return gaussian_nll_per_variable(x, mean, noise_scale).sum(dim=-1)


def expected_reconstruction(nll_obs: torch.Tensor, nll_int: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """``E_{r ~ Bern(p)}[L_rec]`` in closed form, ``(B,)``.

    Given the graph, the Gaussian likelihood of eq. 2 factorises over variables and variable
    ``j`` depends on ``r_j`` only, so the expectation over the targets is exact:
    ``sum_j [(1 - p_j) NLL_j^obs + p_j NLL_j^int]`` — the same objective as a Monte-Carlo sample
    of ``r`` in :func:`gaussian_nll`, with a zero-variance gradient for the target predictor.

    Args:
        nll_obs, nll_int: ``(B, d)`` per-variable NLL of the two mechanisms. target_probs: ``(B, d)``.
    """
    return ((1.0 - target_probs) * nll_obs + target_probs * nll_int).sum(dim=-1)


def target_logit_decay(target_logits: torch.Tensor) -> torch.Tensor:
    """``sum_j gamma_tj^2``, ``(B,)``: a Gaussian prior on the target logits that keeps them finite.

    Every other force on a logit passes through the sigmoid and carries a factor
    ``p (1 - p)``, which vanishes once it saturates. Early in training the interventional head is
    worse than the observational mechanism for every variable, so every logit is pushed down;
    with Adam's normalised steps the whole predictor could sink to ``p = 0`` (exactly, in float32)
    and never recover (measured: a 6-variable problem ended with every target probability 0 and
    Intv-AUROC 0.19). This term's gradient ``2 gamma`` does not vanish: with a small weight it
    holds the logits where the objective's gradient is still alive (about ``|gamma| < 8``)
    without changing which variables rank first.
    """
    return target_logits.pow(2).sum(dim=-1)


def mean_squared_error(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Plain MSE per batch item, ``(B,)`` from ``(B, n, d)`` inputs."""
    return (x - mean).pow(2).mean(dim=(1, 2))


def target_sparsity(target_logits: torch.Tensor) -> torch.Tensor:
    """``||E[r_t]||_1 = sum_j sigmoid(gamma_tj)``, the expected number of targets, ``(B,)``.

    The L1 penalty is applied to the target probabilities rather than the raw logits: an L1 on
    logits would pull every probability towards 1/2, the opposite of sparse targets.
    """
    return torch.sigmoid(target_logits).sum(dim=-1)


def target_entropy(target_logits: torch.Tensor) -> torch.Tensor:
    """``H(q(r_t)) = sum_j H(Bern(sigmoid(gamma_tj)))``, ``(B,)``, computed stably from logits.

    With ``log p = -softplus(-gamma)`` and ``log(1 - p) = -softplus(gamma)``:
    ``H = p softplus(-gamma) + (1 - p) softplus(gamma)``.
    """
    p = torch.sigmoid(target_logits)
    softplus = torch.nn.functional.softplus
    return (p * softplus(-target_logits) + (1.0 - p) * softplus(target_logits)).sum(dim=-1)


def _gaussian_gram(values: torch.Tensor) -> torch.Tensor:
    """Gaussian-kernel Gram matrices with the median-heuristic bandwidth.

    Args:
        values: ``(B, n, d)``. Returns ``(B, d, n, n)``, one Gram matrix per variable.
    """
    columns = values.transpose(1, 2).unsqueeze(-1)  # (B, d, n, 1)
    squared = (columns - columns.transpose(-1, -2)).pow(2)  # (B, d, n, n)
    n = values.shape[1]
    with torch.no_grad():
        # the lower median of the off-diagonal entries, read from the upper triangle alone (each
        # pair appears twice off the diagonal, so both lists have the same lower median)
        rows, cols = torch.triu_indices(n, n, offset=1, device=values.device)
        pairs = squared[..., rows, cols]
        bandwidth = pairs.kthvalue((pairs.shape[-1] + 1) // 2, dim=-1).values.clamp_min(1e-6)
    return torch.exp(-squared / bandwidth[..., None, None])


def hsic_matrix(residuals: torch.Tensor) -> torch.Tensor:
    """Biased HSIC between every pair of residual columns, ``(B, d, d)``.

    ``HSIC(i, j) = tr(K_i C K_j C) / (n - 1)^2`` with Gaussian kernels ``K`` (median bandwidth)
    and the centring matrix ``C = I - 11ᵀ/n`` (Gretton et al. 2005).
    """
    n = residuals.shape[1]
    gram = _gaussian_gram(residuals)
    centred = gram - gram.mean(dim=-1, keepdim=True) - gram.mean(dim=-2, keepdim=True) + gram.mean(dim=(-1, -2), keepdim=True)
    return torch.einsum("bipq,bjpq->bij", centred, centred) / (n - 1) ** 2


def residual_independence(residuals: torch.Tensor, max_rows: int = 32) -> torch.Tensor:
    """``L_HSIC``: mean pairwise HSIC over variable pairs ``i < j``, ``(B,)``.

    Uses the first ``max_rows`` rows (the query rows are already in random order) to bound the
    ``O(d^2 n^2)`` cost.
    """
    residuals = residuals[:, :max_rows]
    d = residuals.shape[-1]
    if d < 2 or residuals.shape[1] < 3:
        return residuals.new_zeros(residuals.shape[0])
    matrix = hsic_matrix(residuals)
    upper = torch.triu(torch.ones(d, d, dtype=torch.bool, device=residuals.device), diagonal=1)
    return matrix[:, upper].mean(dim=-1)


def edge_prior_kl(edge_presence_probs: torch.Tensor, prior_prob: float) -> torch.Tensor:
    """``KL(Bern(p_ij) || Bern(p0))`` averaged over the ``d(d-1)`` ordered pairs ``i != j``.

    Args:
        edge_presence_probs: ``(d, d)`` ``sigmoid(theta)`` (diagonal ignored).
        prior_prob: ``p0`` in (0, 1).
    """
    d = edge_presence_probs.shape[-1]
    off = ~torch.eye(d, dtype=torch.bool, device=edge_presence_probs.device)
    p = edge_presence_probs[off].clamp(1e-6, 1 - 1e-6)
    kl = p * torch.log(p / prior_prob) + (1 - p) * torch.log((1 - p) / (1 - prior_prob))
    return kl.mean()


def edge_occam_penalty(expected_edges: torch.Tensor) -> torch.Tensor:
    """``E_q[|G|] = sum_ij P(i precedes j) sigmoid(theta_ij)``: the expected number of edges (scalar).

    Weighted by ``c`` (``edge_penalty``, nats per row) in the objective, this is the Occam term
    that point-estimated mechanisms lack. A mechanism MLP that is handed an input it does not
    need learns to ignore it, so the reconstruction is flat in every non-edge (switching one on
    changes held-out NLL by about 0.001-0.005 nats per row, while dropping a true edge costs
    0.3-1.7 nats per row) and the KL to ``Bern(p0)`` alone leaves every non-edge at ``p0``, i.e.
    about ``p0`` times the number of allowed non-edges spurious edges in every sample. With
    ``c`` between those two scales an edge survives only if it improves the fit of a row by more
    than ``c`` nats; a BIC argument gives the same order of magnitude (``k log N / 2N`` per row
    for ``k`` extra weights, about 0.05 for ``k = 32`` inputs and ``N = 4000`` rows).

    Because the penalty is on the *expected* edge ``P(i before j) sigmoid(theta_ij)``, its force
    on ``theta_ij`` is proportional to how often the order allows the edge, exactly like the
    reconstruction's, so the balance does not depend on the state of the order.

    Args:
        expected_edges: ``(d, d)`` ``E_q[A]`` (:meth:`~metacadi.dpdag.DPDAG.expected_edges`).
    """
    return expected_edges.sum()


def local_edge_gradient(edge_presence_probs: torch.Tensor, order: torch.Tensor, flip_nll: torch.Tensor) -> torch.Tensor:
    """Surrogate whose gradient in ``theta`` is the exact gradient of a reconstruction term (value 0).

    Under ``q``, edge ``i -> j`` of a graph is ``A_ij = O_ij E_ij`` with ``E_ij ~ Bern(sigmoid
    theta_ij)`` independent of everything else, so for the reconstruction ``L``

        d E_q[L] / d theta_ij = sigmoid'(theta_ij) E_q[ O_ij (L(E_ij = 1) - L(E_ij = 0)) ]

    — the *local expectation gradient* (Titsias and Lázaro-Gredilla 2015): the expectation over
    one Bernoulli coordinate is taken exactly, the others are sampled. ``flip_nll`` holds the
    difference ``L(E_ij = 1) - L(E_ij = 0)`` for every task's sampled graph
    (:meth:`~metacadi.likelihood.Likelihood.edge_flip_nll`). The straight-through estimator it
    replaces differentiates ``L`` at the sampled mask value instead, i.e. it measures whether
    a *little* more of input ``i`` would help ``f_j``, which for a nonlinear mechanism says little
    about whether the whole input does.

    What ``L`` covers: in MetaCaDI (:meth:`~metacadi.model.MetaCaDI._objective`) the differences
    are those of the observational part of the expected reconstruction, each variable's rows
    weighted by ``1 - p`` (:meth:`~metacadi.likelihood.Likelihood.edge_flip_nll`). The
    interventional head's dependence on the edge (its ridge fit would have to be redone for every
    switch) and the HSIC term's are left out; they weigh the rows of likely targets only.

    Args:
        edge_presence_probs: ``(d, d)`` ``sigmoid(theta)`` (with gradient).
        order: ``(B, d, d)`` order masks of the tasks' sampled graphs. flip_nll: ``(B, d, d)``.
    Returns:
        A scalar equal to 0 whose gradient is ``sum_ij dp_ij/dtheta * mean_b O_bij flip_bij``.
    """
    slope = (order.detach() * flip_nll.detach()).mean(0)
    return ((edge_presence_probs - edge_presence_probs.detach()) * slope).sum()


def pairwise_order_gradient(order_probs: torch.Tensor, profile_flip_nll: torch.Tensor, edge_cost: float = 0.0) -> torch.Tensor:
    """Surrogate (value 0) that moves each pair's order by the one-edge effects of its two edges.

    Edge ``i -> j`` can only be on when ``i`` precedes ``j``. Allowing it is worth
    ``min(0, E_q[L_j(A_ij = 1) - L_j(A_ij = 0)] + c)``: the gain of the edge net of the Occam
    charge ``c`` it would pay (:func:`edge_occam_penalty`) if it helps, nothing if it does not
    (its edge probability is then free to switch it off). With these values as slopes in the
    pairwise order probabilities ``P(i before j)`` (``sigmoid(s_i - s_j)`` for SoftSort,
    :meth:`~metacadi.dpdag.DPDAG.order_probs`), and since ``P(i before j) = 1 - P(j before i)``,
    every pair is pushed towards the direction whose edge explains its child better. The
    differences are those of the *profile* NLL (``sigma_j`` refitted on each side,
    :meth:`~metacadi.likelihood.Likelihood.edge_flip_nll` with ``with_profile``), computed for
    every ordered pair, the ones the sampled order forbids included. At the current ``sigma``
    they are lopsided: dropping an edge that ``sigma_j`` was fitted with costs ``1 / sigma_j^2``
    times the residual growth, so a reversed pair defends itself and stays reversed.

    An option (``MetaCaDI(order_gradient="pairwise")``), not the default: judged pair by pair, a
    root ``a`` two steps above ``c`` is "explained" by ``c``, and the slopes pull descendants above
    their ancestors; on tuning seeds 102-103 over five families it gave more edges per sample
    and a higher E-SHD than the straight-through gradient
    (``benchmarks/results/sweep-order-gradient.md``).

    Args:
        order_probs: ``(d, d)`` ``P(i before j)`` (with gradient to the node scores).
        profile_flip_nll: ``(B, d, d)`` profile ``L_j(A_ij = 1) - L_j(A_ij = 0)`` per task.
        edge_cost: ``c``, nats per row per edge.
    Returns:
        A scalar equal to 0 whose gradient is ``sum_ij dP_ij/ds min(0, mean_b flip_bij + c)``.
    """
    slope = (profile_flip_nll.detach().mean(0) + edge_cost).clamp(max=0.0)
    return ((order_probs - order_probs.detach()) * slope).sum()


def edge_prior_probability(n_variables: int, expected_degree: float) -> float:
    """``p0`` for ``expected_degree`` edges per node.

    The edge logits live in node space and the sampled order switches off half of the ordered
    pairs, so ``E[#edges] = p0 d (d - 1) / 2`` and ``p0 = 2 k / (d - 1)``, clipped to (0.01, 0.99).
    """
    if n_variables < 2:
        return 0.5
    return float(min(max(2.0 * expected_degree / (n_variables - 1), 0.01), 0.99))
