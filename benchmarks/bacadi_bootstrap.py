"""UT-IGSP's targets as a bootstrap frequency, the way the BaCaDI authors' recorded rows score them.

    .venv/bin/python benchmarks/bacadi_bootstrap.py --out benchmarks/results/bacadi-ut-igsp-bootstrap.md

The recorded UT-IGSP rows of the BaCaDI protocol (``metacadi.bacadi_protocol``) are mixtures over
20 bootstrap resamples of every environment: a target's marginal is the (likelihood-weighted)
frequency with which the resampled fits put it in their estimated target set. Our bench runs
UT-IGSP once on the full data and ranks targets by its own score (``0.5 [j in I_t] + 0.5 *
score(p_tj)``). This script scores the same fits both ways on the same data: the single-run score,
and the unweighted frequency of ``j in I_t`` over ``--resamples`` fits on rows resampled with
replacement within each dataset (observational and every environment), with the preset's
settings (the recorded runs' CI-test levels). Intv-AUROC pools the ``(environments x d)`` matrix,
as :func:`metacadi.bacadi_protocol.bacadi_metrics` does.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from metacadi.bacadi_protocol import bacadi_metrics
from metacadi.baselines import UTIGSP
from metacadi.bench import PRESETS, build_protocol
from metacadi.tasks import TaskSet


def resampled(tasks: TaskSet, rng: np.random.Generator) -> TaskSet:
    """Every dataset's rows drawn with replacement (sizes, targets and labels unchanged)."""
    out = []
    for task in tasks:
        rows = rng.integers(0, task.n_rows, size=task.n_rows)
        out.append(dataclasses.replace(task, data=task.data[rows]))
    return TaskSet(out, graph=tasks.graph)


def evaluate(setting: str, seed: int, n_resamples: int) -> dict[str, float]:
    preset = PRESETS["bacadi"]
    problem = build_protocol(preset, setting, "hard", seed)
    tasks = TaskSet(list(problem.baseline_train) + list(problem.test), graph=problem.graph)
    n_test = len(problem.test)
    truth = problem.test.target_matrix()
    options = {**preset.baselines.get("ut-igsp", {}), "seed": seed}  # as the bench runs it
    start = time.perf_counter()
    single = UTIGSP(**options).fit(tasks).target_scores[-n_test:]
    rng = np.random.default_rng(seed)
    frequency = np.zeros_like(single)
    for _ in range(n_resamples):
        scores = UTIGSP(**options).fit(resampled(tasks, rng)).target_scores[-n_test:]
        frequency += scores >= 0.5  # j in the estimated target set I_t
    frequency /= n_resamples
    single_row = bacadi_metrics(problem.graph, truth, None, None, single)
    boot_row = bacadi_metrics(problem.graph, truth, None, None, frequency)
    return {
        "setting": setting,
        "seed": seed,
        "single_intv_auroc": single_row["intv_auroc"],
        "bootstrap_intv_auroc": boot_row["intv_auroc"],
        "single_targets_per_env": float((single >= 0.5).sum(axis=1).mean()),
        "bootstrap_targets_per_env": float(frequency.sum(axis=1).mean()),
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="linear-er,linear-sf", help="comma-separated BaCaDI settings")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (the reported seeds of bacadi-baselines.md)")
    parser.add_argument("--resamples", type=int, default=20, help="bootstrap resamples per seed (theirs: 20)")
    parser.add_argument("--out", type=Path, help="markdown file for the table")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = []
    for setting in args.settings.split(","):
        for seed in range(args.seeds):
            rows.append(evaluate(setting, seed, args.resamples))
            print(f"{setting} seed {seed}: {rows[-1]}", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("setting", sort=False).agg(["mean", "std"]).drop(columns="seed")
    lines = [
        f"$ .venv/bin/python benchmarks/bacadi_bootstrap.py {shlex.join(argv if argv is not None else sys.argv[1:])}"
        f"   # {time.perf_counter() - start:.0f} s wall",
        "",
        f"UT-IGSP on the BaCaDI protocol, {args.seeds} seeds, {args.resamples} bootstrap resamples per seed: "
        "Intv-AUROC of the single-run score and of the bootstrap frequency (their scoring), same data.",
        "",
        "| setting | Intv-AUROC, single run | Intv-AUROC, bootstrap frequency | targets per environment, single run | expected targets per environment, bootstrap |",
        "|---|---|---|---|---|",
    ]
    columns = ("single_intv_auroc", "bootstrap_intv_auroc", "single_targets_per_env", "bootstrap_targets_per_env")
    for setting, row in summary.iterrows():
        cells = [f"{row[(key, 'mean')]:.3f} ± {row[(key, 'std')]:.3f}" for key in columns]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
