"""Adaptation and meta-training speed of MetaCaDI, at equal quality, with the arithmetic floor.

    .venv/bin/python benchmarks/speed.py                       # all three tables, d = 20
    .venv/bin/python benchmarks/speed.py --part adapt,quality  # only the adaptation tables
    .venv/bin/python benchmarks/speed.py --part train --device cuda

One meta-trained MetaCaDI (``--train-steps``, d = ``--variables``, soft interventions, GP-ANM)
and ``--tasks`` meta-test tasks of 10 rows. Timings use one torch thread and are medians over
``--repeats``; the load average of the machine is printed with every table.

1. **Adaptation against the arithmetic floor.** The floor is one batched float64 Cholesky
   solve and matmul of the ridge systems the adaptation has to solve, tasks x graph samples x
   variables of them (``n x n`` dual systems of ``n x (m + 1)`` features), timed in the same
   process. Compared: ``adapt_many`` on all tasks at once and ``adapt`` on one task (both end
   to end: input checks, standardisation, the adaptation, the Posterior).
2. **Closed form against gradient adaptation at equal quality.** The same network, the same
   graph samples and the same target predictor; only the interventional last layer is fitted
   differently: by the ridge solve, or by K gradient steps (Intv-MAML's inner loop, step size
   0.1) on the same support objective, starting from the mean closed-form layer of the
   meta-training tasks (a learned start, as Intv-MAML's). For every K: the median time per
   task of ``adapt`` end to end, the objective's gap to the ridge minimum (median over tasks),
   and the Intv-AUROC of the target probabilities it gives. The first K whose gap is within 1%
   is the equal-quality point; K = 5 is the bench's fixed setting.
3. **Meta-training step time** of MetaCaDI, Intv-MAML and Full-MAML (5 inner steps) on the
   same tasks and batches (objective, backward, clipping, Adam), and where a MetaCaDI step's
   time goes (cProfile of the same steps, cumulative time of the functions named).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from metacadi.losses import edge_prior_probability
from metacadi.maml import FullMAML, IntvMAML, IntvMAMLNetwork, _ridge_penalty, _squared_error
from metacadi.metrics import target_auroc
from metacadi.model import MetaCaDI, MetaCaDINetwork
from metacadi.tasks import make_meta_protocol


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f} (2 cores shared)".format(*os.getloadavg())


def synchronize() -> None:
    """Wait for queued GPU work, so a timing covers it (nothing to wait for on the CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        function()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------ 1. adaptation vs floor
def floor_solver(n_systems: int, n_rows: int, n_features: int, ridge_lambda: float, device: str):
    """One batched float64 Cholesky solve + matmul of ``n_systems`` dual ridge systems."""
    generator = torch.Generator(device=device).manual_seed(0)
    design = torch.rand(n_systems, n_rows, n_features, generator=generator, dtype=torch.float64, device=device) * 2 - 1
    response = torch.randn(n_systems, n_rows, 1, generator=generator, dtype=torch.float64, device=device)
    identity = ridge_lambda * torch.eye(n_rows, dtype=torch.float64, device=device)

    def solve():
        factor = torch.linalg.cholesky(design @ design.transpose(-1, -2) + identity)
        return design.transpose(-1, -2) @ torch.cholesky_solve(response, factor)

    return solve


def adaptation_table(model: MetaCaDI, tasks: list[np.ndarray], args) -> str:
    n_tasks, (n_rows, n_variables) = len(tasks), tasks[0].shape
    samples = args.graph_samples
    solve = floor_solver(n_tasks * samples * n_variables, n_rows, model.n_features + 1, model.ridge_lambda, args.device)
    model.adapt_many(tasks, n_graph_samples=samples)  # graph samples drawn and cached once
    # The three are timed in turns, so a change in the machine's load hits all of them alike.
    floors, manys, singles = [], [], []
    for _ in range(args.repeats):
        floors.append(median_time(solve, 1))
        manys.append(median_time(lambda: model.adapt_many(tasks, n_graph_samples=samples), 1))
        singles.append(statistics.median(
            median_time(lambda: model.adapt(task, n_graph_samples=samples), 1) for task in tasks[: args.single_tasks]
        ))
    floor, many, single = (statistics.median(values) for values in (floors, manys, singles))
    columns = int(model._posterior_graphs(samples, 0)["variables"].shape[0])
    floor_per_task = floor / n_tasks
    rows = [
        ["floor: one float64 Cholesky solve + matmul", f"{n_tasks * samples * n_variables} systems",
         f"{1000 * floor_per_task:.3f}", "1.0x"],
        [f"`adapt_many` ({n_tasks} tasks)", f"{columns * n_tasks} systems ({columns} distinct columns of {samples * n_variables})",
         f"{1000 * many / n_tasks:.3f}", f"{many / floor:.2f}x"],
        ["`adapt` (one task)", f"{columns} systems", f"{1000 * single:.3f}", f"{single / floor_per_task:.2f}x"],
    ]
    return (
        f"### 1. Closed-form adaptation against the arithmetic floor\n\nd = {n_variables}, {n_rows}-row tasks, "
        f"{samples} graph samples, {args.device}, one torch thread, medians of {args.repeats} rounds (floor, `adapt_many`, `adapt` on {args.single_tasks} tasks in turn); {load()}\n\n"
        + table(["what", "ridge systems solved", "ms per task", "vs floor"], rows)
    )


# ------------------------------------------------------------------ 2. equal quality
def gradient_twin(model: MetaCaDI, train_tasks, inner_steps: int) -> IntvMAML:
    """An Intv-MAML estimator on ``model``'s network: same mechanisms, graphs and predictor; its
    starting layer ``w_0`` is the mean closed-form layer over the meta-training tasks' support sets."""
    twin = IntvMAML(**{**model.get_params(), "inner_steps": inner_steps})
    network = IntvMAMLNetwork(model.n_variables_, twin._network_config()).to(model.device)
    network.load_state_dict(model.network_.state_dict(), strict=False)
    generator = torch.Generator(device=model.device).manual_seed(1)
    with torch.no_grad():
        support = torch.stack([model.standardize(task.data[: model.support_size]) for task in train_tasks])
        graphs = model.network_.graph.sample(support.shape[0], generator)
        params, _, _ = MetaCaDINetwork.adapt_support(network, support, graphs, training=False, with_noise_scale=False)
        network.initial_int_weights.copy_(params["int_weights"].mean(0))
    network.eval()
    for name in ("names_", "n_variables_", "data_mean_", "data_std_", "edge_probs_"):
        setattr(twin, name, getattr(model, name))
    twin.network_ = network
    return twin


def support_objective(network, support, graphs, weights) -> torch.Tensor:
    """Per task: ``sum_{s, j} 1/(2n) ||y - H w||^2 + lambda/(2n) ||w||^2`` (the inner loss)."""
    features = network.likelihood.intervention_features(support, graphs)
    prediction = torch.einsum("bnjm,bjm->bnj", features, weights)
    return _squared_error(support, prediction) + _ridge_penalty(weights, network.ridge_lambda, support.shape[1])


def quality_table(model: MetaCaDI, protocol, tasks: list[np.ndarray], args) -> str:
    samples = args.graph_samples
    truth = np.stack([task.targets for task in protocol.test][: len(tasks)]).astype(int)
    graphs = model._posterior_graphs(samples, 0)["graphs"]
    supports = [model.standardize(task).unsqueeze(0).expand(samples, -1, -1) for task in tasks]
    network = model.network_
    with torch.no_grad():
        minima = []
        for support in supports:
            params, _, _ = MetaCaDINetwork.adapt_support(network, support, graphs, training=False, with_noise_scale=False)
            minima.append(float(support_objective(network, support, graphs, params["int_weights"])))

    def timed(estimator) -> tuple[float, float]:
        per_task = [median_time(lambda: estimator.adapt(task, n_graph_samples=samples), args.quality_repeats) for task in tasks]
        probs = np.stack([estimator.adapt(task, n_graph_samples=samples).target_probs.to_numpy() for task in tasks])
        return statistics.median(per_task), target_auroc(truth, probs)

    closed_time, closed_auroc = timed(model)
    rows = [["closed-form ridge", f"{1000 * closed_time:.2f}", "1.0x", "0 %", f"{closed_auroc:.3f}", ""]]
    equal_quality = None
    for steps in (int(k) for k in args.steps.split(",")):
        twin = gradient_twin(model, protocol.train, steps)
        with torch.no_grad():
            gaps = []
            for support, minimum in zip(supports, minima):
                params, _, _ = twin.network_.adapt_support(support, graphs, training=False, with_noise_scale=False)
                gaps.append((float(support_objective(twin.network_, support, graphs, params["int_weights"])) - minimum) / minimum)
        gap = statistics.median(gaps)
        grad_time, grad_auroc = timed(twin)
        note = []
        if steps == 5:
            note.append("bench's fixed K")
        if equal_quality is None and gap <= 0.01:
            equal_quality = steps
            note.append("**first K within 1 %**")
        rows.append([f"gradient, K = {steps}", f"{1000 * grad_time:.2f}", f"{grad_time / closed_time:.1f}x",
                     f"{100 * gap:.2f} %", f"{grad_auroc:.3f}", ", ".join(note)])
    found = f"K = {equal_quality}" if equal_quality is not None else f"none of K = {args.steps}"
    return (
        f"### 2. Closed form against gradient adaptation at equal quality\n\n"
        f"{len(tasks)} tasks, {samples} graph samples, `adapt` end to end, inner step size 0.1, one torch thread, "
        f"median over tasks of the median of {args.quality_repeats} repeats; objective within 1 % of the ridge minimum at {found}; {load()}\n\n"
        + table(["adaptation", "ms per task", "vs closed form", "objective gap (median)", "Intv-AUROC", ""], rows)
    )


# ------------------------------------------------------------------ 3. training steps
def step_runner(model: MetaCaDI, protocol, steps: int):
    """The steps of ``MetaCaDI._train`` (same batches for every estimator with the same seed)."""
    model.set_params(n_steps=0, validation_fraction=0.0).fit(protocol.train, progress=False)
    model.n_steps = steps
    data, valid = model._prepare_training_data(protocol.train)
    generator = torch.Generator(device=model.device).manual_seed(model.seed)
    query_rows = min(model.query_size, int(valid.sum(1).min()) - model.support_size)
    prior_prob = edge_prior_probability(data.shape[2], model.prior_expected_degree)
    optimizer = torch.optim.Adam(model._parameter_groups(), lr=model.learning_rate)
    model.network_.train()

    def step(index: int) -> None:
        support, query = model._split(data, valid, query_rows, generator)
        terms = model._objective(support, query, prior_prob, model._weights_at(index, model.loss_weights), generator)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.network_.parameters(), model.gradient_clip)
        optimizer.step()

    return step


