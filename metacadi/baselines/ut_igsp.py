"""UT-IGSP: permutation-based causal discovery with unknown intervention targets (Squires, Wang &
Uhler 2020, "Permutation-based causal structure learning with unknown intervention targets").

Two engines behind one class:

* ``engine="gml"`` (default): the authors' maintained implementation,
  ``graphical_model_learning.unknown_target_igsp`` (package ``graphical-model-learning``, with
  ``conditional-independence`` for the tests), called exactly as its documentation shows:
  Fisher-z partial-correlation CI tests on the observational data
  (``partial_correlation_test``), Gaussian invariance tests between the observational data and
  each interventional setting (``gauss_invariance_test``: regressions of ``X_j`` on its parents
  in both datasets, an F-test on the residual variances and a test of equal regression
  coefficients, Bonferroni-combined), every setting given as ``known_interventions = []``
  (all targets unknown), the starting permutation from the minimum-degree ordering of the
  thresholded partial-correlation graph, depth-``depth`` search over I-covered edge reversals,
  ``n_runs`` runs, score = (number of edges, number of targets) compared lexicographically (the
  I-sparsest permutation). It randomises the order in which neighbours are visited with Python's
  ``random`` module: ``fit`` seeds it from ``seed`` and restores the global state afterwards.
* ``engine="numpy"``: a simplified re-implementation in numpy, kept because it has no
  dependencies beyond scipy and because its invariance test suits few-row settings: it regresses
  ``X_j`` on its parents **in the observational data only** and tests whether a setting's
  prediction residuals have mean 0 (t-test, with the leverage of the setting's mean covariates)
  and the observational residual variance (F-test), Bonferroni-combined. It works for a setting
  of 2 rows, where the ``gml`` test has to fit a regression inside the setting. Its search is a
  greedy depth-first search over covered-edge reversals (moves that lower the score are taken at
  once; score-neutral ones are explored up to ``depth`` steps) from the minimum-degree start plus
  ``n_runs - 1`` random permutations; it does not prioritise I-contradicting edges.

Both engines need at least one task labelled observational (UT-IGSP's CI tests and invariance
tests are defined against observational data). Columns that are constant in the observational
data carry no test information: they get no edges and are tested for invariance without parents.

Outputs (both engines; ``score(p) = L / (1 + L)``, ``L = -log10 p``):

* ``graph``: the DAG of the I-sparsest permutation found;
* ``edge_scores[i, j] = 0.5 * graph[i, j] + 0.5 * score(p_ij)`` for ``i`` before ``j`` in a
  topological order of ``graph`` (0 otherwise), with ``p_ij`` the Fisher-z p-value of
  ``X_i _||_ X_j | pa(j) - {i}`` on the observational data: every estimated edge scores above
  every non-edge, and the test strength ranks within each group;
* ``target_scores[t, j] = 0.5 * [j in I_t] + 0.5 * score(p_tj)`` with ``I_t`` the estimated
  targets of setting ``t`` and ``p_tj`` the invariance-test p-value of ``p(x_j | x_pa(j))``
  (Bonferroni-combined, NaN read as 1); observational tasks get zeros.
"""

from __future__ import annotations

import random
import warnings

import numpy as np
from scipy import stats

from .._random import SeedLike, as_rng
from ..errors import MetaCaDIInputError
from ..tasks import TaskSet
from .base import Baseline, BaselineResult, observational_mask, score_from_pvalue

__all__ = ["UTIGSP"]


class _Evaluation:
    __slots__ = ("order", "graph", "edge_pvalues", "target_pvalues", "n_edges", "n_targets", "key")

    def __init__(self, order, graph, edge_pvalues, target_pvalues, n_edges, n_targets):
        self.order = order
        self.graph = graph
        self.edge_pvalues = edge_pvalues
        self.target_pvalues = target_pvalues
        self.n_edges = n_edges
        self.n_targets = n_targets
        self.key = graph.tobytes()

    @property
    def score(self) -> tuple[int, int]:
        return (self.n_edges, self.n_targets)


