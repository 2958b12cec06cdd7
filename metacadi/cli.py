"""Command line: meta-train on a table of experiments, then adapt to a new experiment.

    python -m metacadi fit experiments.csv --experiment-column exp --out model.pt --observational control
    python -m metacadi adapt model.pt new.csv --edges edges.csv

``fit`` reads a CSV or Parquet table with one row per measurement, one numeric column per
variable and one column naming the experiment each row comes from; every experiment becomes one
meta-training task (its intervention targets are not needed — they are what the model learns to
infer). ``--observational`` names the control experiments (nothing intervened on), if there
are any: the model anchors their targets at none, which tells it which regime of every variable
is the observational one (see ``MetaCaDI(anchor_observational=...)``). ``adapt`` loads the saved model, adapts it in closed form to the rows of a new experiment
(same variable columns), prints the variables ranked by the probability that the experiment
intervened on them, and can write the edge posterior as a table.

Bad input (missing file or column, non-numeric or missing values, too few rows, columns the model
does not know) ends with a one-line ``error: ...`` on stderr and exit status 1. Heavy imports
(torch) happen only once the input has been checked, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CommandLineError", "main", "read_table"]

PARQUET_SUFFIXES = (".parquet", ".pq")

EXAMPLES = """\
examples:
  # meta-train on all experiments in a table (column 'exp' names the experiment of each row)
  python -m metacadi fit experiments.csv --experiment-column exp --out model.pt --steps 300

  # the same, telling it that the experiments 'ctrl1' and 'ctrl2' are controls (no intervention)
  python -m metacadi fit experiments.csv --experiment-column exp --out model.pt --observational ctrl1,ctrl2

  # rank the likely intervention targets of a new experiment and save the edge probabilities
  python -m metacadi adapt model.pt new.csv --edges edges.csv
"""


class CommandLineError(Exception):
    """A problem with the user's input, reported as one line and exit status 1."""


