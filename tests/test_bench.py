"""The benchmark runner: protocol, methods, metrics, tables, command line."""

from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy.stats import ttest_ind

from metacadi import MetaCaDIInputError
from metacadi.baselines import BASELINES, DistributionShift
from metacadi.bench import (
    METHODS,
    METRICS,
    PRESETS,
    REFERENCE_METHODS,
    MethodOutput,
    build_protocol,
    evaluate,
    figure,
    main,
    run_benchmark,
    run_method,
    speed_table,
    summary_table,
    to_markdown,
    welch_tests,
)
from metacadi.tasks import TaskSet

#: the tiny preset with even fewer steps, so the end-to-end test stays quick
FAST = replace(PRESETS["tiny"], model={"n_steps": 8, "n_edge_samples": 64}, n_graph_samples=8)
DEFAULT_METHODS = ["metacadi", "intv-maml", "full-maml", "distribution-shift"]
#: what every run reports besides the chosen methods on GP-ANM data (zero count is SERGIO only)
REFERENCES = ["empty-graph", "oracle"]


@pytest.fixture(scope="module")
def results():
    return run_benchmark(FAST, seeds=2, methods=DEFAULT_METHODS, data="gp-anm", intervention="hard")


def test_presets_and_methods_are_complete():
    assert set(PRESETS) >= {"tiny", "small", "headline", "paper"}
    assert PRESETS["headline"].protocol["n_variables"] == 20
    assert set(METHODS) == {"metacadi", "intv-maml", "full-maml", *BASELINES, *REFERENCE_METHODS}
    assert PRESETS["tiny"].protocol["n_variables"] == 5
    assert PRESETS["paper"].protocol["n_variables"] == 20 and PRESETS["paper"].seeds == 20
    assert PRESETS["small"].methods == tuple(DEFAULT_METHODS)
    for name in ("tiny", "small", "headline", "paper"):
        assert PRESETS[name].protocol["test_rows"] == 10  # the paper's few-shot meta-test size


def test_run_benchmark_gives_one_row_per_seed_and_method(results):
    assert len(results) == 2 * len(DEFAULT_METHODS + REFERENCES)
    assert list(results.method.unique()) == DEFAULT_METHODS + REFERENCES
    assert set(results.seed) == {0, 1} and set(results.data) == {"gp-anm"} and set(results.intervention) == {"hard"}
    assert set(METRICS) <= set(results.columns)
    for metric in ("intv_auroc", "intv_auprc"):
        assert results.loc[results.method != "empty-graph", metric].between(0, 1).all()
    models = results[results.method.isin(["metacadi", "intv-maml", "full-maml"])]
    assert models[["e_shd", "e_sid", "edge_auroc", "edge_auprc", "thr_shd", "edges_per_sample"]].notna().all().all()
    assert (models.e_shd >= 0).all() and (models.e_sid >= 0).all() and (models.thr_shd >= 0).all()
    assert (models.adapt_seconds > 0).all() and (models.step_seconds > 0).all() and (models.fit_seconds > 0).all()
    reference = results[results.method == "distribution-shift"]
    assert reference[["e_shd", "e_sid", "edge_auroc", "adapt_seconds"]].isna().all().all()
    assert (results.n_variables == 5).all() and (results.n_test_tasks == 5).all()
    # the floors and the ceiling
    empty = results[results.method == "empty-graph"]
    assert (empty.e_shd == empty.true_edges).all() and (empty.thr_shd == empty.true_edges).all()
    assert (empty.edges_per_sample == 0).all() and empty.intv_auroc.isna().all()
    oracle = results[results.method == "oracle"]
    assert (oracle.intv_auroc >= 0.98).all() and oracle.e_shd.isna().all()
    shift = results[results.method == "distribution-shift"].set_index("seed")
    assert (oracle.set_index("seed").intv_auroc >= shift.intv_auroc).all()


