"""MetaCaDI: meta-train on many experiments, adapt to a new one in closed form.

    model = MetaCaDI(seed=0).fit(train_tasks)          # meta-training (Adam on shared params)
    posterior = model.adapt(new_data)                   # closed-form ridge, no retraining
    posterior.target_probs, posterior.edge_probs        # pandas, node names kept

Meta-training (paper §4.3, eq. 7): at every step a graph ``A ~ q_phi(A)`` is drawn for every
task; every training task is split at random into a support set (``support_size`` rows,
mimicking the few-shot case) and a query set; the task-specific last layer of the interventional
mechanism (and its noise scale) is fitted on the support set in closed form (eq. 6); the target
predictor turns the support set's nine-block features into logits ``gamma_t``; the likelihood
(eq. 2) scores the query set; Adam minimises reconstruction + target sparsity + HSIC + edge KL
+ an Occam penalty on the expected number of edges + a regression of every observational
mechanism on random parent sets. Targets are never shown to the model: they
are latent, learned from the data alone.

Meta-test (``adapt``): the same closed-form fit on the new dataset (all its rows form the
support set), the target probabilities averaged over graph samples from ``q_phi(A)``.

Why the graph posterior was diffuse, and what made it learn (measured on 10-variable GP-ANM
problems with tuning seeds, never the reported ones; ``benchmarks/sweep_defaults.py``):

* **Non-edges sat at the prior.** A point-estimated mechanism MLP learns to ignore an input it
  does not need, so the reconstruction is flat in every non-edge and the KL to ``Bern(p0)`` left
  each at ``sigmoid(theta) ~ p0``: about ``p0`` x (allowed non-edges) spurious edges in every
  sample, so E-SHD was worse than the empty graph's even with the true order injected. Fix: an
  Occam penalty ``c E_q[|G|]`` (``edge_penalty``, nats per row per expected edge,
  :func:`~metacadi.losses.edge_occam_penalty`) whose optimum for an unsupported edge is 0, ramped
  in over the first ``edge_penalty_warmup`` of training so the mechanisms first learn to use
  their parents.
* **Strong true edges were pruned, and the targets paid for it.** The straight-through edge
  gradient differentiates the loss at the sampled mask value (would a little more of input ``i``
  help ``f_j``?), which for a nonlinear mechanism is a poor guide to whether the whole input
  helps; with the Occam penalty, edges whose mechanism halved their child's residual sd
  drifted to ``sigmoid(theta) ~ 0.15`` (tuning seed 100, d = 10), the children of those parents
  kept inflated noise scales, and a shifted parent then lit up its children as targets. Fix:
  the *local expectation gradient* (``edge_gradient="local"``): every edge of every task's
  sampled graph is evaluated both ways and the expectation over that one Bernoulli is taken
  exactly (:meth:`~metacadi.likelihood.Likelihood.edge_flip_nll`,
  :func:`~metacadi.losses.local_edge_gradient`). On tuning seeds 100-101
  (``benchmarks/results/sweep-edge-gradient.md``) Intv-AUPRC rose from 0.71 to 0.81 on average
  over hard, subtle soft and MLP scale-only interventions (subtle soft: 0.51 to 0.70) at equal
  E-SHD; on hard interventions the edge ranking (AUROC) is less smooth, because an edge the
  current order forbids gets no evidence either way.
* **The order learned slowly.** One graph per step for all tasks gave the node scores a
  gradient with a signal-to-noise ratio of about 0.1; after 300 steps ``P(parent before child)``
  was 0.5-0.7. Fix: an independent graph per task (same objective, far less variance, no extra
  cost), a node-order learning rate ``order_learning_rate_scale`` times the rest, 600 steps (now
  1800, below).
* **Long runs were unstable** (the reconstruction jumping by nats and the target head
  collapsing). Fix: cosine learning-rate decay, gradient clipping, and keeping the checkpoint
  with the best held-out likelihood of the training experiments' held-out rows.
* **Scale-only interventions were invisible.** With one noise scale per variable, an
  intervention that widens a variable without moving its mean changes nothing the likelihood can
  see. Fix: the interventional head's noise scale is fitted per task in closed form too (shrunk
  leave-one-out variance, :meth:`~metacadi.likelihood.Likelihood.fit_intervention_head`).
* **The node order locked in, and the mechanisms under-fitted.** An input that the order keeps
  from a mechanism never trains its weights there, so the exact edge effect of the forbidden
  direction is read with untrained weights and looks harmful whatever the truth: the order
  stayed where it first settled, reversed pairs included, and the reversed children were
  explained as noise (``benchmarks/results/edge-diagnostics-soft-subtle-seed100-init-steps.md``;
  faster-fitting mechanisms alone, ``mechanism_init="spread"``, or three times the steps did not
  help: ``sweep-mechanism-init.md``). Fix: every mechanism is also trained as a regression on a
  random subset of all the other variables (``mechanism_subset_weight``,
  :meth:`MetaCaDI._random_parent_set_nll`), which is valid because given its parents' values a
  variable's term of the likelihood involves its own mechanism alone. Both directions of every
  pair are then judged with trained weights. On tuning seeds 100-105 over five families
  (``sweep-random-parent-sets.md``) E-SHD fell from 7.3 to 6.4 and from 8.1 to 7.0 (empty graph
  7.6 and 9.6), Intv-AUPRC rose from 0.70 to 0.75 and from 0.63 to 0.66, and the mechanisms'
  held-out NLL gap fell by a quarter. Independent restarts judged by the held-out likelihood
  (``n_restarts``) escape some remaining optima at a multiple of the cost.
* **A masked input was ambiguous.** It reads as 0, the data's mean, so a mechanism could not fit
  its parents and the random parent sets exactly at once, nor tell an absent parent from a parent
  at its mean when an edge was switched. Fix: the first layer of every per-variable MLP also
  reads the parent mask (``mask_indicators``, :class:`~metacadi.likelihood.Likelihood`). On
  tuning seeds 100-105 over five families (``sweep-mask-indicators.md``) edge AUROC rose from
  0.81 to 0.95 and from 0.81 to 0.89 on the two seed sets, E-SHD fell from 6.4 to 5.3 and from
  7.0 to 5.8, Intv-AUPRC rose from 0.75 to 0.77 and from 0.66 to 0.75; linear mechanisms with
  30 % off-target hits got worse (Intv-AUPRC 0.75 to 0.64), for the next reason.
* **Which regime is observational was decided by majority.** Nothing in the likelihood says
  which of a variable's regimes the shared mechanism ``f^obs_j`` explains and which the
  per-task heads do; only the sparsity charge breaks the tie, in favour of whatever most
  experiments show. With 30 % off-target hits a variable is hit in up to 13 of 22 training
  experiments (linear mechanisms, tuning seed 100): its "observational" mechanism learned the
  intervened distribution (no parents, noise scale three times the true one), the true edges
  into it, useless for those rows, were dropped (posterior 0.02-0.06), and its target
  probabilities came out inverted (about 0 on the experiments that hit it, 1 on those that did
  not). Fix, two parts that only work together: the tasks labelled observational are anchored
  at ``r_t = 0`` (``anchor_observational``; control experiments are known by design, and
  JCI-PC, UT-IGSP and the shift score need them too), and the sparsity charge ramps in over the
  first ``sparsity_warmup`` of training, so that early on the per-task heads absorb what the
  shared mechanisms cannot yet explain and the mechanisms learn from the anchored rows first
  instead of from the majority. On tuning seeds 100-101 the warm-up alone left linear
  off-target hits inverted (Intv-AUROC 0.65) and the anchor alone fixed only some variables
  (0.91); together (``sweep-anchor.md``; seeds 102-105 over five families) E-SHD fell from 5.6
  to 4.7 (empty graph 9.6), SHD@0.5 from 4.1 to 3.3, Intv-AUROC rose from 0.905 to 0.942 and
  Intv-AUPRC from 0.775 to 0.828 (linear off-target 0.75 to 0.92; hard interventions 0.99 to
  0.92), and the mechanisms' held-out NLL gap fell from 0.45 to 0.26 nats.
* **The training budget was too short for the mechanisms** (``n_steps``, 600 until then). With
  the graph found (every true parent above 0.9, no other parent above 0.5) the observational
  MLPs still left 0.11 and 0.30 noise variances of squared error (tuning seed 102, MLP
  scale-only and GP subtle soft interventions) where a lone MLP regression of the same width on
  the true parents, 3000 full-batch steps, left 0.009 and 0.04. The refinement phase (0.05,
  0.23), a weaker random-parent-set term (0.09, 0.29) and no HSIC term (0.11, 0.25) did not
  close it; three times the steps did (0.03, 0.19), and on that seed also turned round a
  reversed pair whose child had been explained as noise. Before the random parent sets and the
  anchor, more steps had only locked the order in sooner (``sweep-mechanism-init.md``); now,
  1800 steps against 600 (``sweep-steps.md``) on tuning seeds 100-101 and 102-103 over five
  families: E-SHD 4.76 to 3.16 and 4.63 to 3.66 (empty graph 7.6 and 10.8), Intv-AUROC 0.930
  to 0.957 and 0.943 to 0.958, Intv-AUPRC 0.790 to 0.847 and 0.861 to 0.882, the mechanisms'
  held-out NLL gap 0.26 to 0.12 and 0.25 to 0.18 nats, at three times the training time. On
  seeds 102-103 hard interventions lost Intv-AUPRC (0.953 to 0.861) and linear mechanisms with
  off-target hits 0.941 to 0.886: 1800 is the default because it helped most families, not
  every one.
* **A refinement phase** (``refine_fraction``, :meth:`MetaCaDI._start_refinement`), an option,
  freezes the graph after meta-training and fits the rest to the reconstruction alone. Measured
  before the mask indicators (``sweep-refinement.md``) it left the targets about where they were
  (Intv-AUROC 0.885 to 0.899, Intv-AUPRC 0.753 to 0.727) and sharpened the what-if predictions
  (descendants' median error 0.75 to 0.53 noise sd) at 1.7 times the training time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .dpdag import DPDAG, binary_concrete
from .errors import CheckpointError, MetaCaDIInputError, NotFittedError
from .features import TargetPredictor, feature_matrix
from .likelihood import MECHANISM_INITS, Likelihood
from .losses import (
    LossWeights,
    edge_occam_penalty,
    edge_prior_kl,
    edge_prior_probability,
    expected_reconstruction,
    gaussian_nll,
    gaussian_nll_per_variable,
    local_edge_gradient,
    pairwise_order_gradient,
    residual_independence,
    target_logit_decay,
    target_entropy,
    target_sparsity,
)
from .posterior import Posterior
from .ridge import ridge_fitted_values, ridge_solve_loo
from .tasks import Task, TaskSet, as_taskset
from .validation import check_data_matrix, check_positive_int

CHECKPOINT_FORMAT = "metacadi-checkpoint"
CHECKPOINT_VERSION = 1
#: the target logit an anchored (known observational) task gets: ``sigmoid(-20) ~ 2e-9``
ANCHORED_LOGIT = -20.0


#: ways the reconstruction's gradient reaches the node order (``MetaCaDI(order_gradient=...)``)
ORDER_GRADIENTS = ("straight-through", "pairwise")


def _anchor_logits(logits: torch.Tensor, anchored: torch.Tensor | None) -> torch.Tensor:
    """``(B, d)`` target logits with the rows of the anchored tasks (``(B,)`` bool) set to
    :data:`ANCHORED_LOGIT`, i.e. ``q(r_t = 0) = 1`` for a task known to be observational."""
    if anchored is None or not bool(anchored.any()):
        return logits
    return logits.masked_fill(anchored.unsqueeze(-1), ANCHORED_LOGIT)


@dataclass
class TrainingState:
    """What a ``fit`` callback receives.

    Attributes:
        step: steps done so far (1-based). n_steps: steps planned.
        loss: total loss of the last step. terms: its terms by name.
        elapsed_seconds: wall time since ``fit`` started.
        model: the estimator being trained (``model.graph_posterior()`` works mid-training).
    """

    step: int
    n_steps: int
    loss: float
    terms: dict[str, float]
    elapsed_seconds: float
    model: "MetaCaDI" = field(repr=False)


class MetaCaDINetwork(nn.Module):
    """Task-shared parameters ``phi``: graph sampler, likelihood, target predictor.

    :meth:`adapt_support` is the task-adaptation step; the closed-form version here fits the
    interventional last layer by ridge regression. The MAML ablations override it.
    """

    def __init__(self, n_variables: int, config: dict[str, Any]) -> None:
        super().__init__()
        self.graph = DPDAG(
            n_variables,
            order_temperature=config["order_temperature"],
            edge_temperature=config["edge_temperature"],
            relaxation=config["relaxation"],
            initial_edge_logit=config["initial_edge_logit"],
        )
        self.likelihood = Likelihood(
            n_variables, config["hidden_size"], config["n_features"], config.get("mechanism_init", "fan-in"),
            mask_indicators=config.get("mask_indicators", False),
        )
        self.predictor = TargetPredictor(n_variables, config["embedding_size"], config.get("variable_embedding_size", 8))
        self.ridge_lambda = float(config["ridge_lambda"])
        self.noise_prior_rows = float(config.get("noise_prior_rows", 4.0))
        self.int_prediction = str(config.get("int_prediction", "in-sample"))

    def adapt_support(
        self, support: torch.Tensor, adjacency: torch.Tensor, training: bool, with_noise_scale: bool = True
    ) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Fit task-specific parameters on a support set.

        Args:
            support: ``(B, n, d)``. adjacency: ``(B, d, d)``.
            training: whether gradients must flow through the adaptation (meta-training).
            with_noise_scale: also fit the task noise scale (it enters the likelihood of the
                query set, not the target predictor, so reading targets can skip it).
        Returns:
            ``(task_params, obs_mean, int_mean)``: ``task_params["int_weights"]`` is
            ``(B, d, m + 1)`` and, with ``with_noise_scale``, ``task_params["int_noise_scale"]``
            ``(B, d)`` (see :meth:`~metacadi.likelihood.Likelihood.fit_intervention_head`); the
            means are the two mechanisms' predictions on the support set, the interventional
            one out of sample (each row predicted by the head fitted without it) when
            ``int_prediction`` is ``"leave-one-out"``.
        """
        features = self.likelihood.intervention_features(support, adjacency)
        weights, loo = Likelihood.fit_intervention_loo(features, support, self.ridge_lambda)
        task_params: dict[str, Any] = {"int_weights": weights}
        if with_noise_scale:
            task_params["int_noise_scale"] = Likelihood.shrunk_noise_scale(
                loo, self.likelihood.noise_scale(), self.noise_prior_rows
            )
        obs_mean = self.likelihood.observational_mean(support, adjacency)
        if self.int_prediction == "leave-one-out":
            int_mean = support - loo
        else:
            int_mean = Likelihood.interventional_mean(features, weights)
        return task_params, obs_mean, int_mean

    #: elements of the widest intermediate per block of tasks in :meth:`column_target_logits` (CPU)
    column_block_elements = 1 << 20

    @torch.no_grad()
    def column_parameters(self, variables: torch.Tensor, parent_masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-column copies of the shared parameters :meth:`column_target_logits` needs (for
        columns ``variables (U,)`` with ``parent_masks (U, d)``); the first layers of ``f^obs``
        and ``h`` are masked by the column's parents and laid out as one ``(d, U * 2h)`` matrix."""
        likelihood = self.likelihood
        first = torch.cat([likelihood.obs_w1, likelihood.ext_w1], dim=-1)[variables] * parent_masks.unsqueeze(-1)
        first_bias = torch.cat([likelihood.obs_b1, likelihood.ext_b1], dim=-1)[variables]  # (U, 2h)
        if likelihood.mask_indicators:  # a column's parent mask is constant: U1 g_j joins the bias
            indicators = torch.cat([likelihood.obs_u1, likelihood.ext_u1], dim=-1)[variables]  # (U, d, 2h)
            first_bias = first_bias + torch.einsum("ui,uih->uh", parent_masks.to(indicators.dtype), indicators)
        return {
            "variables": variables,
            "first": first.transpose(0, 1).reshape(parent_masks.shape[1], -1).contiguous(),
            "first_bias": first_bias.reshape(1, -1),
            "obs_w2": likelihood.obs_w2[variables],
            "obs_b2": likelihood.obs_b2[variables],
            "ext_w2": likelihood.ext_w2[variables],
            "ext_b2": likelihood.ext_b2[variables].unsqueeze(1),
            "noise_scale": likelihood.noise_scale()[variables],
        }

    @torch.no_grad()
    def column_target_logits(self, datasets: torch.Tensor, columns: dict[str, torch.Tensor]) -> torch.Tensor:
        """Closed-form adaptation and target logits per *column*: variable ``variables[u]`` with
        parents ``parent_masks[u]``, for every dataset, ``(T, U)``.

        Everything :meth:`adapt_support` and :meth:`target_logits` compute for variable ``j``
        under a graph depends on the graph only through ``j``'s parent set: ``f^obs_j`` and
        ``h_j`` see ``g_j ⊙ x``, the ridge head of ``j`` is its own solve (eq. 6), and the
        target predictor embeds each variable's nine feature blocks on their own (eq. 3-4). So
        the logit of ``(dataset t, graph s, variable j)`` equals column ``u``'s logit for the
        ``u`` with ``(variables[u], parent_masks[u]) = (j, A_s[:, j])``, and averaging over
        graph samples needs each distinct column once. Both mechanisms' first layers of all
        columns are one matrix product of the shared data with per-column masked weights (no
        copy of the data per graph sample); the ridge solves of all (column, dataset) pairs are
        one batched Cholesky solve.

        Args:
            datasets: ``(T, n, d)`` standardized data.
            columns: :meth:`column_parameters` of the columns ``variables (U,)`` with parent
                masks ``(U, d)``, ``parent_masks[u, i] = A[i, variables[u]]``.
        Returns:
            ``(T, U)`` logits ``gamma``.
        """
        variables = columns["variables"]
        n_tasks, n_rows, n_variables = datasets.shape
        n_columns, hidden = variables.shape[0], self.likelihood.hidden_size
        # Blocks of tasks whose widest intermediate (rows x U x 2h) stays in a CPU cache: the
        # same arithmetic with far less memory traffic than one pass over every task.
        block = n_tasks if datasets.device.type != "cpu" else max(1, self.column_block_elements // (n_rows * n_columns * 2 * hidden))
        starts = range(0, n_tasks, block)
        obs_means, designs = [], []
        for start in starts:
            rows = datasets[start : start + block].reshape(-1, n_variables)
            pre = torch.addmm(columns["first_bias"], rows, columns["first"])
            activation = nn.functional.silu(pre.view(rows.shape[0], n_columns, 2 * hidden), inplace=True)
            obs_means.append(torch.einsum("ruh,uh->ur", activation[..., :hidden], columns["obs_w2"]) + columns["obs_b2"].unsqueeze(1))
            features = torch.einsum("ruh,uhm->urm", activation[..., hidden:], columns["ext_w2"])
            features = torch.tanh_(features + columns["ext_b2"])
            designs.append(torch.cat([features, features.new_ones(features.shape[:-1] + (1,))], dim=-1))
        design = (designs[0] if len(designs) == 1 else torch.cat(designs, dim=1)).view(n_columns, n_tasks, n_rows, -1)
        obs_mean = (obs_means[0] if len(obs_means) == 1 else torch.cat(obs_means, dim=1)).view(n_columns, n_tasks, n_rows)
        response = datasets.permute(2, 0, 1)[variables]  # (U, T, n)
        # every (column, task) system at once
        if self.int_prediction == "leave-one-out":
            int_mean = response - ridge_solve_loo(design, response, self.ridge_lambda)[1]
        else:
            int_mean = ridge_fitted_values(design, response, self.ridge_lambda)
        logits = []
        for start in starts:  # the predictor's layout: (T, n, U), one "variable" per column
            part = slice(start, start + block)
            blocks = feature_matrix(
                response[:, part].permute(1, 2, 0), obs_mean[:, part].permute(1, 2, 0),
                int_mean[:, part].permute(1, 2, 0), columns["noise_scale"],
            )
            logits.append(self.predictor(blocks, variables))
        return logits[0] if len(logits) == 1 else torch.cat(logits)

    def means(
        self, task_params: dict[str, Any], x: torch.Tensor, adjacency: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Observational and interventional means ``(B, n, d)`` on new rows ``x`` of the same tasks."""
        params = task_params.get("likelihood")
        obs_mean = self.likelihood.observational_mean(x, adjacency, params)
        features = self.likelihood.intervention_features(x, adjacency, params)
        return obs_mean, Likelihood.interventional_mean(features, task_params["int_weights"])

    def noise_scale(self, task_params: dict[str, Any]) -> torch.Tensor:
        return self.likelihood.noise_scale(task_params.get("likelihood"))

    def target_logits(
        self, support: torch.Tensor, obs_mean: torch.Tensor, int_mean: torch.Tensor, noise_scale: torch.Tensor
    ) -> torch.Tensor:
        """Eq. 3: ``gamma = NN_phi(z)`` from the support set's nine-block features, ``(B, d)``."""
        return self.predictor(feature_matrix(support, obs_mean, int_mean, noise_scale))


class MetaCaDI:
    """Meta-learned causal discovery with unknown interventions (closed-form adaptation).

    Args:
        hidden_size: width of every per-variable MLP (observational mechanisms, feature extractors).
        n_features: ``m``, features of the interventional mechanism's ridge head.
        embedding_size: width of the Deep Sets embedding and the target predictor.
        variable_embedding_size: width of the learned per-variable embedding the target predictor
            reads beside the pooled evidence (0: none, the predictor judges every variable by its
            evidence alone and cannot keep a per-variable base rate). 0 was tried on tuning seeds
            100-101 and not adopted (``sweep-variable-embedding.md``: worse over the GP-ANM
            families, better but still below the floors on SERGIO knock-downs).
        ridge_lambda: ``lambda`` of the ridge solve (eq. 6).
        support_size: rows of each training task's support set (the few-shot size to mimic).
        query_size: at most this many query rows per task and step.
        n_steps: Adam steps of meta-training (1800, chosen on tuning seeds 100-103: ``sweep-steps.md``).
        tasks_per_step: tasks per step (``None``: all of them).
        learning_rate: Adam's step size.
        sparsity_weight, hsic_weight, edge_prior_weight: ``alpha``, ``beta``, ``eta`` of eq. 7.
        target_entropy_weight: ``kappa``, weight of the target posterior's entropy (the part of
            the ELBO's KL over ``r`` that the L1 term leaves out; keeps target logits from saturating).
        target_logit_decay_weight: ``lambda_gamma``, weight of a small quadratic penalty on the
            target logits (see :func:`~metacadi.losses.target_logit_decay`).
        prior_expected_degree: expected edges per node under the sparse edge prior (sets ``p0``).
        edge_penalty: ``c``, nats per row charged for each expected edge (an Occam term: an edge
            must improve the fit of a row by more than ``c`` to stay; see
            :func:`~metacadi.losses.edge_occam_penalty`).
        edge_penalty_warmup: fraction of the steps over which ``c`` ramps up from 0.
        sparsity_warmup: fraction of the steps over which the target sparsity weight ``alpha``
            ramps up from 0 (see :meth:`_weights_at`; 0: the full charge from the first step).
        order_learning_rate_scale: the node-order parameters' learning rate, in multiples of
            ``learning_rate`` (the order's gradient is small and noisy).
        learning_rate_decay: the learning rate decays along a cosine to this fraction of itself.
        gradient_clip: maximum gradient norm per step (0: no clipping).
        validation_fraction: fraction of every training task's rows held out to choose the
            checkpoint kept (lowest held-out NLL); 0 keeps the last step.
        validation_every: steps between two held-out evaluations.
        order_temperature, edge_temperature, target_temperature: relaxation temperatures.
        relaxation: ``"softsort"`` or ``"sinkhorn"`` for the node order.
        edge_gradient: how the reconstruction's gradient reaches the edge probabilities:
            ``"local"`` (default) evaluates every edge of each sampled graph both ways and takes
            the expectation over that edge exactly (:func:`~metacadi.losses.local_edge_gradient`);
            ``"straight-through"`` differentiates the relaxed edge sample (binary concrete).
        order_gradient: how the reconstruction's gradient reaches the node order (with
            ``edge_gradient="local"``): ``"straight-through"`` (default) differentiates the
            relaxed permutation; ``"pairwise"`` instead moves each pair's order probability by
            the one-edge effects of its two edges, read from the same edge switches as the edge
            gradient (:func:`~metacadi.losses.pairwise_order_gradient`; not adopted:
            ``benchmarks/results/sweep-order-gradient.md``).
        target_expectation: ``"exact"`` (default) takes the expectation of the reconstruction term
            over ``r_t ~ Bern(sigmoid(gamma_t))`` in closed form (it factorises over variables);
            ``"sample"`` uses the single relaxed sample of ``r_t`` as written in eq. 7. Both
            optimise the same objective; the exact form has a zero-variance gradient. The HSIC
            term always uses the relaxed sample.
        int_prediction: the interventional prediction the target predictor's features compare
            with the data (blocks 3, 5 and 7 of :func:`~metacadi.features.feature_matrix`):
            ``"in-sample"`` (default, as the paper writes it) uses the ridge head's fit to the
            rows it was fitted on; ``"leave-one-out"`` predicts each support row with the head
            fitted without it (closed form, :func:`~metacadi.ridge.ridge_solve_loo`), so the
            features show how well the head *predicts*, the quantity the reconstruction term
            scores on query rows. On tuning seeds 100-101 the out-of-sample version helped subtle
            soft interventions and hurt linear off-target and MLP scale-free ones, and lost on
            average (``benchmarks/results/sweep-int-prediction.md``), so it is an option only.
        mechanism_init: first-layer initialisation of the per-variable MLPs (``"fan-in"``, default,
            or ``"spread"``; :data:`~metacadi.likelihood.MECHANISM_INITS`). In a probe on one tuning
            seed with the true graph held fixed, ``"spread"`` fitted the mechanisms in 600 steps
            about as well as ``"fan-in"`` did in 1800, but with the graph learned it lost on tuning
            seeds 102-105 (``benchmarks/results/sweep-mechanism-init.md``), so it is an option only.
        mask_indicators: give the first layer of every per-variable MLP the parent mask as inputs
            too (see :class:`~metacadi.likelihood.Likelihood`), so an absent input and an input at
            the data's mean are told apart, and a mechanism can fit its parents and the random
            parent sets of ``mechanism_subset_weight`` at once.
        anchor_observational: the training tasks labelled ``kind="observational"`` (control
            experiments: ``r_t = 0`` by design) have their target probabilities fixed at 0 in
            meta-training (:meth:`_anchored_tasks`), which tells the shared mechanisms which regime
            of every variable is the observational one. No interventional task's ``targets`` are
            read, and tasks of any other kind (``"unknown"`` included) are inferred as before;
            with no task labelled observational it changes nothing.
        mechanism_subset_weight: ``mu``, weight of the random-parent-set regression of every
            observational mechanism (see :meth:`_random_parent_set_nll`; 0 is the paper's objective).
            It keeps the input weights of the edges the current node order forbids trained, so the
            order can still turn a reversed pair round; chosen on tuning seeds 100-105
            (``benchmarks/results/sweep-random-parent-sets.md``).
        mechanism_subset_flip: how far the random parent sets stray from the sampled graph: each
            task's sampled parent set of every variable with each other variable flipped in or
            out with this probability. 0.5 (the default) makes every subset equally likely,
            whatever the graph; smaller values train the mechanisms near the sampled graph, where
            the edge effects are read. 0.2 and 0.1 were worse on tuning seeds 102-103 over five
            families (E-SHD 5.9 and 6.7 against 4.6, Intv-AUPRC 0.83 against 0.86;
            ``benchmarks/results/sweep-subset-flip.md``).
        refine_fraction: length of the refinement phase after meta-training, as a fraction of
            ``n_steps`` (see :meth:`_train`): the graph posterior ``q_phi(A)`` is frozen and the
            mechanisms, interventional features and target predictor go on learning from the
            reconstruction alone (no random-parent-set term), so the observational mechanisms fit
            the parent sets the posterior settled on. 0 turns it off.
        initial_edge_logit: starting edge logit (0: every allowed edge at probability 1/2).
        noise_prior_rows: pseudo-rows of the prior that shrinks each task's interventional noise
            scale towards the shared one (see :meth:`~metacadi.likelihood.Likelihood.fit_intervention_head`).
        n_restarts: independent trainings from other initial weights (and minibatches); the one
            kept has the lowest held-out NLL on the same held-out rows (``restart_validation_nll_``,
            ``best_restart_``), so no truth is used. The node order has local optima (a reversed
            pair of variables that the data explains almost as well); restarts judged by held-out
            likelihood escape some of them at ``n_restarts`` times the training time. With no
            held-out rows (``validation_fraction=0``) the first restart is kept.
        n_graph_samples: graphs drawn from ``q_phi(A)`` to average target probabilities at adaptation.
        n_edge_samples: graphs drawn for the Monte-Carlo edge posterior.
        device: torch device.
        seed: seeds initialisation and training.

    Learned attributes (after ``fit``): ``names_``, ``n_variables_``, ``edge_probs_`` (DataFrame),
    ``history_`` (list of per-step loss terms), ``fit_seconds_``, ``network_``, and per restart
    ``restart_validation_nll_`` with the one kept, ``best_restart_``.
    """

    #: How the task-specific parameters are adapted (shown in benchmark tables).
    adaptation = "closed-form ridge"
    #: query rows of each task on which every edge is evaluated both ways at each step
    #: (``edge_gradient="local"``); the estimate is averaged over tasks and steps, so a few rows do
    edge_flip_rows = 16
    _network_class: type[MetaCaDINetwork] = MetaCaDINetwork

    def __init__(
        self,
        *,
        hidden_size: int = 32,
        n_features: int = 16,
        embedding_size: int = 32,
        variable_embedding_size: int = 8,
        ridge_lambda: float = 1.0,
        support_size: int = 10,
        query_size: int = 64,
        n_steps: int = 1800,
        tasks_per_step: int | None = None,
        learning_rate: float = 2e-2,
        sparsity_weight: float = 0.3,
        hsic_weight: float = 1.0,
        edge_prior_weight: float = 1.0,
        target_entropy_weight: float = 0.05,
        target_logit_decay_weight: float = 1e-4,
        prior_expected_degree: float = 1.0,
        edge_penalty: float = 0.05,
        edge_penalty_warmup: float = 0.3,
        order_learning_rate_scale: float = 5.0,
        learning_rate_decay: float = 0.1,
        gradient_clip: float = 10.0,
        validation_fraction: float = 0.2,
        validation_every: int = 25,
        mechanism_subset_weight: float = 1.0,
        mechanism_subset_flip: float = 0.5,
        refine_fraction: float = 0.0,
        order_temperature: float = 0.5,
        edge_temperature: float = 0.5,
        target_temperature: float = 0.5,
        relaxation: str = "softsort",
        edge_gradient: str = "local",
        order_gradient: str = "straight-through",
        target_expectation: str = "exact",
        int_prediction: str = "in-sample",
        mechanism_init: str = "fan-in",
        mask_indicators: bool = True,
        anchor_observational: bool = True,
        sparsity_warmup: float = 0.3,
        initial_edge_logit: float = 0.0,
        noise_prior_rows: float = 4.0,
        n_restarts: int = 1,
        n_graph_samples: int = 16,
        n_edge_samples: int = 1000,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        self.hidden_size = hidden_size
        self.n_features = n_features
        self.embedding_size = embedding_size
        self.variable_embedding_size = variable_embedding_size
        self.ridge_lambda = ridge_lambda
        self.support_size = support_size
        self.query_size = query_size
        self.n_steps = n_steps
        self.tasks_per_step = tasks_per_step
        self.learning_rate = learning_rate
        self.sparsity_weight = sparsity_weight
        self.hsic_weight = hsic_weight
        self.edge_prior_weight = edge_prior_weight
        self.target_entropy_weight = target_entropy_weight
        self.target_logit_decay_weight = target_logit_decay_weight
        self.prior_expected_degree = prior_expected_degree
        self.edge_penalty = edge_penalty
        self.edge_penalty_warmup = edge_penalty_warmup
        self.order_learning_rate_scale = order_learning_rate_scale
        self.learning_rate_decay = learning_rate_decay
        self.gradient_clip = gradient_clip
        self.validation_fraction = validation_fraction
        self.validation_every = validation_every
        self.mechanism_subset_weight = mechanism_subset_weight
        self.mechanism_subset_flip = mechanism_subset_flip
        self.anchor_observational = anchor_observational
        self.sparsity_warmup = sparsity_warmup
        self.refine_fraction = refine_fraction
        self.order_temperature = order_temperature
        self.edge_temperature = edge_temperature
        self.target_temperature = target_temperature
        self.relaxation = relaxation
        self.edge_gradient = edge_gradient
        self.order_gradient = order_gradient
        self.target_expectation = target_expectation
        self.int_prediction = int_prediction
        self.mechanism_init = mechanism_init
        self.mask_indicators = mask_indicators
        self.initial_edge_logit = initial_edge_logit
        self.noise_prior_rows = noise_prior_rows
        self.n_restarts = n_restarts
        self.n_graph_samples = n_graph_samples
        self.n_edge_samples = n_edge_samples
        self.device = device
        self.seed = seed

    # ------------------------------------------------------------------ configuration
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn style)."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> "MetaCaDI":
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise MetaCaDIInputError(f"unknown parameter {name!r}; valid ones are {sorted(valid)}.")
            setattr(self, name, value)
        return self

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(
            self.sparsity_weight, self.hsic_weight, self.edge_prior_weight, self.target_entropy_weight,
            self.edge_penalty, self.target_logit_decay_weight,
        )

    def _check_config(self) -> None:
        for name in (
            "hidden_size", "n_features", "embedding_size", "query_size", "n_graph_samples", "n_edge_samples",
            "validation_every", "n_restarts",
        ):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.support_size, "support_size", minimum=2)
        check_positive_int(self.variable_embedding_size, "variable_embedding_size", minimum=0)
        check_positive_int(self.n_steps, "n_steps", minimum=0)
        if self.tasks_per_step is not None:
            check_positive_int(self.tasks_per_step, "tasks_per_step")
        for name in ("ridge_lambda", "learning_rate", "order_temperature", "edge_temperature", "target_temperature"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0 or not np.isfinite(value):
                raise MetaCaDIInputError(f"{name} must be a positive number; got {value!r}.")
        if self.edge_gradient not in ("local", "straight-through"):
            raise MetaCaDIInputError(f"edge_gradient must be 'local' or 'straight-through'; got {self.edge_gradient!r}.")
        if self.order_gradient not in ORDER_GRADIENTS:
            raise MetaCaDIInputError(f"order_gradient must be one of {list(ORDER_GRADIENTS)}; got {self.order_gradient!r}.")
        if self.int_prediction not in ("leave-one-out", "in-sample"):
            raise MetaCaDIInputError(
                f"int_prediction must be 'leave-one-out' or 'in-sample'; got {self.int_prediction!r}."
            )
        if self.mechanism_init not in MECHANISM_INITS:
            raise MetaCaDIInputError(f"mechanism_init must be one of {list(MECHANISM_INITS)}; got {self.mechanism_init!r}.")
        for name in ("mask_indicators", "anchor_observational"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise MetaCaDIInputError(f"{name} must be True or False; got {getattr(self, name)!r}.")
        if self.target_expectation not in ("exact", "sample"):
            raise MetaCaDIInputError(f"target_expectation must be 'exact' or 'sample'; got {self.target_expectation!r}.")
        for name in (
            "sparsity_weight", "hsic_weight", "edge_prior_weight", "target_entropy_weight", "prior_expected_degree",
            "edge_penalty", "gradient_clip", "order_learning_rate_scale", "noise_prior_rows", "mechanism_subset_weight",
            "target_logit_decay_weight", "refine_fraction",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or not np.isfinite(value):
                raise MetaCaDIInputError(f"{name} must be a number >= 0; got {value!r}.")
        for name in ("edge_penalty_warmup", "sparsity_warmup", "learning_rate_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise MetaCaDIInputError(f"{name} must be a number in [0, 1]; got {value!r}.")
        value = self.mechanism_subset_flip
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 0.5:
            raise MetaCaDIInputError(f"mechanism_subset_flip must be a number in (0, 0.5]; got {value!r}.")
        value = self.validation_fraction
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise MetaCaDIInputError(f"validation_fraction must be a number in [0, 1); got {value!r}.")

    # ------------------------------------------------------------------ data handling
    def standardize(self, data: Any) -> torch.Tensor:
        """Data in the model's units: ``(x - mean) / sd`` of the pooled meta-training data.

        Args:
            data: ``(..., d)`` array or tensor (e.g. ``(n, d)`` rows or ``(B, n, d)`` tasks).
        Returns:
            float32 tensor of the same shape, on the model's device.
        """
        self._check_fitted()
        tensor = torch.as_tensor(data, dtype=torch.float32, device=self.device)
        if tensor.shape[-1] != self.n_variables_:
            raise MetaCaDIInputError(
                f"data has {tensor.shape[-1]} columns; this model was fitted on {self.n_variables_} variables."
            )
        return (tensor - self.data_mean_) / self.data_std_

    def _anchored_tasks(self, tasks: TaskSet) -> torch.Tensor:
        """``(T,)`` bool: the training tasks whose target vector is known to be ``r_t = 0``.

        With ``anchor_observational``, these are the tasks labelled ``kind="observational"``
        (control experiments: nobody intervened, so there is nothing to infer); otherwise none.
        Their target probabilities are fixed at 0 in meta-training. No other task's targets
        are read: an interventional task's ``targets`` are never used by ``fit``.
        """
        flags = [bool(self.anchor_observational and task.is_observational) for task in tasks]
        return torch.as_tensor(flags, dtype=torch.bool, device=self.device)

    def _prepare_training_data(self, tasks: TaskSet) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad tasks into ``(T, n_max, d)`` plus a ``(T, n_max)`` row-validity mask."""
        n_max = max(task.n_rows for task in tasks)
        data = np.zeros((len(tasks), n_max, tasks.n_variables), dtype=np.float32)
        valid = np.zeros((len(tasks), n_max), dtype=bool)
        for index, task in enumerate(tasks):
            data[index, : task.n_rows] = task.data
            valid[index, : task.n_rows] = True
        return self.standardize(data), torch.as_tensor(valid, device=self.device)

    def _check_new_data(self, data: Any) -> np.ndarray:
        """Validate a dataset for :meth:`adapt`; DataFrame columns are matched to ``names_`` by name."""
        self._check_fitted()
        if isinstance(data, Task):
            data = data.to_frame()
        if hasattr(data, "columns") and hasattr(data, "to_numpy"):
            columns = [str(c) for c in data.columns]
            if set(columns) != set(self.names_) or len(columns) != len(self.names_):
                missing = sorted(set(self.names_) - set(columns))
                extra = sorted(set(columns) - set(self.names_))
                raise MetaCaDIInputError(
                    f"the DataFrame's columns do not match the model's variables: missing {missing}, unexpected {extra}."
                )
            data = data.set_axis(columns, axis=1).loc[:, self.names_]
        array, _ = check_data_matrix(data, name="data", n_variables=self.n_variables_, min_rows=2)
        return array

    # ------------------------------------------------------------------ training
    def _build_network(self, n_variables: int) -> MetaCaDINetwork:
        return self._network_class(n_variables, self._network_config())

    def _network_config(self) -> dict[str, Any]:
        return {
            "hidden_size": self.hidden_size,
            "n_features": self.n_features,
            "embedding_size": self.embedding_size,
            "variable_embedding_size": self.variable_embedding_size,
            "ridge_lambda": self.ridge_lambda,
            "noise_prior_rows": self.noise_prior_rows,
            "order_temperature": self.order_temperature,
            "edge_temperature": self.edge_temperature,
            "relaxation": self.relaxation,
            "initial_edge_logit": self.initial_edge_logit,
            "int_prediction": self.int_prediction,
            "mechanism_init": self.mechanism_init,
            "mask_indicators": self.mask_indicators,
        }

    def fit(
        self,
        tasks: TaskSet | Sequence[Any],
        *,
        callback: Callable[[TrainingState], bool | None] | None = None,
        callback_every: int = 25,
        progress: bool = True,
    ) -> "MetaCaDI":
        """Meta-train on a collection of datasets (their targets are never used).

        Args:
            tasks: a :class:`TaskSet`, or a list of Tasks / arrays / DataFrames over the same variables.
            callback: called every ``callback_every`` steps and after the last one with a
                :class:`TrainingState`; returning ``False`` stops training early (the model stays usable).
            progress: show a progress bar.
        Returns:
            ``self``.
        """
        self._check_config()
        tasks = as_taskset(tasks)
        too_small = [i for i, task in enumerate(tasks) if task.n_rows <= self.support_size]
        if too_small:
            raise MetaCaDIInputError(
                f"every training task needs more rows than support_size={self.support_size} (the rest form "
                f"the query set); tasks {too_small[:10]} have only {tasks[too_small[0]].n_rows} rows."
            )
        if tasks.n_variables < 2:
            raise MetaCaDIInputError(f"need at least 2 variables; got {tasks.n_variables}.")
        check_positive_int(callback_every, "callback_every")

        self.names_ = list(tasks.names)
        self.n_variables_ = tasks.n_variables
        pooled = np.concatenate([task.data for task in tasks])
        self.data_mean_ = torch.as_tensor(pooled.mean(0), dtype=torch.float32, device=self.device)
        self.data_std_ = torch.as_tensor(pooled.std(0) + 1e-6, dtype=torch.float32, device=self.device)
        self.observational_rows_ = _observational_rows(tasks, self.seed)
        self.stopped_early_ = False
        self.restart_validation_nll_: list[float] = []
        self.steps_run_ = 0
        chosen: dict[str, Any] | None = None
        start = time.perf_counter()
        for restart in range(self.n_restarts):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self._restart_seed(restart))
                self.network_ = self._build_network(self.n_variables_).to(self.device)
            self.history_: list[dict[str, float]] = []
            self._train(tasks, callback, callback_every, progress, restart)
            self.steps_run_ += len(self.history_)
            score = min((nll for _, nll in self.validation_history_), default=float("nan"))
            self.restart_validation_nll_.append(score)
            if chosen is None or score < chosen["score"]:
                chosen = {
                    "score": score, "restart": restart,
                    "state": {k: v.detach().clone() for k, v in self.network_.state_dict().items()},
                    "history": self.history_, "validation": self.validation_history_, "best_step": self.best_step_,
                }
            if self.stopped_early_:
                break
        if len(self.restart_validation_nll_) > 1:
            self.network_.load_state_dict(chosen["state"])
            self.history_, self.validation_history_ = chosen["history"], chosen["validation"]
            self.best_step_ = chosen["best_step"]
            self._refresh_edge_probs(self.n_edge_samples)
        self.best_restart_ = chosen["restart"]
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _restart_seed(self, restart: int) -> int:
        """Seed of restart ``restart``'s initial weights and minibatches (restart 0: ``seed`` itself)."""
        return self.seed + 7919 * restart

    def _train(self, tasks: TaskSet, callback, callback_every: int, progress: bool, restart: int = 0) -> None:
        """Adam on ``phi`` with a cosine learning-rate decay, gradient clipping and a faster node order.

        Model selection without looking at any truth: ``validation_fraction`` of every training
        task's rows are held out; every ``validation_every`` steps the held-out rows are scored by
        the objective's reconstruction term (the expected NLL, after the usual closed-form
        adaptation on a fixed support set of the same task's training rows), and the parameters
        with the lowest held-out NLL are the ones kept (``best_step_``, ``validation_history_``).
        The held-out rows depend on ``seed`` only, so every restart (``restart > 0``: other
        initial weights and minibatches) is scored on the same rows.

        After the ``n_steps`` of meta-training come ``refine_steps`` of refinement
        (:meth:`_start_refinement`), which starts from the checkpoint meta-training chose;
        checkpoints are chosen over both phases by the same held-out NLL, so the refinement is
        kept only as far as it explains held-out rows better.
        """
        from tqdm.auto import tqdm

        data, valid = self._prepare_training_data(tasks)
        anchored = self._anchored_tasks(tasks)
        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        data, valid, validation = self._hold_out(data, valid, generator)
        if restart > 0:
            generator = torch.Generator(device=self.device).manual_seed(self._restart_seed(restart))
        n_tasks, n_variables = data.shape[0], data.shape[2]
        query_rows = min(self.query_size, int(valid.sum(1).min()) - self.support_size)
        batch_size = n_tasks if self.tasks_per_step is None else min(self.tasks_per_step, n_tasks)
        prior_prob = edge_prior_probability(n_variables, self.prior_expected_degree)
        weights = self.loss_weights
        optimizer = torch.optim.Adam(self._parameter_groups(), lr=self.learning_rate)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, self._learning_rate_factor)
        refine_steps = self.refine_steps
        total_steps = self.n_steps + refine_steps
        self.network_.train()
        start = time.perf_counter()
        self.validation_history_: list[tuple[int, float]] = []
        best_nll, best_state = float("inf"), None
        self.best_step_ = total_steps
        label = "meta-training" if self.n_restarts == 1 else f"meta-training (restart {restart + 1}/{self.n_restarts})"
        bar = tqdm(range(total_steps), desc=label, disable=not progress, leave=False)
        for step in bar:
            refining = step >= self.n_steps
            if step == self.n_steps:  # only reached when there are refinement steps
                if best_state is not None:  # refine the checkpoint meta-training chose
                    self.network_.load_state_dict(best_state)
                optimizer, schedule = self._start_refinement()
                bar.set_description(label.replace("meta-training", "refinement"))
            batch = torch.randperm(n_tasks, generator=generator, device=self.device)[:batch_size]
            support, query = self._split(data[batch], valid[batch], query_rows, generator)
            terms = self._objective(
                support, query, prior_prob, self._weights_at(step, weights), generator, refine=refining,
                anchored=anchored[batch],
            )
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if self.gradient_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.network_.parameters(), self.gradient_clip)
            optimizer.step()
            schedule.step()
            record = {name: float(value.detach()) for name, value in terms.items()}
            if not np.isfinite(record["loss"]):
                raise FloatingPointError(
                    f"meta-training diverged at step {step + 1} (loss {record['loss']}); try a smaller "
                    f"learning_rate (now {self.learning_rate}) or a larger ridge_lambda (now {self.ridge_lambda})."
                )
            last = step + 1 == total_steps
            warm = step + 1 >= self.edge_penalty_warmup * self.n_steps
            if validation is not None and warm and ((step + 1) % self.validation_every == 0 or last):
                nll = self._validation_nll(*validation, anchored=anchored)
                self.validation_history_.append((step + 1, nll))
                if nll < best_nll:
                    best_nll, self.best_step_ = nll, step + 1
                    best_state = {k: v.detach().clone() for k, v in self.network_.state_dict().items()}
            self.history_.append(record)
            if progress:
                bar.set_postfix(loss=f"{record['loss']:.3f}")
            if callback is not None and ((step + 1) % callback_every == 0 or last):
                self.network_.eval()
                self._refresh_edge_probs(n_samples=min(self.n_edge_samples, 256))
                state = TrainingState(step + 1, total_steps, record["loss"], record, time.perf_counter() - start, self)
                keep_going = callback(state)
                self.network_.train()
                if keep_going is False:
                    self.stopped_early_ = True
                    break
        bar.close()
        self.network_.requires_grad_(True)
        if best_state is not None and not self.stopped_early_:
            self.network_.load_state_dict(best_state)
        self.network_.eval()
        self.fit_seconds_ = time.perf_counter() - start
        self._refresh_edge_probs(self.n_edge_samples)

    def _weights_at(self, step: int, weights: LossWeights) -> LossWeights:
        """The loss weights at ``step``: the Occam edge penalty ramps up linearly over the first
        ``edge_penalty_warmup`` fraction of the steps, the target sparsity over the first
        ``sparsity_warmup``.

        At the start the mechanisms have not learned to use any parent, so no edge pays for
        itself yet; a full penalty from step 0 switches true edges off before their mechanisms
        can show their worth (and a mechanism only learns from a parent while the sampled graphs
        contain the edge). Checkpoints are only selected after the warm-up.

        Likewise, a full sparsity charge from step 0 makes every shared mechanism fit all rows,
        so it learns whatever regime most experiments show, which for a variable hit in most of
        them is the intervened one; while the charge is small the per-task heads take the rows
        the mechanism does not explain, and the mechanism learns from the tasks anchored as
        observational (``anchor_observational``) and the rows that agree with them.
        """
        if self.edge_penalty_warmup > 0:
            factor = min(1.0, (step + 1) / (self.edge_penalty_warmup * self.n_steps))
            weights = dataclasses.replace(weights, edge_penalty=weights.edge_penalty * factor)
        if self.sparsity_warmup > 0:
            factor = min(1.0, (step + 1) / (self.sparsity_warmup * self.n_steps))
            weights = dataclasses.replace(weights, sparsity=weights.sparsity * factor)
        return weights

    @property
    def refine_steps(self) -> int:
        """Steps of the refinement phase: ``round(refine_fraction * n_steps)``."""
        return int(round(self.refine_fraction * self.n_steps))

    def _start_refinement(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        """Freeze ``q_phi(A)`` and return a fresh Adam (with its cosine decay) for everything else.

        During meta-training every mechanism ``f^obs_j`` is fitted to a mixture of parent sets:
        the graphs drawn from a posterior that is still moving, and the random parent sets of
        :meth:`_random_parent_set_nll`, whose masked inputs read as the value 0 (the data's mean),
        so a mechanism cannot fit all of them exactly. With the graph frozen, the reconstruction
        alone (:meth:`_objective` with ``refine=True``) fits each mechanism to the parent sets the
        posterior settled on, and the target predictor and interventional features follow.
        """
        self.network_.graph.requires_grad_(False)
        rest = [p for p in self.network_.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(rest, lr=self.learning_rate)
        n_refine, floor = self.refine_steps, self.learning_rate_decay
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _cosine_factor(step, n_refine, floor))

    def _parameter_groups(self) -> list[dict[str, Any]]:
        """The node-order parameters learn ``order_learning_rate_scale`` times faster than the rest.

        The order's gradient reaches the node scores only through the straight-through relaxation
        of a sort and is small and noisy; at the mechanisms' step size the order moves by about
        0.002 per step and stays near uniform for hundreds of steps (pairwise order probabilities
        0.55-0.7 after 300 steps), which keeps every true edge's posterior below 0.5.
        """
        graph = self.network_.graph
        order = [p for name, p in graph.named_parameters() if name in ("node_scores", "order_weights")]
        order_ids = {id(p) for p in order}
        rest = [p for p in self.network_.parameters() if id(p) not in order_ids]
        return [
            {"params": rest, "lr": self.learning_rate},
            {"params": order, "lr": self.learning_rate * self.order_learning_rate_scale},
        ]

    def _learning_rate_factor(self, step: int) -> float:
        """Cosine decay from 1 to ``learning_rate_decay`` over ``n_steps`` (a stable end of training)."""
        return _cosine_factor(step, self.n_steps, self.learning_rate_decay)

    def _hold_out(
        self, data: torch.Tensor, valid: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Set aside ``validation_fraction`` of every task's rows for model selection.

        Args:
            data: ``(T, n_max, d)`` padded tasks. valid: ``(T, n_max)`` row mask.
        Returns:
            ``(data, train_valid, validation)``: the rows reordered at random within each task
            (held-out rows first), the mask of the rows left for training, and
            ``(validation_support (T, s, d), validation_query (T, q, d))`` — a fixed support set
            of training rows and the held-out rows of each task — or ``None`` when no task can
            spare rows (fewer than 2 held-out rows, or no more than ``support_size`` left).
        """
        counts = valid.sum(1)
        held_out = (counts.to(torch.float64) * self.validation_fraction).floor().to(torch.long)
        if self.validation_fraction <= 0 or bool(((held_out < 2) | (counts - held_out <= self.support_size)).any()):
            return data, valid, None
        keys = torch.rand(valid.shape, generator=generator, device=self.device).masked_fill(~valid, 2.0)
        order = keys.argsort(dim=1)
        data = data.gather(1, order.unsqueeze(-1).expand(-1, -1, data.shape[-1]))
        position = torch.arange(valid.shape[1], device=self.device).unsqueeze(0)
        train_valid = (position >= held_out.unsqueeze(1)) & (position < counts.unsqueeze(1))
        query_rows = min(int(held_out.min()), self.query_size)
        query = data[:, :query_rows]
        support_index = (held_out.unsqueeze(1) + torch.arange(self.support_size, device=self.device)).unsqueeze(-1)
        support = data.gather(1, support_index.expand(-1, -1, data.shape[-1]))
        return data, train_valid, (support, query)

    def _validation_nll(
        self, support: torch.Tensor, query: torch.Tensor, repeats: int = 4, anchored: torch.Tensor | None = None
    ) -> float:
        """Held-out expected NLL per row (summed over variables), averaged over ``repeats`` graph draws.

        ``anchored``: ``(T,)`` bool, the tasks whose targets are known to be empty
        (:meth:`_anchored_tasks`); their target probabilities are 0 here as in the objective.

        The graphs are drawn with a fixed seed, so the score changes only when the parameters do.
        """
        network = self.network_
        network.eval()
        generator = torch.Generator(device=self.device).manual_seed(self.seed + 2)
        total = 0.0
        with torch.no_grad():
            for _ in range(repeats):
                adjacency = network.graph.sample(support.shape[0], generator)
                task_params, obs_support, int_support = network.adapt_support(support, adjacency, training=False)
                noise_scale = network.noise_scale(task_params)
                logits = _anchor_logits(network.target_logits(support, obs_support, int_support, noise_scale), anchored)
                obs_query, int_query = network.means(task_params, query, adjacency)
                total += float(
                    expected_reconstruction(
                        gaussian_nll_per_variable(query, obs_query, noise_scale),
                        gaussian_nll_per_variable(query, int_query, task_params.get("int_noise_scale", noise_scale)),
                        torch.sigmoid(logits),
                    ).mean()
                )
        network.train()
        return total / repeats

    def _split(
        self, data: torch.Tensor, valid: torch.Tensor, query_rows: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random support/query split of every task at once: ``(B, s, d)`` and ``(B, q, d)``."""
        keys = torch.rand(valid.shape, generator=generator, device=self.device)
        keys = keys.masked_fill(~valid, 2.0)  # padding rows sort last and are never drawn
        order = keys.argsort(dim=1)
        index = order[:, : self.support_size + query_rows].unsqueeze(-1).expand(-1, -1, data.shape[-1])
        rows = data.gather(1, index)
        return rows[:, : self.support_size], rows[:, self.support_size :]

    def _objective(
        self,
        support: torch.Tensor,
        query: torch.Tensor,
        prior_prob: float,
        weights: LossWeights,
        generator: torch.Generator,
        refine: bool = False,
        anchored: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Eq. 7 with one sample of ``A`` per task and one of each ``r_t``.

        ``anchored``: ``(B,)`` bool, tasks known to be observational (:meth:`_anchored_tasks`):
        their target probabilities are fixed at 0 and they pay no target-prior terms.

        With ``refine=True`` (the refinement phase, graph frozen) the terms that only move the
        graph (edge KL, Occam penalty, local edge gradient) and the random-parent-set regression
        are left out.

        ``E_q(A)[sum_t L_t(A)] = sum_t E_q(A)[L_t(A)]``, so drawing an independent graph for every
        task estimates the same objective as one shared graph, with a variance of the node-score
        gradient lower by about the number of tasks, at no extra cost (the batch is already
        ``(B, d, d)``).
        """
        network = self.network_
        n_tasks = support.shape[0]
        local = self.edge_gradient == "local" and not refine
        pairwise = local and self.order_gradient == "pairwise"
        if local:  # the edges get the exact gradient below, the order too with order_gradient="pairwise"
            order, edges = network.graph.sample_factors(n_tasks, generator)
            adjacency = edges * (order.detach() if pairwise else order)
        else:
            adjacency = network.graph.sample(n_tasks, generator)
        task_params, obs_support, int_support = network.adapt_support(support, adjacency, training=True)
        noise_scale = network.noise_scale(task_params)
        free_logits = network.target_logits(support, obs_support, int_support, noise_scale)
        logits = _anchor_logits(free_logits, anchored)
        targets = binary_concrete(logits, self.target_temperature, generator)
        obs_query, int_query = network.means(task_params, query, adjacency)
        prediction = Likelihood.mix(obs_query, int_query, targets)
        free = free_logits.new_ones(n_tasks) if anchored is None else (~anchored).to(free_logits.dtype)
        n_free = free.sum().clamp_min(1.0)
        sparsity = (free * target_sparsity(free_logits)).sum() / n_free
        entropy = (free * target_entropy(free_logits)).sum() / n_free
        decay = (free * target_logit_decay(free_logits)).sum() / n_free
        target_terms = weights.sparsity * sparsity - weights.target_entropy * entropy + weights.target_logit_decay * decay
        if self.target_expectation == "exact":
            nll_obs = gaussian_nll_per_variable(query, obs_query, noise_scale)
            nll_int = gaussian_nll_per_variable(query, int_query, task_params.get("int_noise_scale", noise_scale))
            reconstruction = expected_reconstruction(nll_obs, nll_int, torch.sigmoid(logits)).mean()
        else:
            int_noise = task_params.get("int_noise_scale", noise_scale)
            mixed_noise = (1.0 - targets) * noise_scale + targets * int_noise
            reconstruction = gaussian_nll(query, prediction, mixed_noise).mean()
        hsic = residual_independence(query - prediction).mean() if weights.hsic > 0 else reconstruction.new_zeros(())
        edge_term = reconstruction.new_zeros(())
        if refine:
            kl = expected_edges = edge_term
        else:
            kl = edge_prior_kl(network.graph.edge_presence_probs(), prior_prob)
            expected_edges = edge_occam_penalty(network.graph.expected_edges(generator))
        if local:
            rows = query[:, : self.edge_flip_rows]
            flip = network.likelihood.edge_flip_nll(
                rows, adjacency.detach(), (1.0 - torch.sigmoid(logits)).detach(), noise_scale.detach(),
                task_params.get("likelihood"), with_profile=pairwise,
            )
            if pairwise:
                flip, profile_flip = flip
                edge_term = pairwise_order_gradient(
                    network.graph.order_probs(generator=generator), profile_flip, float(weights.edge_penalty)
                )
            edge_term = edge_term + local_edge_gradient(network.graph.edge_presence_probs(), order, flip)
        subset_term = reconstruction.new_zeros(())
        if self.mechanism_subset_weight > 0 and not refine:
            subset_term = self._random_parent_set_nll(query, logits, noise_scale, task_params, generator, adjacency.detach())
        loss = (
            reconstruction
            + edge_term
            + self.mechanism_subset_weight * subset_term
            + target_terms
            + weights.hsic * hsic
            + weights.edge_prior * kl
            + weights.edge_penalty * expected_edges
        )
        return {
            "loss": loss, "reconstruction": reconstruction, "sparsity": sparsity,
            "target_entropy": entropy, "target_logit_decay": decay, "hsic": hsic, "edge_kl": kl, "expected_edges": expected_edges,
        }

    def _random_parent_set_nll(
        self, query: torch.Tensor, logits: torch.Tensor, noise_scale: torch.Tensor,
        task_params: dict[str, Any], generator: torch.Generator, adjacency: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Observational NLL of every variable from a random subset of all other variables, ``()``.

        Given its parents' values, variable ``j``'s term of the likelihood involves ``f^obs_j``
        alone, for any parent set, so ``f^obs_j(g ⊙ x)`` can be trained as a regression of
        ``x_j`` on any subset ``g`` of the other variables (each included with probability 1/2,
        independently of the node order). This keeps the input weights of edges that the current
        order forbids trained, so the exact edge effects the graph learns from
        (:meth:`~metacadi.likelihood.Likelihood.edge_flip_nll`) judge both directions of a pair
        with trained weights instead of pinning the order in place. Rows are weighted by
        ``1 - p`` as in the reconstruction; the noise scales are not fitted by this term.
        """
        n_tasks, _, d = query.shape
        coins = torch.rand(n_tasks, d, d, generator=generator, device=query.device)
        flips = (coins < self.mechanism_subset_flip).to(query.dtype)
        if self.mechanism_subset_flip == 0.5 or adjacency is None:
            subsets = flips  # independent of the graph: every subset equally likely
        else:  # the task's sampled parent sets, each entry flipped with probability mechanism_subset_flip
            subsets = (adjacency.round() - flips).abs()
        subsets = subsets * self.network_.graph.off_diagonal
        mean = self.network_.likelihood.observational_mean(query, subsets, task_params.get("likelihood"))
        nll = gaussian_nll_per_variable(query, mean, noise_scale.detach())
        return ((1.0 - torch.sigmoid(logits)).detach() * nll).sum(-1).mean()

    # ------------------------------------------------------------------ posterior
    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(tasks) or load(path) first.")

    @torch.no_grad()
    def _refresh_edge_probs(self, n_samples: int) -> None:
        generator = torch.Generator(device=self.device).manual_seed(self.seed + 1)
        probs = self.network_.graph.edge_probs(n_samples, generator).cpu().numpy().astype(np.float64)
        self.edge_probs_ = pd.DataFrame(probs, index=self.names_, columns=self.names_)

    def _graph_sampler(self) -> Callable[[int, int | None], np.ndarray]:
        graph, device = self.network_.graph, self.device

        def sample(n_samples: int, seed: int | None) -> np.ndarray:
            generator = torch.Generator(device=device)
            generator.seed() if seed is None else generator.manual_seed(int(seed))
            with torch.no_grad():
                return graph.sample(n_samples, generator).round().to(torch.int64).cpu().numpy()

        return sample

    def observational_nll(
        self, data: Any, *, graph: Any = None, n_graph_samples: int = 100, seed: int = 0
    ) -> pd.Series:
        """Held-out fit of the observational mechanisms: mean Gaussian NLL per row of each variable.

        ``E_{A ~ q}[ 0.5 ((x_j - f^obs_j(A_j ⊙ x)) / sigma_j)^2 + log sigma_j ] + 0.5 log 2 pi``
        over the rows of ``data``, in nats and in the data's own units (the standardisation's
        ``log sd_j`` is added back), so it compares directly with the true mechanisms' NLL of the
        same rows (:func:`~metacadi.reference_scores.scm_observational_nll`). Pass observational
        rows the model has not seen: the gap to the truth says how well ``f^obs`` explains a
        variable from its parents, which is what lets a descendant's shift be explained away.

        Args:
            data: ``(n, d)`` observational rows (array, tensor or DataFrame with the model's columns).
            graph: ``(d, d)`` adjacency to use instead of graphs drawn from ``q_phi(A)`` (e.g. the
                true graph, to separate mechanism error from graph error).
            n_graph_samples: graphs drawn from the posterior when ``graph`` is ``None``.
            seed: seeds those draws.
        Returns:
            Series indexed by variable name.
        """
        array = self._check_new_data(data)
        check_positive_int(n_graph_samples, "n_graph_samples")
        network = self.network_
        x = self.standardize(array)
        with torch.no_grad():
            if graph is None:
                generator = torch.Generator(device=self.device).manual_seed(seed)
                adjacency = network.graph.sample(n_graph_samples, generator)
            else:
                from .validation import check_adjacency

                matrix = check_adjacency(graph, name="graph")
                if matrix.shape[0] != self.n_variables_:
                    raise MetaCaDIInputError(
                        f"graph must be ({self.n_variables_}, {self.n_variables_}) for this model; got {matrix.shape}."
                    )
                adjacency = torch.as_tensor(matrix, dtype=x.dtype, device=self.device).unsqueeze(0)
            batch = x.unsqueeze(0).expand(adjacency.shape[0], -1, -1)
            mean = network.likelihood.observational_mean(batch, adjacency)
            nll = gaussian_nll_per_variable(batch, mean, network.likelihood.noise_scale()).mean(0)
            nll = nll + torch.log(self.data_std_.reshape(-1))
        return pd.Series(nll.double().cpu().numpy(), index=list(self.names_), name="observational NLL")

    def graph_posterior(self) -> Posterior:
        """The shared graph posterior ``q_phi(A)`` alone (no dataset adapted)."""
        self._check_fitted()
        return Posterior(self.edge_probs_.copy(), None, 0, self._graph_sampler())

    def _posterior_graphs(self, n_graph_samples: int, seed: int) -> dict[str, Any]:
        """The ``n_graph_samples`` graphs drawn from ``q_phi(A)`` with ``seed``, and their distinct columns.

        Returns a dict with ``graphs (S, d, d)``, ``variables (U,)``, ``parent_masks (U, d)`` and
        ``column_weights (U, d)``: the distinct (variable, parent set) pairs among the samples
        and, for each, the fraction of samples in which its variable has that parent set (placed
        in its variable's column), so ``mean_s f(j, A_s[:, j]) = sum_u column_weights[u, j] f(u)``.

        Cached per ``(n_graph_samples, seed)``: the same samples serve every dataset adapted.
        The cache belongs to the current network and to the current values of its parameters
        (their in-place version counters), so a new ``fit``, a ``load`` or an optimiser step
        invalidates it.
        """
        network = self.network_
        stamp = tuple(parameter._version for parameter in network.parameters())
        cache = self.__dict__.get("_graph_cache")
        if cache is None or cache[0] is not network or cache[1] != stamp:
            cache = (network, stamp, {})
            self._graph_cache = cache
        key = (int(n_graph_samples), int(seed))
        if key not in cache[2]:
            if len(cache[2]) >= 8:  # a caller cycling through seeds keeps only the latest few
                del cache[2][next(iter(cache[2]))]
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
            with torch.no_grad():
                graphs = network.graph.sample(n_graph_samples, generator)
            n_variables = graphs.shape[-1]
            columns = graphs.permute(2, 0, 1)  # [j, s, i] = A_s[i, j]
            index = torch.arange(n_variables, device=graphs.device, dtype=graphs.dtype)
            keys = torch.cat([index.view(-1, 1, 1).expand(-1, n_graph_samples, 1), columns], dim=-1)
            unique, counts = torch.unique(keys.reshape(-1, n_variables + 1), dim=0, return_counts=True)
            variables = unique[:, 0].round().long()
            column_weights = torch.zeros(unique.shape[0], n_variables, dtype=graphs.dtype, device=graphs.device)
            column_weights[torch.arange(unique.shape[0], device=graphs.device), variables] = counts.to(graphs.dtype) / n_graph_samples
            cache[2][key] = {
                "graphs": graphs, "variables": variables, "parent_masks": unique[:, 1:].contiguous(),
                "column_weights": column_weights,
            }
        return cache[2][key]

    def _target_probs(self, datasets: torch.Tensor, n_graph_samples: int, seed: int) -> torch.Tensor:
        """``E_{A ~ q}[sigmoid(gamma(A))]`` for ``(T, n, d)`` standardized datasets: ``(T, d)``.

        The closed form reads each distinct (variable, parent set) column of the graph samples
        once, for all datasets together (:meth:`MetaCaDINetwork.column_target_logits`); an
        adaptation that overrides ``adapt_support`` (MAML) runs it on every (dataset, graph) pair.
        """
        network = self.network_
        samples = self._posterior_graphs(n_graph_samples, seed)
        if type(network).adapt_support is MetaCaDINetwork.adapt_support:
            if "columns" not in samples:
                samples["columns"] = network.column_parameters(samples["variables"], samples["parent_masks"])
            logits = network.column_target_logits(datasets, samples["columns"])
            probs = torch.sigmoid(logits) @ samples["column_weights"]
        else:
            graphs = samples["graphs"]
            n_tasks, _, n_variables = datasets.shape
            support = datasets.repeat_interleave(n_graph_samples, dim=0)
            adjacency = graphs.repeat(n_tasks, 1, 1)
            with torch.no_grad():  # gradient-based adaptations (MAML) re-enable gradients inside
                task_params, obs_mean, int_mean = network.adapt_support(support, adjacency, training=False, with_noise_scale=False)
                logits = network.target_logits(support, obs_mean, int_mean, network.noise_scale(task_params))
            probs = torch.sigmoid(logits).view(n_tasks, n_graph_samples, n_variables).mean(1)
        if not torch.isfinite(probs).all():
            raise FloatingPointError("adaptation produced non-finite target probabilities; the data may be far outside the training range.")
        return probs

    def adapt(self, data: Any, *, n_graph_samples: int | None = None, seed: int = 0) -> Posterior:
        """Adapt to one new dataset in closed form (no retraining) and return its :class:`Posterior`.

        Args:
            data: ``(n_rows, d)`` numpy array, torch tensor, pandas DataFrame (columns matched by
                name) or :class:`Task`; ``n_rows >= 2``.
            n_graph_samples: graphs averaged over (default: the model's ``n_graph_samples``).
            seed: seeds the graph samples, so the same data gives the same posterior.
        """
        return self._adapt_arrays([self._check_new_data(data)], n_graph_samples, seed)[0]

    def adapt_many(
        self, datasets: TaskSet | Sequence[Any], *, n_graph_samples: int | None = None, seed: int = 0
    ) -> list[Posterior]:
        """Adapt to several new datasets independently: datasets with the same number of rows
        are adapted together, in one batched solve (the result equals :meth:`adapt` on each)."""
        self._check_fitted()
        if isinstance(datasets, TaskSet):
            datasets = list(datasets)
        if len(datasets) == 0:
            raise MetaCaDIInputError("adapt_many needs at least one dataset; got none.")
        return self._adapt_arrays([self._check_new_data(item) for item in datasets], n_graph_samples, seed)

    def _adapt_arrays(self, arrays: list[np.ndarray], n_graph_samples: int | None, seed: int) -> list[Posterior]:
        """:meth:`adapt_many` on validated ``(n_rows, d)`` arrays."""
        n_samples = check_positive_int(n_graph_samples or self.n_graph_samples, "n_graph_samples")
        if self.network_.training:
            self.network_.eval()
        probs: list[np.ndarray | None] = [None] * len(arrays)
        by_size: dict[int, list[int]] = {}
        for index, array in enumerate(arrays):
            by_size.setdefault(array.shape[0], []).append(index)
        for indices in by_size.values():
            stacked = self.standardize(np.stack([arrays[i] for i in indices]))
            batch_probs = self._target_probs(stacked, n_samples, seed).cpu().numpy().astype(np.float64)
            for row, index in enumerate(indices):
                probs[index] = batch_probs[row]
        sampler = self._graph_sampler()
        edge_probs = self.edge_probs_.to_numpy()
        return [Posterior.from_arrays(edge_probs, p, self.names_, a.shape[0], sampler) for p, a in zip(probs, arrays)]

    def predict_intervention(self, do: dict[str, float], *, n_samples: int = 1000, seed: int = 0, **options: Any) -> pd.DataFrame:
        """Samples of ``p(x | do(...))`` averaged over the graph posterior; see :func:`metacadi.whatif.predict_intervention`."""
        from .whatif import predict_intervention

        return predict_intervention(self, do, n_samples=n_samples, seed=seed, **options)

    # ------------------------------------------------------------------ persistence
    def _checkpoint_payload(self) -> dict[str, Any]:
        config = self.get_params()
        config_json = json.dumps(config, sort_keys=True)
        state = {name: tensor.detach().cpu().clone() for name, tensor in self.network_.state_dict().items()}
        state["data_mean"] = self.data_mean_.cpu().clone()
        state["data_std"] = self.data_std_.cpu().clone()
        if getattr(self, "observational_rows_", None) is not None:
            state["observational_rows"] = self.observational_rows_.cpu().clone()
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "estimator": type(self).__name__,
            "config": config_json,
            "names": list(self.names_),
            "state": state,
            "checksum": _checksum(type(self).__name__, config_json, self.names_, state),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to ``path`` (a torch file of tensors, strings and lists only).

        The file is written to a temporary name and renamed, so a failed save leaves nothing behind.
        """
        self._check_fitted()
        path = Path(path)
        if not path.parent.exists():
            raise MetaCaDIInputError(f"cannot save to {path}: the folder {path.parent} does not exist.")
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                torch.save(self._checkpoint_payload(), stream)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> "MetaCaDI":
        """Load a model saved by :meth:`save`, refusing anything that is not such a file.

        Loading uses ``torch.load(..., weights_only=True)`` (no code can run from the file), then
        checks the format, version, estimator type, checksum and every tensor's shape.
        """
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"no checkpoint file at {path}.")
        try:
            payload = torch.load(path, map_location=device, weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{path} is not a loadable metacadi checkpoint: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a metacadi checkpoint (missing format tag).")
        if payload.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{path} has checkpoint version {payload.get('version')}; this metacadi reads version {CHECKPOINT_VERSION}."
            )
        estimator = payload.get("estimator")
        if estimator != cls.__name__:
            raise CheckpointError(f"{path} holds a {estimator}, not a {cls.__name__}; load it with {estimator}.load.")
        try:
            config_json, names, state = payload["config"], list(payload["names"]), dict(payload["state"])
            expected = payload["checksum"]
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{path} is missing a field: {exc}") from exc
        if _checksum(estimator, config_json, names, state) != expected:
            raise CheckpointError(f"{path} failed its checksum: the file was modified or corrupted.")
        config = json.loads(config_json)
        config["device"] = device
        config.setdefault("mask_indicators", False)  # files written before the option existed
        model = cls(**config)
        model.names_ = names
        model.n_variables_ = len(names)
        model.data_mean_ = state.pop("data_mean").to(device)
        model.data_std_ = state.pop("data_std").to(device)
        rows = state.pop("observational_rows", None)  # absent in files from models without control tasks
        if rows is not None and (rows.dim() != 2 or rows.shape[1] != len(names)):
            raise CheckpointError(f"{path} has observational rows of shape {tuple(rows.shape)}; expected (n, {len(names)}).")
        model.observational_rows_ = rows
        model.network_ = model._build_network(len(names)).to(device)
        try:
            model.network_.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path} does not match this version's network: {exc}") from exc
        model.network_.eval()
        model.history_ = []
        model._refresh_edge_probs(model.n_edge_samples)
        return model


#: most observational rows a fitted model keeps for :func:`metacadi.whatif.predict_intervention`
MAX_OBSERVATIONAL_ROWS = 5000


def _observational_rows(tasks: TaskSet, seed: int | None) -> torch.Tensor | None:
    """The rows of the tasks labelled ``kind="observational"``, ``(n, d)`` float32 in the data's
    units (at most :data:`MAX_OBSERVATIONAL_ROWS`, a seeded random subset), or ``None`` if no task
    is labelled so. ``predict_intervention`` abducts each unit's noise from them."""
    blocks = [task.data for task in tasks if task.is_observational]
    if not blocks:
        return None
    rows = np.concatenate(blocks)
    if len(rows) > MAX_OBSERVATIONAL_ROWS:
        rows = rows[np.sort(np.random.default_rng(seed).choice(len(rows), MAX_OBSERVATIONAL_ROWS, replace=False))]
    return torch.as_tensor(rows, dtype=torch.float32)


def _cosine_factor(step: int, n_steps: int, floor: float) -> float:
    """Learning-rate factor at ``step``: cosine decay from 1 to ``floor`` over ``n_steps``."""
    progress = min(step / max(n_steps, 1), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + float(np.cos(np.pi * progress)))


def _checksum(estimator: str, config_json: str, names: Sequence[str], state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    digest.update(estimator.encode())
    digest.update(config_json.encode())
    digest.update(json.dumps(list(names)).encode())
    for name in sorted(state):
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"checkpoint entry {name!r} is not a tensor.")
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        buffer = io.BytesIO()
        buffer.write(tensor.detach().cpu().contiguous().numpy().tobytes())
        digest.update(buffer.getvalue())
    return digest.hexdigest()
