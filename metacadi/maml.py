"""The paper's two ablations: MAML-style gradient adaptation instead of the closed-form ridge solve.

Both keep everything of :class:`~metacadi.model.MetaCaDI` (DP-DAG sampler, likelihood of eq. 2,
nine-block features, target predictor, objective of eq. 7) and change only
:meth:`~metacadi.model.MetaCaDINetwork.adapt_support`, the step that fits the task-specific
parameters on a support set ``S_t`` (``n`` rows):

* :class:`IntvMAML` (MetaCaDI-Intv-MAML): the task-specific last layer ``w_t`` of the
  interventional mechanism starts from a **meta-learned initial layer** ``w_0`` (``(d, m + 1)``,
  shared) and takes ``inner_steps`` gradient steps of size ``inner_learning_rate`` on the same
  objective that eq. 6 solves exactly, scaled per row:

      L_inner(w_t) = sum_j [ 1/(2n) ||y_j - H_j w_tj||^2 + lambda/(2n) ||w_tj||^2 ]
      w_t <- w_t - eta * grad L_inner(w_t)

  So the ablation compares *how* the same quantity is adapted (gradient steps from a learned
  start versus the exact minimiser), nothing else. The squared error is the paper's
  reconstruction loss (a Gaussian NLL with unit noise, the scale of the standardised data);
  weighting it by the learned ``1/sigma_j^2`` would make the stable step size depend on ``sigma``.
  The inner loss fits the interventional mechanism to every variable, as the ridge solve does:
  the targets are unknown when adapting (they are predicted *from* the adapted mechanisms).

* :class:`FullMAML` (MetaCaDI-Full-MAML): per-task copies of **all mechanism parameters** of the
  likelihood — the observational MLPs, the interventional feature extractor — and the
  interventional last layer take the gradient steps, on the target-weighted loss

      L_inner = sum_j [ (1 - p_tj)/(2n) ||y_j - f_j^obs(g_j ⊙ X_S)||^2 + 1/(2n) ||y_j - f_j^int(g_j ⊙ X_S)||^2 ]
                + lambda/(2n) ||w_t||^2

  where ``p_t`` are the target probabilities read from the support set *before* the
  observational mechanisms adapt (see :class:`FullMAMLNetwork` for why: otherwise the adapted
  observational mechanism absorbs the intervention and the target predictor collapses).

  Its objective is MetaCaDI's in full (random-parent-set regression of the mechanisms, mask
  indicators, anchored observational experiments, sparsity warm-up); only the adaptation
  differs. Its inner step size is 0.01, a tenth of Intv-MAML's 0.1, chosen on tuning seeds
  100-103 (``benchmarks/sweep_defaults.py --method full-maml``,
  ``benchmarks/results/sweep-full-maml.md``). The step size decides whether the ablation learns
  at all: five steps on every mechanism parameter can let the observational copies fit a hard
  intervention through the variables the predictor had not flagged, and meta-training then
  settles on the inverse rule, the targets *least* likely. With the full objective that happened
  at 0.02 (Intv-AUROC 0.06 on hard interventions over tuning seeds 100-101), not at 0.01 (0.99;
  subtle soft interventions 0.88 against the shift score's 0.78). Before the observational
  experiments were anchored, the random-parent-set term and the mask indicators collapsed its
  target head even at 0.02, and Full-MAML left both out; with the anchor that reduced ablation
  trails the full one (``sweep-full-maml.md``).

  The per-task copies carry a leading batch axis, which :class:`~metacadi.likelihood.Likelihood`
  accepts (``params`` dict). The noise scales ``sigma`` are not adapted: the squared-error loss
  does not involve them, and a noise scale fitted to 10 rows would change the units of the
  residual features (blocks 4-7) from task to task. They stay the shared, meta-learned values.

Meta-training (``training=True``) differentiates through the inner loop
(``torch.autograd.grad(..., create_graph=True)``, second-order MAML), so the outer Adam step
updates ``w_0``, the feature extractor and (Full-MAML) the initial mechanisms through the
adaptation. At adaptation (``training=False``) the inner loop still needs gradients (run under
:func:`torch.enable_grad`), but only with respect to the task-specific copies: the shared
parameters are detached and so is the result.

Usage is the same as MetaCaDI's, with two extra constructor arguments::

    model = IntvMAML(inner_steps=5, inner_learning_rate=0.1, n_steps=300).fit(train_tasks)
    posterior = model.adapt(new_data)
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import MetaCaDIInputError
from .likelihood import Likelihood
from .model import MetaCaDI, MetaCaDINetwork
from .validation import check_positive_int

__all__ = ["FullMAML", "FullMAMLNetwork", "IntvMAML", "IntvMAMLNetwork", "MECHANISM_PARAMS", "inner_sgd"]

#: The likelihood parameters Full-MAML adapts per task (everything but ``log_noise_scale``;
#: the mask-indicator weights too when the likelihood has them).
MECHANISM_PARAMS: tuple[str, ...] = (
    "obs_w1", "obs_b1", "obs_w2", "obs_b2", "ext_w1", "ext_b1", "ext_w2", "ext_b2", "obs_u1", "ext_u1",
)


def inner_sgd(
    loss_fn,
    params: dict[str, torch.Tensor],
    n_steps: int,
    learning_rate: float,
    create_graph: bool,
    track_final_loss: bool = False,
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """``n_steps`` plain gradient steps ``p <- p - eta * dL/dp`` on a dict of tensors.

    Args:
        loss_fn: maps the current ``params`` dict to a scalar loss (summed over tasks, so each
            task's copy receives its own task's gradient).
        params: tensors that require gradients (leaves or functions of shared parameters).
        create_graph: keep the graph of every step (second-order MAML) or not.
        track_final_loss: also evaluate the loss after the last step (one more forward pass).
    Returns:
        ``(adapted params, losses)``: the loss before each step (and after the last one if tracked).
    """
    names = list(params)
    losses: list[float] = []
    for _ in range(n_steps):
        loss = loss_fn(params)
        losses.append(float(loss.detach()))
        grads = torch.autograd.grad(loss, [params[name] for name in names], create_graph=create_graph)
        params = {name: params[name] - learning_rate * grad for name, grad in zip(names, grads)}
    if track_final_loss:
        with torch.no_grad():
            losses.append(float(loss_fn(params)))
    return params, losses


def _squared_error(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """``sum_{b, j} 1/(2n) sum_i (x - mean)^2`` for ``(B, n, d)`` tensors: a scalar."""
    return 0.5 * (x - mean).pow(2).mean(dim=1).sum()


def _ridge_penalty(weights: torch.Tensor, ridge_lambda: float, n_rows: int) -> torch.Tensor:
    """``lambda/(2n) ||w||^2`` summed over tasks and variables."""
    return 0.5 * ridge_lambda * weights.pow(2).sum() / n_rows


def _in_sample_noise_scale(
    support: torch.Tensor, int_mean: torch.Tensor, shared_scale: torch.Tensor, prior_rows: float
) -> torch.Tensor:
    """The task noise scale of a gradient-adapted head, ``(B, d)``: the closed form's shrunk
    variance (:meth:`~metacadi.likelihood.Likelihood.fit_intervention_head`) with the head's
    in-sample residuals in place of leave-one-out ones (a few gradient steps do not interpolate
    the support set the way an ``m > n`` ridge solve does)."""
    n_rows = support.shape[1]
    squared = (support - int_mean).pow(2).sum(dim=1)
    return ((squared + prior_rows * shared_scale.pow(2)) / (n_rows + prior_rows)).sqrt()


class IntvMAMLNetwork(MetaCaDINetwork):
    """MetaCaDI's network with the ridge solve replaced by gradient steps on ``w_t`` (see module doc).

    Extra parameter: ``initial_int_weights`` ``w_0``, ``(d, m + 1)``, meta-learned.
    Extra config keys: ``inner_steps``, ``inner_learning_rate``.
    """

    def __init__(self, n_variables: int, config: dict[str, Any]) -> None:
        super().__init__(n_variables, config)
        self.inner_steps = int(config["inner_steps"])
        self.inner_learning_rate = float(config["inner_learning_rate"])
        self.initial_int_weights = nn.Parameter(torch.zeros(n_variables, config["n_features"] + 1))
        #: support losses of the last inner loop, before each step (and after the last one when
        #: ``track_inner_losses`` is set, which costs one more forward pass)
        self.last_inner_losses: list[float] = []
        self.track_inner_losses = False

    def _initial_weights(self, batch_size: int, training: bool) -> torch.Tensor:
        """``w_0`` broadcast to ``(B, d, m + 1)``: a function of the parameter when training, a
        fresh leaf otherwise."""
        start = self.initial_int_weights.unsqueeze(0).expand(batch_size, -1, -1)
        if training:
            return start
        return start.detach().clone().requires_grad_(True)

    def adapt_support(
        self, support: torch.Tensor, adjacency: torch.Tensor, training: bool, with_noise_scale: bool = True
    ) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Gradient-adapted ``int_weights`` ``(B, d, m + 1)`` and both mechanisms' support predictions
        (and, with ``with_noise_scale``, the task noise scale ``int_noise_scale``)."""
        n_rows = support.shape[1]
        with torch.set_grad_enabled(training):
            features = self.likelihood.intervention_features(support, adjacency)
            obs_mean = self.likelihood.observational_mean(support, adjacency)

        def loss_fn(params: dict[str, torch.Tensor]) -> torch.Tensor:
            weights = params["int_weights"]
            prediction = Likelihood.interventional_mean(features, weights)
            return _squared_error(support, prediction) + _ridge_penalty(weights, self.ridge_lambda, n_rows)

        with torch.enable_grad():
            adapted, self.last_inner_losses = inner_sgd(
                loss_fn,
                {"int_weights": self._initial_weights(support.shape[0], training)},
                self.inner_steps,
                self.inner_learning_rate,
                create_graph=training,
                track_final_loss=self.track_inner_losses,
            )
        weights = adapted["int_weights"]
        if not training:
            weights = weights.detach()
        with torch.set_grad_enabled(training):
            int_mean = Likelihood.interventional_mean(features, weights)
            if not with_noise_scale:
                return {"int_weights": weights}, obs_mean, int_mean
            scale = _in_sample_noise_scale(support, int_mean, self.likelihood.noise_scale(), self.noise_prior_rows)
        return {"int_weights": weights, "int_noise_scale": scale}, obs_mean, int_mean