def test_run_benchmark_is_reproducible(results):
    again = run_benchmark(FAST, seeds=[1], methods=["metacadi"], data="gp-anm", intervention="hard")
    first = results[(results.seed == 1) & (results.method == "metacadi")].iloc[0]
    for metric in ("e_shd", "e_sid", "edge_auroc", "intv_auroc", "intv_auprc"):
        assert again[metric].iloc[0] == pytest.approx(first[metric])


def test_evaluate_perfect_and_reversed_answers():
    protocol = build_protocol("tiny", "gp-anm", "hard", seed=0)
    truth, targets = protocol.graph, protocol.test.target_matrix().astype(float)
    perfect = MethodOutput("metacadi", truth.astype(float), truth[None], targets, 1.0, np.array([0.1, 0.3, 0.2]), 0.5)
    row = evaluate(perfect, protocol)
    assert row["e_shd"] == 0 and row["e_sid"] == 0
    assert row["edge_auroc"] == 1 and row["edge_auprc"] == 1
    assert row["intv_auroc"] == 1 and row["intv_auprc"] == 1
    assert row["adapt_seconds"] == pytest.approx(0.2) and row["step_seconds"] == 0.5
    reversed_graph = truth.T.copy()
    wrong = MethodOutput("x", reversed_graph.astype(float), np.stack([reversed_graph, truth]), 1 - targets, 1.0)
    row = evaluate(wrong, protocol)
    # every edge reversed counts 1 in the first sample, 0 in the second
    assert row["e_shd"] == pytest.approx(truth.sum() / 2)
    assert row["intv_auroc"] == 0
    assert np.isnan(row["adapt_seconds"])
    no_graph = evaluate(MethodOutput("x", None, None, targets, 0.0), protocol)
    assert np.isnan(no_graph["e_shd"]) and np.isnan(no_graph["edge_auroc"]) and no_graph["intv_auroc"] == 1


def test_named_settings_build_their_protocols():
    subtle = build_protocol("tiny", "gp-anm", "soft-subtle", seed=4)
    assert {t.kind for t in subtle.test} == {"soft"}
    params = subtle.test[0].meta["intervention"]
    assert (params.gain, params.shift, params.noise_gain) == (0.5, 0.3, 3.0)
    assert build_protocol("tiny", "gp-anm", "hard", seed=4).scm.mechanism == "gp"
    mlp = build_protocol("tiny", "gp-anm", "mlp-sf-soft-scale", seed=4)
    assert mlp.scm.mechanism == "mlp" and mlp.test[0].meta["intervention"].noise_gain == 3.0
    offtarget = build_protocol("tiny", "gp-anm", "hard-offtarget", seed=4)
    assert any((t.targets != t.intended_targets).any() for t in list(offtarget.train) + list(offtarget.test))
    dropout = build_protocol("tiny", "sergio", "knockout-dropout", seed=4)
    assert dropout.simulator.dropout_rate == 0.8 and {t.kind for t in dropout.test} == {"knockout"}
    assert build_protocol("tiny", "sergio", "knockdown-mild", seed=4).simulator.knockdown_factor == 0.5
    with pytest.raises(MetaCaDIInputError, match="intervention must be one of"):
        build_protocol("tiny", "sergio", "soft-scale", seed=0)
    assert set(PRESETS["small"].interventions) >= {"hard", "soft", "soft-subtle", "soft-scale"}


def test_run_benchmark_adds_zero_count_on_sergio_and_skips_settings_a_source_lacks():
    frame = run_benchmark(FAST, seeds=[0], methods=["distribution-shift"], data="sergio", intervention="hard")
    assert list(frame.method) == ["distribution-shift", "empty-graph", "zero-count", "oracle"]
    assert frame.intv_auroc.notna().sum() == 3
    small = replace(FAST, interventions=("hard", "soft-scale"))
    assert set(run_benchmark(small, seeds=[0], methods=["distribution-shift"], data="sergio").intervention) == {"hard"}
    bare = run_benchmark(FAST, seeds=[0], methods=["distribution-shift"], data="gp-anm", intervention="soft-scale", references=False)
    assert list(frame.method)[:1] == list(bare.method) and set(bare.intervention) == {"soft-scale"}
    with pytest.raises(MetaCaDIInputError, match="intervention must be one of"):
        run_benchmark(FAST, seeds=[0], data="gp-anm", intervention="magic")


