"""The common interface of every baseline: ``Baseline(seed=...).fit(tasks) -> BaselineResult``.

A baseline sees a whole :class:`~metacadi.tasks.TaskSet` at once (the paper runs the baselines on
all meta-test datasets together, while MetaCaDI adapts to one new dataset at a time) and returns
one :class:`BaselineResult`: edge scores, a point-estimate DAG, optional graph samples, and one row
of target scores per task, in the order the tasks were given.

How to call them (what a benchmark should do)::

    from metacadi.baselines import BASELINES
    tasks = TaskSet(list(protocol.train) + list(protocol.test), graph=protocol.graph)
    result = BASELINES[name](seed=seed).fit(tasks)
    test_scores = result.target_scores[len(protocol.train):]   # (n_test, d), rows = test tasks
    edge_scores = result.edge_scores                           # (d, d) or None

* Give every baseline the **same** TaskSet: the meta-training tasks (which include the tasks
  labelled ``kind="observational"``) followed by all meta-test tasks. The observational tasks are
  what the methods compare against: :class:`DistributionShift` pools their rows as its reference
  sample, JCI-PC uses them as the regime where every context indicator is 0, UT-IGSP runs its CI
  tests on them and its invariance tests against them, and DCDI-G/BaCaDI fix ``r = 0`` for them.
  JCI-PC and UT-IGSP raise :class:`~metacadi.errors.MetaCaDIInputError` without one.
* Every constructor takes ``seed`` (int, numpy Generator or None) and works with its defaults;
  iteration counts are constructor parameters (``n_steps``, ``inner_steps``/``max_outer``,
  ``max_depth``, ``n_runs``) for smaller or larger budgets. Deterministic methods
  (DistributionShift, JCI-PC) accept ``seed`` only for this uniform interface.
* :meth:`Baseline.fit` checks what every method returns: ``target_scores`` ``(T, d)`` finite in
  ``[0, 1]``; ``edge_scores`` ``(d, d)`` finite in ``[0, 1]`` with a zero diagonal (or ``None``:
  no graph claim, graph metrics are then NaN); ``graph`` a 0/1 DAG; ``graph_samples``
  ``(S, d, d)`` 0/1 DAGs or ``None``.

Which tasks count as observational: those whose ``kind`` is ``"observational"``. That label is
what an experimenter knows (a wild-type sample), not the hidden targets, and UT-IGSP, DCDI and
BaCaDI all need to know which regime is observational. Baselines that only estimate targets for
interventional regimes give observational tasks a row of zeros.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import MetaCaDIInputError
from ..tasks import TaskSet, as_taskset

__all__ = ["Baseline", "BaselineResult", "acyclic_projection", "score_from_pvalue"]


@dataclass
class BaselineResult:
    """What a baseline learned from a set of tasks.

    Attributes:
        method: name of the baseline.
        names: variable names.
        edge_scores: ``(d, d)`` scores in ``[0, 1]`` for ``i -> j`` (edge probabilities for the
            probabilistic methods, test confidences for the constraint-based ones), or ``None``
            for a method that makes no claim about the graph (graph metrics are then NaN).
        graph: ``(d, d)`` int 0/1 point-estimate DAG, or ``None`` (no graph claim).
        graph_samples: ``(S, d, d)`` int posterior samples (BaCaDI), or ``None``.
        target_scores: ``(T, d)`` scores in ``[0, 1]``, row ``t`` for task ``t`` (higher = more
            likely intervened).
        fit_seconds: wall-clock time of ``fit``.
        info: method-specific details (e.g. the CPDAG, the permutation, training curves).
    """

    method: str
    names: tuple[str, ...]
    edge_scores: np.ndarray | None
    graph: np.ndarray | None
    graph_samples: np.ndarray | None
    target_scores: np.ndarray
    fit_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def has_graph(self) -> bool:
        return self.edge_scores is not None

    def edge_frame(self):
        """Edge scores as a pandas DataFrame (rows = causes, columns = effects)."""
        import pandas as pd

        if self.edge_scores is None:
            raise MetaCaDIInputError(f"{self.method} estimates no graph.")
        return pd.DataFrame(self.edge_scores, index=list(self.names), columns=list(self.names))

    def target_frame(self):
        """Target scores as a pandas DataFrame (rows = tasks, columns = variables)."""
        import pandas as pd

        return pd.DataFrame(self.target_scores, columns=list(self.names))

    def __repr__(self) -> str:
        graph = "no graph" if self.graph is None else f"{int(self.graph.sum())} edges"
        return (
            f"BaselineResult({self.method}: {len(self.names)} variables, {graph}, "
            f"{self.target_scores.shape[0]} tasks, {self.fit_seconds:.2f} s)"
        )


class Baseline(ABC):
    """Base class: validates the tasks, times :meth:`_fit`, and keeps the result in ``result_``.

    Subclasses implement ``_fit(tasks) -> BaselineResult`` (``fit_seconds`` is filled in here).
    """

    name: str = "baseline"
    #: smallest number of rows a task may have for this method
    min_rows_per_task: int = 2

    def fit(self, tasks: Any) -> BaselineResult:
        """Fit on a :class:`TaskSet` (or a list of Tasks/arrays) and return a :class:`BaselineResult`.

        Raises:
            MetaCaDIInputError: fewer than 2 tasks or 2 variables, a task with too few rows, or a
                method-specific requirement (e.g. an observational task) not met.
        """
        tasks = self._check_tasks(tasks)
        start = time.perf_counter()
        result = self._fit(tasks)
        result.fit_seconds = time.perf_counter() - start
        _check_result(result, len(tasks), tasks.n_variables, self.name)
        self.result_ = result
        return result

    def _check_tasks(self, tasks: Any) -> TaskSet:
        tasks = as_taskset(tasks)
        if len(tasks) < 2:
            raise MetaCaDIInputError(
                f"{self.name} needs at least 2 tasks (datasets from different experiments); got {len(tasks)}."
            )
        if tasks.n_variables < 2:
            raise MetaCaDIInputError(f"{self.name} needs at least 2 variables; got {tasks.n_variables}.")
        for index, task in enumerate(tasks):
            if task.n_rows < self.min_rows_per_task:
                raise MetaCaDIInputError(
                    f"task {index} has {task.n_rows} row(s); {self.name} needs at least "
                    f"{self.min_rows_per_task} per task."
                )
        return tasks

    @abstractmethod
    def _fit(self, tasks: TaskSet) -> BaselineResult:
        """Learn from validated tasks; return the result (``fit_seconds`` is set by :meth:`fit`)."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def _check_result(result: BaselineResult, n_tasks: int, d: int, name: str) -> None:
    """Assert the output contract of :meth:`Baseline.fit` (a violation is a bug in the method)."""

    def fail(message: str) -> None:
        raise RuntimeError(f"{name} broke the baseline output contract: {message}")

    def check_scores(array: np.ndarray, shape: tuple[int, ...], label: str) -> None:
        if array.shape != shape:
            fail(f"{label} has shape {array.shape}, expected {shape}.")
        if not np.isfinite(array).all():
            fail(f"{label} contains NaN or inf.")
        if array.min(initial=0.0) < 0.0 or array.max(initial=0.0) > 1.0:
            fail(f"{label} leaves [0, 1] (range {array.min():.3g}..{array.max():.3g}).")

    check_scores(np.asarray(result.target_scores), (n_tasks, d), "target_scores")
    if result.edge_scores is not None:
        check_scores(np.asarray(result.edge_scores), (d, d), "edge_scores")
        if np.any(np.diag(result.edge_scores) != 0):
            fail("edge_scores has a non-zero diagonal.")
    graphs = []
    if result.graph is not None:
        graphs.append(np.asarray(result.graph)[None])
    if result.graph_samples is not None:
        graphs.append(np.asarray(result.graph_samples))
    from ..graphs import is_dag

    for stack in graphs:
        if stack.ndim != 3 or stack.shape[1:] != (d, d) or not np.isin(stack, (0, 1)).all():
            fail(f"graphs must be 0/1 arrays of shape (..., {d}, {d}); got {stack.shape}.")
        if not all(is_dag(g) for g in stack):
            fail("a returned graph is not acyclic.")


