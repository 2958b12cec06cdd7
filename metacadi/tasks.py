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
from .graphs import GRAPH_FAMILIES, random_dag
from .scm import MECHANISMS, SCM, Intervention, random_intervention
from .validation import (
    check_adjacency,
    check_data_matrix,
    check_names,
    check_positive_int,
    check_probability,
)

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


# --------------------------------------------------------------------------------------------
# Meta-learning protocol: one SCM, many experiments
# --------------------------------------------------------------------------------------------

PROTOCOL_INTERVENTIONS: tuple[str, ...] = ("hard", "soft", "mixed")


@dataclass(frozen=True, eq=False)
class SharedGraphProblem:
    """Meta-training and meta-test tasks that share one ground-truth graph.

    Attributes:
        graph: ``(d, d)`` int64 ground-truth adjacency (``A[i, j] = 1`` iff ``i -> j``).
        train: meta-training tasks (observational first, then interventional), ``graph`` set.
        test: meta-test tasks, small interventional datasets from new experiments, ``graph`` set.
    """

    graph: np.ndarray
    train: TaskSet
    test: TaskSet

    @property
    def names(self) -> tuple[str, ...]:
        return self.train.names

    @property
    def n_variables(self) -> int:
        return self.train.n_variables


@dataclass(frozen=True, eq=False)
class MetaProtocol(SharedGraphProblem):
    """A simulated meta-learning problem from an additive-noise SCM (see :class:`SharedGraphProblem`).

    Attributes:
        scm: the :class:`~metacadi.scm.SCM` that generated every dataset.
    """

    scm: SCM


