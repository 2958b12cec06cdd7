"""JCI-PC: the PC algorithm with one context variable per experiment (Joint Causal Inference,
Mooij, Magliacane & Claassen 2020), with causal-learn's PC skeleton search.

JCI pools all datasets and appends *context variables* that say which experiment a row comes
from: one binary indicator ``C_t`` per task not labelled observational (``C_t = 1`` on the rows of
task ``t``, 0 elsewhere; observational rows are 0 in every indicator, the reference regime). One
PC run over the ``d`` system variables and the ``K`` indicators then learns everything at once,
under the JCI assumptions:

* **exogenous contexts** (JCI assumption 1): no system variable causes a context variable. This is
  background knowledge for the orientation phase (causal-learn's skeleton search only uses
  background knowledge that forbids both directions of an edge): every edge between a context and
  a system variable is oriented ``C_t -> X_j``, and such an edge means that experiment ``t``
  **targets** ``X_j`` (JCI's reading of a direct context effect);
* **contexts are not tested against each other**: one-hot indicators are dependent by design
  (they are mutually exclusive), not by any causal mechanism we want to learn. The conditional
  independence (CI) test reports independence (p = 1) for every context–context pair, so those
  edges leave the skeleton at depth 0 and never enlarge conditioning sets. A context–system edge
  ``C_a - X_j`` is still removed whenever ``X_j``'s own neighbours (its system parents, and other
  contexts that enter through them) separate them, which is all that JCI's target reading needs.
  (Mooij et al.'s own ``jci123`` PC keeps the context–context edges fixed instead, which makes
  every context a neighbour of all others: at ``K = 60`` contexts the conditioning sets of every
  context–system edge are drawn from 59 other contexts, which is intractable.)

Steps.

1. Skeleton: ``causallearn.utils.PCUtils.SkeletonDiscovery.skeleton_discovery`` (stable PC,
   depth up to ``max_depth``) with a Fisher-z partial-correlation test (registered with
   causal-learn's CI-test registry as ``"metacadi-jci-fisherz"``): the p-value of
   ``X_a _||_ X_b | X_S`` is ``2 (1 - Phi(sqrt(N - |S| - 3) |atanh r|))`` with ``r`` the partial
   correlation from the inverse of the correlation submatrix. Identical to causal-learn's
   ``fisherz`` apart from the context–context rule above and a cheaper p-value (``math.erfc``
   instead of ``scipy.stats.norm.cdf``, which dominated the run time).
2. Orientation, implemented here on a boolean adjacency matrix: ``C -> X`` for every context edge
   (background knowledge), then unshielded colliders ``a -> b <- c`` for non-adjacent ``a, c``
   with ``b`` in none of their separating sets (a collider at a context is skipped: contexts have
   no parents), then Meek's rules R1–R3 to a fixed point. causal-learn's own orientation phase
   does the same but rebuilds a directed-path matrix on every edge change; on 80 nodes that alone
   took about a minute.
3. Outputs (system variables only):

   * ``edge_scores``: the CPDAG: ``1`` for a directed ``i -> j``, ``0.5`` both ways for an
     undirected edge (or for the rare conflicting orientation ``i <-> j``), ``0`` otherwise;
   * ``graph``: the greedy acyclic projection of those scores at 0.5 (directed edges first, then
     undirected ones in index order, skipping any that would close a cycle);
   * ``target_scores[t, j] = 0.5 * [C_t - X_j in the skeleton] + 0.5 * score(p_tj)``, with
     ``p_tj`` the Fisher-z p-value of the marginal association between ``C_t`` and ``X_j`` on the
     observational rows plus the rows of task ``t`` and ``score(p) = L / (1 + L)``,
     ``L = -log10 p``: PC's decision puts every claimed target above every other variable, and
     the association strength ranks within each group. Observational tasks get zeros.

Requirements: at least one task labelled observational (it defines the reference regime that
all indicators are 0 on; JCI without one would leave one experiment unidentifiable). Columns that
are constant over the pooled rows carry no information: they get no edges and target score 0.

The test is Gaussian (linear) even on nonlinear or count data: a kernel test (KCI) would be the
nonlinear choice but costs minutes per test at thousands of rows.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from .._random import SeedLike
from ..errors import MetaCaDIInputError
from ..tasks import TaskSet
from .base import Baseline, BaselineResult, acyclic_projection, observational_mask, score_from_pvalue

__all__ = ["JCIPC", "orient_pdag"]

_TEST_NAME = "metacadi-jci-fisherz"


def _register_test() -> str:
    """Register the JCI Fisher-z test with causal-learn (once per process); return its name."""
    from causallearn.utils import cit

    if _TEST_NAME not in cit._custom_ci_tests:

        class JCIFisherZ(cit.CIT_Base):
            """Fisher-z partial-correlation test; columns ``>= n_system`` are context indicators and
            every context–context pair is reported independent (p = 1) without a test."""

            def __init__(self, data: np.ndarray, n_system: int, **kwargs) -> None:
                super().__init__(data, **kwargs)
                self.check_cache_method_consistent(_TEST_NAME, f"n_system={n_system}")
                self.n_system = int(n_system)
                self.correlation = np.corrcoef(data, rowvar=False)
                self.cache: dict[tuple, float] = {}

            def __call__(self, X, Y, condition_set=None) -> float:
                x, y = (int(X), int(Y)) if X < Y else (int(Y), int(X))
                if x >= self.n_system:  # both are contexts (y > x)
                    return 1.0
                conditioning = tuple(sorted(int(s) for s in (condition_set or ())))
                key = (x, y, conditioning)
                cached = self.cache.get(key)
                if cached is not None:
                    return cached
                index = [x, y, *conditioning]
                sub = self.correlation[np.ix_(index, index)]
                try:
                    precision = np.linalg.inv(sub)
                except np.linalg.LinAlgError:
                    precision = np.linalg.pinv(sub)
                denominator = math.sqrt(abs(precision[0, 0] * precision[1, 1]))
                r = -precision[0, 1] / denominator if denominator > 0 else 0.0
                r = min(max(r, -1.0 + 1e-12), 1.0 - 1e-12)
                dof = self.sample_size - len(conditioning) - 3
                p = 1.0 if dof <= 0 else math.erfc(math.sqrt(dof) * abs(math.atanh(r)) / math.sqrt(2.0))
                self.cache[key] = p
                return p

        cit.register_ci_test(_TEST_NAME, JCIFisherZ)
    return _TEST_NAME


def orient_pdag(
    skeleton: np.ndarray,
    sepsets: dict[tuple[int, int], list[set[int]]],
    exogenous: np.ndarray,
) -> np.ndarray:
    """Orient a PC skeleton: background knowledge, unshielded colliders, Meek rules R1–R3.

    Args:
        skeleton: ``(n, n)`` symmetric bool adjacency.
        sepsets: for each non-adjacent pair ``(a, c)`` with ``a < c``, the separating sets found.
        exogenous: ``(n,)`` bool, nodes that may have no parents (JCI contexts).

    Returns:
        ``(n, n)`` bool ``O`` with ``O[i, j]`` for every mark ``i -> j``: a directed edge has one
        mark, an undirected edge both (as does a conflicting ``i <-> j``).
    """
    n = skeleton.shape[0]
    skeleton = skeleton.astype(bool) & ~np.eye(n, dtype=bool)
    arrow = np.zeros((n, n), dtype=bool)  # arrow[i, j]: an arrowhead at j on the edge i - j
    # background knowledge: every edge at an exogenous node points away from it
    arrow |= skeleton & exogenous[:, None] & ~exogenous[None, :]
    # unshielded colliders a -> b <- c
    for b in range(n):
        if exogenous[b]:
            continue
        neighbours = np.flatnonzero(skeleton[b])
        for a, c in combinations(neighbours, 2):
            if skeleton[a, c]:
                continue
            if all(b not in s for s in sepsets.get((min(a, c), max(a, c)), [set()])):
                arrow[a, b] = arrow[c, b] = True
    # Meek's rules on the edges that are still undirected (no arrowhead at either end)

    def directed(i: int, j: int) -> bool:
        return arrow[i, j] and not arrow[j, i]

    changed = True
    while changed:
        changed = False
        undirected = skeleton & ~arrow & ~arrow.T
        for i, j in zip(*np.nonzero(undirected)):
            if arrow[i, j] or arrow[j, i]:  # oriented earlier in this sweep
                continue
            parents_i = [k for k in np.flatnonzero(skeleton[:, i]) if directed(k, i)]
            # R1: k -> i - j, k and j non-adjacent  =>  i -> j
            rule = any(not skeleton[k, j] and k != j for k in parents_i)
            # R2: i -> k -> j and i - j  =>  i -> j
            if not rule:
                rule = any(directed(i, k) and directed(k, j) for k in np.flatnonzero(skeleton[i]))
            # R3: i - k -> j, i - l -> j, k and l non-adjacent  =>  i -> j
            if not rule:
                middle = [
                    k for k in np.flatnonzero(skeleton[i])
                    if not arrow[i, k] and not arrow[k, i] and skeleton[k, j] and directed(k, j)
                ]
                rule = any(not skeleton[k, l] for k, l in combinations(middle, 2))
            if rule and not exogenous[j]:
                arrow[i, j] = True
                changed = True
    marks = skeleton & ~arrow.T  # i -> j allowed unless there is an arrowhead at i
    conflicts = skeleton & arrow & arrow.T
    return marks | conflicts


def _marginal_pvalues(context: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Fisher-z p-values of the correlation between a binary context and every column."""
    n = data.shape[0]
    centred = data - data.mean(axis=0)
    c = context - context.mean()
    denom = np.sqrt((centred**2).sum(axis=0) * (c**2).sum())
    corr = np.where(denom > 0, c @ centred / np.where(denom > 0, denom, 1.0), 0.0)
    corr = np.clip(corr, -1 + 1e-12, 1 - 1e-12)
    z = np.sqrt(max(n - 3, 1)) * np.abs(np.arctanh(corr))
    from scipy.special import erfc

    return erfc(z / np.sqrt(2.0))