class FullMAMLNetwork(IntvMAMLNetwork):
    """Gradient steps on per-task copies of every mechanism parameter and ``w_t`` (see module doc).

    Adapting the observational mechanisms to a task would let them absorb its intervention: after
    a few steps on the support set the intervened variable is predicted as well by ``f^obs`` as
    by ``f^int``, its residual features look like a non-target's, and the target predictor
    learns nothing (it collapsed to ``p < 1e-3`` for every variable, Intv-AUPRC at the base rate,
    when the inner loss weighted both mechanisms equally). So the adaptation runs in two stages:

    1. the targets are read first, through the meta-learned mechanisms: ``w_t`` takes the
       Intv-MAML gradient steps, and the predictor's ``p_t = sigmoid(gamma_t)`` comes from the
       shared ``f^obs`` and this ``f^int`` (the support predictions returned are these);
    2. every mechanism parameter then takes ``inner_steps`` steps on the target-weighted loss of
       eq. 2, ``sum_j (1 - p_tj) SE(f^obs_j) + SE(f^int_j) + ridge``, so the observational copy
       adapts to the variables the task left alone and the interventional one to all of them
       (as the ridge head does); the adapted copies score the query set.
    """

    def adapt_support(
        self, support: torch.Tensor, adjacency: torch.Tensor, training: bool, with_noise_scale: bool = True
    ) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Returns ``task_params`` with ``"likelihood"`` (per-task copies, leading axis ``B``),
        ``"int_weights"`` and (with ``with_noise_scale``) ``"int_noise_scale"``, and the support
        predictions the targets are read from (stage 1)."""
        intv_params, obs_mean, int_mean = super().adapt_support(support, adjacency, training, with_noise_scale=False)
        with torch.set_grad_enabled(training):
            logits = self.target_logits(support, obs_mean, int_mean, self.likelihood.noise_scale())
        keep_obs = (1.0 - torch.sigmoid(logits)).unsqueeze(1)  # (B, 1, d)
        batch_size, n_rows = support.shape[0], support.shape[1]
        shared = self.likelihood.shared_params()
        start: dict[str, torch.Tensor] = {}
        for name in (name for name in MECHANISM_PARAMS if name in shared):
            copy = shared[name].unsqueeze(0).expand(batch_size, *shared[name].shape)
            start[name] = copy if training else copy.detach().clone().requires_grad_(True)
        weights = intv_params["int_weights"]
        start["int_weights"] = weights if training else weights.detach().clone().requires_grad_(True)
        if not training:
            adjacency = adjacency.detach()

        def predictions(params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            obs = self.likelihood.observational_mean(support, adjacency, params)
            features = self.likelihood.intervention_features(support, adjacency, params)
            return obs, Likelihood.interventional_mean(features, params["int_weights"])

        def loss_fn(params: dict[str, torch.Tensor]) -> torch.Tensor:
            obs, intv = predictions(params)
            penalty = _ridge_penalty(params["int_weights"], self.ridge_lambda, n_rows)
            obs_error = 0.5 * (keep_obs * (support - obs).pow(2)).mean(dim=1).sum()
            return obs_error + _squared_error(support, intv) + penalty

        with torch.enable_grad():
            adapted, losses = inner_sgd(
                loss_fn, start, self.inner_steps, self.inner_learning_rate, create_graph=training,
                track_final_loss=self.track_inner_losses,
            )
        self.last_inner_losses = losses
        if not training:
            adapted = {name: value.detach() for name, value in adapted.items()}
        weights = adapted.pop("int_weights")
        task_params = {"likelihood": adapted, "int_weights": weights}
        if with_noise_scale:
            with torch.set_grad_enabled(training):
                _, adapted_int_mean = predictions({**adapted, "int_weights": weights})
                task_params["int_noise_scale"] = _in_sample_noise_scale(
                    support, adapted_int_mean, self.likelihood.noise_scale(), self.noise_prior_rows
                )
        return task_params, obs_mean, int_mean


class _MAMLEstimator(MetaCaDI):
    """Shared constructor, configuration and validation of the two MAML ablations.

    Args:
        inner_steps: gradient steps of the inner loop (default 5).
        inner_learning_rate: step size ``eta`` of the inner loop (default 0.1).
        **kwargs: every argument of :class:`~metacadi.model.MetaCaDI` (same defaults).
    """

    def __init__(self, *, inner_steps: int = 5, inner_learning_rate: float = 0.1, **kwargs: Any) -> None:
        base = _base_parameter_names()
        unknown = sorted(set(kwargs) - set(base))
        if unknown:
            raise MetaCaDIInputError(
                f"unknown parameter(s) {unknown} for {type(self).__name__}; valid ones are "
                f"{sorted(base + ['inner_steps', 'inner_learning_rate'])}."
            )
        super().__init__(**kwargs)
        self.inner_steps = inner_steps
        self.inner_learning_rate = inner_learning_rate

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments: MetaCaDI's plus ``inner_steps`` and ``inner_learning_rate``."""
        params = {name: getattr(self, name) for name in _base_parameter_names()}
        params["inner_steps"] = self.inner_steps
        params["inner_learning_rate"] = self.inner_learning_rate
        return params

    def _check_config(self) -> None:
        super()._check_config()
        check_positive_int(self.inner_steps, "inner_steps")
        value = self.inner_learning_rate
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not np.isfinite(value):
            raise MetaCaDIInputError(f"inner_learning_rate must be a positive number; got {value!r}.")

    def _network_config(self) -> dict[str, Any]:
        config = super()._network_config()
        config["inner_steps"] = self.inner_steps
        config["inner_learning_rate"] = self.inner_learning_rate
        return config


