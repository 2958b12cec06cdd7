import time

import numpy as np
import pandas as pd
import pytest

from metacadi import MetaCaDIInputError
from metacadi.graphs import is_dag
from metacadi.scm import SCM, Intervention
from metacadi.tasks import (
    MetaProtocol,
    Task,
    TaskSet,
    _balanced_target_sets,
    as_taskset,
    make_meta_protocol,
    support_query_indices,
)

# ---------------------------------------------------------------- Task / TaskSet basics


def test_task_validates_and_splits():
    data = np.random.default_rng(0).normal(size=(12, 3))
    task = Task(data, targets=[0, 1, 0], kind="hard")
    assert task.n_rows == 12 and task.n_variables == 3 and task.names == ("X0", "X1", "X2")
    assert task.target_names() == ["X1"]
    support, query = task.split(5, seed=0)
    assert support.n_rows == 5 and query.n_rows == 7
    rows = np.concatenate([support.data, query.data])
    np.testing.assert_array_equal(np.sort(rows, axis=0), np.sort(data, axis=0))
    with pytest.raises(MetaCaDIInputError, match="cannot have intervention targets"):
        Task(data, targets=[1, 0, 0], kind="observational")
    with pytest.raises(MetaCaDIInputError, match=r"targets must have shape \(3,\)"):
        Task(data, targets=[1, 0])
    with pytest.raises(MetaCaDIInputError, match="query set is not empty"):
        support_query_indices(5, 5)


def test_taskset_checks_variables_and_builds_target_matrix():
    frame = pd.DataFrame(np.ones((4, 2)), columns=["a", "b"])
    tasks = TaskSet([Task(frame, [0, 0], "observational"), Task(frame, [1, 0], "hard")], graph=[[0, 1], [0, 0]])
    assert tasks.names == ("a", "b")
    np.testing.assert_array_equal(tasks.target_matrix(), [[False, False], [True, False]])
    assert len(tasks.interventional()) == 1 and len(tasks.observational()) == 1
    with pytest.raises(MetaCaDIInputError, match="variable names"):
        TaskSet([Task(frame), Task(np.ones((4, 2)))])
    assert len(as_taskset([np.ones((3, 2)), np.zeros((3, 2))])) == 2


# ---------------------------------------------------------------- protocol


def test_protocol_shapes_targets_and_graph_are_consistent():
    protocol = make_meta_protocol(n_variables=8, expected_degree=1.5, seed=3)
    assert isinstance(protocol, MetaProtocol) and isinstance(protocol.scm, SCM)
    d = 8
    assert protocol.graph.shape == (d, d) and is_dag(protocol.graph)
    np.testing.assert_array_equal(protocol.graph, protocol.scm.adjacency)
    np.testing.assert_array_equal(protocol.train.graph, protocol.graph)
    np.testing.assert_array_equal(protocol.test.graph, protocol.graph)
    assert protocol.names == tuple(protocol.scm.names) == protocol.test.names
    assert protocol.n_variables == d
    # defaults: 2 observational + 2d interventional training tasks of 100 rows; d test tasks of 10
    assert len(protocol.train) == 2 + 2 * d and len(protocol.test) == d
    assert all(task.data.shape == (100, d) for task in protocol.train)
    assert all(task.data.shape == (10, d) for task in protocol.test)
    assert [task.kind for task in protocol.train[:2]] == ["observational"] * 2
    assert {task.kind for task in protocol.train[2:]} == {"hard"}
    assert {task.kind for task in protocol.test} == {"hard"}
    for task in list(protocol.train) + list(protocol.test):
        assert np.all(np.isfinite(task.data))
        assert task.targets.dtype == bool and task.intended_targets.dtype == bool
        assert np.all(task.targets[task.intended_targets])
        if task.is_observational:
            assert not task.targets.any() and task.meta["intervention"] is None
        else:
            assert task.intended_targets.sum() == 1
            assert isinstance(task.meta["intervention"], Intervention)
            np.testing.assert_array_equal(task.meta["intervention"].targets, task.targets)
    assert protocol.train.target_matrix().shape == (2 + 2 * d, d)


def test_training_tasks_cover_every_variable_equally():
    protocol = make_meta_protocol(n_variables=7, n_interventional=17, seed=1)
    counts = protocol.train.interventional().target_matrix().sum(0)
    # 17 tasks over 7 nodes: every node 2 or 3 times, dealt from shuffled passes
    assert counts.sum() == 17 and set(counts) <= {2, 3}
    test_counts = protocol.test.target_matrix().sum(0)
    np.testing.assert_array_equal(test_counts, np.ones(7))