def _balanced_target_sets(
    n_tasks: int, n_variables: int, targets_per_task: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Intended target sets that cover every variable (almost) equally often.

    Nodes are dealt from a stream of shuffled copies of ``0..d-1``: each task takes the first
    ``targets_per_task`` distinct nodes of the stream. Every node is dealt once per pass over
    the stream, so after ``T`` tasks each node was targeted ``floor(T k / d)`` or one more time
    (``k = targets_per_task``), instead of the uneven counts of independent uniform draws.
    """
    stream: list[int] = []
    target_sets = []
    for _ in range(n_tasks):
        chosen: list[int] = []
        while len(chosen) < targets_per_task:
            if not any(node not in chosen for node in stream):
                stream.extend(rng.permutation(n_variables).tolist())
            position = next(k for k, node in enumerate(stream) if node not in chosen)
            chosen.append(stream.pop(position))
        target_sets.append(np.array(sorted(chosen)))
    return target_sets


def _check_count(value: Any, name: str, minimum: int) -> int:
    return check_positive_int(value, name, minimum=minimum)


def make_meta_protocol(
    n_variables: int = 10,
    expected_degree: float = 1.0,
    graph_family: str = "er",
    mechanism: str = "gp",
    intervention: str = "hard",
    n_observational: int = 2,
    n_interventional: int | None = None,
    train_rows: int = 100,
    n_test: int | None = None,
    test_rows: int = 10,
    targets_per_task: int = 1,
    off_target_rate: float = 0.0,
    noise_scale: float | np.ndarray | None = None,
    names: Sequence[str] | None = None,
    seed: SeedLike = 0,
    intervention_params: dict[str, Any] | None = None,
) -> MetaProtocol:
    """Simulate a meta-training set and a few-shot meta-test set from one random SCM.

    1. A random DAG (:func:`~metacadi.graphs.random_dag`, ``graph_family`` ``"er"`` or
       ``"sf"``, ``expected_degree`` edges per node) and an additive-noise
       :class:`~metacadi.scm.SCM` on it (``mechanism`` ``"gp"``, ``"linear"`` or ``"mlp"``).
    2. Meta-training: ``n_observational`` observational tasks and ``n_interventional``
       interventional tasks (default ``2 d``), ``train_rows`` rows each. Their intended targets
       (``targets_per_task`` nodes each) are dealt from shuffled passes over all nodes, so every
       variable is intervened on equally often (up to one) — a learner sees each mechanism
       changed, and no variable is missing by chance.
    3. Meta-test: ``n_test`` interventional tasks (default ``d``) of only ``test_rows`` rows
       each (default 10, the paper's few-shot case), targets dealt the same way from a fresh
       shuffle.

    Each intervention is ``intervention`` = ``"hard"``, ``"soft"`` or ``"mixed"`` (each task
    hard or soft with probability 1/2); each other variable is an extra off-target with
    probability ``off_target_rate``. ``intervention_params`` (``loc``, ``scale``, ``constant``,
    ``gain``, ``shift``, ``noise_gain``) go to :class:`~metacadi.scm.Intervention`. Every Task carries the
    realised ``targets``, the ``intended_targets``, its ``kind`` and ``meta["intervention"]``.

    Fast enough for interactive use: all tasks of a split are simulated in one vectorised pass.

    Returns:
        :class:`MetaProtocol` with ``scm``, ``graph``, ``train`` and ``test``.
    """
    n_variables = _check_count(n_variables, "n_variables", 2)
    if graph_family not in GRAPH_FAMILIES:
        raise MetaCaDIInputError(f"graph_family must be one of {GRAPH_FAMILIES}; got {graph_family!r}.")
    if mechanism not in MECHANISMS:
        raise MetaCaDIInputError(f"mechanism must be one of {MECHANISMS}; got {mechanism!r}.")
    if intervention not in PROTOCOL_INTERVENTIONS:
        raise MetaCaDIInputError(
            f"intervention must be one of {PROTOCOL_INTERVENTIONS}; got {intervention!r}."
        )
    n_observational = _check_count(n_observational, "n_observational", 0)
    n_interventional = _check_count(
        2 * n_variables if n_interventional is None else n_interventional, "n_interventional", 0
    )
    if n_observational + n_interventional == 0:
        raise MetaCaDIInputError(
            "n_observational + n_interventional must be >= 1: meta-training needs at least one task."
        )
    train_rows = _check_count(train_rows, "train_rows", 3)
    n_test = _check_count(n_variables if n_test is None else n_test, "n_test", 1)
    test_rows = _check_count(test_rows, "test_rows", 2)
    targets_per_task = _check_count(targets_per_task, "targets_per_task", 1)
    if targets_per_task > n_variables:
        raise MetaCaDIInputError(
            f"targets_per_task ({targets_per_task}) cannot exceed n_variables ({n_variables})."
        )
    off_target_rate = check_probability(off_target_rate, "off_target_rate")
    names = check_names(names, n_variables)
    intervention_params = dict(intervention_params or {})
    allowed_params = {"loc", "scale", "constant", "gain", "shift", "noise_gain"}
    unknown = set(intervention_params) - allowed_params
    if unknown:
        raise MetaCaDIInputError(
            f"intervention_params has unknown keys {sorted(unknown)}; allowed: {sorted(allowed_params)}."
        )

    rng = as_rng(seed)
    graph = random_dag(n_variables, expected_degree, family=graph_family, seed=rng)
    scm = SCM(graph, mechanism, noise_scale=noise_scale, names=names, seed=int(rng.integers(2**63)))

    def draw_interventions(n_tasks: int) -> list[Intervention]:
        drawn = []
        for intended in _balanced_target_sets(n_tasks, n_variables, targets_per_task, rng):
            kind = intervention if intervention != "mixed" else ("hard", "soft")[int(rng.integers(2))]
            drawn.append(
                random_intervention(
                    n_variables, len(intended), kind, off_target_rate, seed=rng,
                    candidates=intended, **intervention_params,
                )
            )
        return drawn

    def build(interventions: list[Intervention | None], n_rows: int, split: str) -> TaskSet:
        datasets = scm.sample_batch(interventions, n_rows, seed=rng)
        tasks = []
        for index, (data, chosen) in enumerate(zip(datasets, interventions)):
            meta = {"split": split, "index": index, "intervention": chosen}
            if chosen is None:
                no_targets = np.zeros(n_variables, dtype=bool)
                tasks.append(Task(data, no_targets, "observational", names, no_targets, meta))
            else:
                tasks.append(Task(data, chosen.targets, chosen.kind, names, chosen.intended_targets, meta))
        return TaskSet(tasks, graph=graph)

    train_interventions: list[Intervention | None] = [None] * n_observational
    train_interventions += draw_interventions(n_interventional)
    train = build(train_interventions, train_rows, "train")
    test = build(list(draw_interventions(n_test)), test_rows, "test")
    return MetaProtocol(scm=scm, graph=graph, train=train, test=test)
