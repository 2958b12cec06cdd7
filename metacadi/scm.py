"""Additive-noise structural causal models (SCMs) with hard, soft and off-target interventions.

Every variable follows the additive noise model (ANM) of the paper's setting:

    x_j = f_j(x_pa(j)) + eps_j,        eps_j ~ N(0, sigma_j^2) independent,

over a DAG with adjacency ``A`` (``A[i, j] = 1`` iff ``i -> j``). A root node has no mechanism:
``x_j = eps_j``.

Keeping scales sane. Each mechanism ``f_j`` sees its parents *standardised* by their
observational mean and standard deviation, and its output is standardised to mean 0 and
standard deviation 1 on an observational pilot draw made once when the SCM is built
(``n_pilot`` rows). So every non-root variable has observational variance ``1 + sigma_j^2``
whatever the mechanism, the number of parents or the depth in the graph: values stay O(1),
never explode, and the signal-to-noise ratio is ``1 / sigma_j`` everywhere. (A side effect:
the marginal variance does not grow along the causal order, so "sort by variance" is no
shortcut to the graph.)

Mechanisms (``mechanism=``), all acting on the standardised parent vector ``z in R^p``:

* ``"linear"``: ``g(z) = w . z`` with ``|w_i| ~ U[0.5, 2]`` and a random sign, so no weight is
  close to zero (faithfulness is not violated by a vanishing edge).
* ``"gp"``: a draw from a Gaussian process with the RBF kernel
  ``k(z, z') = exp(-||z - z'||^2 / (2 l^2))``, realised with ``m`` random Fourier features
  (Rahimi & Recht 2007): ``g(z) = sqrt(2/m) sum_k a_k cos(omega_k . z + b_k)`` with
  ``omega_k ~ N(0, l^-2 I)``, ``b_k ~ U[0, 2 pi]``, ``a_k ~ N(0, 1)``. Its covariance is the
  Monte-Carlo estimate of ``k`` from ``m`` frequencies, which converges to ``k`` at rate
  ``1/sqrt(m)`` (``m = 200`` by default: kernel error about 0.07), so ``g`` is, up to that
  error, a GP sample path — but evaluated at any number of new points in ``O(n p m)``, with no
  ``n x n`` kernel matrix. Default lengthscale ``l = 1`` (in standard deviations of the parents):
  clearly non-linear, not wiggly.
* ``"mlp"``: a random one-hidden-layer network ``g(z) = v . tanh(W z + c)`` with ``h`` hidden
  units, ``W_ki ~ N(0, 1.5^2 / p)``, ``c_k ~ N(0, 1)``, ``v_k ~ N(0, 1)``.

Interventions (:class:`Intervention`), in units of the target's observational mean ``mu_j`` and
standard deviation ``s_j`` so that their strength means the same for every variable:

* hard: the parents are cut and ``x_j = mu_j + s_j (loc + scale * e)`` with fresh noise
  ``e ~ N(0, 1)`` (the default, ``loc = 2``, ``scale = 1``, i.e. ``N(mu_j + 2 s_j, s_j^2)``, the
  DCDI convention of replacing the conditional by ``N(2, 1)``), or the constant
  ``mu_j + s_j loc`` with ``constant=True``.
* soft: the parents are kept and the mechanism is changed to
  ``x_j = gain * f_j(x_pa(j)) + shift * s_j + noise_gain * eps_j`` (defaults ``gain = 0.5``,
  ``shift = 1``, ``noise_gain = 1``); on a root node (``f_j = 0``) this is a mean shift.
  ``gain = 1, shift = 0, noise_gain != 1`` is a scale-only intervention: the noise variance
  changes, the conditional mean does not.

Off-target effects: :func:`random_intervention` adds each non-intended variable as an extra
target with probability ``off_target_rate``; the intervention then records both its
``intended_targets`` and the realised ``targets``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._random import SeedLike, as_rng
from .errors import MetaCaDIInputError
from .validation import check_adjacency, check_names, check_positive_int, check_probability

MechanismName = Literal["linear", "gp", "mlp"]
MECHANISMS: tuple[str, ...] = ("linear", "gp", "mlp")
INTERVENTION_KINDS: tuple[str, ...] = ("hard", "soft")
#: Default noise standard deviations are drawn per variable from ``U[0.1, 0.5]``.
DEFAULT_NOISE_RANGE: tuple[float, float] = (0.1, 0.5)
LINEAR_WEIGHT_RANGE: tuple[float, float] = (0.5, 2.0)
MLP_INPUT_WEIGHT_SCALE = 1.5


def _check_finite_number(value: Any, name: str, positive: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise MetaCaDIInputError(f"{name} must be a number; got {value!r}.") from exc
    if not np.isfinite(number):
        raise MetaCaDIInputError(f"{name} must be finite; got {number}.")
    if positive and number <= 0:
        raise MetaCaDIInputError(f"{name} must be > 0; got {number}.")
    return number


def _check_mask(value: Any, name: str, n_variables: int | None = None) -> np.ndarray:
    mask = np.asarray(value)
    if mask.ndim != 1:
        raise MetaCaDIInputError(
            f"{name} must be a 1-D 0/1 (boolean) vector with one entry per variable; got shape {mask.shape}. "
            "To give node indices, use Intervention.at(nodes, n_variables)."
        )
    if n_variables is not None and mask.shape[0] != n_variables:
        raise MetaCaDIInputError(f"{name} must have shape ({n_variables},); got {mask.shape}.")
    if mask.dtype == object or not np.isin(mask, (0, 1)).all():
        raise MetaCaDIInputError(
            f"{name} must contain only 0/1 or True/False; got values {np.unique(mask)[:5]}. "
            "To give node indices, use Intervention.at(nodes, n_variables)."
        )
    return mask.astype(bool)


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run BLAS on one thread: the products here are thin (``(n, p) @ (p, m)`` with small ``p``),
    and a multi-threaded BLAS on a busy machine makes them 10-100x slower, not faster."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn depends on it, but do not fail without it
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --------------------------------------------------------------------------------------------
# Interventions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Intervention:
    """An experiment that intervenes on a set of variables.

    Attributes:
        targets: ``(d,)`` bool, the realised targets ``r_t`` (intended plus off-target ones).
        kind: ``"hard"`` (parents cut) or ``"soft"`` (mechanism changed, parents kept).
        intended_targets: ``(d,)`` bool, the targets the experiment meant to hit; must be a
            subset of ``targets``. Defaults to ``targets`` (no off-target effect).
        loc: hard only, the new mean in observational standard deviations from the
            observational mean: ``x_j = mu_j + s_j (loc + scale * e)``, ``e ~ N(0, 1)``.
        scale: hard only, the new standard deviation in units of ``s_j`` (> 0).
        constant: hard only, set ``x_j = mu_j + s_j loc`` exactly (no fresh noise).
        gain: soft only, ``x_j = gain * f_j(x_pa) + shift * s_j + noise_gain * eps_j``.
        shift: soft only, see ``gain``.
        noise_gain: soft only, multiplier of the noise ``eps_j`` (> 0; 1 keeps its scale).
    """

    targets: np.ndarray
    kind: str = "hard"
    intended_targets: np.ndarray | None = None
    loc: float = 2.0
    scale: float = 1.0
    constant: bool = False
    gain: float = 0.5
    shift: float = 1.0
    noise_gain: float = 1.0

    def __post_init__(self) -> None:
        targets = _check_mask(self.targets, "Intervention targets")
        object.__setattr__(self, "targets", targets)
        if self.kind not in INTERVENTION_KINDS:
            raise MetaCaDIInputError(
                f"Intervention kind must be one of {INTERVENTION_KINDS}; got {self.kind!r}."
            )
        if self.intended_targets is None:
            intended = targets.copy()
        else:
            intended = _check_mask(self.intended_targets, "intended_targets", targets.shape[0])
            if np.any(intended & ~targets):
                missing = np.flatnonzero(intended & ~targets).tolist()
                raise MetaCaDIInputError(
                    f"intended_targets must be a subset of the realised targets; nodes {missing} "
                    "are intended but not in targets."
                )
        object.__setattr__(self, "intended_targets", intended)
        object.__setattr__(self, "loc", _check_finite_number(self.loc, "loc"))
        object.__setattr__(self, "scale", _check_finite_number(self.scale, "scale", positive=True))
        object.__setattr__(self, "gain", _check_finite_number(self.gain, "gain"))
        object.__setattr__(self, "shift", _check_finite_number(self.shift, "shift"))
        object.__setattr__(self, "noise_gain", _check_finite_number(self.noise_gain, "noise_gain", positive=True))
        object.__setattr__(self, "constant", bool(self.constant))

    @classmethod
    def at(
        cls, nodes: Sequence[int] | int, n_variables: int, kind: str = "hard", **params: Any
    ) -> "Intervention":
        """An intervention on the node indices ``nodes`` among ``n_variables`` variables."""
        n_variables = check_positive_int(n_variables, "n_variables")
        indices = np.atleast_1d(np.asarray(nodes))
        if indices.size and (not np.issubdtype(indices.dtype, np.integer) or indices.ndim != 1):
            raise MetaCaDIInputError(f"nodes must be integer node indices; got {nodes!r}.")
        if indices.size and (indices.min() < 0 or indices.max() >= n_variables):
            raise MetaCaDIInputError(
                f"node indices must be in [0, {n_variables - 1}]; got {indices.tolist()}."
            )
        mask = np.zeros(n_variables, dtype=bool)
        mask[indices.astype(int)] = True
        return cls(mask, kind=kind, **params)

    @property
    def n_variables(self) -> int:
        return int(self.targets.shape[0])

    @property
    def target_indices(self) -> np.ndarray:
        """Indices of the realised targets."""
        return np.flatnonzero(self.targets)

    @property
    def off_targets(self) -> np.ndarray:
        """``(d,)`` bool: targets hit without being intended."""
        return self.targets & ~self.intended_targets


def random_intervention(
    n_variables: int,
    n_targets: int = 1,
    kind: str = "hard",
    off_target_rate: float = 0.0,
    seed: SeedLike = None,
    candidates: Sequence[int] | np.ndarray | None = None,
    **params: Any,
) -> Intervention:
    """Draw an intervention: ``n_targets`` intended targets, then random off-target effects.

    The intended targets are drawn uniformly without replacement from ``candidates`` (node
    indices or a ``(d,)`` bool mask; default all variables). Every *other* variable (candidate
    or not) then becomes an extra, unintended target independently with probability
    ``off_target_rate``, so ``E[#off-targets] = off_target_rate * (d - n_targets)``.
    ``params`` (``loc``, ``scale``, ``constant``, ``gain``, ``shift``, ``noise_gain``) go to
    :class:`Intervention`.
    """
    n_variables = check_positive_int(n_variables, "n_variables")
    if isinstance(n_targets, bool) or not isinstance(n_targets, (int, np.integer)) or n_targets < 0:
        raise MetaCaDIInputError(f"n_targets must be an integer >= 0; got {n_targets!r}.")
    off_target_rate = check_probability(off_target_rate, "off_target_rate")
    if kind not in INTERVENTION_KINDS:
        raise MetaCaDIInputError(f"kind must be one of {INTERVENTION_KINDS}; got {kind!r}.")
    if candidates is None:
        pool = np.arange(n_variables)
    else:
        array = np.asarray(candidates)
        if array.dtype == bool:
            pool = np.flatnonzero(_check_mask(array, "candidates", n_variables))
        else:
            if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
                raise MetaCaDIInputError(
                    f"candidates must be a list of node indices or a ({n_variables},) bool mask; got {candidates!r}."
                )
            if array.size and (array.min() < 0 or array.max() >= n_variables):
                raise MetaCaDIInputError(
                    f"candidate node indices must be in [0, {n_variables - 1}]; got {array.tolist()}."
                )
            pool = np.unique(array)
    if n_targets > pool.size:
        raise MetaCaDIInputError(
            f"n_targets ({n_targets}) is larger than the number of candidate nodes ({pool.size})."
        )
    rng = as_rng(seed)
    intended = np.zeros(n_variables, dtype=bool)
    intended[rng.choice(pool, size=n_targets, replace=False)] = True
    off_target = (rng.random(n_variables) < off_target_rate) & ~intended
    return Intervention(intended | off_target, kind=kind, intended_targets=intended, **params)


# --------------------------------------------------------------------------------------------
# Mechanisms: g(z) on standardised parents z of shape (n, p) -> (n,)
# --------------------------------------------------------------------------------------------


class _LinearMechanism:
    def __init__(self, n_parents: int, rng: np.random.Generator) -> None:
        low, high = LINEAR_WEIGHT_RANGE
        self.weights = rng.uniform(low, high, n_parents) * rng.choice((-1.0, 1.0), n_parents)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return z @ self.weights


class _FourierGPMechanism:
    """GP draw with an RBF kernel of lengthscale ``l`` via ``m`` random Fourier features."""

    # The (n, m) feature matrix is computed in float32: numpy's float32 cosine is vectorised and
    # about 15x faster than float64, and its ~1e-6 error is far below any noise scale.

    def __init__(self, n_parents: int, rng: np.random.Generator, lengthscale: float, n_features: int) -> None:
        self.frequencies = (rng.standard_normal((n_parents, n_features)) / lengthscale).astype(np.float32)
        self.phases = rng.uniform(0.0, 2.0 * np.pi, n_features).astype(np.float32)
        self.amplitudes = (rng.standard_normal(n_features) * np.sqrt(2.0 / n_features)).astype(np.float32)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        features = z.astype(np.float32) @ self.frequencies
        features += self.phases
        np.cos(features, out=features)
        return (features @ self.amplitudes).astype(np.float64)


class _RandomMLPMechanism:
    def __init__(self, n_parents: int, rng: np.random.Generator, hidden_units: int) -> None:
        self.input_weights = rng.standard_normal((n_parents, hidden_units)) * (
            MLP_INPUT_WEIGHT_SCALE / np.sqrt(n_parents)
        )
        self.hidden_bias = rng.standard_normal(hidden_units)
        self.output_weights = rng.standard_normal(hidden_units)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        hidden = z @ self.input_weights
        hidden += self.hidden_bias
        np.tanh(hidden, out=hidden)
        return hidden @ self.output_weights


# --------------------------------------------------------------------------------------------
# The SCM
# --------------------------------------------------------------------------------------------


class SCM:
    """An additive-noise SCM ``x_j = f_j(x_pa(j)) + eps_j``, ``eps_j ~ N(0, sigma_j^2)``.

    ``f_j(x_pa) = (g_j(z) - c_j) / k_j`` where ``z = (x_pa - mu_pa) / s_pa`` are the parents
    standardised by their observational mean and standard deviation, ``g_j`` is the random
    mechanism (see the module docstring) and ``c_j``, ``k_j`` standardise its output on an
    observational pilot draw of ``n_pilot`` rows. Roots: ``x_j = eps_j``.

    Args:
        adjacency: ``(d, d)`` 0/1 DAG adjacency, ``A[i, j] = 1`` iff ``i -> j``.
        mechanism: ``"gp"`` (default), ``"linear"`` or ``"mlp"``.
        noise_scale: noise standard deviations ``sigma``: a positive float for all variables,
            a ``(d,)`` array, or ``None`` (default) to draw each from ``U[0.1, 0.5]``.
        names: variable names (default ``X0..X{d-1}``).
        seed: int, numpy Generator or None; fixes the mechanisms, the noise scales and the
            stream that :meth:`sample` draws from when it gets no seed of its own.
        lengthscale: GP lengthscale in parent standard deviations (default 1.0).
        n_fourier_features: random Fourier features per GP mechanism (default 200).
        hidden_units: hidden units of each random MLP (default 32).
        n_pilot: rows of the observational pilot draw used to standardise (default 5000).

    Attributes:
        adjacency: ``(d, d)`` int64 adjacency.
        names: list of ``d`` variable names.
        n_variables: ``d``.
        noise_scales: ``(d,)`` float64 ``sigma``.
        order: a topological order of the nodes.
        observational_mean, observational_std: ``(d,)`` pilot estimates of ``mu_j`` and ``s_j``,
            the units of the interventions.
    """

    def __init__(
        self,
        adjacency: Any,
        mechanism: MechanismName = "gp",
        noise_scale: float | np.ndarray | None = None,
        names: Sequence[str] | None = None,
        seed: SeedLike = None,
        *,
        lengthscale: float = 1.0,
        n_fourier_features: int = 200,
        hidden_units: int = 32,
        n_pilot: int = 5000,
    ) -> None:
        self.adjacency = check_adjacency(adjacency)
        d = self.adjacency.shape[0]
        self.n_variables = d
        self.names = check_names(names, d)
        if mechanism not in MECHANISMS:
            raise MetaCaDIInputError(f"mechanism must be one of {MECHANISMS}; got {mechanism!r}.")
        self.mechanism = mechanism
        self.lengthscale = _check_finite_number(lengthscale, "lengthscale", positive=True)
        self.n_fourier_features = check_positive_int(n_fourier_features, "n_fourier_features")
        self.hidden_units = check_positive_int(hidden_units, "hidden_units")
        n_pilot = check_positive_int(n_pilot, "n_pilot", minimum=10)
        rng = as_rng(seed)
        self.noise_scales = self._resolve_noise_scale(noise_scale, d, rng)

        from .graphs import topological_order

        self.order = topological_order(self.adjacency)
        self.parents = [np.flatnonzero(self.adjacency[:, j]) for j in range(d)]
        self._mechanisms: list[Any] = [
            self._draw_mechanism(len(self.parents[j]), rng) if len(self.parents[j]) else None
            for j in range(d)
        ]
        self._output_offset = np.zeros(d)
        self._output_scale = np.ones(d)
        self.observational_mean = np.zeros(d)
        self.observational_std = np.ones(d)
        with _single_threaded_blas():
            self._calibrate(rng.standard_normal((n_pilot, d)))
        self._rng = rng

    # -- construction -------------------------------------------------------------------------

    @staticmethod
    def _resolve_noise_scale(noise_scale: Any, d: int, rng: np.random.Generator) -> np.ndarray:
        if noise_scale is None:
            return rng.uniform(*DEFAULT_NOISE_RANGE, size=d)
        try:
            scales = None if isinstance(noise_scale, str) else np.asarray(noise_scale, dtype=float)
        except (TypeError, ValueError):
            scales = None
        if scales is None or scales.ndim > 1 or (scales.ndim == 1 and scales.shape[0] != d):
            raise MetaCaDIInputError(
                f"noise_scale must be a positive number or a ({d},) array of them; got {noise_scale!r}."
            )
        scales = np.broadcast_to(scales, (d,)).astype(float)
        if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
            raise MetaCaDIInputError(f"noise_scale must be positive and finite; got {scales}.")
        return scales

    def _draw_mechanism(self, n_parents: int, rng: np.random.Generator):
        if self.mechanism == "linear":
            return _LinearMechanism(n_parents, rng)
        if self.mechanism == "gp":
            return _FourierGPMechanism(n_parents, rng, self.lengthscale, self.n_fourier_features)
        return _RandomMLPMechanism(n_parents, rng, self.hidden_units)

    def _calibrate(self, pilot_noise: np.ndarray) -> None:
        """Fix the input/output standardisation from an observational pilot draw."""
        pilot = np.empty_like(pilot_noise)
        for j in self.order:
            if self._mechanisms[j] is None:
                pilot[:, j] = self.noise_scales[j] * pilot_noise[:, j]
            else:
                raw = self._mechanisms[j](self._standardised_parents(pilot, j))
                spread = raw.std()
                self._output_offset[j] = raw.mean()
                # A flat draw (possible for a GP over a narrow input range) is left unscaled
                # rather than blown up.
                self._output_scale[j] = spread if spread > 1e-8 else 1.0
                pilot[:, j] = self._signal(pilot, j) + self.noise_scales[j] * pilot_noise[:, j]
            self.observational_mean[j] = pilot[:, j].mean()
            self.observational_std[j] = pilot[:, j].std()

    # -- evaluation ---------------------------------------------------------------------------

    def _standardised_parents(self, values: np.ndarray, node: int) -> np.ndarray:
        parents = self.parents[node]
        return (values[:, parents] - self.observational_mean[parents]) / self.observational_std[parents]

    def _signal(self, values: np.ndarray, node: int) -> np.ndarray:
        """``f_j(x_pa(j))`` for every row; zeros for a root."""
        if self._mechanisms[node] is None:
            return np.zeros(values.shape[0])
        raw = self._mechanisms[node](self._standardised_parents(values, node))
        return (raw - self._output_offset[node]) / self._output_scale[node]

    def mechanism_values(self, data: Any) -> np.ndarray:
        """``(n, d)`` matrix of ``f_j(x_pa(j))`` evaluated on the rows of ``data`` (0 for roots).

        ``data - mechanism_values(data)`` are the observational residuals ``eps``.
        """
        from .validation import check_data_matrix

        values, _ = check_data_matrix(data, n_variables=self.n_variables, min_rows=1)
        with _single_threaded_blas():
            return np.stack([self._signal(values, j) for j in range(self.n_variables)], axis=1)

    # -- sampling -----------------------------------------------------------------------------

    def sample(self, n_rows: int, intervention: Intervention | None = None, seed: SeedLike = None) -> np.ndarray:
        """Draw ``n_rows`` i.i.d. rows, observational or under ``intervention``.

        Vectorised over rows; the only loop is over nodes in topological order.

        Args:
            n_rows: number of rows (>= 1).
            intervention: an :class:`Intervention` over the same ``d`` variables, or ``None``.
            seed: the noise seed; ``None`` continues the SCM's own stream (so repeated calls
                give fresh data, reproducible from the constructor seed).

        Returns:
            ``(n_rows, d)`` float64 array.
        """
        return self.sample_batch([intervention], [n_rows], seed=seed)[0]

    def sample_batch(
        self,
        interventions: Sequence[Intervention | None],
        n_rows: int | Sequence[int],
        seed: SeedLike = None,
    ) -> list[np.ndarray]:
        """Draw one dataset per intervention in a single vectorised pass.

        Equivalent to calling :meth:`sample` once per intervention (with a different noise
        draw), but every node is evaluated once for all datasets together, which is much faster
        for many small datasets.

        Args:
            interventions: ``T`` interventions (``None`` = observational).
            n_rows: rows per dataset, one int for all or ``T`` ints.
            seed: see :meth:`sample`.

        Returns:
            list of ``T`` arrays, the ``t``-th of shape ``(n_rows[t], d)``.
        """
        interventions = list(interventions)
        n_tasks = len(interventions)
        if n_tasks == 0:
            return []
        if np.ndim(n_rows) == 0:
            row_counts = [n_rows] * n_tasks
        else:
            row_counts = list(n_rows)
            if len(row_counts) != n_tasks:
                raise MetaCaDIInputError(
                    f"got {len(row_counts)} row counts for {n_tasks} interventions."
                )
        row_counts = [check_positive_int(n, "n_rows") for n in row_counts]
        d = self.n_variables
        hard = np.zeros((n_tasks, d), dtype=bool)
        soft = np.zeros((n_tasks, d), dtype=bool)
        params = np.ones((n_tasks, 6))  # loc, scale, noise_on (1 - constant), gain, shift, noise_gain
        for t, intervention in enumerate(interventions):
            if intervention is None:
                continue
            if not isinstance(intervention, Intervention):
                raise MetaCaDIInputError(
                    f"intervention must be an Intervention or None; got {type(intervention).__name__}."
                )
            if intervention.n_variables != d:
                raise MetaCaDIInputError(
                    f"the intervention covers {intervention.n_variables} variables but the SCM has {d}."
                )
            (hard if intervention.kind == "hard" else soft)[t] = intervention.targets
            params[t] = (
                intervention.loc,
                intervention.scale,
                0.0 if intervention.constant else 1.0,
                intervention.gain,
                intervention.shift,
                intervention.noise_gain,
            )
        rng = self._rng if seed is None else as_rng(seed)
        task_of_row = np.repeat(np.arange(n_tasks), row_counts)
        noise = rng.standard_normal((task_of_row.size, d))
        with _single_threaded_blas():
            values = self._simulate(noise, hard, soft, params, task_of_row)
        return np.split(values, np.cumsum(row_counts)[:-1])

    def _simulate(
        self,
        noise: np.ndarray,
        hard: np.ndarray,
        soft: np.ndarray,
        params: np.ndarray,
        task_of_row: np.ndarray,
    ) -> np.ndarray:
        """Ancestral sampling. ``noise`` ``(n, d)`` standard normal; masks ``(T, d)``; ``params`` ``(T, 6)``."""
        values = np.empty_like(noise)
        row_params = params[task_of_row]  # (n, 6)
        for j in self.order:
            signal = self._signal(values, j)
            column = signal + self.noise_scales[j] * noise[:, j]
            if soft[:, j].any():
                rows = soft[task_of_row, j]
                column[rows] = (
                    row_params[rows, 3] * signal[rows]
                    + row_params[rows, 4] * self.observational_std[j]
                    + row_params[rows, 5] * self.noise_scales[j] * noise[rows, j]
                )
            if hard[:, j].any():
                rows = hard[task_of_row, j]
                column[rows] = self.observational_mean[j] + self.observational_std[j] * (
                    row_params[rows, 0] + row_params[rows, 1] * row_params[rows, 2] * noise[rows, j]
                )
            values[:, j] = column
        return values

    def random_intervention(
        self, n_targets: int = 1, kind: str = "hard", off_target_rate: float = 0.0, seed: SeedLike = None, **params: Any
    ) -> Intervention:
        """:func:`random_intervention` over this SCM's variables (``seed=None`` uses its stream)."""
        return random_intervention(
            self.n_variables, n_targets, kind, off_target_rate, self._rng if seed is None else seed, **params
        )

    def to_networkx(self):
        """The causal graph as a ``networkx.DiGraph`` with the variable names as nodes."""
        from .graphs import to_networkx

        return to_networkx(self.adjacency, self.names)

    def __repr__(self) -> str:
        return (
            f"SCM({self.n_variables} variables, {int(self.adjacency.sum())} edges, "
            f"mechanism={self.mechanism!r}, noise scales in "
            f"[{self.noise_scales.min():.2g}, {self.noise_scales.max():.2g}])"
        )
