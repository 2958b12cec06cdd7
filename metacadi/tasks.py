"""Tasks: one dataset from one experiment, with its (possibly hidden) intervention targets.

A :class:`Task` is the unit MetaCaDI meta-learns from: ``D_t`` with ``N_t`` i.i.d. rows over
``d`` variables, produced by an experiment whose target set ``r_t in {0,1}^d`` may be unknown
(``targets=None``) — ``r_t = 0`` for an observational dataset. A :class:`TaskSet` is a
collection of tasks over the same variables, optionally with the ground-truth graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._random import SeedLike, as_rng
from .errors import MetaCaDIInputError
from .validation import check_adjacency, check_data_matrix, check_names, check_positive_int

TASK_KINDS: tuple[str, ...] = ("observational", "hard", "soft", "knockout", "knockdown", "unknown")


@dataclass(frozen=True, eq=False)
class Task:
    """One dataset and its intervention targets.

    Attributes:
        data: ``(n_rows, d)`` float64 array.
        targets: ``(d,)`` bool array ``r_t`` (True = intervened), or ``None`` when unknown.
        kind: ``"observational"``, ``"hard"``, ``"soft"``, ``"knockout"``, ``"knockdown"`` or ``"unknown"``.
        names: variable names (default ``X0..X{d-1}``).
        intended_targets: ``(d,)`` bool array of the targets the experiment *meant* to hit
            (differs from ``targets`` when there are off-target effects), or ``None``.
    """

    data: np.ndarray
    targets: np.ndarray | None = None
    kind: str = "unknown"
    names: tuple[str, ...] | None = None
    intended_targets: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        data, found_names = check_data_matrix(self.data, name="Task data", min_rows=1)
        names = check_names(self.names if self.names is not None else found_names, data.shape[1])
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "names", tuple(names))
        for attr in ("targets", "intended_targets"):
            value = getattr(self, attr)
            if value is not None:
                object.__setattr__(self, attr, _check_target_vector(value, data.shape[1], attr))
        if self.kind not in TASK_KINDS:
            raise MetaCaDIInputError(f"Task kind must be one of {TASK_KINDS}; got {self.kind!r}.")
        if self.kind == "observational" and self.targets is not None and self.targets.any():
            raise MetaCaDIInputError("an observational Task cannot have intervention targets.")

    @property
    def n_rows(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_variables(self) -> int:
        return int(self.data.shape[1])

    @property
    def is_observational(self) -> bool:
        return self.kind == "observational"

    def target_names(self) -> list[str]:
        """Names of the true targets (empty if observational or unknown)."""
        if self.targets is None:
            return []
        return [name for name, hit in zip(self.names, self.targets) if hit]

    def subset(self, rows: np.ndarray) -> "Task":
        """The same experiment restricted to some rows."""
        return Task(
            self.data[rows], self.targets, self.kind, self.names, self.intended_targets, dict(self.meta)
        )

    def split(self, support_size: int, seed: SeedLike = None) -> tuple["Task", "Task"]:
        """Random split into a support set of ``support_size`` rows and a query set of the rest."""
        support_rows, query_rows = support_query_indices(self.n_rows, support_size, seed)
        return self.subset(support_rows), self.subset(query_rows)

    def to_frame(self):
        """The data as a pandas DataFrame with the variable names as columns."""
        import pandas as pd

        return pd.DataFrame(self.data, columns=list(self.names))


def _check_target_vector(value: Any, n_variables: int, name: str) -> np.ndarray:
    vector = np.asarray(value)
    if vector.shape != (n_variables,):
        raise MetaCaDIInputError(f"{name} must have shape ({n_variables},); got {vector.shape}.")
    if not np.isin(vector, (0, 1)).all():
        raise MetaCaDIInputError(f"{name} must be 0/1 or boolean; got values {np.unique(vector)[:5]}.")
    return vector.astype(bool)


def support_query_indices(n_rows: int, support_size: int, seed: SeedLike = None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a random support/query split: ``support_size`` rows and the remaining ones.

    The query set must keep at least one row, so ``2 <= support_size < n_rows``.
    """
    check_positive_int(support_size, "support_size", minimum=2)
    if support_size >= n_rows:
        raise MetaCaDIInputError(
            f"support_size ({support_size}) must be smaller than the number of rows ({n_rows}) "
            "so that the query set is not empty."
        )
    permutation = as_rng(seed).permutation(n_rows)
    return np.sort(permutation[:support_size]), np.sort(permutation[support_size:])


