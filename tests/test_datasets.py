"""The packaged Sachs et al. (2005) data: sizes, names, targets, checksum and experiment boundaries."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import metacadi
from metacadi import datasets
from metacadi.datasets import SACHS_EXPERIMENTS, sachs, sachs_consensus_graph, sachs_frame
from metacadi.errors import MetaCaDIInputError
from metacadi.graphs import is_dag

SIZES = [853, 902, 911, 723, 810, 799, 848, 913, 707]
LABELS = ["CD3/CD28", "CD3/CD28+ICAM-2", "Akt inhibitor", "G0076", "psitectorigenin", "U0126", "LY294002", "PMA", "β2cAMP"]
NAMES = ("praf", "pmek", "plcg", "PIP2", "PIP3", "p44/42", "pakts473", "PKA", "PKC", "P38", "pjnk")
TARGETS = {
    "CD3/CD28": [], "CD3/CD28+ICAM-2": [], "Akt inhibitor": ["pakts473"], "G0076": ["PKC"],
    "psitectorigenin": ["PIP2"], "U0126": ["pmek"], "LY294002": ["PIP3"], "PMA": ["PKC"], "β2cAMP": ["PKA"],
}


@pytest.fixture(scope="module")
def tasks():
    return sachs()


def test_nine_experiments_in_order_with_their_sizes(tasks):
    assert len(tasks) == 9
    assert [task.n_rows for task in tasks] == SIZES
    assert [task.meta["experiment"] for task in tasks] == LABELS
    assert sum(SIZES) == 7466


def test_names_and_targets(tasks):
    assert tasks.names == NAMES
    for task in tasks:
        assert task.target_names() == TARGETS[task.meta["experiment"]]
    assert [task.kind for task in tasks] == ["observational"] * 2 + ["soft"] * 7
    assert tasks.target_matrix().sum() == 7


def test_log_transform_and_raw_values():
    raw = sachs(log=False)
    logged = sachs()
    assert np.all(raw[0].data > 0)
    np.testing.assert_allclose(np.log(raw[0].data), logged[0].data)
    # first row of the file
    np.testing.assert_allclose(raw[0].data[0, :3], [26.4, 13.2, 8.82])
    assert np.isfinite(np.vstack([t.data for t in logged])).all()


def test_consensus_graph():
    full = sachs_consensus_graph(acyclic=False)
    dag = sachs_consensus_graph()
    assert int(full.to_numpy().sum()) == 18
    assert int(dag.to_numpy().sum()) == 17
    assert not is_dag(full.to_numpy())
    assert is_dag(dag.to_numpy())
    assert full.loc["PIP3", "plcg"] == 1 and dag.loc["PIP3", "plcg"] == 0
    assert dag.loc["praf", "pmek"] == 1 and dag.loc["pmek", "p44/42"] == 1
    np.testing.assert_array_equal(sachs().graph, dag.to_numpy())


def test_frame_has_experiment_column():
    frame = sachs_frame()
    assert list(frame.columns) == list(NAMES) + ["experiment"]
    assert frame["experiment"].value_counts(sort=False).tolist() == SIZES


def test_shipped_files_match_their_checksums():
    directory = Path(metacadi.__file__).parent / "data"
    for filename, digest in datasets.SACHS_CHECKSUMS.items():
        assert hashlib.sha256((directory / filename).read_bytes()).hexdigest() == digest
    assert (directory / "README.md").is_file()


def test_a_modified_file_fails_the_checksum(tmp_path, monkeypatch):
    source = Path(metacadi.__file__).parent / "data"
    for filename in datasets.SACHS_CHECKSUMS:
        shutil.copy(source / filename, tmp_path / filename)
    text = (tmp_path / "cyto_full_data.csv").read_text().replace("26.4,", "26.5,", 1)
    (tmp_path / "cyto_full_data.csv").write_text(text)
    monkeypatch.setattr(datasets, "_data_directory", lambda: tmp_path)
    with pytest.raises(MetaCaDIInputError, match="checksum"):
        sachs()
    (tmp_path / "cyto_full_data.csv").unlink()
    with pytest.raises(MetaCaDIInputError, match="missing"):
        sachs()


def _change_point_scan(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over variables of the squared Welch t statistic between the ``window`` rows before and
    after each position (0 where the window does not fit)."""
    n = len(x)
    total = np.vstack([np.zeros(x.shape[1]), np.cumsum(x, 0)])
    total_sq = np.vstack([np.zeros(x.shape[1]), np.cumsum(x**2, 0)])
    t = np.arange(window, n - window + 1)
    before, after = (total[t] - total[t - window]) / window, (total[t + window] - total[t]) / window
    var_before = (total_sq[t] - total_sq[t - window]) / window - before**2
    var_after = (total_sq[t + window] - total_sq[t]) / window - after**2
    stat = np.zeros(n + 1)
    stat[t] = ((before - after) ** 2 / ((var_before + var_after) / window)).sum(1)
    return stat


def test_change_points_in_the_data_fall_on_the_experiment_boundaries():
    """A mean-shift scan of the log values, blind to the labels, finds the 8 boundaries."""
    x = sachs_frame().drop(columns="experiment").to_numpy()
    window = 100
    stat = _change_point_scan(x, window)
    peaks = []
    for _ in range(8):
        peak = int(stat.argmax())
        peaks.append(peak)
        stat[max(0, peak - window) : peak + window] = 0.0
    boundaries = np.cumsum(SIZES)[:-1]
    distance = np.abs(np.sort(peaks)[:, None] - boundaries[None, :])
    # every peak is near a different boundary
    assert sorted(distance.argmin(1).tolist()) == list(range(8))
    assert distance.min(1).max() <= 10
    # seven boundaries are found to the row; the weakest (two similar general stimulations) within 10 rows
    assert int((distance.min(1) == 0).sum()) >= 7


def test_cdt_is_never_imported():
    sachs()
    assert "cdt" not in sys.modules


def test_experiment_table_is_consistent():
    assert [e.n_rows for e in SACHS_EXPERIMENTS] == SIZES
    assert [e.label for e in SACHS_EXPERIMENTS] == LABELS
