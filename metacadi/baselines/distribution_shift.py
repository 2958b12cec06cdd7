"""A non-causal reference, the benchmark's shift-score floor: score each variable of each task by
how far its marginal distribution departs from a reference sample.

For task ``t`` the reference is the pooled rows of the *other* observational tasks, or, when there
is no other observational task, the pooled rows of all other tasks. For variable ``j``
(:func:`metacadi.reference_scores.shift_statistic`, sample sds with ``ddof = 1``):

``shift_tj = |mean_t - mean_ref| / sd_ref + |log(sd_t / sd_ref)|``

(a standardised mean shift plus the absolute log sd ratio; the sds are floored at
``1e-3 sd_ref`` so a silenced gene with zero variance gets a large but finite score), mapped to
``[0, 1)`` by ``shift / (1 + shift)``. For a meta-test task given with the observational training
tasks this is exactly :func:`metacadi.reference_scores.shift_scores`. Any direct target shifts its marginal, but so do its descendants: this
method cannot tell them apart, which is exactly the gap a causal method should close.

It makes no claim about the graph: ``edge_scores`` and ``graph`` are ``None`` (graph metrics are
reported as NaN), rather than an uninformative 0.5 everywhere that would look like a real AUROC
of 0.5.
"""

from __future__ import annotations

import numpy as np

from .._random import SeedLike
from ..errors import MetaCaDIInputError
from ..reference_scores import shift_statistic, to_unit_interval
from ..tasks import TaskSet
from .base import Baseline, BaselineResult, observational_mask

__all__ = ["DistributionShift"]


class DistributionShift(Baseline):
    """Marginal distribution shift of every variable in every task (no graph).

    Args:
        variance_weight: weight of the absolute log sd ratio (default 1.0, the shift score).
        seed: accepted for the common baseline interface; the method is deterministic.
    """

    name = "DistributionShift"

    def __init__(self, variance_weight: float = 1.0, seed: SeedLike = 0) -> None:
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
            scores[index] = to_unit_interval(shift_statistic(task.data, reference, self.variance_weight))
        return BaselineResult(
            method=self.name,
            names=tasks.names,
            edge_scores=None,
            graph=None,
            graph_samples=None,
            target_scores=scores,
            info={"reference": "observational" if is_observational.any() else "other tasks"},
        )