# ---------------------------------------------------------------------- shared helpers
def observational_mask(tasks: TaskSet) -> np.ndarray:
    """``(T,)`` bool: which tasks are labelled observational."""
    return np.array([task.is_observational for task in tasks], dtype=bool)


def pooled(tasks: TaskSet) -> tuple[np.ndarray, np.ndarray]:
    """All rows stacked ``(N, d)`` and the task index of every row ``(N,)``."""
    data = np.vstack([task.data for task in tasks])
    regime = np.repeat(np.arange(len(tasks)), [task.n_rows for task in tasks])
    return data, regime


def score_from_pvalue(p_values: np.ndarray) -> np.ndarray:
    """Map p-values to scores in ``[0, 1)``: ``L / (1 + L)`` with ``L = -log10 p``.

    Monotone decreasing in ``p`` (0 at ``p = 1``); unlike ``1 - p`` it does not collapse tiny
    p-values into ties at 1, which keeps rankings (AUROC) informative.
    """
    strength = np.maximum(-np.log10(np.clip(np.asarray(p_values, dtype=float), 1e-300, 1.0)), 0.0)
    return strength / (1.0 + strength)


def acyclic_projection(scores: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Greedy DAG from edge scores: add edges with ``score >= threshold`` from the highest
    score down, skipping any edge that would close a directed cycle (ties: row-major order).

    Returns a ``(d, d)`` int 0/1 DAG.
    """
    scores = np.asarray(scores, dtype=float)
    d = scores.shape[0]
    graph = np.zeros((d, d), dtype=np.int64)
    reach = np.eye(d, dtype=bool)  # reach[a, b]: a path a -> ... -> b exists (or a == b)
    candidates = [(i, j) for i in range(d) for j in range(d) if i != j and scores[i, j] >= threshold]
    candidates.sort(key=lambda edge: -scores[edge])
    for i, j in candidates:
        if reach[j, i]:  # j already reaches i: i -> j would close a cycle
            continue
        graph[i, j] = 1
        # everything that reaches i now reaches everything j reaches
        reach |= np.outer(reach[:, i], reach[j, :])
    return graph


def cpdag_to_scores(cpdag: np.ndarray) -> np.ndarray:
    """Edge scores of a CPDAG ``(d, d)`` with ``C[i, j] = 1`` for every mark ``i -> j`` it allows:
    a directed edge counts 1, an undirected edge ``i - j`` (``C[i, j] = C[j, i] = 1``) counts 0.5
    in each direction."""
    cpdag = np.asarray(cpdag, dtype=float)
    undirected = (cpdag > 0) & (cpdag.T > 0)
    return np.where(undirected, 0.5, cpdag)


def standardise(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns centred and scaled to unit variance (constant columns only centred)."""
    mean = data.mean(axis=0)
    scale = data.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    return (data - mean) / scale, mean, scale


@contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n_threads)`` and restore the old value after.

    The torch baselines are small models stepped thousands of times: intra-op threading only
    adds synchronisation overhead there (tens of times slower on a busy 2-core machine), so they
    default to one thread. ``None`` leaves torch's setting alone.
    """
    import torch

    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
