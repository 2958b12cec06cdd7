"""Real data: leave one Sachs et al. (2005) experiment out, find its annotated target from few rows.

    nice -n 10 .venv/bin/python benchmarks/sachs.py --out benchmarks/results/sachs.md   # the recorded run
    .venv/bin/python benchmarks/sachs.py --held-out PMA --sizes 10 --repeats 1        # one fold, quick

For each of the seven experiments with an annotated target, MetaCaDI is meta-trained on row
subsets of the other eight experiments and adapted (closed form) to 10, 20 and 50 rows of the
held-out one; the shift score, JCI-PC and UT-IGSP score the same rows. The protocol and the metrics
are documented in ``metacadi/realdata.py``. The data are log-transformed
(``metacadi.datasets.sachs``). ``--out`` writes the printed tables (command in the first line)
and, next to it, a CSV of every record (``.csv`` suffix) that the book chapter reads.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from metacadi.datasets import sachs
from metacadi.realdata import METHODS, format_report, run_leave_one_out


def _commit() -> str:
    """``; metacadi at commit abc1234`` when run inside a git checkout, else empty."""
    import subprocess

    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"; metacadi at commit {result.stdout.strip()}" if result.returncode == 0 and result.stdout.strip() else ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held-out", default=None, help="comma-separated experiment labels (default: all seven with a target)")
    parser.add_argument("--sizes", default="10,20,50", help="rows of the held-out experiment (default 10,20,50)")
    parser.add_argument("--repeats", type=int, default=2, help="random row subsets per size (default 2)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {','.join(METHODS)}")
    parser.add_argument("--steps", type=int, default=None, help="MetaCaDI meta-training steps (default: the model's default)")
    parser.add_argument("--tasks-per-experiment", type=int, default=4, help="meta-training tasks drawn from each experiment")
    parser.add_argument("--task-rows", type=int, default=100, help="rows per meta-training task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the tables here (and the records to the same name with .csv)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    command = ".venv/bin/python benchmarks/sachs.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    start = time.perf_counter()
    records = run_leave_one_out(
        sachs(),
        held_out=None if args.held_out is None else [s.strip() for s in args.held_out.split(",")],
        sizes=[int(s) for s in args.sizes.split(",")],
        repeats=args.repeats,
        methods=[m.strip() for m in args.methods.split(",")],
        tasks_per_experiment=args.tasks_per_experiment,
        task_rows=args.task_rows,
        model_params=None if args.steps is None else {"n_steps": args.steps},
        seed=args.seed,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    elapsed = time.perf_counter() - start
    report = "\n".join([
        f"<!-- printed by: {command.strip()} (2 CPU cores; load average {os.getloadavg()[0]:.2f} at the end{_commit()}) -->",
        f"# Sachs et al. (2005), leave one experiment out ({elapsed:.0f} s wall)",
        "",
        f"Meta-training: {args.tasks_per_experiment} tasks of {args.task_rows} rows from each other experiment; "
        f"{args.repeats} random subsets per size of the held-out one; log-transformed data; graph metrics against "
        "the 17-edge consensus DAG (MetaCaDI: E-SHD / E-SID over 200 graph samples; JCI-PC, UT-IGSP: their DAG).",
        "",
        format_report(records),
        "",
    ])
    print(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        table = records.assign(
            target_scores=records["target_scores"].map(json.dumps),
            target_labels=records["target_labels"].map(json.dumps),
        )
        table.to_csv(args.out.with_suffix(".csv"), index=False)


if __name__ == "__main__":
    main()
