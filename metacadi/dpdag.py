"""DP-DAG: differentiable sampling of DAGs (Charpentier, Kibler & Günnemann 2022).

The variational posterior over graphs ``q_phi(A)`` is parameterised by

* node scores ``s in R^d`` defining a Plackett–Luce distribution over node orders, and
* edge logits ``theta in R^{d x d}`` (node space, one per ordered pair, diagonal unused).

A sample is ``A = E ⊙ (Πᵀ M Π)`` (equivalently ``A = Πᵀ U Π`` with ``U`` strictly upper
triangular): ``Π`` is a permutation matrix (row ``k`` = the node at position ``k``), ``M`` the
strictly upper-triangular mask, so ``(Πᵀ M Π)[i, j] = 1`` iff ``i`` comes before ``j`` in the
order, and ``E_ij ~ Bernoulli(sigmoid(theta_ij))``. Every hard sample is acyclic by construction.

Gradients: the order is sampled by Gumbel-Top-k (perturb the scores with Gumbel noise and sort,
an exact Plackett–Luce sample) and relaxed with SoftSort (Prillo & Eisenschlos 2020)
``P~ = softmax(-|sort(s~) 1ᵀ - 1 s~ᵀ| / tau)``, or with Gumbel-Sinkhorn over a ``d x d`` weight
matrix; edges are relaxed with the binary concrete (Gumbel-Softmax) distribution. The forward
pass uses the hard sample and the backward pass the relaxation (straight-through).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from .errors import MetaCaDIInputError

Relaxation = Literal["softsort", "sinkhorn"]


def _gumbel(shape: tuple[int, ...], generator: torch.Generator | None, device, dtype) -> torch.Tensor:
    uniform = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    return -torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-10)))


def _logistic(shape: tuple[int, ...], generator: torch.Generator | None, device, dtype) -> torch.Tensor:
    uniform = torch.rand(shape, generator=generator, device=device, dtype=dtype).clamp(1e-6, 1 - 1e-6)
    return torch.log(uniform) - torch.log1p(-uniform)


def binary_concrete(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None = None, hard: bool = True
) -> torch.Tensor:
    """Relaxed Bernoulli(sigmoid(logits)) sample (binary concrete / Gumbel-Softmax, Maddison et al.
    2017): ``sigmoid((logits + logistic noise) / temperature)``; with ``hard`` the forward value is
    the exact 0/1 sample and the gradient the relaxed one (straight-through). Same shape as ``logits``.
    """
    noise = _logistic(tuple(logits.shape), generator, logits.device, logits.dtype)
    soft = torch.sigmoid((logits + noise) / temperature)
    if not hard:
        return soft
    return (soft > 0.5).to(logits.dtype) + (soft - soft.detach())


def soft_sort(scores: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SoftSort relaxation of the permutation that sorts ``scores`` in decreasing order.

    Args:
        scores: ``(S, d)`` perturbed node scores ``s~``.
    Returns:
        ``(soft, hard)``, each ``(S, d, d)`` with row ``k`` = position ``k`` and column ``j`` = node:
        ``soft[k, j] = softmax_j(-|sort(s~)_k - s~_j| / tau)`` and ``hard`` its one-hot argmax
        (the exact sorting permutation).
    """
    sorted_scores = scores.sort(dim=-1, descending=True).values
    distances = (sorted_scores.unsqueeze(-1) - scores.unsqueeze(-2)).abs()
    soft = torch.softmax(-distances / temperature, dim=-1)
    order = scores.argsort(dim=-1, descending=True)
    hard = torch.nn.functional.one_hot(order, scores.shape[-1]).to(scores.dtype)
    return soft, hard


def sinkhorn(log_alpha: torch.Tensor, n_iterations: int = 20) -> torch.Tensor:
    """Sinkhorn normalisation of ``(S, d, d)`` log-weights to a doubly stochastic matrix."""
    for _ in range(n_iterations):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-2, keepdim=True)
    return log_alpha.exp()