def test_build_protocol_pairs_hard_and_soft():
    hard = build_protocol("tiny", "gp-anm", "hard", seed=4)
    soft = build_protocol("tiny", "gp-anm", "soft", seed=4)
    np.testing.assert_array_equal(hard.graph, soft.graph)
    assert {t.kind for t in hard.test} == {"hard"} and {t.kind for t in soft.test} == {"soft"}
    assert len(hard.train) == 12 and len(hard.test) == 5 and all(t.n_rows == 10 for t in hard.test)
    sergio = build_protocol("tiny", "sergio", "soft", seed=4)
    assert {t.kind for t in sergio.test} == {"knockdown"} and sergio.n_variables == 5
    with pytest.raises(MetaCaDIInputError, match="data must be one of"):
        build_protocol("tiny", "real", "hard", seed=0)
    with pytest.raises(MetaCaDIInputError, match="intervention must be one of"):
        build_protocol("tiny", "gp-anm", "mixed", seed=0)
    with pytest.raises(MetaCaDIInputError, match="unknown preset"):
        build_protocol("huge", "gp-anm", "hard", seed=0)


def test_distribution_shift_scores_test_tasks_against_observational_training_data():
    protocol = build_protocol("tiny", "gp-anm", "hard", seed=2)
    output = run_method("distribution-shift", protocol, "tiny", seed=2)
    direct = DistributionShift().fit(TaskSet(list(protocol.train.observational()) + list(protocol.test)))
    np.testing.assert_allclose(output.target_probs, direct.target_scores[-len(protocol.test):])
    assert output.target_probs.shape == (5, 5) and output.graph_samples is None


def _synthetic_results():
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(4):
        for method, shift, adapt, step in (("metacadi", 0.3, 0.01, 0.1), ("full-maml", 0.0, 0.05, 0.4), ("intv-maml", 0.29, 0.02, 0.15)):
            row = {"seed": seed, "data": "gp-anm", "intervention": "hard", "method": method, "label": method}
            for metric in METRICS:
                row[metric] = 0.5 + shift + 0.01 * rng.normal()
            row["adapt_seconds"], row["step_seconds"] = adapt * (1 + seed), step * (1 + seed)
            rows.append(row)
    return pd.DataFrame(rows)


def test_summary_table_means_and_sds():
    frame = _synthetic_results()
    summary = summary_table(frame)
    assert list(summary.index.get_level_values("method")) == ["metacadi", "full-maml", "intv-maml"]
    block = frame[frame.method == "full-maml"]
    row = summary.loc[("gp-anm", "hard", "full-maml")]
    assert row["intv_auroc_mean"] == pytest.approx(block.intv_auroc.mean())
    assert row["intv_auroc_sd"] == pytest.approx(block.intv_auroc.std(ddof=1))
    assert row["n_seeds"] == 4
    with pytest.raises(MetaCaDIInputError, match="lacks the columns"):
        summary_table(frame.drop(columns="method"))


def test_welch_tests_match_scipy_and_need_two_seeds():
    frame = _synthetic_results()
    welch = welch_tests(frame)
    assert set(welch.method) == {"full-maml", "intv-maml"}
    row = welch[(welch.method == "full-maml") & (welch.metric == "intv_auroc")].iloc[0]
    expected = ttest_ind(
        frame[frame.method == "full-maml"].intv_auroc, frame[frame.method == "metacadi"].intv_auroc, equal_var=False
    )
    assert row.p_value == pytest.approx(expected.pvalue) and row.t == pytest.approx(expected.statistic)
    assert row.p_value < 1e-4 and row.difference == pytest.approx(-0.3, abs=0.05)
    close = welch[(welch.method == "intv-maml") & (welch.metric == "intv_auroc")].iloc[0]
    assert close.p_value > row.p_value
    assert welch_tests(frame[frame.seed == 0]).empty


