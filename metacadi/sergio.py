"""SERGIO-style single-cell gene-expression simulation with knockout and knock-down experiments.

This module re-implements the generative model of SERGIO (Dibaeinia & Sinha 2020, "SERGIO: a
single-cell expression simulator guided by gene regulatory networks") in vectorised numpy, so that
all cells of all experiments are simulated at once, reproducibly from a ``seed``.

Why not wrap the ``sergio-scsim`` package (SERGIO 1.9.3)? It imports and runs offline, but: it
keeps one Python object per gene and grows every trajectory with ``np.append`` (one 20-gene,
300-cell experiment took about 1.4 s here, so dozens of experiments take a minute); it draws from
numpy's global random state, so results cannot be tied to a ``seed`` argument; cells are snapshots
of a single long trajectory per cell type (auto-correlated rather than independent); and it has no
perturbation support (its own source lists knockouts as "things to implement"; only the production
rate of a master regulator can be edited, not that of a regulated gene). The equations below are
SERGIO's; ``tests/test_sergio.py`` checks our deterministic steady state against the one
``sergio-scsim`` computes for the same network when it is installed.

``sergio-rs`` (0.2.3, a Rust port on PyPI) also installs and runs offline, is seeded and fast,
and has a ``GRN.ko_perturbation``; but that knockout *removes* the gene from the network, so
its former targets become master regulators with their own production (on the chain
``G0 -> G1 -> G2`` the mean of ``G2`` rose from 0.80 to 1.33 after knocking out ``G1``, where
SERGIO's dynamics say it should fall to 0), and it returns a polars DataFrame (an extra
dependency). A knockout here keeps the network and sets the gene's production to 0, so its
effect propagates downstream.

Model (one cell type; ``A[i, j] = 1`` iff gene ``i`` regulates gene ``j``)
-------------------------------------------------------------------------
* **Master regulators** (genes without regulators) are produced at a basal rate ``b_j`` drawn, as
  in SERGIO's ``build_rnd``, from a "low" ``U(1, 2.5)`` or a "high" ``U(3.5, 5)`` bin.
* **Regulated genes**: production is a sum of Hill functions of the regulators' expression,
  ``P_j(x) = sum_{i in pa(j)} |K_ij| * H_ij(x_i)`` with ``H_ij = x^n / (x^n + h_ij^n)`` for an
  activating edge (``K_ij > 0``, probability ``activation_prob = 0.75``, ``|K| ~ U(1, 5)``) and
  ``1 - x^n / (x^n + h_ij^n)`` for a repressing one; Hill coefficient ``n = 2``; the
  half-response ``h_ij`` is the (unperturbed) steady-state expression of the regulator, exactly as
  SERGIO estimates it level by level (``x*_j = P_j(x*_pa(j)) / lambda``).
* **Stochastic dynamics**: the chemical Langevin equation, integrated by Euler–Maruyama,
  ``dx_j = (P_j(x) - lambda x_j) dt + q (sqrt(P_j(x)) dW_1 + sqrt(lambda x_j) dW_2)``, clipped
  at 0, decay ``lambda = 0.8``, noise amplitude ``q = noise_scale``. Every cell is an
  independent trajectory that starts at the deterministic steady state of its experiment and runs
  ``n_steps * dt`` time units (8 relaxation times ``1 / lambda`` by default), so the cells are
  i.i.d. draws from (close to) the stationary distribution.
* **Interventions** scale the production rate of the targeted genes: a **knockout** sets it to
  0 (the gene is silenced and stays at exactly 0), a **knock-down** multiplies it by
  ``knockdown_factor`` (default 0.25) or by a per-gene factor. Kinetic parameters (``K``, ``h``,
  ``n``) are properties of the network and stay fixed, so the perturbation propagates downstream
  through the Hill functions.
* **Technical noise** (SERGIO's splat-like model, applied in this order):
  1. *outlier genes*: each gene is, with probability ``outlier_prob``, multiplied by a
     log-normal factor ``LogN(outlier_mean, outlier_scale)``; drawn once per simulator, because
     it is a property of the gene in the assay, not of one experiment;
  2. *library size*: each cell is rescaled to a total drawn from
     ``LogN(library_log_mean, library_scale)`` (default ``log(5 d)``, about 5 molecules per gene);
  3. *dropout*: an entry is kept with probability ``sigmoid(dropout_shape * (log1p(x) - m))``.
     SERGIO fixes the midpoint ``m`` at a percentile of ``log1p(x)``; here ``m`` is calibrated
     once, on an observational reference sample, so that the expected fraction of dropped
     entries equals ``dropout_rate``. Perturbed experiments keep that ``m``: silenced or
     knocked-down genes drop out more often, as in real data;
  4. *UMI counts*: Poisson draws with the noisy expression as the mean.
* **Output transform**: :meth:`SergioSimulator.sample` returns ``log1p(counts)``. Counts are
  discrete, zero-inflated and heavy-tailed; the downstream model (additive Gaussian noise around
  MLP mechanisms) expects continuous data on a comparable scale, and ``log1p`` is the standard
  single-cell normalisation that keeps zeros at zero. :meth:`SergioSimulator.simulate` returns
  every intermediate stage (clean expression, noisy expression, dropout mask, counts).

Simplifications relative to SERGIO: one cell type (SERGIO can simulate several, each with its own
master-regulator profile), no cooperative (multi-regulator) interactions, no differentiation
dynamics (SERGIO's "DS" mode) and no unspliced/spliced split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._random import SeedLike, as_rng
from .errors import MetaCaDIInputError
from .graphs import GRAPH_FAMILIES, random_dag, topological_order
from .tasks import SharedGraphProblem, Task, TaskSet
from .validation import check_adjacency, check_names, check_positive_int, check_probability

__all__ = [
    "SergioSample",
    "SergioSimulator",
    "SergioProtocol",
    "make_sergio_protocol",
]


def _check_range(value: Any, name: str, minimum: float = 0.0) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise MetaCaDIInputError(f"{name} must be a pair (low, high); got {value!r}.") from exc
    if not (minimum <= low <= high and np.isfinite(high)):
        raise MetaCaDIInputError(f"{name} must satisfy {minimum} <= low <= high < inf; got ({low}, {high}).")
    return low, high


def _check_positive_float(value: Any, name: str, allow_zero: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise MetaCaDIInputError(f"{name} must be a number; got {value!r}.") from exc
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise MetaCaDIInputError(f"{name} must be a finite number {bound}; got {value}.")
    return value


@dataclass(frozen=True)
class SergioSample:
    """Every stage of one simulated experiment, all ``(n_cells, d)``.

    Attributes:
        clean: expression from the stochastic dynamics, before technical noise (non-negative).
        expression: after outlier genes and the library-size effect (the Poisson means).
        dropout_mask: True where an entry was dropped.
        counts: UMI counts (Poisson draws of ``expression`` with dropped entries set to 0), or,
            with ``counts=False``, ``expression`` with dropped entries set to 0.
        data: ``log1p(counts)``: what :meth:`SergioSimulator.sample` returns.
    """

    clean: np.ndarray
    expression: np.ndarray
    dropout_mask: np.ndarray
    counts: np.ndarray
    data: np.ndarray


class SergioSimulator:
    """SERGIO-style simulator of single-cell expression for one gene regulatory network.

    The kinetic parameters (interaction strengths and signs, master-regulator production rates,
    half-responses), the outlier genes and the dropout midpoint are drawn once, from ``seed``, when
    the simulator is built; :meth:`sample` then draws cells for any experiment.

    Args:
        adjacency: ``(d, d)`` 0/1 DAG, ``A[i, j] = 1`` iff gene ``i`` regulates gene ``j``.
        names: gene names (default ``G0..G{d-1}``).
        seed: int, numpy Generator or None.
        decay: degradation rate ``lambda`` of every gene (SERGIO's default 0.8).
        hill_coefficient: ``n`` of the Hill functions (SERGIO's default 2).
        interaction_strength: range of ``|K_ij|`` (SERGIO: activations ``U(1, 5)``,
            repressions ``U(-5, -1)``).
        activation_prob: probability that an edge activates (SERGIO: 0.75).
        basal_low, basal_high: ranges of the master regulators' production rates; each master
            regulator picks one of the two bins with probability 1/2 (SERGIO's ``build_rnd``).
        noise_scale: amplitude ``q`` of the Langevin noise (SERGIO's ``noise_s``, typically 1).
        dt, n_steps: Euler–Maruyama step and number of steps from the steady state.
        outlier_prob, outlier_mean, outlier_scale: outlier-gene effect (SERGIO defaults 0.01,
            0.8, 1).
        library_log_mean: mean of the log library size (default ``log(5 d)``).
        library_scale: sd of the log library size (0 rescales every cell to the same total).
        dropout_rate: expected fraction of entries dropped in observational data (0 switches
            dropout off).
        dropout_shape: steepness of the logistic dropout curve on the ``log1p`` scale.
        counts: draw Poisson UMI counts (True) or keep the continuous noisy expression.
        technical_noise: apply outliers, library size, dropout and counts at all (False returns
            the clean expression, still ``log1p``-transformed, from :meth:`sample`).
        knockdown_factor: production multiplier of a knocked-down gene given as a boolean mask.
        calibration_cells: size of the observational reference sample that calibrates dropout.
    """

    def __init__(
        self,
        adjacency: Any,
        *,
        names: Sequence[str] | None = None,
        seed: SeedLike = None,
        decay: float = 0.8,
        hill_coefficient: float = 2.0,
        interaction_strength: tuple[float, float] = (1.0, 5.0),
        activation_prob: float = 0.75,
        basal_low: tuple[float, float] = (1.0, 2.5),
        basal_high: tuple[float, float] = (3.5, 5.0),
        noise_scale: float = 1.0,
        dt: float = 0.05,
        n_steps: int = 200,
        outlier_prob: float = 0.01,
        outlier_mean: float = 0.8,
        outlier_scale: float = 1.0,
        library_log_mean: float | None = None,
        library_scale: float = 0.4,
        dropout_rate: float = 0.3,
        dropout_shape: float = 6.5,
        counts: bool = True,
        technical_noise: bool = True,
        knockdown_factor: float = 0.25,
        calibration_cells: int = 500,
    ) -> None:
        self.adjacency = check_adjacency(adjacency, name="adjacency")
        d = self.adjacency.shape[0]
        self.names = tuple(check_names(names if names is not None else [f"G{i}" for i in range(d)], d))
        self.decay = _check_positive_float(decay, "decay")
        self.hill_coefficient = _check_positive_float(hill_coefficient, "hill_coefficient")
        self.interaction_strength = _check_range(interaction_strength, "interaction_strength")
        self.activation_prob = check_probability(activation_prob, "activation_prob")
        self.basal_low = _check_range(basal_low, "basal_low")
        self.basal_high = _check_range(basal_high, "basal_high")
        self.noise_scale = _check_positive_float(noise_scale, "noise_scale", allow_zero=True)
        self.dt = _check_positive_float(dt, "dt")
        self.n_steps = check_positive_int(n_steps, "n_steps", minimum=0)
        self.outlier_prob = check_probability(outlier_prob, "outlier_prob")
        self.outlier_mean = float(outlier_mean)
        self.outlier_scale = _check_positive_float(outlier_scale, "outlier_scale", allow_zero=True)
        self.library_log_mean = float(np.log(5.0 * d)) if library_log_mean is None else float(library_log_mean)
        self.library_scale = _check_positive_float(library_scale, "library_scale", allow_zero=True)
        self.dropout_rate = check_probability(dropout_rate, "dropout_rate")
        if self.dropout_rate >= 1.0:
            raise MetaCaDIInputError("dropout_rate must be < 1 (1 would drop every entry).")
        self.dropout_shape = _check_positive_float(dropout_shape, "dropout_shape")
        self.counts = bool(counts)
        self.technical_noise = bool(technical_noise)
        self.knockdown_factor = check_probability(knockdown_factor, "knockdown_factor")
        self.calibration_cells = check_positive_int(calibration_cells, "calibration_cells", minimum=10)
        self._rng = as_rng(seed)
        self._draw_parameters()

    # ------------------------------------------------------------------ parameters
    @property
    def n_genes(self) -> int:
        return self.adjacency.shape[0]

    def _draw_parameters(self) -> None:
        rng = self._rng
        d = self.n_genes
        self._order = topological_order(self.adjacency)
        self.master_regulators = np.flatnonzero(self.adjacency.sum(axis=0) == 0)
        sources, targets = np.nonzero(self.adjacency)
        self._sources, self._targets = sources, targets
        n_edges = sources.size
        low, high = self.interaction_strength
        strength = rng.uniform(low, high, size=n_edges)
        activating = rng.random(n_edges) < self.activation_prob
        #: signed interaction strengths ``K`` as a (d, d) matrix (0 off the edges)
        self.interactions = np.zeros((d, d))
        self.interactions[sources, targets] = np.where(activating, strength, -strength)
        self.basal_rates = np.zeros(d)
        high_bin = rng.random(d) < 0.5
        low_draw = rng.uniform(*self.basal_low, size=d)
        high_draw = rng.uniform(*self.basal_high, size=d)
        self.basal_rates[self.master_regulators] = np.where(high_bin, high_draw, low_draw)[self.master_regulators]
        self._edge_strength = strength
        self._edge_activating = activating
        # scatter matrix: edge contributions (n, E) @ (E, d) -> per-target production
        self._edge_to_target = np.zeros((n_edges, d))
        self._edge_to_target[np.arange(n_edges), targets] = 1.0
        # Half-responses = unperturbed steady state of the regulator (SERGIO's estimate).
        self._half_response_n = np.ones(n_edges)
        wild_type = self._steady_state_with(np.ones(d), half_response=None)
        self.half_responses = np.zeros((d, d))
        half = np.maximum(wild_type[sources], 1e-3)
        self.half_responses[sources, targets] = half
        self._half_response_n = half**self.hill_coefficient
        self.wild_type_steady_state = wild_type
        repressing = ~activating
        self._constant_production = self.basal_rates + (strength * repressing) @ self._edge_to_target
        self._signed_scatter = np.where(activating, strength, -strength)[:, None] * self._edge_to_target
        # Technical properties of the assay, fixed for every experiment.
        is_outlier = rng.random(d) < self.outlier_prob
        self.outlier_factors = np.where(
            is_outlier, rng.lognormal(self.outlier_mean, self.outlier_scale, size=d), 1.0
        )
        self.dropout_midpoint = None
        if self.technical_noise and self.dropout_rate > 0:
            reference = self._clean(np.ones((self.calibration_cells, d)), rng)
            reference = self._outliers_and_library(reference, rng)
            self.dropout_midpoint = self._calibrate_midpoint(np.log1p(reference))

    def _steady_state_with(self, production_scale: np.ndarray, half_response: Any = "fitted") -> np.ndarray:
        """Deterministic steady state ``x*_j = s_j P_j(x*_pa(j)) / lambda`` in topological order.

        During construction (``half_response=None``) the half-response of an edge is set from the
        regulator's own steady state as soon as it is known, as SERGIO does level by level.
        """
        d = self.n_genes
        state = np.zeros(d)
        for node in self._order:
            edges = np.flatnonzero(self._targets == node)
            production = self.basal_rates[node]
            if edges.size:
                regulators = state[self._sources[edges]]
                if half_response is None:
                    half_n = np.maximum(regulators, 1e-3) ** self.hill_coefficient
                else:
                    half_n = self._half_response_n[edges]
                production += self._hill_contributions(regulators[None, :], edges, half_n)[0].sum()
            state[node] = production_scale[node] * production / self.decay
        return state

    def _hill_contributions(self, regulators: np.ndarray, edges: Any, half_n: np.ndarray) -> np.ndarray:
        """``|K| H(x)`` for activating and ``|K| (1 - H(x))`` for repressing edges; ``(n, E)``."""
        powered = np.power(regulators, self.hill_coefficient)
        hill = powered / (powered + half_n)
        strength = self._edge_strength[edges]
        return np.where(self._edge_activating[edges], strength * hill, strength * (1.0 - hill))

    def _production(self, state: np.ndarray, production_scale: np.ndarray) -> np.ndarray:
        """Production rates ``(n, d)`` of every gene in every cell (SERGIO eq. for ``P_j``).

        Each edge contributes ``|K| H`` (activation) or ``|K| (1 - H)`` (repression), i.e.
        ``a_e + b_e H`` with ``a_e = |K|`` for repressions (else 0) and ``b_e = +-|K|``; the
        constant parts are folded into ``self._constant_production`` and the rest is one matmul.
        """
        production = self._constant_production
        if self._sources.size:
            regulators = state[:, self._sources]
            powered = regulators * regulators if self.hill_coefficient == 2.0 else np.power(regulators, self.hill_coefficient)
            production = production + (powered / (powered + self._half_response_n)) @ self._signed_scatter
        return production * production_scale

    # ------------------------------------------------------------------ simulation stages
    def _clean(self, production_scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Chemical Langevin dynamics for ``n`` independent cells; ``production_scale`` is ``(n, d)``."""
        unique_scales, row_to_scale = np.unique(production_scale, axis=0, return_inverse=True)
        starts = np.stack([self.steady_state(production_scale=s) for s in unique_scales])
        state = starts[row_to_scale.reshape(-1)]
        noise_scale = self.noise_scale * np.sqrt(self.dt)
        for _ in range(self.n_steps):
            production = self._production(state, production_scale)
            degradation = self.decay * state
            # sqrt(P) dW1 + sqrt(lambda x) dW2 has the law of sqrt(P + lambda x) dW: one draw.
            noise = noise_scale * np.sqrt(production + degradation) * rng.standard_normal(state.shape)
            state = np.maximum(state + (production - degradation) * self.dt + noise, 0.0)
        return state

    def _outliers_and_library(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        expression = clean * self.outlier_factors
        library = rng.lognormal(self.library_log_mean, self.library_scale, size=(expression.shape[0], 1))
        totals = expression.sum(axis=1, keepdims=True)
        return np.where(totals > 0, expression * library / np.where(totals > 0, totals, 1.0), 0.0)

    def _keep_probability(self, log_expression: np.ndarray, midpoint: float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.dropout_shape * (log_expression - midpoint)))

    def _calibrate_midpoint(self, log_expression: np.ndarray) -> float:
        """Midpoint ``m`` with mean dropout probability equal to ``dropout_rate`` (bisection)."""
        low = float(log_expression.min()) - 40.0 / self.dropout_shape
        high = float(log_expression.max()) + 40.0 / self.dropout_shape
        for _ in range(100):
            middle = 0.5 * (low + high)
            dropped = 1.0 - self._keep_probability(log_expression, middle).mean()
            if dropped < self.dropout_rate:
                low = middle
            else:
                high = middle
        return 0.5 * (low + high)

    # ------------------------------------------------------------------ public API
    def production_scale(self, knockout: Any = None, knockdown: Any = None) -> np.ndarray:
        """Per-gene production multipliers ``(d,)`` of an experiment.

        ``knockout``: boolean mask ``(d,)``, or a sequence of gene indices or names; those genes
        get 0. ``knockdown``: the same, getting ``knockdown_factor``, or a float array ``(d,)``
        of per-gene multipliers in ``[0, 1]`` (1 = untouched). A gene in both is knocked out.
        """
        scale = np.ones(self.n_genes)
        if knockdown is not None:
            array = np.asarray(knockdown)
            if array.dtype.kind == "f" and array.shape == (self.n_genes,):
                if not (np.isfinite(array).all() and (array >= 0).all() and (array <= 1).all()):
                    raise MetaCaDIInputError("knockdown factors must lie in [0, 1] (1 = untouched).")
                scale = array.astype(float).copy()
            else:
                scale[self._as_mask(knockdown, "knockdown")] = self.knockdown_factor
        if knockout is not None:
            scale[self._as_mask(knockout, "knockout")] = 0.0
        return scale

    def _as_mask(self, genes: Any, name: str) -> np.ndarray:
        d = self.n_genes
        array = np.asarray(genes)
        if array.dtype == bool:
            if array.shape != (d,):
                raise MetaCaDIInputError(f"{name} mask must have shape ({d},); got {array.shape}.")
            return array
        mask = np.zeros(d, dtype=bool)
        for gene in np.atleast_1d(array).tolist():
            if isinstance(gene, str):
                if gene not in self.names:
                    raise MetaCaDIInputError(f"{name}: unknown gene {gene!r}; genes are {list(self.names)}.")
                mask[self.names.index(gene)] = True
            elif isinstance(gene, int) and 0 <= gene < d:
                mask[gene] = True
            else:
                raise MetaCaDIInputError(
                    f"{name} must be a boolean mask of shape ({d},), or gene indices in [0, {d}) or names; "
                    f"got {gene!r}."
                )
        return mask

    def steady_state(self, knockout: Any = None, knockdown: Any = None, production_scale: Any = None) -> np.ndarray:
        """Deterministic steady-state expression ``(d,)`` of an experiment (no noise)."""
        if production_scale is None:
            production_scale = self.production_scale(knockout, knockdown)
        return self._steady_state_with(np.asarray(production_scale, dtype=float))

    def simulate(
        self,
        n_cells: int,
        knockout: Any = None,
        knockdown: Any = None,
        seed: SeedLike = None,
    ) -> SergioSample:
        """Simulate one experiment and return every stage (see :class:`SergioSample`).

        ``seed=None`` continues the simulator's own random stream (so a simulator built with a
        seed gives a reproducible sequence of experiments); an int gives the same cells each time.
        """
        return self.simulate_many([(n_cells, knockout, knockdown)], seed=seed)[0]

    def simulate_many(self, experiments: Sequence[tuple[int, Any, Any]], seed: SeedLike = None) -> list[SergioSample]:
        """Simulate several ``(n_cells, knockout, knockdown)`` experiments in one vectorised pass."""
        if len(experiments) == 0:
            raise MetaCaDIInputError("simulate_many needs at least one experiment.")
        rng = self._rng if seed is None else as_rng(seed)
        sizes, scales = [], []
        for n_cells, knockout, knockdown in experiments:
            sizes.append(check_positive_int(n_cells, "n_cells"))
            scales.append(self.production_scale(knockout, knockdown))
        production_scale = np.repeat(np.stack(scales), sizes, axis=0)
        clean = self._clean(production_scale, rng)
        if self.technical_noise:
            expression = self._outliers_and_library(clean, rng)
            if self.dropout_midpoint is not None:
                keep = rng.random(expression.shape) < self._keep_probability(np.log1p(expression), self.dropout_midpoint)
            else:
                keep = np.ones(expression.shape, dtype=bool)
            kept = np.where(keep, expression, 0.0)
            counts = rng.poisson(kept).astype(float) if self.counts else kept
        else:
            expression, keep, counts = clean, np.ones(clean.shape, dtype=bool), clean
        data = np.log1p(counts)
        bounds = np.cumsum([0, *sizes])
        return [
            SergioSample(
                clean=clean[a:b], expression=expression[a:b], dropout_mask=~keep[a:b], counts=counts[a:b], data=data[a:b]
            )
            for a, b in zip(bounds[:-1], bounds[1:])
        ]

    def sample(self, n_cells: int, knockout: Any = None, knockdown: Any = None, seed: SeedLike = None) -> np.ndarray:
        """``(n_cells, d)`` array of ``log1p`` UMI counts for one experiment.

        Args:
            n_cells: number of cells (rows).
            knockout: genes whose production is set to 0 (mask, indices or names), or None.
            knockdown: genes whose production is scaled by ``knockdown_factor`` (mask, indices
                or names) or a float array of per-gene multipliers, or None.
            seed: see :meth:`simulate`.
        """
        return self.simulate(n_cells, knockout, knockdown, seed).data

    def task(self, n_cells: int, knockout: Any = None, knockdown: Any = None, seed: SeedLike = None) -> Task:
        """One experiment as a :class:`~metacadi.tasks.Task` (targets = knocked-out/down genes)."""
        return self._task_from(self.simulate(n_cells, knockout, knockdown, seed), knockout, knockdown, None)

    def _task_from(self, sample: SergioSample, knockout: Any, knockdown: Any, intended: np.ndarray | None) -> Task:
        scale = self.production_scale(knockout, knockdown)
        targets = scale < 1.0
        if not targets.any():
            kind = "observational"
        else:
            kind = "knockout" if knockout is not None and (scale[targets] == 0).all() else "knockdown"
        return Task(
            sample.data,
            targets=targets,
            kind=kind,
            names=self.names,
            intended_targets=intended if intended is not None else targets.copy(),
            meta={"source": "sergio", "production_scale": scale},
        )

    def __repr__(self) -> str:
        return (
            f"SergioSimulator({self.n_genes} genes, {int(self.adjacency.sum())} edges, "
            f"{self.master_regulators.size} master regulators, dropout_rate={self.dropout_rate})"
        )


@dataclass(frozen=True, eq=False)
class SergioProtocol(SharedGraphProblem):
    """A meta-learning protocol simulated with SERGIO: the fields of
    :class:`~metacadi.tasks.MetaProtocol`, with the simulator in place of the SCM. ``graph`` is
    the true gene regulatory network; ``train`` holds observational tasks first, then
    knockouts/knock-downs; ``test`` holds new perturbation experiments with few cells.

    Attributes:
        simulator: the :class:`SergioSimulator` that produced the data.
    """

    simulator: SergioSimulator


def make_sergio_protocol(
    n_variables: int = 10,
    expected_degree: float = 1.0,
    graph_family: Literal["er", "sf"] = "sf",
    n_observational: int = 2,
    n_interventional: int | None = None,
    train_rows: int = 100,
    n_test: int | None = None,
    test_rows: int = 10,
    targets_per_task: int = 1,
    off_target_rate: float = 0.0,
    intervention: Literal["knockout", "knockdown"] = "knockout",
    names: Sequence[str] | None = None,
    seed: SeedLike = 0,
    **simulator_options: Any,
) -> SergioProtocol:
    """Simulate a SERGIO meta-learning protocol: a random GRN, training and test experiments.

    Mirrors :func:`~metacadi.tasks.make_meta_protocol`. A random DAG (default scale-free, whose
    hubs play the master regulators) and a :class:`SergioSimulator` on it; meta-training has
    ``n_observational`` wild-type experiments and ``n_interventional`` (default ``2 d``)
    perturbation experiments of ``train_rows`` cells; meta-test has ``n_test`` (default ``d``)
    new perturbation experiments of ``test_rows`` cells. Intended targets (``targets_per_task``
    genes each) are dealt from shuffled passes over all genes, so every gene is perturbed
    about equally often; every other gene is, independently, an extra unintended target with
    probability ``off_target_rate`` (in ``Task.targets``, not in ``Task.intended_targets``).
    ``intervention`` chooses knockouts (production 0) or knock-downs (production times
    ``knockdown_factor``).

    Data are ``log1p`` UMI counts (see the module docstring). All experiments are simulated in
    one vectorised pass: the defaults take a fraction of a second, ``d = 20`` with 42 training
    experiments of 100 cells one to two seconds on two CPU cores.

    Args:
        names: gene names (default ``G0..G{d-1}``).
        simulator_options: passed to :class:`SergioSimulator` (e.g. ``dropout_rate``,
            ``noise_scale``, ``knockdown_factor``).

    Returns:
        a :class:`SergioProtocol` with ``graph``, ``train``, ``test``, ``names``, ``simulator``.
    """
    from .tasks import _balanced_target_sets

    d = check_positive_int(n_variables, "n_variables", minimum=2)
    if graph_family not in GRAPH_FAMILIES:
        raise MetaCaDIInputError(f"graph_family must be one of {GRAPH_FAMILIES}; got {graph_family!r}.")
    n_observational = check_positive_int(n_observational, "n_observational", minimum=0)
    n_interventional = check_positive_int(
        2 * d if n_interventional is None else n_interventional, "n_interventional", minimum=0
    )
    if n_observational + n_interventional < 1:
        raise MetaCaDIInputError("n_observational + n_interventional must be >= 1: meta-training needs a task.")
    train_rows = check_positive_int(train_rows, "train_rows", minimum=2)
    n_test = check_positive_int(d if n_test is None else n_test, "n_test", minimum=1)
    test_rows = check_positive_int(test_rows, "test_rows", minimum=2)
    targets_per_task = check_positive_int(targets_per_task, "targets_per_task", minimum=1)
    if targets_per_task > d:
        raise MetaCaDIInputError(f"targets_per_task ({targets_per_task}) cannot exceed n_variables ({d}).")
    off_target_rate = check_probability(off_target_rate, "off_target_rate")
    if intervention not in ("knockout", "knockdown"):
        raise MetaCaDIInputError(f"intervention must be 'knockout' or 'knockdown'; got {intervention!r}.")
    names = tuple(check_names(names if names is not None else [f"G{i}" for i in range(d)], d))

    rng = as_rng(seed)
    graph = random_dag(d, expected_degree, family=graph_family, seed=rng)
    simulator = SergioSimulator(graph, names=names, seed=int(rng.integers(2**63)), **simulator_options)

    def perturbations(n_tasks: int, n_cells: int) -> list[tuple[int, Any, Any, np.ndarray]]:
        drawn = []
        for chosen in _balanced_target_sets(n_tasks, d, targets_per_task, rng):
            intended = np.zeros(d, dtype=bool)
            intended[chosen] = True
            targets = intended | ((rng.random(d) < off_target_rate) & ~intended)
            if intervention == "knockout":
                drawn.append((n_cells, targets, None, intended))
            else:
                drawn.append((n_cells, None, targets, intended))
        return drawn

    def build(experiments: list[tuple[int, Any, Any, np.ndarray | None]], split: str) -> TaskSet:
        samples = simulator.simulate_many([e[:3] for e in experiments], seed=rng)
        tasks = []
        for index, (sample, (_, knockout, knockdown, intended)) in enumerate(zip(samples, experiments)):
            task = simulator._task_from(sample, knockout, knockdown, intended)
            task.meta.update({"split": split, "index": index})
            tasks.append(task)
        return TaskSet(tasks, graph=graph)

    train_experiments: list[tuple[int, Any, Any, np.ndarray | None]] = [
        (train_rows, None, None, None) for _ in range(n_observational)
    ]
    train_experiments += perturbations(n_interventional, train_rows)
    train = build(train_experiments, "train")
    test = build(perturbations(n_test, test_rows), "test")
    return SergioProtocol(graph=graph, train=train, test=test, simulator=simulator)
