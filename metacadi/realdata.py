"""Leave-one-experiment-out evaluation on real interventional data (Sachs et al. 2005).

Protocol (one *fold* per held-out experiment with an annotated target):

1. **Meta-training set**: every other experiment contributes ``tasks_per_experiment`` disjoint
   random row subsets of ``task_rows`` rows each (a task is a sample of one experiment, as in
   the simulated protocol). The targets are never shown to MetaCaDI.
2. **Few-shot test**: ``repeats`` random subsets of ``n`` rows (``n`` in ``sizes``, e.g. 10, 20
   and 50) of the held-out experiment. Every method scores the 11 variables of the same subsets.
3. **Methods** (same rows for all):

   * ``metacadi``: :class:`~metacadi.model.MetaCaDI` meta-trained once per fold on the tasks of
     step 1, then :meth:`~metacadi.model.MetaCaDI.adapt` on each subset (closed form).
   * ``shift``: the non-causal reference
     ``|mean - mean_obs| / sd_obs + |log(sd / sd_obs)|`` per variable against the rows of the
     experiments labelled observational
     (:class:`~metacadi.baselines.DistributionShift`; ``0.5 |log var ratio| = |log sd ratio|``).
   * ``jci-pc``, ``ut-igsp``: :class:`~metacadi.baselines.JCIPC` and
     :class:`~metacadi.baselines.UTIGSP` on all rows of the training experiments (as whole
     experiments, with their observational labels) plus the held-out subset as one more task;
     the subset's row of target scores is ranked.

4. **Metrics**: the rank of the annotated target among the ``d`` variables (1 = top; ties share
   the average rank), Intv-AUROC pooled over folds and repeats; against the consensus graph
   (:func:`~metacadi.datasets.sachs_consensus_graph`, 17 edges), the edge AUROC of the method's
   edge scores, and SHD / SID — for MetaCaDI their expectations over graph samples of
   ``q_phi(A)`` (E-SHD, E-SID), for JCI-PC and UT-IGSP of their point-estimate DAG.

:func:`run_leave_one_out` returns one record per (method, fold, n, repeat);
:func:`summarize` and :func:`format_report` turn them into the tables ``benchmarks/sachs.py``
prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import MetaCaDIInputError
from .tasks import Task, TaskSet

__all__ = [
    "METHODS",
    "format_report",
    "leave_one_out_tasks",
    "run_leave_one_out",
    "summarize",
    "target_rank",
]

#: method key -> label in the tables
METHODS: dict[str, str] = {
    "metacadi": "MetaCaDI",
    "shift": "Shift score (reference)",
    "jci-pc": "JCI-PC",
    "ut-igsp": "UT-IGSP",
}


def target_rank(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean rank (1 = highest score) of the true targets among all variables; ties share the
    average rank, so a method that scores everything equal gets ``(d + 1) / 2``."""
    scores = np.asarray(scores, dtype=float)
    targets = np.asarray(targets, dtype=bool)
    if not targets.any():
        raise MetaCaDIInputError("target_rank needs at least one true target.")
    ranks = [1.0 + (scores > s).sum() + 0.5 * ((scores == s).sum() - 1) for s in scores[targets]]
    return float(np.mean(ranks))


def leave_one_out_tasks(
    tasks: TaskSet, held_out: int, tasks_per_experiment: int = 4, task_rows: int = 100, seed: int = 0
) -> TaskSet:
    """Meta-training tasks for one fold: disjoint random row subsets of every other experiment.

    Args:
        tasks: one task per experiment (e.g. :func:`metacadi.datasets.sachs`).
        held_out: index of the experiment left out.
        tasks_per_experiment: subsets drawn from each remaining experiment.
        task_rows: rows per subset (``tasks_per_experiment * task_rows`` must fit in every experiment).
    Returns:
        :class:`TaskSet` with ``meta["experiment"]`` kept on every task.
    """
    rng = np.random.default_rng(seed)
    drawn = []
    for index, task in enumerate(tasks):
        if index == held_out:
            continue
        if tasks_per_experiment * task_rows > task.n_rows:
            raise MetaCaDIInputError(
                f"experiment {index} has {task.n_rows} rows; {tasks_per_experiment} disjoint subsets of "
                f"{task_rows} rows do not fit."
            )
        order = rng.permutation(task.n_rows)
        for k in range(tasks_per_experiment):
            drawn.append(task.subset(np.sort(order[k * task_rows : (k + 1) * task_rows])))
    return TaskSet(drawn, graph=tasks.graph)


