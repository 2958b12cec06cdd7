"""A non-causal reference: score each variable of each task by how far its marginal distribution
departs from a reference sample.

For task ``t`` the reference is the pooled rows of the *other* observational tasks, or, when there
is no other observational task, the pooled rows of all other tasks. For variable ``j``:

``shift_tj = |mean_t - mean_ref| / sd_ref + 0.5 |log((var_t + eps) / (var_ref + eps))|``

(a standardised mean shift plus half the absolute log variance ratio, ``eps = 1e-3 var_ref``, so a
silenced gene with zero variance gets a large but finite score), mapped to ``[0, 1)`` by
``shift / (1 + shift)``. Any direct target shifts its marginal, but so do its descendants: this
method cannot tell them apart, which is exactly the gap a causal method should close.

It makes no claim about the graph: ``edge_scores`` and ``graph`` are ``None`` (graph metrics are
reported as NaN), rather than an uninformative 0.5 everywhere that would look like a real AUROC
of 0.5.
"""

from __future__ import annotations

import numpy as np

from .._random import SeedLike
from ..errors import MetaCaDIInputError
from ..tasks import TaskSet
from .base import Baseline, BaselineResult, observational_mask

__all__ = ["DistributionShift"]


class DistributionShift(Baseline):
    """Marginal distribution shift of every variable in every task (no graph).

    Args:
        variance_weight: weight of the absolute log variance ratio (default 0.5).
        seed: accepted for the common baseline interface; the method is deterministic.
    """

    name = "DistributionShift"

    def __init__(self, variance_weight: float = 0.5, seed: SeedLike = 0) -> None:
        if not (np.isfinite(variance_weight) and variance_weight >= 0):
            raise MetaCaDIInputError(f"variance_weight must be a finite number >= 0; got {variance_weight!r}.")
        self.variance_weight = float(variance_weight)
        self.seed = seed

    def _fit(self, tasks: TaskSet) -> BaselineResult:
        is_observational = observational_mask(tasks)
        scores = np.zeros((len(tasks), tasks.n_variables))
        for index, task in enumerate(tasks):
            others = np.arange(len(tasks)) != index
            reference_tasks = others & is_observational
            if not reference_tasks.any():
                reference_tasks = others
            reference = np.vstack([tasks[k].data for k in np.flatnonzero(reference_tasks)])
            ref_mean, ref_var = reference.mean(axis=0), reference.var(axis=0)
            mean, var = task.data.mean(axis=0), task.data.var(axis=0)
            ref_sd = np.sqrt(np.where(ref_var > 1e-12, ref_var, 1.0))
            eps = 1e-3 * ref_var + 1e-12
            shift = np.abs(mean - ref_mean) / ref_sd + self.variance_weight * np.abs(
                np.log((var + eps) / (ref_var + eps))
            )
            scores[index] = shift / (1.0 + shift)
        return BaselineResult(
            method=self.name,
            names=tasks.names,
            edge_scores=None,
            graph=None,
            graph_samples=None,
            target_scores=scores,
            info={"reference": "observational" if is_observational.any() else "other tasks"},
        )