BREAKDOWN = [
    ("graph sampling (DP-DAG)", ["sample", "sample_factors"], "dpdag.py"),
    ("likelihood: features and mechanisms", ["intervention_features", "observational_mean"], "likelihood.py"),
    ("ridge head (solve + leave-one-out noise scale)", ["fit_intervention_loo", "shrunk_noise_scale"], "likelihood.py"),
    ("local edge gradient (every edge switched both ways)", ["edge_flip_nll", "local_edge_gradient"], ""),
    ("target predictor", ["target_logits"], "model.py"),
    ("HSIC", ["residual_independence"], "losses.py"),
    ("edge prior terms (KL, Occam)", ["edge_prior_kl", "expected_edges"], ""),
    ("backward", ["backward"], "_tensor.py"),
    ("gradient clipping + Adam", ["clip_grad_norm_", "step"], "torch"),
]


def training_table(protocol, args) -> str:
    common = dict(device=args.device, seed=0, n_steps=args.train_steps)
    estimators = {"MetaCaDI": MetaCaDI(**common), "Intv-MAML": IntvMAML(**common), "Full-MAML": FullMAML(**common)}
    seconds = {}
    for name, estimator in estimators.items():
        step = step_runner(estimator, protocol, args.step_repeats + 2)
        for index in range(2):
            step(index)
        times = []
        for index in range(2, args.step_repeats + 2):
            synchronize()
            start = time.perf_counter()
            step(index)
            synchronize()
            times.append(time.perf_counter() - start)
        seconds[name] = statistics.median(times)
    base = seconds["MetaCaDI"]
    speed = table(
        ["method", "s per step", "vs MetaCaDI"],
        [[name, f"{value:.3f}", f"{value / base:.2f}x"] for name, value in seconds.items()],
    )
    step = step_runner(MetaCaDI(**common), protocol, args.step_repeats + 2)
    step(0)
    profiler = cProfile.Profile()
    profiler.enable()
    for index in range(1, args.step_repeats + 1):
        step(index)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    total = sum(entry[3] for (filename, _, function), entry in stats.items() if function == "step" and filename == __file__)
    rows, accounted = [], 0.0
    for label, functions, where in BREAKDOWN:
        spent = sum(
            entry[3] for (filename, _, function), entry in stats.items()
            if function in functions and (where in filename if where != "torch" else "torch" in filename)
            and (function != "step" or "optim" in filename)
        )
        accounted += spent
        rows.append([label, f"{1000 * spent / args.step_repeats:.1f}", f"{100 * spent / total:.0f} %"])
    rows.append(["rest (split, losses, Python)", f"{1000 * (total - accounted) / args.step_repeats:.1f}", f"{100 * (total - accounted) / total:.0f} %"])
    rows.append(["**total (profiled)**", f"{1000 * total / args.step_repeats:.1f}", "100 %"])
    n_tasks = len(protocol.train)
    return (
        f"### 3. Meta-training step time\n\nd = {protocol.test[0].data.shape[1]}, {n_tasks} training tasks per step, "
        f"support 10 rows, query up to 64, 5 inner steps (MAML), {args.device}, one torch thread, median of "
        f"{args.step_repeats} steps after 2 warm-up steps; {load()}\n\n" + speed
        + "\n\nWhere a MetaCaDI step's time goes (cProfile, cumulative time per step):\n\n"
        + table(["part", "ms per step", "share"], rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="adapt,quality,train")
    parser.add_argument("--variables", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--train-steps", type=int, default=300, help="meta-training steps of the adapted model")
    parser.add_argument("--model", type=Path, default=None, help="load (or save after training) the model here")
    parser.add_argument("--graph-samples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--single-tasks", type=int, default=20, help="tasks the single-task `adapt` is timed on")
    parser.add_argument("--quality-tasks", type=int, default=20)
    parser.add_argument("--quality-repeats", type=int, default=5)
    parser.add_argument("--steps", default="5,20,50,100,200,500,1000", help="gradient steps K to compare")
    parser.add_argument("--step-repeats", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    parts = args.part.split(",")
    protocol = make_meta_protocol(n_variables=args.variables, intervention="soft", seed=0, n_test=args.tasks)
    print(f"# speed benchmark: `{' '.join(['benchmarks/speed.py'] + sys.argv[1:])}`, torch {torch.__version__}\n")
    if "adapt" in parts or "quality" in parts:
        if args.model is not None and args.model.is_file():
            model = MetaCaDI.load(args.model, device=args.device)
        else:
            model = MetaCaDI(n_steps=args.train_steps, seed=0, device=args.device).fit(protocol.train, progress=False)
            if args.model is not None:
                model.save(args.model)
        tasks = [task.data for task in protocol.test]
        if "adapt" in parts:
            print(adaptation_table(model, tasks, args) + "\n")
        if "quality" in parts:
            print(quality_table(model, protocol, tasks[: args.quality_tasks], args) + "\n")
    if "train" in parts:
        print(training_table(protocol, args) + "\n")


if __name__ == "__main__":
    main()