def _graph_scores(true_graph: np.ndarray, edge_scores: np.ndarray | None, graph: np.ndarray | None) -> dict[str, float]:
    from . import metrics

    if edge_scores is None or graph is None:
        return {"edge_auroc": np.nan, "shd": np.nan, "sid": np.nan}
    return {
        "edge_auroc": metrics.edge_auroc(true_graph, edge_scores),
        "shd": float(metrics.shd(true_graph, graph)),
        "sid": float(metrics.sid(true_graph, graph)),
    }


def run_leave_one_out(
    tasks: TaskSet | None = None,
    *,
    held_out: Sequence[str] | None = None,
    sizes: Sequence[int] = (10, 20, 50),
    repeats: int = 2,
    methods: Sequence[str] = ("metacadi", "shift", "jci-pc", "ut-igsp"),
    tasks_per_experiment: int = 4,
    task_rows: int = 100,
    model_params: dict[str, Any] | None = None,
    n_graph_samples: int = 200,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Run the leave-one-experiment-out protocol (module docstring) and return its records.

    Args:
        tasks: one task per experiment with ``targets`` and ``meta["experiment"]``; default
            :func:`metacadi.datasets.sachs` (log-transformed).
        held_out: experiment labels to hold out (default: every experiment with a target).
        sizes: rows of the held-out experiment each method sees.
        repeats: random subsets per size.
        methods: keys of :data:`METHODS`.
        tasks_per_experiment, task_rows: the meta-training tasks (:func:`leave_one_out_tasks`).
        model_params: keyword arguments of :class:`~metacadi.model.MetaCaDI` (e.g. ``n_steps``).
        n_graph_samples: graphs drawn from ``q_phi(A)`` for MetaCaDI's E-SHD / E-SID.
        seed: seeds the subsets, the model and the baselines.
        log: called with a progress line per fold (e.g. ``print``).
    Returns:
        DataFrame with columns ``method, experiment, target, n, repeat, rank``,
        ``target_scores`` and ``target_labels`` (lists of ``d`` floats / bools),
        ``edge_auroc, shd, sid, seconds``.
    """
    from . import metrics
    from .baselines import JCIPC, UTIGSP, DistributionShift
    from .datasets import sachs

    if tasks is None:
        tasks = sachs()
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise MetaCaDIInputError(f"unknown methods {unknown}; choose from {sorted(METHODS)}.")
    if tasks.graph is None:
        raise MetaCaDIInputError("the tasks need a reference graph (TaskSet.graph) for the graph metrics.")
    labels = [task.meta.get("experiment", f"experiment {i}") for i, task in enumerate(tasks)]
    candidates = [label for label, task in zip(labels, tasks) if task.targets is not None and task.targets.any()]
    held_out = list(candidates if held_out is None else held_out)
    missing = sorted(set(held_out) - set(candidates))
    if missing:
        raise MetaCaDIInputError(f"cannot hold out {missing}: choose experiments with annotated targets from {candidates}.")
    sizes = [int(n) for n in sizes]
    true_graph = tasks.graph
    records: list[dict[str, Any]] = []
    for fold, label in enumerate(held_out):
        index = labels.index(label)
        test_task = tasks[index]
        target = ",".join(test_task.target_names())
        started = time.perf_counter()
        subsets = {
            (n, r): np.sort(np.random.default_rng([seed, index, n, r]).choice(test_task.n_rows, n, replace=False))
            for n in sizes
            for r in range(repeats)
        }

        def record(method: str, n: int, r: int, scores: np.ndarray, graph_scores: dict[str, float], seconds: float) -> None:
            records.append({
                "method": method, "experiment": label, "target": target, "n": n, "repeat": r,
                "rank": target_rank(scores, test_task.targets), "target_scores": [float(s) for s in scores],
                "target_labels": [bool(t) for t in test_task.targets],
                **graph_scores, "seconds": seconds,
            })

        others = [task for i, task in enumerate(tasks) if i != index]
        if "metacadi" in methods:
            from .model import MetaCaDI

            training = leave_one_out_tasks(tasks, index, tasks_per_experiment, task_rows, seed=seed + index)
            params = {"seed": seed, **(model_params or {})}
            model = MetaCaDI(**params).fit(training, progress=False)
            samples = model.graph_posterior().sample_graphs(n_graph_samples, seed=seed)
            graph_scores = {
                "edge_auroc": metrics.edge_auroc(true_graph, model.edge_probs_.to_numpy()),
                "shd": metrics.expected_shd(true_graph, samples),
                "sid": metrics.expected_sid(true_graph, samples),
            }
            for (n, r), rows in subsets.items():
                tic = time.perf_counter()
                posterior = model.adapt(test_task.data[rows], seed=seed)
                record("metacadi", n, r, posterior.target_probs.to_numpy(), graph_scores, time.perf_counter() - tic)
        reference = [task for task in others if task.is_observational]
        for method in ("shift", "jci-pc", "ut-igsp"):
            if method not in methods:
                continue
            for (n, r), rows in subsets.items():
                subset = Task(test_task.data[rows], None, "unknown", tasks.names)
                if method == "shift":
                    result = DistributionShift(seed=seed).fit(TaskSet(reference + [subset]))
                else:
                    baseline = JCIPC(seed=seed) if method == "jci-pc" else UTIGSP(seed=seed)
                    result = baseline.fit(TaskSet(others + [subset]))
                record(
                    method, n, r, result.target_scores[-1],
                    _graph_scores(true_graph, result.edge_scores, result.graph), result.fit_seconds,
                )
        if log is not None:
            log(f"held out {label} (target {target}): {time.perf_counter() - started:.0f} s")
    return pd.DataFrame.from_records(records)


def summarize(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tables from :func:`run_leave_one_out` records.

    Returns:
        ``(summary, per_experiment)``: ``summary`` has one row per (method, n) with the mean
        target rank, how often the target was ranked first / in the top 3, Intv-AUROC pooled over
        folds and repeats, and the mean edge AUROC, SHD and SID; ``per_experiment`` the mean
        target rank per (held-out experiment, target, n) (rows) and method (columns).
    """
    from . import metrics

    summary = []
    for (method, n), group in records.groupby(["method", "n"], sort=False):
        labels = np.array(group["target_labels"].tolist(), dtype=bool)
        scores = np.array(group["target_scores"].tolist(), dtype=float)
        summary.append({
            "method": METHODS.get(method, method),
            "n": n,
            "mean rank": group["rank"].mean(),
            "top-1": float((group["rank"] <= 1.0).mean()),
            "top-3": float((group["rank"] <= 3.0).mean()),
            "Intv-AUROC": metrics.target_auroc(labels, np.clip(scores, 0.0, 1.0)),
            "edge AUROC": group["edge_auroc"].mean(),
            "SHD": group["shd"].mean(),
            "SID": group["sid"].mean(),
        })
    summary_frame = pd.DataFrame(summary)
    per_experiment = records.pivot_table(
        index=["experiment", "target", "n"], columns="method", values="rank", aggfunc="mean", sort=False
    )
    return summary_frame, per_experiment


def format_report(records: pd.DataFrame) -> str:
    """Markdown tables of :func:`summarize` (numbers rounded for reading)."""
    summary, per_experiment = summarize(records)
    lines = ["| method | rows | mean target rank | top-1 | top-3 | Intv-AUROC | edge AUROC | SHD | SID |", "|---|---|---|---|---|---|---|---|---|"]

    def fmt(value: float, digits: int) -> str:
        return "–" if not np.isfinite(value) else f"{value:.{digits}f}"

    for _, row in summary.iterrows():
        lines.append(
            f"| {row['method']} | {row['n']} | {fmt(row['mean rank'], 2)} | {fmt(row['top-1'], 2)} | {fmt(row['top-3'], 2)} | "
            f"{fmt(row['Intv-AUROC'], 3)} | {fmt(row['edge AUROC'], 3)} | {fmt(row['SHD'], 1)} | {fmt(row['SID'], 1)} |"
        )
    columns = list(per_experiment.columns)
    header = "| held-out experiment (target) | rows | " + " | ".join(METHODS.get(m, m) for m in columns) + " |"
    lines += ["", "Rank of the annotated target among the 11 variables (1 = top; mean over repeats):", "", header, "|---|---|" + "---|" * len(columns)]
    for (experiment, target, n), values in per_experiment.iterrows():
        lines.append(f"| {experiment} ({target}) | {n} | " + " | ".join(fmt(v, 1) for v in values) + " |")
    return "\n".join(lines)
