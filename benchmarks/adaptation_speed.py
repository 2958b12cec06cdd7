"""Closed-form ridge adaptation against gradient adaptation of the same last layer.

    .venv/bin/python benchmarks/adaptation_speed.py            # d = 20, 10-row tasks
    .venv/bin/python benchmarks/adaptation_speed.py --variables 10 --repeats 50

Intv-MAML adapts the task-specific last layer ``w_t`` by gradient steps on the same objective that
MetaCaDI solves exactly (squared error on the support set plus ``lambda/(2n) ||w||^2``, see
``metacadi.maml``). This script takes one meta-trained Intv-MAML network and, on the same
10-row meta-test tasks and the same graph samples, times

* the closed-form adaptation (``MetaCaDINetwork.adapt_support``: features, one batched ridge
  solve), and
* the gradient adaptation (``IntvMAMLNetwork.adapt_support``) with K = 5, 20, 100, 500 steps,

and reports, for each K, the median time per task, the ratio to the closed form, and how far
the gradient solution's support objective still is above the exact ridge minimum (relative
gap). The bench (``python -m metacadi.bench``) reports the end-to-end adaptation time of the
fitted estimators, target prediction included; this table isolates the adaptation step and
shows what accuracy a given number of gradient steps buys.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from metacadi.maml import IntvMAML, _ridge_penalty, _squared_error
from metacadi.model import MetaCaDINetwork
from metacadi.tasks import make_meta_protocol


def support_objective(network, support, adjacency, weights) -> float:
    features = network.likelihood.intervention_features(support, adjacency)
    prediction = torch.einsum("bnjm,bjm->bnj", features, weights)
    return float(_squared_error(support, prediction) + _ridge_penalty(weights, network.ridge_lambda, support.shape[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variables", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--graph-samples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=20, help="timed repetitions per task")
    parser.add_argument("--steps", default="5,20,100,500", help="gradient steps K to compare")
    args = parser.parse_args()
    torch.set_num_threads(1)

    protocol = make_meta_protocol(n_variables=args.variables, intervention="soft", seed=0, n_test=10)
    model = IntvMAML(n_steps=args.train_steps, seed=0).fit(protocol.train, progress=False)
    network = model.network_
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        graphs = network.graph.sample(args.graph_samples, generator)
    tasks = [model.standardize(task.data).unsqueeze(0).expand(args.graph_samples, -1, -1) for task in protocol.test]

    def timed(adapt) -> tuple[float, list[torch.Tensor]]:
        per_task, solutions = [], []
        for support in tasks:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                with torch.no_grad():
                    params, _, _ = adapt(support)
                times.append(time.perf_counter() - start)
            per_task.append(statistics.median(times))
            solutions.append(params["int_weights"])
        return statistics.median(per_task), solutions

    closed_time, closed_weights = timed(lambda s: MetaCaDINetwork.adapt_support(network, s, graphs, False))
    with torch.no_grad():
        minima = [support_objective(network, s, graphs, w) for s, w in zip(tasks, closed_weights)]

    rows = [("closed-form ridge", closed_time, 1.0, 0.0)]
    for steps in (int(k) for k in args.steps.split(",")):
        network.inner_steps = steps
        grad_time, grad_weights = timed(lambda s: network.adapt_support(s, graphs, False))
        with torch.no_grad():
            gaps = [
                (support_objective(network, s, graphs, w) - m) / m
                for s, w, m in zip(tasks, grad_weights, minima)
            ]
        rows.append((f"gradient, K = {steps}", grad_time, grad_time / closed_time, statistics.median(gaps)))

    print(
        f"# adaptation of the last layer: d = {args.variables}, 10-row tasks x {args.graph_samples} graph samples, "
        f"inner learning rate {network.inner_learning_rate}, one torch thread\n"
    )
    print("| adaptation | median time per task [ms] | vs closed form | objective gap to the ridge minimum |")
    print("|---|---|---|---|")
    for name, seconds, ratio, gap in rows:
        print(f"| {name} | {1000 * seconds:.2f} | {ratio:.1f}x | {100 * gap:.2f} % |")


if __name__ == "__main__":
    main()
