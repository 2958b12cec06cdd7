""""What if" predictions: samples of ``p(x | do(x_S = v))`` from a fitted MetaCaDI model.

The learned model is a distribution over graphs ``q_phi(A)`` plus, for every variable, an
observational mechanism ``f_j^obs`` and a noise scale ``sigma_j`` (paper eq. 2 with ``r = 0``),
all in the model's standardised units ``z = (x - mean) / sd`` of the pooled meta-training data.
A hard intervention ``do(x_S = v)`` is simulated by

1. drawing a graph ``A ~ q_phi(A)`` (one per sample, so the result is averaged over the graph
   posterior — Bayesian model averaging over structures);
2. ancestral sampling through the learned mechanisms with ``A``:
   ``z_j = f_j^obs(A[:, j] ⊙ z) + sigma_j eps_j``, ``eps_j ~ N(0, 1)``, and ``z_j`` clamped to
   the standardised do-value for ``j in S`` (the parents of ``j`` are cut);
3. un-standardising: ``x = z * sd + mean``.

Step 2 runs as ``d`` synchronous sweeps over all variables with the noise held fixed: after
sweep ``k`` every variable whose longest path from a root has length ``< k`` has its final
value, so ``d`` sweeps give exact ancestral samples for every DAG at once, batched over graphs
(no per-graph topological sort).

What the samples do *not* include: uncertainty about the mechanisms themselves (``f_j^obs`` and
``sigma_j`` are point estimates), and any effect the model never saw (values of ``v`` far outside
the training data are extrapolations of the MLPs). Interventional mechanisms ``f^int`` are
task-specific (fitted per dataset by ridge regression), so only hard interventions are
predicted here.

**Two ways to draw the noise** (``noise=``):

* ``"gaussian"`` (the default): ``eps_j ~ N(0, 1)`` scaled by the learned ``sigma_j``, as
  above. Every error of a mechanism and of its noise scale enters the samples: a root's marginal is
  ``N(f_j^obs(0), sigma_j^2)`` however skewed the data are, and a non-descendant of the
  intervened variable is re-sampled through every mechanism above it, so even variables that
  ``do`` cannot touch come out biased.
* ``"residuals"`` (abduction, the additive-noise model's own answer, Pearl's three steps on each
  observed unit): draw an observed observational row ``z`` (one per sample), infer its noise
  under the sampled graph, ``e_j = z_j - f_j^obs(A[:, j] ⊙ z)``, then clamp ``z_S`` and
  propagate ``z'_j = f_j^obs(A[:, j] ⊙ z') + e_j``. A variable whose ancestors the intervention
  does not reach keeps its observed value exactly, so non-descendants keep their empirical
  distribution; for a descendant the prediction is
  ``E[z_j] + E[f_j^obs(pa'_j) - f_j^obs(pa_j)]``, the observed mean moved by the mechanism's
  *change*, so a mechanism's error that is the same at the observed and the intervened parent
  values cancels. It needs observational rows: the rows of the training tasks labelled
  ``kind="observational"``, which :meth:`MetaCaDI.fit <metacadi.model.MetaCaDI.fit>` keeps
  (``observational_rows_``), or ``data=`` given here.

Measured on tuning seeds 100-102 (``benchmarks/whatif.py --first-seed 100``, recorded in
``benchmarks/results/sweep-whatif-noise.md``), the residuals did *not* pay, and ``"gaussian"``
stays the default: with the 200 control rows of the benchmark's systems, a non-descendant's mean
is the mean of 200 observed rows, whose sampling error (about 0.07 observational sd, a sizeable
fraction of a noise sd) is larger than the error of mechanisms fitted to every training row (median error of
non-descendants 0.13 against 0.05 noise sd; descendants 0.29 against 0.27). Residuals are the
right tool when the question is about a given population of units (``data=``: "these cells,
had X3 been set to 2"); their sampling error shrinks as the control rows grow.

For a simulated system, :func:`true_intervention` samples the simulator's own ``do``
distribution, the ground truth to hold the prediction against.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
import torch

from .errors import MetaCaDIInputError
from .validation import check_adjacency, check_positive_int

__all__ = ["NOISE_MODES", "intervention_summary", "predict_intervention", "true_intervention"]

#: accepted values of ``predict_intervention(noise=...)``
NOISE_MODES: tuple[str, ...] = ("gaussian", "residuals")


def _check_do(do: Any, names: list[str]) -> dict[int, float]:
    """``{column index: value}`` from a ``{name: value}`` mapping, with clear errors."""
    if not isinstance(do, Mapping):
        raise MetaCaDIInputError(
            f"do must be a mapping from variable name to value, e.g. {{{names[0]!r}: 1.0}}; got {type(do).__name__}."
        )
    unknown = [str(name) for name in do if str(name) not in names]
    if unknown:
        raise MetaCaDIInputError(f"do names unknown variables {unknown}; the model's variables are {names}.")
    clamped: dict[int, float] = {}
    for name, value in do.items():
        if isinstance(value, bool) or not isinstance(value, (Real, np.number)):
            raise MetaCaDIInputError(f"do[{name!r}] must be a number; got {value!r}.")
        if not np.isfinite(float(value)):
            raise MetaCaDIInputError(f"do[{name!r}] must be finite; got {value!r}.")
        clamped[names.index(str(name))] = float(value)
    return clamped


def _graphs(model: Any, n_samples: int, seed: int, graph: Any) -> np.ndarray:
    """``(n_samples, d, d)`` adjacency matrices: posterior samples or one fixed graph repeated."""
    d = model.n_variables_
    if graph is None:
        return model.graph_posterior().sample_graphs(n_samples, seed=seed)
    if isinstance(graph, pd.DataFrame):
        if list(map(str, graph.index)) != model.names_ or list(map(str, graph.columns)) != model.names_:
            raise MetaCaDIInputError(f"graph's index and columns must be the model's variables {model.names_} in order.")
        graph = graph.to_numpy()
    adjacency = check_adjacency(graph, name="graph")
    if adjacency.shape != (d, d):
        raise MetaCaDIInputError(f"graph must be ({d}, {d}) for this model; got {adjacency.shape}.")
    return np.broadcast_to(adjacency, (n_samples, d, d))


def _abduction_rows(model: Any, noise: str, data: Any) -> torch.Tensor | None:
    """Observational rows ``(n, d)`` (original units, float32) to abduct the noise from, or
    ``None`` for Gaussian noise, following ``noise`` (see :func:`predict_intervention`)."""
    if noise not in NOISE_MODES:
        raise MetaCaDIInputError(f"noise must be one of {list(NOISE_MODES)}; got {noise!r}.")
    if noise == "gaussian":
        if data is not None:
            raise MetaCaDIInputError('data= gives observational rows for noise="residuals"; noise="gaussian" does not use it.')
        return None
    if data is not None:
        return torch.tensor(np.ascontiguousarray(model._check_new_data(data)), dtype=torch.float32)
    stored = getattr(model, "observational_rows_", None)
    if stored is not None and len(stored) >= 2:
        return stored
    raise MetaCaDIInputError(
        'noise="residuals" needs observational rows: pass data= (rows of an observational experiment), or fit '
        'the model with training tasks labelled kind="observational".'
    )


def predict_intervention(
    model: Any,
    do: Mapping[str, float],
    *,
    n_samples: int = 1000,
    seed: int = 0,
    graph: Any = None,
    summary: bool = False,
    level: float = 0.9,
    noise: str = "gaussian",
    data: Any = None,
) -> pd.DataFrame:
    """Sample the interventional distribution ``p(x | do(x_S = v))`` of a fitted model.

    Args:
        model: a fitted :class:`~metacadi.model.MetaCaDI` (or a subclass: the MAML ablations).
        do: ``{variable name: value}`` in the data's original units (hard interventions). An
            empty mapping gives the model's observational distribution.
        n_samples: rows to draw (one graph from ``q_phi(A)`` per row).
        seed: seeds the graphs and the noise; the same seed gives the same samples.
        graph: optional fixed ``(d, d)`` adjacency (array or DataFrame with the model's names)
            used for every sample instead of the graph posterior.
        summary: return :func:`intervention_summary` of the samples instead of the samples.
        level: central probability of the summary's band (default 0.9: 5 % and 95 % quantiles).
        noise: ``"gaussian"`` (default) or ``"residuals"`` (see the module docstring):
            ``"residuals"`` starts each sample from an observed observational row and keeps its
            inferred noise (abduction).
        data: observational rows ``(n, d)`` (array, tensor or DataFrame with the model's
            variable names, in the data's original units) for ``"residuals"``; default: the
            model's ``observational_rows_``, the rows of its training tasks labelled
            observational.
    Returns:
        ``(n_samples, d)`` DataFrame of samples with the model's variable names (the clamped
        columns equal their do-values exactly), or the summary (see ``summary``).
    Raises:
        MetaCaDIInputError: an unknown variable, a non-numeric or non-finite value, a bad
            ``n_samples`` or ``graph``, an unknown ``noise``, ``noise="residuals"`` without
            observational rows, or bad ``data``. NotFittedError: the model is not fitted.
    """
    model._check_fitted()
    names = list(model.names_)
    clamped = _check_do(do, names)
    n_samples = check_positive_int(n_samples, "n_samples")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise MetaCaDIInputError(f"seed must be an integer; got {seed!r}.")
    if not 0.0 < float(level) < 1.0:
        raise MetaCaDIInputError(f"level must be in (0, 1); got {level!r}.")
    d = len(names)
    device = model.device
    rows = _abduction_rows(model, noise, data)
    adjacency = torch.as_tensor(np.ascontiguousarray(_graphs(model, n_samples, int(seed), graph)), dtype=torch.float32, device=device)
    likelihood = model.network_.likelihood
    mean, std = model.data_mean_.to(device), model.data_std_.to(device)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    index = torch.tensor(sorted(clamped), dtype=torch.long, device=device)
    values = torch.tensor([clamped[i] for i in sorted(clamped)], dtype=torch.float32, device=device)
    standardised_do = (values - mean[index]) / std[index]
    with torch.no_grad():
        if rows is None:
            z = torch.zeros((n_samples, 1, d), device=device)
            exogenous = likelihood.noise_scale().reshape(1, 1, d) * torch.randn((n_samples, 1, d), generator=generator, device=device)
        else:
            # abduction: each sample is an observed unit, its noise inferred under its own graph
            standardised_rows = (rows.to(device) - mean) / std
            pick = torch.randint(len(standardised_rows), (n_samples,), generator=generator, device=device)
            z = standardised_rows[pick].unsqueeze(1)
            exogenous = z - likelihood.observational_mean(z, adjacency)
        z = z.clone()
        z[..., index] = standardised_do
        for _ in range(d):
            z = likelihood.observational_mean(z, adjacency) + exogenous
            z[..., index] = standardised_do
        samples = (z[:, 0, :] * std + mean).cpu().numpy().astype(np.float64)
    # exact do-values, not their round trip through float32 standardisation
    for column, value in clamped.items():
        samples[:, column] = value
    if not np.isfinite(samples).all():
        raise FloatingPointError("the learned mechanisms produced non-finite samples for this intervention.")
    frame = pd.DataFrame(samples, columns=names)
    return intervention_summary(frame, level) if summary else frame


def intervention_summary(samples: pd.DataFrame, level: float = 0.9) -> pd.DataFrame:
    """Per-variable mean, standard deviation and central ``level`` band of samples.

    Returns:
        DataFrame indexed by variable with columns ``mean``, ``sd``, ``lower``, ``median``,
        ``upper`` (``lower``/``upper``: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles).
    """
    if not 0.0 < float(level) < 1.0:
        raise MetaCaDIInputError(f"level must be in (0, 1); got {level!r}.")
    tail = (1.0 - float(level)) / 2.0
    return pd.DataFrame({
        "mean": samples.mean(),
        "sd": samples.std(ddof=1) if len(samples) > 1 else samples.std(ddof=0),
        "lower": samples.quantile(tail),
        "median": samples.median(),
        "upper": samples.quantile(1.0 - tail),
    })


def true_intervention(scm: Any, variable: str, value: float, *, n_samples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Samples of a simulator's true ``p(x | do(variable = value))``, to compare with
    :func:`predict_intervention` on the system a model was trained on.

    Args:
        scm: a :class:`~metacadi.scm.SCM`.
        variable: one of ``scm.names``.
        value: the do-value in the data's original units (the SCM's constant hard intervention
            ``x_j = mu_j + s_j loc`` takes it in its standardised units; converted here).
        n_samples: rows to draw; seed: seeds the rows.
    Returns:
        ``(n_samples, d)`` DataFrame with ``scm.names`` as columns; ``variable``'s column is
        ``value`` (up to rounding).
    """
    from .scm import Intervention

    names = [str(name) for name in scm.names]
    if str(variable) not in names:
        raise MetaCaDIInputError(f"variable {variable!r} is not one of the system's variables {names}.")
    if isinstance(value, bool) or not isinstance(value, (Real, np.number)) or not np.isfinite(float(value)):
        raise MetaCaDIInputError(f"value must be a finite number; got {value!r}.")
    n_samples = check_positive_int(n_samples, "n_samples")
    node = names.index(str(variable))
    loc = (float(value) - scm.observational_mean[node]) / scm.observational_std[node]
    intervention = Intervention.at(node, scm.n_variables, "hard", constant=True, loc=float(loc))
    return pd.DataFrame(scm.sample(n_samples, intervention, seed=seed), columns=names)