class JCIPC(Baseline):
    """PC over the system variables plus one context indicator per interventional task (JCI).

    Args:
        alpha: significance level of the Fisher-z CI tests.
        max_depth: largest conditioning set PC tries (``None`` = unlimited). The default 3 keeps
            dense problems (SERGIO, where library-size normalisation couples all genes) to tens of
            seconds at ``d = 20`` with 60 experiments; sparse problems rarely need more.
        seed: accepted for the common baseline interface; PC is deterministic and ignores it.
    """

    name = "JCI-PC"

    def __init__(self, alpha: float = 0.01, max_depth: int | None = 3, seed: SeedLike = 0) -> None:
        if not 0 < alpha < 1:
            raise MetaCaDIInputError(f"alpha must be in (0, 1); got {alpha}.")
        if max_depth is not None and (int(max_depth) != max_depth or max_depth < 0):
            raise MetaCaDIInputError(f"max_depth must be None or an integer >= 0; got {max_depth!r}.")
        self.alpha = float(alpha)
        self.max_depth = None if max_depth is None else int(max_depth)
        self.seed = seed

    def _fit(self, tasks: TaskSet) -> BaselineResult:
        from causallearn.utils.cit import CIT
        from causallearn.utils.PCUtils.SkeletonDiscovery import skeleton_discovery

        d = tasks.n_variables
        is_observational = observational_mask(tasks)
        if not is_observational.any():
            raise MetaCaDIInputError(
                "JCI-PC needs at least one task labelled observational (kind='observational'): "
                "it is the reference regime of the context variables."
            )
        contexts = np.flatnonzero(~is_observational)
        data = np.vstack([task.data for task in tasks])
        regime = np.repeat(np.arange(len(tasks)), [task.n_rows for task in tasks])
        indicators = (regime[:, None] == contexts[None, :]).astype(float)  # (N, K)
        kept = np.flatnonzero(data.std(axis=0) > 1e-12)  # constant columns carry no information
        m, n_contexts = kept.size, contexts.size
        columns = np.column_stack([data[:, kept], indicators])
        names = [f"X{i}" for i in range(m)] + [f"C{k}" for k in range(n_contexts)]

        test = CIT(columns, _register_test(), n_system=m)
        cg = skeleton_discovery(
            columns, self.alpha, test, stable=True, show_progress=False, node_names=names,
            max_k=self.max_depth,
        )
        skeleton = np.asarray(cg.G.graph) != 0
        n_nodes = m + n_contexts
        sepsets: dict[tuple[int, int], list[set[int]]] = {}
        for a in range(n_nodes):
            for c in range(a + 1, n_nodes):
                if not skeleton[a, c]:
                    found = cg.sepset[a, c]
                    sepsets[(a, c)] = [set(s) for s in found] if found else [set()]
        exogenous = np.r_[np.zeros(m, dtype=bool), np.ones(n_contexts, dtype=bool)]
        marks = orient_pdag(skeleton, sepsets, exogenous)

        system_marks = marks[:m, :m]
        undirected = system_marks & system_marks.T
        sub_scores = np.where(undirected, 0.5, system_marks.astype(float))
        edge_scores = np.zeros((d, d))
        edge_scores[np.ix_(kept, kept)] = sub_scores

        observational_rows = np.isin(regime, np.flatnonzero(is_observational))
        target_scores = np.zeros((len(tasks), d))
        adjacent = np.zeros((len(tasks), d))
        adjacent[np.ix_(contexts, kept)] = skeleton[m:, :m].astype(float)
        for k, task_index in enumerate(contexts):
            rows = observational_rows | (regime == task_index)
            p_values = np.ones(d)
            p_values[kept] = _marginal_pvalues(indicators[rows, k], data[rows][:, kept])
            target_scores[task_index] = 0.5 * adjacent[task_index] + 0.5 * score_from_pvalue(p_values)
        return BaselineResult(
            method=self.name,
            names=tasks.names,
            edge_scores=edge_scores,
            graph=acyclic_projection(edge_scores, 0.5),
            graph_samples=None,
            target_scores=target_scores,
            info={
                "targets": adjacent.astype(bool),
                "context_tasks": contexts,
                "n_ci_tests": len(test.cache),
                "alpha": self.alpha,
                "max_depth": self.max_depth,
            },
        )