def test_speed_table_ratios():
    speed = speed_table(_synthetic_results()).set_index("method")
    assert speed.loc["metacadi", "adapt_vs_metacadi"] == pytest.approx(1.0)
    assert speed.loc["full-maml", "adapt_vs_metacadi"] == pytest.approx(5.0)
    assert speed.loc["full-maml", "step_vs_metacadi"] == pytest.approx(4.0)
    assert speed.loc["intv-maml", "adapt_ms_per_task"] == pytest.approx(1000 * 0.02 * 2.5)


def test_markdown_marks_significant_differences():
    frame = _synthetic_results()
    text = to_markdown(summary_table(frame), welch_tests(frame))
    assert "| method | E-SHD | E-SID | SHD@0.5 | edges/sample" in text and "±" in text
    assert "**gp-anm, hard interventions** (4 seeds" in text
    full_row = next(line for line in text.splitlines() if line.startswith("| MetaCaDI-Full-MAML"))
    assert "*" in full_row
    assert "`*`: Welch's t-test" in text


def test_figure_has_a_panel_per_metric(results):
    fig = figure(results, metrics=("intv_auroc", "e_shd"))
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 2 and fig.layout.annotations[0].text == "Intv-AUROC"


def test_bad_arguments_raise():
    with pytest.raises(MetaCaDIInputError, match="methods must be chosen"):
        run_benchmark(FAST, seeds=1, methods=["metacadi", "magic"])
    with pytest.raises(MetaCaDIInputError, match="seeds must be >= 1"):
        run_benchmark(FAST, seeds=0)
    with pytest.raises(MetaCaDIInputError, match="data must be chosen"):
        run_benchmark(FAST, seeds=1, data="real")


def test_command_line_writes_tables(tmp_path, capsys):
    code = main(["--preset", "tiny", "--seeds", "1", "--methods", "metacadi,distribution-shift", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| MetaCaDI |" in printed and "Shift score (floor, non-causal)" in printed
    assert "| Empty graph (floor) |" in printed and "| Oracle: true graph + mechanisms (ceiling) |" in printed
    assert "difficulty **" in printed and "shift-score Intv-AUROC" in printed and "true graphs" in printed
    assert "fewer than two seeds" in printed
    assert {p.name for p in tmp_path.iterdir()} == {"results.csv", "summary.csv", "welch.csv", "speed.csv", "report.md", "figure.html"}
    saved = pd.read_csv(tmp_path / "results.csv")
    assert list(saved.method) == ["metacadi", "distribution-shift", "empty-graph", "oracle"]
    assert main(["--preset", "tiny", "--methods", "nothing", "--quiet"]) == 2
    assert main(["--preset", "tiny", "--setting", "soft-magic", "--quiet"]) == 2


def test_command_line_sets_the_meta_training_steps(monkeypatch, capsys):
    import metacadi.bench as bench

    seen = []
    real = bench.run_benchmark

    def spy(preset, **kwargs):
        seen.append(preset)
        return real(preset, **kwargs)

    monkeypatch.setattr(bench, "run_benchmark", spy)
    code = main(["--preset", "tiny", "--seeds", "1", "--methods", "metacadi", "--n-steps", "3", "--no-references", "--quiet"])
    assert code == 0 and seen[0].model["n_steps"] == 3
    assert seen[0].protocol == PRESETS["tiny"].protocol and PRESETS["tiny"].model["n_steps"] == 40  # the preset is untouched
    assert main(["--preset", "tiny", "--n-steps", "0", "--quiet"]) == 2
    assert "--n-steps must be a positive integer" in capsys.readouterr().err


def test_command_line_runs_named_settings_without_references(capsys):
    code = main(["--preset", "tiny", "--seeds", "1", "--methods", "distribution-shift", "--setting", "hard,soft-scale", "--no-references", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "**gp-anm, hard interventions**" in printed and "**gp-anm, soft-scale interventions**" in printed
    assert "Oracle" not in printed
    assert main(["--list-settings"]) == 0
    assert "soft-subtle" in capsys.readouterr().out
