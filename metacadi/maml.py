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
  interventional last layer (from ``w_0``) take the gradient steps, on

      L_inner = sum_j [ 1/(2n) ||y_j - f_j^obs(g_j ⊙ X_S)||^2 + 1/(2n) ||y_j - f_j^int(g_j ⊙ X_S)||^2 ]
                + lambda/(2n) ||w_t||^2

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

#: The likelihood parameters Full-MAML adapts per task (everything but ``log_noise_scale``).
MECHANISM_PARAMS: tuple[str, ...] = (
    "obs_w1", "obs_b1", "obs_w2", "obs_b2", "ext_w1", "ext_b1", "ext_w2", "ext_b2",
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
        self, support: torch.Tensor, adjacency: torch.Tensor, training: bool
    ) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Gradient-adapted ``int_weights`` ``(B, d, m + 1)`` and both mechanisms' support predictions."""
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
        return {"int_weights": weights}, obs_mean, int_mean


class FullMAMLNetwork(IntvMAMLNetwork):
    """Gradient steps on per-task copies of every mechanism parameter and ``w_t`` (see module doc)."""

    def adapt_support(
        self, support: torch.Tensor, adjacency: torch.Tensor, training: bool
    ) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Returns ``task_params`` with ``"likelihood"`` (per-task copies, leading axis ``B``) and
        ``"int_weights"``, and both adapted mechanisms' predictions on the support set."""
        batch_size, n_rows = support.shape[0], support.shape[1]
        shared = self.likelihood.shared_params()
        start: dict[str, torch.Tensor] = {}
        for name in MECHANISM_PARAMS:
            copy = shared[name].unsqueeze(0).expand(batch_size, *shared[name].shape)
            start[name] = copy if training else copy.detach().clone().requires_grad_(True)
        start["int_weights"] = self._initial_weights(batch_size, training)
        if not training:
            adjacency = adjacency.detach()

        def predictions(params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            obs = self.likelihood.observational_mean(support, adjacency, params)
            features = self.likelihood.intervention_features(support, adjacency, params)
            return obs, Likelihood.interventional_mean(features, params["int_weights"])

        def loss_fn(params: dict[str, torch.Tensor]) -> torch.Tensor:
            obs, intv = predictions(params)
            penalty = _ridge_penalty(params["int_weights"], self.ridge_lambda, n_rows)
            return _squared_error(support, obs) + _squared_error(support, intv) + penalty

        with torch.enable_grad():
            adapted, self.last_inner_losses = inner_sgd(
                loss_fn, start, self.inner_steps, self.inner_learning_rate, create_graph=training,
                track_final_loss=self.track_inner_losses,
            )
        if not training:
            adapted = {name: value.detach() for name, value in adapted.items()}
        with torch.set_grad_enabled(training):
            obs_mean, int_mean = predictions(adapted)
        weights = adapted.pop("int_weights")
        return {"likelihood": adapted, "int_weights": weights}, obs_mean, int_mean


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
    (default 5) and ``inner_learning_rate`` (default 0.1). See the module docstring.
    """

    adaptation = "gradient steps on all likelihood mechanisms (Full-MAML)"
    _network_class = FullMAMLNetwork