class TaskSet(Sequence[Task]):
    """An ordered collection of :class:`Task` objects over the same variables.

    Args:
        tasks: the tasks; all must have the same number of variables and the same names.
        graph: optional ground-truth ``(d, d)`` adjacency shared by all tasks.
    """

    def __init__(self, tasks: Iterable[Task], graph: np.ndarray | None = None) -> None:
        self._tasks: list[Task] = list(tasks)
        if not self._tasks:
            raise MetaCaDIInputError("a TaskSet needs at least one Task; got none.")
        for index, task in enumerate(self._tasks):
            if not isinstance(task, Task):
                raise MetaCaDIInputError(f"item {index} is a {type(task).__name__}, not a Task.")
        first = self._tasks[0]
        for index, task in enumerate(self._tasks[1:], start=1):
            if task.n_variables != first.n_variables:
                raise MetaCaDIInputError(
                    f"task {index} has {task.n_variables} variables but task 0 has {first.n_variables}; "
                    "all tasks must share the same variables."
                )
            if task.names != first.names:
                raise MetaCaDIInputError(
                    f"task {index} has variable names {list(task.names)} but task 0 has {list(first.names)}."
                )
        self.graph = None
        if graph is not None:
            graph = check_adjacency(graph, name="graph")
            if graph.shape[0] != first.n_variables:
                raise MetaCaDIInputError(
                    f"graph is {graph.shape[0]}x{graph.shape[0]} but the tasks have {first.n_variables} variables."
                )
            self.graph = graph

    def __len__(self) -> int:
        return len(self._tasks)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return TaskSet(self._tasks[index], graph=self.graph)
        return self._tasks[index]

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    def __repr__(self) -> str:
        kinds = {}
        for task in self._tasks:
            kinds[task.kind] = kinds.get(task.kind, 0) + 1
        summary = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
        return f"TaskSet({len(self)} tasks over {self.n_variables} variables: {summary})"

    @property
    def n_variables(self) -> int:
        return self._tasks[0].n_variables

    @property
    def names(self) -> tuple[str, ...]:
        return self._tasks[0].names

    def observational(self) -> "TaskSet":
        """Only the observational tasks."""
        return TaskSet([t for t in self._tasks if t.is_observational], graph=self.graph)

    def interventional(self) -> "TaskSet":
        """Only the interventional tasks."""
        return TaskSet([t for t in self._tasks if not t.is_observational], graph=self.graph)

    def target_matrix(self) -> np.ndarray:
        """``(T, d)`` bool matrix of the true targets (raises if any task's targets are unknown)."""
        if any(t.targets is None for t in self._tasks):
            raise MetaCaDIInputError("some tasks have unknown targets; no target matrix can be built.")
        return np.stack([t.targets for t in self._tasks])


def as_taskset(tasks: Any, graph: np.ndarray | None = None) -> TaskSet:
    """Accept a TaskSet, a list of Tasks, or a list of arrays/DataFrames (targets unknown)."""
    if isinstance(tasks, TaskSet):
        return tasks
    if isinstance(tasks, Task):
        return TaskSet([tasks], graph=graph)
    if isinstance(tasks, (list, tuple)):
        items = [t if isinstance(t, Task) else Task(t) for t in tasks]
        return TaskSet(items, graph=graph)
    raise MetaCaDIInputError(
        f"tasks must be a TaskSet, a Task, or a list of Tasks/arrays/DataFrames; got {type(tasks).__name__}."
    )
