"""MetaCaDI: meta-train on many experiments, adapt to a new one in closed form.

    model = MetaCaDI(seed=0).fit(train_tasks)          # meta-training (Adam on shared params)
    posterior = model.adapt(new_data)                   # closed-form ridge, no retraining
    posterior.target_probs, posterior.edge_probs        # pandas, node names kept

Meta-training (paper §4.3, eq. 7): at every step one graph ``A ~ q_phi(A)`` is drawn; every
training task is split at random into a support set (``support_size`` rows, mimicking the
few-shot case) and a query set; the task-specific last layer of the interventional mechanism is
fitted on the support set by ridge regression (eq. 6); the target predictor turns the support
set's nine-block features into logits ``gamma_t`` and one relaxed sample ``r_t`` is drawn; the
likelihood (eq. 2) scores the query set; Adam minimises reconstruction + sparsity + HSIC + edge
KL. Targets are never shown to the model: they are latent, learned from the data alone.

Meta-test (``adapt``): the same closed-form fit on the new dataset (all its rows form the
support set), the target probabilities averaged over graph samples from ``q_phi(A)``.
"""

from __future__ import annotations

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
from .likelihood import Likelihood
from .losses import (
    LossWeights,
    edge_prior_kl,
    edge_prior_probability,
    expected_reconstruction,
    gaussian_nll,
    gaussian_nll_per_variable,
    residual_independence,
    target_entropy,
    target_sparsity,
)
from .posterior import Posterior
from .tasks import Task, TaskSet, as_taskset
from .validation import check_data_matrix, check_positive_int