def test_multi_target_tasks_have_distinct_balanced_targets():
    rng = np.random.default_rng(0)
    sets = _balanced_target_sets(n_tasks=11, n_variables=6, targets_per_task=4, rng=rng)
    assert all(len(np.unique(s)) == 4 for s in sets)
    counts = np.bincount(np.concatenate(sets), minlength=6)
    assert counts.max() - counts.min() <= 1  # 44 draws over 6 nodes: 7 or 8 each
    protocol = make_meta_protocol(n_variables=6, targets_per_task=3, seed=2)
    assert all(task.intended_targets.sum() == 3 for task in protocol.train.interventional())


def test_targets_match_the_data_hard_interventions_shift_the_target():
    """Intended targets of hard tasks (loc = 2 observational sds) really moved in the data."""
    protocol = make_meta_protocol(n_variables=10, n_interventional=40, train_rows=200, seed=4)
    scm = protocol.scm
    standardized = []
    for task in protocol.train.interventional():
        z = (task.data.mean(0) - scm.observational_mean) / scm.observational_std
        standardized.append(z[task.targets])
    assert np.mean(np.concatenate(standardized)) == pytest.approx(2.0, abs=0.1)


def test_off_target_rate_is_realised_and_mixed_kinds():
    rate = 0.2
    protocol = make_meta_protocol(
        n_variables=15, n_interventional=120, off_target_rate=rate, intervention="mixed", seed=5
    )
    tasks = list(protocol.train.interventional()) + list(protocol.test)
    off_targets = sum(int((task.targets & ~task.intended_targets).sum()) for task in tasks)
    realised = off_targets / (len(tasks) * 14)
    assert realised == pytest.approx(rate, abs=0.03)
    kinds = [task.kind for task in tasks]
    assert {"hard", "soft"} == set(kinds) and 0.35 < kinds.count("hard") / len(kinds) < 0.65
    no_off = make_meta_protocol(n_variables=15, seed=5)
    for task in no_off.train:
        np.testing.assert_array_equal(task.targets, task.intended_targets)


def test_protocol_options_are_passed_through():
    names = [f"gene{k}" for k in range(5)]
    protocol = make_meta_protocol(
        n_variables=5, graph_family="sf", mechanism="linear", intervention="soft", n_observational=0,
        n_interventional=3, train_rows=3, n_test=2, test_rows=2, noise_scale=0.25, names=names, seed=9,
        intervention_params={"gain": -1.0, "shift": 0.0},
    )
    assert protocol.names == tuple(names) and protocol.scm.mechanism == "linear"
    np.testing.assert_array_equal(protocol.scm.noise_scales, np.full(5, 0.25))
    assert len(protocol.train) == 3 and len(protocol.test) == 2
    assert all(task.n_rows == 2 for task in protocol.test)
    assert all(task.kind == "soft" and task.meta["intervention"].gain == -1.0 for task in protocol.train)
    support, query = protocol.train[0].split(2, seed=0)
    assert support.n_rows == 2 and query.n_rows == 1


def test_protocol_seeds_reproduce():
    first, second = make_meta_protocol(n_variables=6, seed=11), make_meta_protocol(n_variables=6, seed=11)
    np.testing.assert_array_equal(first.graph, second.graph)
    for a, b in zip(list(first.train) + list(first.test), list(second.train) + list(second.test)):
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.targets, b.targets)
    other = make_meta_protocol(n_variables=6, seed=12)
    assert not np.allclose(first.train[0].data, other.train[0].data)


def test_protocol_is_fast_enough_for_interactive_use():
    make_meta_protocol(n_variables=20, seed=0)
    durations = []
    for seed in range(3):
        start = time.perf_counter()
        make_meta_protocol(n_variables=20, seed=seed)
        durations.append(time.perf_counter() - start)
    assert min(durations) < 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_variables": 1}, "n_variables must be >= 2"),
        ({"expected_degree": 10.0}, "expected_degree must be in"),
        ({"graph_family": "tree"}, "graph_family must be one of"),
        ({"mechanism": "spline"}, "mechanism must be one of"),
        ({"intervention": "knockout"}, "intervention must be one of"),
        ({"n_observational": -1}, "n_observational must be >= 0"),
        ({"n_observational": 0, "n_interventional": 0}, "needs at least one task"),
        ({"train_rows": 2}, "train_rows must be >= 3"),
        ({"test_rows": 1}, "test_rows must be >= 2"),
        ({"n_test": 0}, "n_test must be >= 1"),
        ({"targets_per_task": 11}, r"targets_per_task \(11\) cannot exceed n_variables \(10\)"),
        ({"off_target_rate": -0.1}, "off_target_rate must be in"),
        ({"noise_scale": 0.0}, "noise_scale must be positive"),
        ({"names": ["a"]}, "1 names for 10 variables"),
        ({"intervention_params": {"strength": 1}}, "unknown keys"),
        ({"train_rows": 10.5}, "train_rows must be an integer"),
    ],
)
def test_protocol_rejects_bad_arguments(kwargs, message):
    with pytest.raises(MetaCaDIInputError, match=message):
        make_meta_protocol(**kwargs)