class _GaussianTests:
    """Cached Fisher-z partial-correlation tests and regression invariance tests."""

    def __init__(self, observational: np.ndarray, settings: list[np.ndarray]) -> None:
        self.n_obs, self.d = observational.shape
        self.observational = observational
        self.mean = observational.mean(axis=0)
        self.centred = observational - self.mean
        self.covariance = np.cov(observational, rowvar=False)
        # a tiny ridge keeps the inversions stable when a column is (nearly) constant
        self.covariance += 1e-10 * np.eye(self.d) * max(np.trace(self.covariance) / self.d, 1e-12)
        self.settings = settings
        self._imap_cache: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        self._invariance_cache: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}

    def parent_pvalues(self, node: int, predecessors: list[int]) -> np.ndarray:
        """p-values of ``X_i _||_ X_node | X_{pred - i}`` for every ``i`` in ``predecessors``."""
        ordered = sorted(predecessors)
        key = (node, tuple(ordered))
        if key not in self._imap_cache:
            if not ordered:
                self._imap_cache[key] = np.zeros(0)
            else:
                index = np.array(ordered + [node])
                precision = np.linalg.inv(self.covariance[np.ix_(index, index)])
                diagonal = np.sqrt(np.abs(np.diag(precision)))
                partial = -precision[:-1, -1] / (diagonal[:-1] * diagonal[-1])
                partial = np.clip(partial, -1 + 1e-12, 1 - 1e-12)
                dof = max(self.n_obs - (len(index) - 2) - 3, 1)
                z = np.sqrt(dof) * np.arctanh(partial)
                self._imap_cache[key] = 2.0 * stats.norm.sf(np.abs(z))
        # the cache holds p-values in sorted order; return them in the order given
        position = {value: rank for rank, value in enumerate(ordered)}
        return self._imap_cache[key][[position[value] for value in predecessors]]

    def invariance_pvalues(self, node: int, parents: list[int]) -> np.ndarray:
        """``(K,)`` p-values of the invariance of ``p(x_node | x_parents)`` in every setting."""
        parents = sorted(parents)
        key = (node, tuple(parents))
        if key in self._invariance_cache:
            return self._invariance_cache[key]
        design = np.column_stack([np.ones(self.n_obs), self.observational[:, parents]])
        target = self.observational[:, node]
        gram_inverse = np.linalg.pinv(design.T @ design)
        coefficients = gram_inverse @ design.T @ target
        residual_dof = max(self.n_obs - design.shape[1], 1)
        sigma2 = max(float(np.sum((target - design @ coefficients) ** 2)) / residual_dof, 1e-12)
        p_values = np.ones(len(self.settings))
        for k, setting in enumerate(self.settings):
            setting_design = np.column_stack([np.ones(len(setting)), setting[:, parents]])
            residuals = setting[:, node] - setting_design @ coefficients
            n_k = len(setting)
            mean_design = setting_design.mean(axis=0)
            mean_variance = sigma2 * (1.0 / n_k + mean_design @ gram_inverse @ mean_design)
            t_stat = residuals.mean() / np.sqrt(max(mean_variance, 1e-300))
            p_mean = 2.0 * stats.t.sf(abs(t_stat), residual_dof)
            if n_k >= 2:
                ratio = residuals.var(ddof=1) / sigma2
                cdf = stats.f.cdf(ratio, n_k - 1, residual_dof)
                p_var = 2.0 * min(cdf, 1.0 - cdf)
                p_values[k] = min(1.0, 2.0 * min(p_mean, p_var))
            else:
                p_values[k] = p_mean
        self._invariance_cache[key] = p_values
        return p_values