CHECKPOINT_FORMAT = "metacadi-checkpoint"
CHECKPOINT_VERSION = 1


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
        self.likelihood = Likelihood(n_variables, config["hidden_size"], config["n_features"])
        self.predictor = TargetPredictor(n_variables, config["embedding_size"])
        self.ridge_lambda = float(config["ridge_lambda"])

    def adapt_support(
        self, support: torch.Tensor, adjacency: torch.Tensor, training: bool
    ) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
        """Fit task-specific parameters on a support set.

        Args:
            support: ``(B, n, d)``. adjacency: ``(B, d, d)``.
            training: whether gradients must flow through the adaptation (meta-training).
        Returns:
            ``(task_params, obs_mean, int_mean)``: ``task_params["int_weights"]`` is
            ``(B, d, m + 1)``; the means are the two mechanisms' predictions on the support set.
        """
        features = self.likelihood.intervention_features(support, adjacency)
        weights = Likelihood.fit_intervention_weights(features, support, self.ridge_lambda)
        obs_mean = self.likelihood.observational_mean(support, adjacency)
        return {"int_weights": weights}, obs_mean, Likelihood.interventional_mean(features, weights)

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
        ridge_lambda: ``lambda`` of the ridge solve (eq. 6).
        support_size: rows of each training task's support set (the few-shot size to mimic).
        query_size: at most this many query rows per task and step.
        n_steps: Adam steps of meta-training.
        tasks_per_step: tasks per step (``None``: all of them).
        learning_rate: Adam's step size.
        sparsity_weight, hsic_weight, edge_prior_weight: ``alpha``, ``beta``, ``eta`` of eq. 7.
        target_entropy_weight: ``kappa``, weight of the target posterior's entropy (the part of
            the ELBO's KL over ``r`` that the L1 term leaves out; keeps target logits from saturating).
        prior_expected_degree: expected edges per node under the sparse edge prior (sets ``p0``).
        order_temperature, edge_temperature, target_temperature: relaxation temperatures.
        relaxation: ``"softsort"`` or ``"sinkhorn"`` for the node order.
        target_expectation: ``"exact"`` (default) takes the expectation of the reconstruction term
            over ``r_t ~ Bern(sigmoid(gamma_t))`` in closed form (it factorises over variables);
            ``"sample"`` uses the single relaxed sample of ``r_t`` as written in eq. 7. Both
            optimise the same objective; the exact form has a zero-variance gradient. The HSIC
            term always uses the relaxed sample.
        initial_edge_logit: starting edge logit (0: every allowed edge at probability 1/2).
        n_graph_samples: graphs drawn from ``q_phi(A)`` to average target probabilities at adaptation.
        n_edge_samples: graphs drawn for the Monte-Carlo edge posterior.
        device: torch device.
        seed: seeds initialisation and training.

    Learned attributes (after ``fit``): ``names_``, ``n_variables_``, ``edge_probs_`` (DataFrame),
    ``history_`` (list of per-step loss terms), ``fit_seconds_``, ``network_``.
    """

    #: How the task-specific parameters are adapted (shown in benchmark tables).
    adaptation = "closed-form ridge"
    _network_class: type[MetaCaDINetwork] = MetaCaDINetwork

    def __init__(
        self,
        *,
        hidden_size: int = 32,
        n_features: int = 16,
        embedding_size: int = 32,
        ridge_lambda: float = 1.0,
        support_size: int = 10,
        query_size: int = 64,
        n_steps: int = 300,
        tasks_per_step: int | None = None,
        learning_rate: float = 2e-2,
        sparsity_weight: float = 0.3,
        hsic_weight: float = 1.0,
        edge_prior_weight: float = 1.0,
        target_entropy_weight: float = 0.05,
        prior_expected_degree: float = 1.0,
        order_temperature: float = 0.5,
        edge_temperature: float = 0.5,
        target_temperature: float = 0.5,
        relaxation: str = "softsort",
        target_expectation: str = "exact",
        initial_edge_logit: float = 0.0,
        n_graph_samples: int = 16,
        n_edge_samples: int = 1000,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        self.hidden_size = hidden_size
        self.n_features = n_features
        self.embedding_size = embedding_size
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
        self.prior_expected_degree = prior_expected_degree
        self.order_temperature = order_temperature
        self.edge_temperature = edge_temperature
        self.target_temperature = target_temperature
        self.relaxation = relaxation
        self.target_expectation = target_expectation
        self.initial_edge_logit = initial_edge_logit
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
        return LossWeights(self.sparsity_weight, self.hsic_weight, self.edge_prior_weight, self.target_entropy_weight)

    def _check_config(self) -> None:
        for name in ("hidden_size", "n_features", "embedding_size", "query_size", "n_graph_samples", "n_edge_samples"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.support_size, "support_size", minimum=2)
        check_positive_int(self.n_steps, "n_steps", minimum=0)
        if self.tasks_per_step is not None:
            check_positive_int(self.tasks_per_step, "tasks_per_step")
        for name in ("ridge_lambda", "learning_rate", "order_temperature", "edge_temperature", "target_temperature"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0 or not np.isfinite(value):
                raise MetaCaDIInputError(f"{name} must be a positive number; got {value!r}.")
        if self.target_expectation not in ("exact", "sample"):
            raise MetaCaDIInputError(f"target_expectation must be 'exact' or 'sample'; got {self.target_expectation!r}.")
        for name in ("sparsity_weight", "hsic_weight", "edge_prior_weight", "target_entropy_weight", "prior_expected_degree"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or not np.isfinite(value):
                raise MetaCaDIInputError(f"{name} must be a number >= 0; got {value!r}.")

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
            "ridge_lambda": self.ridge_lambda,
            "order_temperature": self.order_temperature,
            "edge_temperature": self.edge_temperature,
            "relaxation": self.relaxation,
            "initial_edge_logit": self.initial_edge_logit,
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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.network_ = self._build_network(self.n_variables_).to(self.device)
        self.history_: list[dict[str, float]] = []
        self.stopped_early_ = False
        self._train(tasks, callback, callback_every, progress)
        return self

    def _train(self, tasks: TaskSet, callback, callback_every: int, progress: bool) -> None:
        from tqdm.auto import tqdm

        data, valid = self._prepare_training_data(tasks)
        n_tasks, n_variables = data.shape[0], data.shape[2]
        query_rows = min(self.query_size, int(valid.sum(1).min()) - self.support_size)
        batch_size = n_tasks if self.tasks_per_step is None else min(self.tasks_per_step, n_tasks)
        prior_prob = edge_prior_probability(n_variables, self.prior_expected_degree)
        weights = self.loss_weights
        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        optimizer = torch.optim.Adam(self.network_.parameters(), lr=self.learning_rate)
        self.network_.train()
        start = time.perf_counter()
        bar = tqdm(range(self.n_steps), desc="meta-training", disable=not progress, leave=False)
        for step in bar:
            batch = torch.randperm(n_tasks, generator=generator, device=self.device)[:batch_size]
            support, query = self._split(data[batch], valid[batch], query_rows, generator)
            terms = self._objective(support, query, prior_prob, weights, generator)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            record = {name: float(value.detach()) for name, value in terms.items()}
            if not np.isfinite(record["loss"]):
                raise FloatingPointError(
                    f"meta-training diverged at step {step + 1} (loss {record['loss']}); try a smaller "
                    f"learning_rate (now {self.learning_rate}) or a larger ridge_lambda (now {self.ridge_lambda})."
                )
            self.history_.append(record)
            if progress:
                bar.set_postfix(loss=f"{record['loss']:.3f}")
            last = step + 1 == self.n_steps
            if callback is not None and ((step + 1) % callback_every == 0 or last):
                self.network_.eval()
                self._refresh_edge_probs(n_samples=min(self.n_edge_samples, 256))
                state = TrainingState(step + 1, self.n_steps, record["loss"], record, time.perf_counter() - start, self)
                keep_going = callback(state)
                self.network_.train()
                if keep_going is False:
                    self.stopped_early_ = True
                    break
        bar.close()
        self.network_.eval()
        self.fit_seconds_ = time.perf_counter() - start
        self._refresh_edge_probs(self.n_edge_samples)

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
    ) -> dict[str, torch.Tensor]:
        """Eq. 7 with one sample of ``A`` (shared by the tasks) and of each ``r_t``."""
        network = self.network_
        n_tasks = support.shape[0]
        adjacency = network.graph.sample(1, generator).expand(n_tasks, -1, -1)
        task_params, obs_support, int_support = network.adapt_support(support, adjacency, training=True)
        noise_scale = network.noise_scale(task_params)
        logits = network.target_logits(support, obs_support, int_support, noise_scale)
        targets = binary_concrete(logits, self.target_temperature, generator)
        obs_query, int_query = network.means(task_params, query, adjacency)
        prediction = Likelihood.mix(obs_query, int_query, targets)
        if self.target_expectation == "exact":
            reconstruction = expected_reconstruction(
                gaussian_nll_per_variable(query, obs_query, noise_scale),
                gaussian_nll_per_variable(query, int_query, noise_scale),
                torch.sigmoid(logits),
            ).mean()
        else:
            reconstruction = gaussian_nll(query, prediction, noise_scale).mean()
        sparsity = target_sparsity(logits).mean()
        entropy = target_entropy(logits).mean()
        hsic = residual_independence(query - prediction).mean() if weights.hsic > 0 else reconstruction.new_zeros(())
        kl = edge_prior_kl(network.graph.edge_presence_probs(), prior_prob)
        loss = (
            reconstruction
            + weights.sparsity * sparsity
            - weights.target_entropy * entropy
            + weights.hsic * hsic
            + weights.edge_prior * kl
        )
        return {
            "loss": loss, "reconstruction": reconstruction, "sparsity": sparsity,
            "target_entropy": entropy, "hsic": hsic, "edge_kl": kl,
        }

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

    def graph_posterior(self) -> Posterior:
        """The shared graph posterior ``q_phi(A)`` alone (no dataset adapted)."""
        self._check_fitted()
        return Posterior(self.edge_probs_.copy(), None, 0, self._graph_sampler())

    def _target_probs(self, datasets: torch.Tensor, n_graph_samples: int, seed: int) -> torch.Tensor:
        """``E_{A ~ q}[sigmoid(gamma(A))]`` for ``(T, n, d)`` standardized datasets: ``(T, d)``."""
        n_tasks, _, n_variables = datasets.shape
        generator = torch.Generator(device=self.device).manual_seed(int(seed))
        with torch.no_grad():
            graphs = self.network_.graph.sample(n_graph_samples, generator)
        support = datasets.repeat_interleave(n_graph_samples, dim=0)
        adjacency = graphs.repeat(n_tasks, 1, 1)
        with torch.no_grad():  # gradient-based adaptations (MAML) re-enable gradients inside
            task_params, obs_mean, int_mean = self.network_.adapt_support(support, adjacency, training=False)
            logits = self.network_.target_logits(support, obs_mean, int_mean, self.network_.noise_scale(task_params))
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
        array = self._check_new_data(data)
        return self.adapt_many([array], n_graph_samples=n_graph_samples, seed=seed)[0]

    def adapt_many(
        self, datasets: TaskSet | Sequence[Any], *, n_graph_samples: int | None = None, seed: int = 0
    ) -> list[Posterior]:
        """Adapt to several new datasets independently (batched where sizes agree)."""
        self._check_fitted()
        if isinstance(datasets, TaskSet):
            datasets = list(datasets)
        if len(datasets) == 0:
            raise MetaCaDIInputError("adapt_many needs at least one dataset; got none.")
        arrays = [self._check_new_data(item) for item in datasets]
        n_samples = check_positive_int(n_graph_samples or self.n_graph_samples, "n_graph_samples")
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
        return [
            Posterior(self.edge_probs_.copy(), pd.Series(p, index=self.names_, name="target_probability"), a.shape[0], sampler)
            for p, a in zip(probs, arrays)
        ]

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
        model = cls(**config)
        model.names_ = names
        model.n_variables_ = len(names)
        model.data_mean_ = state.pop("data_mean").to(device)
        model.data_std_ = state.pop("data_std").to(device)
        model.network_ = model._build_network(len(names)).to(device)
        try:
            model.network_.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path} does not match this version's network: {exc}") from exc
        model.network_.eval()
        model.history_ = []
        model._refresh_edge_probs(model.n_edge_samples)
        return model


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
