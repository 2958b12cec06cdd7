"""The leave-one-experiment-out protocol on the Sachs data (metacadi.realdata)."""

from __future__ import annotations

import numpy as np
import pytest

from metacadi.datasets import sachs
from metacadi.errors import MetaCaDIInputError
from metacadi.realdata import format_report, leave_one_out_tasks, run_leave_one_out, summarize, target_rank


@pytest.fixture(scope="module")
def tasks():
    return sachs()


def test_target_rank_counts_ties_as_the_average():
    targets = np.array([False, True, False, False])
    assert target_rank([0.1, 0.9, 0.5, 0.2], targets) == 1.0
    assert target_rank([0.1, 0.2, 0.5, 0.9], targets) == 3.0
    assert target_rank([0.5, 0.5, 0.5, 0.5], targets) == 2.5  # (d + 1) / 2
    with pytest.raises(MetaCaDIInputError):
        target_rank([0.1, 0.2], [False, False])


def test_training_tasks_leave_the_held_out_experiment_out(tasks):
    training = leave_one_out_tasks(tasks, held_out=5, tasks_per_experiment=3, task_rows=50, seed=1)
    assert len(training) == 8 * 3
    assert all(task.n_rows == 50 for task in training)
    assert "U0126" not in {task.meta["experiment"] for task in training}
    # subsets of one experiment are disjoint rows of it
    first = [task.data for task in training if task.meta["experiment"] == "CD3/CD28"]
    rows = np.vstack(first)
    assert len(np.unique(rows, axis=0)) == len(rows)
    with pytest.raises(MetaCaDIInputError, match="do not fit"):
        leave_one_out_tasks(tasks, held_out=0, tasks_per_experiment=10, task_rows=100)


def test_shift_score_fold_and_report(tasks):
    records = run_leave_one_out(tasks, held_out=["U0126", "PMA"], sizes=(10, 20), repeats=2, methods=("shift",))
    assert len(records) == 2 * 2 * 2
    assert set(records.experiment) == {"U0126", "PMA"}
    assert records["rank"].between(1, 11).all()
    assert records.edge_auroc.isna().all()  # the shift score makes no graph claim
    summary, per_experiment = summarize(records)
    assert list(summary.n) == [10, 20]
    assert summary["Intv-AUROC"].between(0, 1).all()
    assert per_experiment.shape == (4, 1)
    text = format_report(records)
    assert "| Shift score (reference) | 10 |" in text and "U0126 (pmek)" in text


def test_metacadi_fold_runs(tasks):
    records = run_leave_one_out(
        tasks, held_out=["psitectorigenin"], sizes=(10,), repeats=1, methods=("metacadi",),
        tasks_per_experiment=1, task_rows=40, model_params={"n_steps": 2, "n_edge_samples": 20}, n_graph_samples=10,
    )
    assert len(records) == 1
    row = records.iloc[0]
    assert 0.0 <= row.edge_auroc <= 1.0 and row.shd >= 0 and row.sid >= 0
    assert len(row.target_scores) == 11 and sum(row.target_labels) == 1


def test_bad_arguments(tasks):
    with pytest.raises(MetaCaDIInputError, match="unknown methods"):
        run_leave_one_out(tasks, methods=("magic",))
    with pytest.raises(MetaCaDIInputError, match="cannot hold out"):
        run_leave_one_out(tasks, held_out=["CD3/CD28"], methods=("shift",))