def _hungarian(soft: torch.Tensor) -> torch.Tensor:
    """Hard permutation matrices closest to the doubly stochastic ``(S, d, d)`` matrices."""
    from scipy.optimize import linear_sum_assignment

    hard = torch.zeros_like(soft)
    for index, matrix in enumerate(soft.detach().cpu().numpy()):
        rows, cols = linear_sum_assignment(-matrix)
        hard[index, rows, cols] = 1.0
    return hard


def order_mask(permutation: torch.Tensor) -> torch.Tensor:
    """``Πᵀ M Π`` for ``(S, d, d)`` permutation matrices: entry ``[i, j] = 1`` iff ``i`` precedes ``j``."""
    d = permutation.shape[-1]
    upper = torch.triu(torch.ones(d, d, dtype=permutation.dtype, device=permutation.device), diagonal=1)
    return permutation.transpose(-1, -2) @ upper @ permutation


class DPDAG(nn.Module):
    """Variational distribution ``q_phi(A)`` over DAGs on ``n_variables`` nodes.

    Args:
        n_variables: ``d``.
        order_temperature: ``tau`` of the SoftSort / Sinkhorn relaxation of the node order.
        edge_temperature: temperature of the binary-concrete relaxation of the edges.
        relaxation: ``"softsort"`` (node scores, ``d`` parameters) or ``"sinkhorn"``
            (a ``d x d`` weight matrix, Gumbel-Sinkhorn, Hungarian hard sample).
        initial_edge_logit: starting value of every ``theta_ij``; a negative value starts
            from sparse graphs.
    """

    def __init__(
        self,
        n_variables: int,
        order_temperature: float = 0.5,
        edge_temperature: float = 0.5,
        relaxation: Relaxation = "softsort",
        initial_edge_logit: float = 0.0,
    ) -> None:
        super().__init__()
        if relaxation not in ("softsort", "sinkhorn"):
            raise MetaCaDIInputError(f"relaxation must be 'softsort' or 'sinkhorn'; got {relaxation!r}.")
        for name, value in (("order_temperature", order_temperature), ("edge_temperature", edge_temperature)):
            if not value > 0:
                raise MetaCaDIInputError(f"{name} must be > 0; got {value}.")
        self.n_variables = int(n_variables)
        self.order_temperature = float(order_temperature)
        self.edge_temperature = float(edge_temperature)
        self.relaxation = relaxation
        self.edge_logits = nn.Parameter(torch.full((n_variables, n_variables), float(initial_edge_logit)))
        if relaxation == "softsort":
            self.node_scores = nn.Parameter(torch.zeros(n_variables))
        else:
            self.order_weights = nn.Parameter(torch.zeros(n_variables, n_variables))
        self.register_buffer("off_diagonal", 1.0 - torch.eye(n_variables))

    def edge_presence_probs(self) -> torch.Tensor:
        """``sigmoid(theta)`` with zero diagonal, ``(d, d)``: the probability that an edge is *allowed
        to be on* given the order; not the edge posterior (see :meth:`edge_probs`)."""
        return torch.sigmoid(self.edge_logits) * self.off_diagonal

    def sample_permutations(self, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(S, d, d)`` straight-through permutation matrices (hard forward, relaxed backward)."""
        device, dtype = self.edge_logits.device, self.edge_logits.dtype
        d = self.n_variables
        if self.relaxation == "softsort":
            perturbed = self.node_scores + _gumbel((n_samples, d), generator, device, dtype)
            soft, hard = soft_sort(perturbed, self.order_temperature)
        else:
            noisy = self.order_weights + _gumbel((n_samples, d, d), generator, device, dtype)
            soft = sinkhorn(noisy / self.order_temperature)
            hard = _hungarian(soft)
        return hard + (soft - soft.detach())

    def sample_edges(self, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(S, d, d)`` straight-through binary-concrete edge indicators ``E``."""
        logits = self.edge_logits.unsqueeze(0).expand(n_samples, -1, -1)
        return binary_concrete(logits, self.edge_temperature, generator) * self.off_diagonal

    def sample(self, n_samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``(S, d, d)`` adjacency matrices ``A = E ⊙ (Πᵀ M Π)``.

        The values are exactly 0/1 (hard samples, acyclic); gradients flow to the node scores and
        edge logits through the relaxations.
        """
        if n_samples < 1:
            raise MetaCaDIInputError(f"n_samples must be >= 1; got {n_samples}.")
        permutation = self.sample_permutations(n_samples, generator)
        return self.sample_edges(n_samples, generator) * order_mask(permutation)

    def sample_factors(
        self, n_samples: int = 1, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two factors of :meth:`sample` apart: ``(order, edges)``, both ``(S, d, d)``.

        ``order = Πᵀ M Π`` carries the straight-through gradient to the node order; ``edges`` are
        exact Bernoulli(``sigmoid(theta)``) indicators **without** a gradient, for an estimator
        that differentiates the edge probabilities exactly (the local expectation gradient of
        :func:`~metacadi.losses.local_edge_gradient`). ``A = edges * order`` has the
        distribution of :meth:`sample`.
        """
        if n_samples < 1:
            raise MetaCaDIInputError(f"n_samples must be >= 1; got {n_samples}.")
        order = order_mask(self.sample_permutations(n_samples, generator))
        with torch.no_grad():
            edges = self.sample_edges(n_samples, generator)
        return order, edges

    def order_probs(self, n_samples: int = 256, generator: torch.Generator | None = None) -> torch.Tensor:
        """``P(i precedes j)`` for every ordered pair, ``(d, d)`` (zero diagonal), differentiable.

        SoftSort: the order is the Gumbel-perturbed scores sorted, and the difference of two
        independent Gumbel variables is logistic, so ``P(i before j) = sigmoid(s_i - s_j)``
        exactly. Sinkhorn: a Monte-Carlo estimate from ``n_samples`` straight-through samples.
        """
        if self.relaxation == "softsort":
            difference = self.node_scores.unsqueeze(1) - self.node_scores.unsqueeze(0)
            return torch.sigmoid(difference) * self.off_diagonal
        return order_mask(self.sample_permutations(n_samples, generator)).mean(0)

    def order_entropy(self) -> float:
        """Mean binary entropy (nats) of ``P(i precedes j)`` over the pairs ``i < j``: ``log 2 =
        0.693`` for a uniform order, 0 for a certain one. A diagnostic of how far the order is learned."""
        with torch.no_grad():
            probs = self.order_probs().clamp(1e-7, 1 - 1e-7)
            upper = torch.triu(torch.ones_like(probs, dtype=torch.bool), diagonal=1)
            p = probs[upper]
            return float(-(p * p.log() + (1 - p) * (1 - p).log()).mean()) if p.numel() else 0.0

    def expected_edges(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """``E_q[A_ij] = P(i precedes j) sigmoid(theta_ij)``, ``(d, d)``, differentiable.

        Edges and order are independent under ``q``, so the edge posterior factorises; with
        SoftSort it is exact (see :meth:`order_probs`).
        """
        return self.order_probs(generator=generator) * self.edge_presence_probs()

    @torch.no_grad()
    def edge_probs(self, n_samples: int = 1000, generator: torch.Generator | None = None) -> torch.Tensor:
        """Monte-Carlo edge posterior ``P(i -> j) = E_q[A_ij]``, ``(d, d)``."""
        return self.sample(n_samples, generator).mean(0)


def is_acyclic_batch(adjacency: torch.Tensor | np.ndarray) -> np.ndarray:
    """Acyclicity of each of ``(S, d, d)`` 0/1 matrices via nilpotency: ``A`` is a DAG iff ``A^d = 0``."""
    adjacency = torch.as_tensor(adjacency, dtype=torch.float64)
    d = adjacency.shape[-1]
    power = adjacency.clone()
    for _ in range(d - 1):
        power = (power @ adjacency).clamp(max=1.0)
    return (power.flatten(1).sum(1) == 0).cpu().numpy()