class UTIGSP(Baseline):
    """Unknown-target IGSP (see the module docstring for both engines).

    Args:
        alpha: level of the partial-correlation tests that build the I-MAPs.
        alpha_invariance: level of the invariance tests that decide the targets.
        depth: how many score-neutral (I-)covered-edge reversals the search may chain.
        n_runs: runs of the search; the I-sparsest result wins (``gml``: every run starts at the
            minimum-degree permutation and visits neighbours in a different random order;
            ``numpy``: run 1 starts there, the others at random permutations).
        engine: ``"gml"`` (reference implementation, default) or ``"numpy"``.
        seed: int / Generator / None; seeds the search's randomness.
    """

    name = "UT-IGSP"

    def __init__(
        self,
        alpha: float = 0.01,
        alpha_invariance: float = 0.01,
        depth: int = 4,
        n_runs: int = 5,
        engine: str = "gml",
        seed: SeedLike = 0,
    ) -> None:
        for value, label in ((alpha, "alpha"), (alpha_invariance, "alpha_invariance")):
            if not 0 < value < 1:
                raise MetaCaDIInputError(f"{label} must be in (0, 1); got {value}.")
        if int(depth) != depth or depth < 0:
            raise MetaCaDIInputError(f"depth must be an integer >= 0; got {depth!r}.")
        if int(n_runs) != n_runs or n_runs < 1:
            raise MetaCaDIInputError(f"n_runs must be an integer >= 1; got {n_runs!r}.")
        if engine not in ("gml", "numpy"):
            raise MetaCaDIInputError(f"engine must be 'gml' or 'numpy'; got {engine!r}.")
        if engine == "gml":
            _import_gml()  # fail early (and pay the import cost outside fit)
        self.alpha = float(alpha)
        self.alpha_invariance = float(alpha_invariance)
        self.depth = int(depth)
        self.n_runs = int(n_runs)
        self.engine = engine
        self.seed = seed

    # ------------------------------------------------------------------ numpy engine
    def _evaluate(self, tests: _GaussianTests, order: list[int]) -> _Evaluation:
        d = tests.d
        graph = np.zeros((d, d), dtype=np.int64)
        edge_pvalues = np.ones((d, d))
        for position, node in enumerate(order):
            predecessors = order[:position]
            if predecessors:
                p_values = tests.parent_pvalues(node, predecessors)
                edge_pvalues[predecessors, node] = p_values
                graph[np.array(predecessors)[p_values < self.alpha], node] = 1
        target_pvalues = np.ones((len(tests.settings), d))
        for node in range(d):
            target_pvalues[:, node] = tests.invariance_pvalues(node, list(np.flatnonzero(graph[:, node])))
        n_targets = int((target_pvalues < self.alpha_invariance).sum())
        return _Evaluation(list(order), graph, edge_pvalues, target_pvalues, int(graph.sum()), n_targets)

    @staticmethod
    def _covered_edges(graph: np.ndarray) -> list[tuple[int, int]]:
        edges = []
        for i, j in zip(*np.nonzero(graph)):
            parents_j = graph[:, j].copy()
            parents_j[i] = 0
            if np.array_equal(parents_j, graph[:, i]):
                edges.append((int(i), int(j)))
        return edges

    @staticmethod
    def _order_after_reversal(order: list[int], graph: np.ndarray, i: int, j: int) -> list[int]:
        """Topological order of ``graph`` with ``i -> j`` reversed, as close to ``order`` as possible."""
        reversed_graph = graph.copy()
        reversed_graph[i, j], reversed_graph[j, i] = 0, 1
        return _closest_topological_order(reversed_graph, order)

    def _min_degree_order(self, tests: _GaussianTests) -> list[int]:
        """GSP's start: eliminate minimum-degree nodes of the undirected CI graph; reverse."""
        d = tests.d
        precision = np.linalg.pinv(tests.covariance)
        diagonal = np.sqrt(np.abs(np.diag(precision)))
        partial = np.clip(-precision / np.outer(diagonal, diagonal), -1 + 1e-12, 1 - 1e-12)
        dof = max(tests.n_obs - (d - 2) - 3, 1)
        p_values = 2.0 * stats.norm.sf(np.abs(np.sqrt(dof) * np.arctanh(partial)))
        adjacency = (p_values < self.alpha) & ~np.eye(d, dtype=bool)
        remaining = set(range(d))
        eliminated = []
        while remaining:
            degrees = {node: int(adjacency[node, list(remaining)].sum()) for node in remaining}
            node = min(remaining, key=lambda n: (degrees[n], n))
            neighbours = [n for n in remaining if adjacency[node, n] and n != node]
            for a in neighbours:
                for b in neighbours:
                    if a != b:
                        adjacency[a, b] = True
            remaining.remove(node)
            eliminated.append(node)
        return eliminated[::-1]

    def _search(self, tests: _GaussianTests, order: list[int]) -> _Evaluation:
        best = self._evaluate(tests, order)
        while True:
            improved = False
            visited = {best.key}
            stack = [(best, 0)]
            while stack and not improved:
                current, depth = stack.pop()
                for i, j in self._covered_edges(current.graph):
                    candidate = self._evaluate(tests, self._order_after_reversal(current.order, current.graph, i, j))
                    if candidate.key in visited:
                        continue
                    visited.add(candidate.key)
                    if candidate.score < best.score:
                        best, improved = candidate, True
                        break
                    if candidate.n_edges <= current.n_edges and depth + 1 < self.depth:
                        stack.append((candidate, depth + 1))
            if not improved:
                return best

    def _fit_numpy(self, observational: np.ndarray, settings: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict]:
        """Returns ``graph (m, m)``, ``targets (K, m)`` bool and details, on non-constant columns."""
        rng = as_rng(self.seed)
        m = observational.shape[1]
        tests = _GaussianTests(observational, settings)
        starts = [self._min_degree_order(tests)] + [list(rng.permutation(m)) for _ in range(self.n_runs - 1)]
        results = [self._search(tests, [int(n) for n in start]) for start in starts]
        best = min(results, key=lambda r: r.score)
        targets = best.target_pvalues < self.alpha_invariance
        return best.graph, targets, {"restart_scores": [r.score for r in results]}

    # ------------------------------------------------------------------ gml engine
    def _fit_gml(self, observational: np.ndarray, settings: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict]:
        gml, ci = _import_gml()
        m = observational.shape[1]
        ci_tester = ci.MemoizedCI_Tester(
            ci.partial_correlation_test, ci.partial_correlation_suffstat(observational), alpha=self.alpha
        )
        invariance_tester = ci.MemoizedInvarianceTester(
            ci.gauss_invariance_test, ci.gauss_invariance_suffstat(observational, settings),
            alpha=self.alpha_invariance,
        )
        setting_list = [{"known_interventions": []} for _ in settings]
        seed = self.seed
        if isinstance(seed, np.random.Generator):
            seed = int(seed.integers(2**62))
        state = random.getstate()
        try:
            random.seed(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # divide-by-zero on constant residuals, read as NaN
                dag, target_sets = gml.unknown_target_igsp(
                    setting_list, set(range(m)), ci_tester, invariance_tester,
                    depth=self.depth, nruns=self.n_runs,
                )
        finally:
            random.setstate(state)
        graph = np.zeros((m, m), dtype=np.int64)
        for i, j in dag.arcs:
            graph[i, j] = 1
        targets = np.zeros((len(settings), m), dtype=bool)
        for k, found in enumerate(target_sets):
            targets[k, sorted(found)] = True
        return graph, targets, {"n_ci_tests": len(ci_tester.ci_dict)}

    def _gml_invariance_pvalues(self, observational: np.ndarray, settings: list[np.ndarray], graph: np.ndarray) -> np.ndarray:
        _, ci = _import_gml()
        suffstat = ci.gauss_invariance_suffstat(observational, settings)
        p_values = np.ones((len(settings), graph.shape[0]))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for j in range(graph.shape[0]):
                parents = list(np.flatnonzero(graph[:, j]))
                for k in range(len(settings)):
                    result = ci.gauss_invariance_test(suffstat, k, j, cond_set=parents, alpha=self.alpha_invariance)
                    p = [result["f_pvalue"], result.get("rc_pvalue", np.nan)]
                    p = [value for value in p if np.isfinite(value)]
                    p_values[k, j] = min(1.0, len(p) * min(p)) if p else 1.0
        return p_values

    # ------------------------------------------------------------------ fit
    def _fit(self, tasks: TaskSet) -> BaselineResult:
        d = tasks.n_variables
        is_observational = observational_mask(tasks)
        if not is_observational.any():
            raise MetaCaDIInputError(
                "UT-IGSP needs at least one task labelled observational (kind='observational'): "
                "its CI and invariance tests are defined against observational data."
            )
        settings_index = np.flatnonzero(~is_observational)
        observational_all = np.vstack([tasks[k].data for k in np.flatnonzero(is_observational)])
        if observational_all.shape[0] < d + 3:
            raise MetaCaDIInputError(
                f"UT-IGSP needs more observational rows ({observational_all.shape[0]}) than variables + 2 ({d + 2})."
            )
        kept = np.flatnonzero(observational_all.std(axis=0) > 1e-12)
        observational = observational_all[:, kept]
        settings = [tasks[k].data[:, kept] for k in settings_index]
        if self.engine == "gml":
            sub_graph, sub_targets, details = self._fit_gml(observational, settings)
        else:
            sub_graph, sub_targets, details = self._fit_numpy(observational, settings)

        graph = np.zeros((d, d), dtype=np.int64)
        graph[np.ix_(kept, kept)] = sub_graph
        # edge scores: the test that decided each ordered pair of a topological order
        tests = _GaussianTests(observational, settings)
        order = _closest_topological_order(sub_graph, list(range(kept.size)))
        sub_pvalues = np.ones_like(sub_graph, dtype=float)
        for position, j in enumerate(order):
            for i in order[:position]:
                conditioning = [k for k in np.flatnonzero(sub_graph[:, j]) if k != i]
                sub_pvalues[i, j] = tests.parent_pvalues(j, [i, *conditioning])[0]
        edge_scores = np.zeros((d, d))
        before = np.zeros_like(sub_graph, dtype=bool)
        for position, j in enumerate(order):
            before[order[:position], j] = True
        edge_scores[np.ix_(kept, kept)] = np.where(
            before, 0.5 * sub_graph + 0.5 * score_from_pvalue(sub_pvalues), 0.0
        )
        # target scores: invariance of p(x_j | x_pa(j)) in each setting, with the final parents
        if self.engine == "gml":
            sub_target_p = self._gml_invariance_pvalues(observational, settings, sub_graph)
        else:
            sub_target_p = np.column_stack(
                [tests.invariance_pvalues(j, list(np.flatnonzero(sub_graph[:, j]))) for j in range(kept.size)]
            ).reshape(len(settings), kept.size)
        target_p = np.ones((len(settings), d))
        target_p[:, kept] = sub_target_p
        targets = np.zeros((len(settings), d), dtype=bool)
        targets[:, kept] = sub_targets
        for j in np.setdiff1d(np.arange(d), kept):
            # constant (= c) in the observational data: a setting changes it iff it is not all c
            constant = observational_all[0, j]
            changed = np.array([np.abs(tasks[k].data[:, j] - constant).max() > 1e-12 for k in settings_index])
            target_p[:, j] = np.where(changed, 0.0, 1.0)
            targets[:, j] = changed
        target_scores = np.zeros((len(tasks), d))
        target_scores[settings_index] = 0.5 * targets + 0.5 * score_from_pvalue(target_p)
        return BaselineResult(
            method=self.name,
            names=tasks.names,
            edge_scores=edge_scores,
            graph=graph,
            graph_samples=None,
            target_scores=target_scores,
            info={
                "engine": self.engine,
                "order": [int(kept[i]) for i in order],
                "n_edges": int(graph.sum()),
                "targets": targets,
                "target_pvalues": target_p,
                **details,
            },
        )


def _closest_topological_order(graph: np.ndarray, order: list[int]) -> list[int]:
    """A topological order of the DAG ``graph`` that stays as close to ``order`` as possible
    (Kahn's algorithm, always taking the available node that comes first in ``order``)."""
    rank = {node: position for position, node in enumerate(order)}
    in_degree = graph.sum(axis=0).astype(int)
    available = sorted((n for n in order if in_degree[n] == 0), key=rank.get)
    result = []
    while available:
        node = available.pop(0)
        result.append(node)
        for child in np.flatnonzero(graph[node]):
            in_degree[child] -= 1
            if in_degree[child] == 0:
                available.append(int(child))
        available.sort(key=rank.get)
    return result


def _import_gml():
    """``(graphical_model_learning, conditional_independence)``, imported quietly (pgmpy, which
    they pull in, emits deprecation warnings at import)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import conditional_independence
            import graphical_model_learning
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MetaCaDIInputError(
            "UT-IGSP engine='gml' needs the package graphical-model-learning "
            "(pip install graphical-model-learning); use engine='numpy' without it."
        ) from exc
    return graphical_model_learning, conditional_independence