def _base_parameter_names() -> list[str]:
    return [name for name in inspect.signature(MetaCaDI.__init__).parameters if name != "self"]


class IntvMAML(_MAMLEstimator):
    """MetaCaDI-Intv-MAML: gradient steps on the interventional last layer from a learned start.

    Same interface as :class:`~metacadi.model.MetaCaDI`; extra arguments ``inner_steps``
    (default 5) and ``inner_learning_rate`` (default 0.1). See the module docstring.
    """

    adaptation = "gradient steps on the interventional last layer (Intv-MAML)"
    _network_class = IntvMAMLNetwork


class FullMAML(_MAMLEstimator):
    """MetaCaDI-Full-MAML: gradient steps on every mechanism parameter of the likelihood.

    Same interface as :class:`~metacadi.model.MetaCaDI`; extra arguments ``inner_steps``
    (default 5) and ``inner_learning_rate`` (default 0.01, smaller than Intv-MAML's: see the
    module docstring). See the module docstring.

    Every other argument, and its default, is MetaCaDI's.
    """

    adaptation = "gradient steps on all likelihood mechanisms (Full-MAML)"
    _network_class = FullMAMLNetwork

    def __init__(self, *, inner_steps: int = 5, inner_learning_rate: float = 0.01, **kwargs: Any) -> None:
        super().__init__(inner_steps=inner_steps, inner_learning_rate=inner_learning_rate, **kwargs)
