"""The command line: python -m metacadi fit / adapt on a table made from the simulator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metacadi
from metacadi.cli import main
from metacadi.tasks import make_meta_protocol

STEPS = "3"


@pytest.fixture(scope="module")
def protocol():
    return make_meta_protocol(n_variables=4, n_interventional=4, train_rows=30, n_test=2, test_rows=12, seed=0)


@pytest.fixture(scope="module")
def experiments_csv(protocol, tmp_path_factory) -> Path:
    frames = [task.to_frame().assign(exp=f"e{index}") for index, task in enumerate(protocol.train)]
    path = tmp_path_factory.mktemp("cli") / "experiments.csv"
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_file(experiments_csv) -> Path:
    out = experiments_csv.parent / "model.pt"
    assert main(["fit", str(experiments_csv), "--experiment-column", "exp", "--out", str(out), "--steps", STEPS, "--quiet"]) == 0
    return out


@pytest.fixture()
def new_csv(protocol, tmp_path) -> Path:
    path = tmp_path / "new.csv"
    protocol.test[0].to_frame().to_csv(path, index=False)
    return path


def test_fit_writes_a_loadable_model(model_file, capsys):
    model = metacadi.MetaCaDI.load(model_file)
    assert model.names_ == ["X0", "X1", "X2", "X3"]
    assert model.n_steps == int(STEPS)


def test_fit_shows_a_progress_bar(experiments_csv, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["fit", str(experiments_csv), "--experiment-column", "exp", "--out", str(out), "--steps", "2", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    assert "meta-training" in captured.err  # tqdm writes to stderr
    assert "meta-trained on 6 experiments" in captured.out
    assert metacadi.MetaCaDI.load(out).seed == 1


def test_adapt_prints_ranked_targets_and_writes_edges(model_file, new_csv, tmp_path, capsys):
    edges = tmp_path / "edges.csv"
    assert main(["adapt", str(model_file), str(new_csv), "--edges", str(edges)]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [int(line[0]) for line in lines] == [1, 2, 3, 4]
    assert sorted(line[1] for line in lines) == ["X0", "X1", "X2", "X3"]
    probs = [float(line[2]) for line in lines]
    assert probs == sorted(probs, reverse=True)
    # same numbers as the library
    model = metacadi.MetaCaDI.load(model_file)
    expected = model.adapt(pd.read_csv(new_csv)).target_probs.sort_values(ascending=False, kind="stable")
    assert [line[1] for line in lines] == list(expected.index)
    table = pd.read_csv(edges)
    assert list(table.columns) == ["cause", "effect", "probability"]
    assert len(table) == 12 and table.probability.between(0, 1).all()


def test_adapt_per_experiment_column_and_top(model_file, protocol, tmp_path, capsys):
    frames = [task.to_frame().assign(batch=f"b{i}") for i, task in enumerate(protocol.test)]
    path = tmp_path / "two.csv"
    pd.concat(frames).to_csv(path, index=False)
    assert main(["adapt", str(model_file), str(path), "--experiment-column", "batch", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "experiment 'b0'" in out and "experiment 'b1'" in out
    assert sum(line.strip()[:1].isdigit() for line in out.splitlines()) == 4


def test_parquet_input(experiments_csv, model_file, new_csv, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    parquet = tmp_path / "new.parquet"
    pd.read_csv(new_csv).to_parquet(parquet)
    assert main(["adapt", str(model_file), str(parquet)]) == 0
    from_parquet = capsys.readouterr().out
    assert main(["adapt", str(model_file), str(new_csv)]) == 0
    assert capsys.readouterr().out == from_parquet


def test_parquet_without_pyarrow_is_a_clear_error(model_file, tmp_path, monkeypatch, capsys):
    parquet = tmp_path / "new.parquet"
    parquet.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    assert main(["adapt", str(model_file), str(parquet)]) == 1
    assert "needs pyarrow" in capsys.readouterr().err


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _fit_error(args: list[str], capsys) -> str:
    assert main(["fit", *args, "--steps", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_fit_anchors_the_experiments_named_observational(experiments_csv, protocol, tmp_path, capsys, monkeypatch):
    from metacadi.model import MetaCaDI

    seen = {}
    original = MetaCaDI.fit

    def spy(self, tasks, **kwargs):
        seen["kinds"] = [task.kind for task in tasks]
        return original(self, tasks, **kwargs)

    monkeypatch.setattr(MetaCaDI, "fit", spy)
    controls = [f"e{index}" for index, task in enumerate(protocol.train) if task.is_observational]
    out = tmp_path / "m.pt"
    argv = ["fit", str(experiments_csv), "--experiment-column", "exp", "--out", str(out), "--steps", "2", "--quiet"]
    assert main(argv + ["--observational", ",".join(controls)]) == 0
    assert seen["kinds"] == ["observational" if f"e{i}" in controls else "unknown" for i in range(len(protocol.train))]
    assert f"({len(controls)} of them observational;" in capsys.readouterr().out
    assert main(argv) == 0 and set(seen["kinds"]) == {"unknown"}


def test_fit_errors(experiments_csv, tmp_path, capsys):
    frame = pd.read_csv(experiments_csv)
    out = str(tmp_path / "m.pt")
    assert "no experiment column 'batch'" in _fit_error([str(experiments_csv), "--experiment-column", "batch", "--out", out], capsys)
    text = frame.assign(X1=frame.X1.astype(str) + "u")
    assert "non-numeric column(s) 'X1'" in _fit_error([str(_write(tmp_path, text)), "--experiment-column", "exp", "--out", out], capsys)
    nan = frame.copy()
    nan.loc[[3, 7], "X2"] = np.nan
    assert "'X2' (2 rows)" in _fit_error([str(_write(tmp_path, nan)), "--experiment-column", "exp", "--out", out], capsys)
    small = frame.copy()
    small.loc[:24, "exp"] = "tiny"  # 25 rows in 'tiny', 5 left in 'e0'
    message = _fit_error([str(_write(tmp_path, small)), "--experiment-column", "exp", "--out", out], capsys)
    assert "too few rows" in message and "'e0' (5 rows)" in message
    assert "unknown column(s) ['X7']" in _fit_error(
        [str(experiments_csv), "--experiment-column", "exp", "--out", out, "--columns", "X0,X7"], capsys
    )
    assert "--observational names experiment(s) ['ctrl']" in _fit_error(
        [str(experiments_csv), "--experiment-column", "exp", "--out", out, "--observational", "e0,ctrl"], capsys
    )
    assert "no such file" in _fit_error([str(tmp_path / "nope.csv"), "--experiment-column", "exp", "--out", out], capsys)
    assert "does not exist" in _fit_error([str(experiments_csv), "--experiment-column", "exp", "--out", str(tmp_path / "no" / "m.pt")], capsys)
    assert not (tmp_path / "m.pt").exists()


def test_adapt_errors(model_file, new_csv, tmp_path, capsys):
    frame = pd.read_csv(new_csv)

    def adapt_error(path: Path) -> str:
        assert main(["adapt", str(model_file), str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        return err

    assert "unknown column(s) ['extra']" in adapt_error(_write(tmp_path, frame.assign(extra=1.0)))
    assert "missing column(s) ['X3']" in adapt_error(_write(tmp_path, frame.drop(columns="X3")))
    assert "too few rows" in adapt_error(_write(tmp_path, frame.head(1)))
    with_nan = frame.copy()
    with_nan.loc[0, "X0"] = np.nan
    assert "NaN" in adapt_error(_write(tmp_path, with_nan))
    assert "non-numeric" in adapt_error(_write(tmp_path, frame.assign(X0="a")))
    not_a_model = tmp_path / "model.pt"
    not_a_model.write_bytes(b"not a checkpoint")
    assert main(["adapt", str(not_a_model), str(new_csv)]) == 1
    assert "checkpoint" in capsys.readouterr().err


def test_help_has_an_example_and_the_key_options(capsys):
    for argv in (["--help"], ["fit", "--help"], ["adapt", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert "python -m metacadi fit experiments.csv --experiment-column exp --out model.pt" in out
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert "--steps" in out and "--seed" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["fit"])  # missing arguments: argparse's usage error
    assert exit_info.value.code == 2


def test_module_entry_point_exit_status(experiments_csv, tmp_path):
    help_run = subprocess.run([sys.executable, "-m", "metacadi", "--help"], capture_output=True, text=True, timeout=120)
    assert help_run.returncode == 0 and "examples:" in help_run.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "metacadi", "fit", str(experiments_csv), "--experiment-column", "nope", "--out", str(tmp_path / "m.pt")],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


def test_top_level_exports_are_lazy():
    code = "import sys, metacadi; assert 'torch' not in sys.modules; from metacadi import MetaCaDI, Posterior; print(MetaCaDI.__name__, Posterior.__name__)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["MetaCaDI", "Posterior"]