def read_table(path: str | Path):
    """Read a CSV (any other suffix) or Parquet (``.parquet``/``.pq``, needs pyarrow) file."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CommandLineError(f"no such file: {path}")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise CommandLineError(
                f"reading {path.name} needs pyarrow, which is not installed: pip install 'metacadi[parquet]' "
                "(or pass a CSV file)"
            ) from None
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for a bad file
            raise CommandLineError(f"cannot read {path} as Parquet: {_first_line(exc)}") from None
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise CommandLineError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CommandLineError(f"cannot read {path} as CSV: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_variables(frame, path: Path, columns: Sequence[str]) -> None:
    """Every variable column numeric (not boolean) and free of NaN/inf."""
    import numpy as np
    import pandas as pd

    bad_types = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])]
    if bad_types:
        examples = ", ".join(f"{c!r} ({frame[c].dtype})" for c in bad_types[:5])
        raise CommandLineError(f"{path.name}: non-numeric column(s) {examples}; every variable column must hold numbers")
    values = frame[list(columns)].to_numpy(dtype=float)
    not_finite = ~np.isfinite(values)
    if not_finite.any():
        counts = not_finite.sum(axis=0)
        which = ", ".join(f"{c!r} ({n} rows)" for c, n in zip(columns, counts) if n)
        raise CommandLineError(f"{path.name}: missing (NaN) or infinite values in {which}; drop or impute those rows first")


def _select_columns(frame, path: Path, requested: str | None, exclude: Sequence[str]) -> list[str]:
    available = [str(c) for c in frame.columns if str(c) not in exclude]
    if requested is None:
        return available
    wanted = [c.strip() for c in requested.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise CommandLineError(f"{path.name}: unknown column(s) {unknown}; the variable columns are {available}")
    return wanted


def _fit(args: argparse.Namespace) -> int:
    path = Path(args.data)
    frame = read_table(path)
    frame.columns = [str(c) for c in frame.columns]
    column = args.experiment_column
    if column not in frame.columns:
        raise CommandLineError(f"{path.name} has no experiment column {column!r}; its columns are {list(frame.columns)}")
    if frame[column].isna().any():
        raise CommandLineError(f"{path.name}: {int(frame[column].isna().sum())} rows have no experiment label in {column!r}")
    variables = _select_columns(frame, path, args.columns, exclude=[column])
    if len(variables) < 2:
        raise CommandLineError(f"{path.name}: need at least 2 variable columns besides {column!r}; found {variables}")
    _check_variables(frame, path, variables)
    if args.steps < 0:
        raise CommandLineError(f"--steps must be >= 0; got {args.steps}")
    if args.support_size < 2:
        raise CommandLineError(f"--support-size must be >= 2; got {args.support_size}")
    groups = list(frame.groupby(column, sort=False))
    if len(groups) < 2:
        raise CommandLineError(f"{path.name}: need at least 2 experiments in {column!r}; found {len(groups)}")
    minimum = args.support_size + 1
    small = [(str(label), len(rows)) for label, rows in groups if len(rows) < minimum]
    if small:
        listed = ", ".join(f"{label!r} ({n} rows)" for label, n in small[:5])
        raise CommandLineError(
            f"{path.name}: too few rows in experiment(s) {listed}; each needs at least {minimum} "
            f"(--support-size {args.support_size} plus at least one query row)"
        )
    labels = [str(label) for label, _ in groups]
    controls = [] if args.observational is None else [c.strip() for c in args.observational.split(",") if c.strip()]
    unknown = [c for c in controls if c not in labels]
    if unknown:
        raise CommandLineError(
            f"{path.name}: --observational names experiment(s) {unknown} that are not in {column!r}; "
            f"its experiments are {labels[:10]}{' ...' if len(labels) > 10 else ''}"
        )
    out = Path(args.out)
    if not out.parent.exists():
        raise CommandLineError(f"cannot write {out}: the folder {out.parent} does not exist")

    from .model import MetaCaDI
    from .tasks import Task, TaskSet

    tasks = TaskSet([
        Task(rows[variables].to_numpy(dtype=float), kind="observational" if str(label) in controls else "unknown",
             names=tuple(variables), meta={"experiment": label})
        for label, rows in groups
    ])
    model = MetaCaDI(n_steps=args.steps, seed=args.seed, support_size=args.support_size)
    start = time.perf_counter()
    model.fit(tasks, progress=not args.quiet)
    model.save(out)
    print(
        f"meta-trained on {len(tasks)} experiments ({len(controls)} of them observational; {len(frame)} rows, "
        f"{len(variables)} variables) "
        f"for {args.steps} steps in {time.perf_counter() - start:.1f} s; saved {out}"
    )
    return 0


def _adapt(args: argparse.Namespace) -> int:
    from .errors import CheckpointError

    model_path, path = Path(args.model), Path(args.data)
    if not model_path.is_file():
        raise CommandLineError(f"no such model file: {model_path}")
    frame = read_table(path)
    frame.columns = [str(c) for c in frame.columns]
    if args.top is not None and args.top < 1:
        raise CommandLineError(f"--top must be >= 1; got {args.top}")
    if not 0.0 <= args.threshold <= 1.0:
        raise CommandLineError(f"--threshold must be in [0, 1]; got {args.threshold}")
    experiment = args.experiment_column
    if experiment is not None and experiment not in frame.columns:
        raise CommandLineError(f"{path.name} has no experiment column {experiment!r}; its columns are {list(frame.columns)}")

    from .model import MetaCaDI

    try:
        model = MetaCaDI.load(model_path)
    except CheckpointError as exc:
        raise CommandLineError(_first_line(exc)) from None
    names = list(model.names_)
    present = [c for c in frame.columns if c != experiment]
    unknown = [c for c in present if c not in names]
    if unknown:
        raise CommandLineError(f"{path.name}: unknown column(s) {unknown}; the model was fitted on {names}")
    missing = [c for c in names if c not in present]
    if missing:
        raise CommandLineError(f"{path.name}: missing column(s) {missing}; the model was fitted on {names}")
    _check_variables(frame, path, names)
    groups = list(frame.groupby(experiment, sort=False)) if experiment is not None else [(None, frame)]
    small = [(label, len(rows)) for label, rows in groups if len(rows) < 2]
    if small:
        where = "" if small[0][0] is None else f" in experiment {small[0][0]!r}"
        raise CommandLineError(f"{path.name}: too few rows{where} ({small[0][1]}); adaptation needs at least 2")

    edge_tables = []
    for label, rows in groups:
        posterior = model.adapt(rows[names], seed=args.seed)
        ranking = posterior.target_probs.sort_values(ascending=False, kind="stable")
        if args.top is not None:
            ranking = ranking.head(args.top)
        heading = f"experiment {label!r}: " if label is not None else ""
        print(f"{heading}intervention targets ranked ({len(rows)} rows adapted)")
        width = max(len(n) for n in ranking.index)
        print(f"  {'rank':>4}  {'variable':<{width}}  P(target)")
        for rank, (name, prob) in enumerate(ranking.items(), start=1):
            print(f"  {rank:>4}  {name:<{width}}  {prob:.3f}")
        table = posterior.edge_table(threshold=args.threshold)
        if label is not None:
            table.insert(0, experiment, label)
        edge_tables.append(table)
    if args.edges is not None:
        edges_path = Path(args.edges)
        if not edges_path.parent.exists():
            raise CommandLineError(f"cannot write {edges_path}: the folder {edges_path.parent} does not exist")
        # the edge posterior is the shared graph posterior: one table (the same for every experiment)
        table = edge_tables[0].drop(columns=[experiment]) if experiment is not None else edge_tables[0]
        table.to_csv(edges_path, index=False)
        print(f"wrote {len(table)} edges (cause, effect, probability) to {edges_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m metacadi",
        description="MetaCaDI: meta-learn a shared causal graph from many experiments, then find the "
        "intervention targets of a new, small experiment in closed form.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{fit,adapt}")

    fit = commands.add_parser(
        "fit", help="meta-train on a table of experiments and save the model",
        description="Meta-train on a CSV/Parquet table: one column per variable plus one naming each row's experiment.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("data", help="CSV or Parquet (.parquet, needs pyarrow) file of measurements")
    fit.add_argument("--experiment-column", required=True, help="column that names the experiment of each row")
    fit.add_argument("--out", required=True, help="where to save the fitted model (e.g. model.pt)")
    fit.add_argument("--columns", default=None, help="comma-separated variable columns to use (default: all others)")
    fit.add_argument("--steps", type=int, default=300, help="meta-training steps (default 300)")
    fit.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fit.add_argument("--support-size", type=int, default=10, help="rows per few-shot support set in training (default 10)")
    fit.add_argument(
        "--observational", default=None,
        help="comma-separated labels of control experiments (no intervention); their targets are anchored at none",
    )
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(run=_fit)

    adapt = commands.add_parser(
        "adapt", help="rank the intervention targets of a new experiment",
        description="Adapt a saved model to a new experiment (same variable columns) and rank its likely targets.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    adapt.add_argument("model", help="model file written by 'fit'")
    adapt.add_argument("data", help="CSV or Parquet file with the new experiment's rows")
    adapt.add_argument("--edges", default=None, help="write the edge probabilities (cause, effect, probability) to this CSV")
    adapt.add_argument("--threshold", type=float, default=0.0, help="only write edges with at least this probability")
    adapt.add_argument("--experiment-column", default=None, help="adapt to each experiment in this column separately")
    adapt.add_argument("--top", type=int, default=None, help="print only the top K targets")
    adapt.add_argument("--seed", type=int, default=0, help="seed of the graph samples (default 0)")
    adapt.set_defaults(run=_adapt)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 bad input, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .errors import MetaCaDIInputError

    try:
        return args.run(args)
    except (CommandLineError, MetaCaDIInputError) as exc:
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _main_entry() -> Any:  # pragma: no cover - exercised through python -m metacadi
    raise SystemExit(main())
