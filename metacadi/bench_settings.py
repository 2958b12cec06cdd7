"""Named data settings of the benchmark: which interventions (and mechanisms, graphs) a run simulates.

A setting is chosen by name (``python -m metacadi.bench --setting soft-subtle``) and turned into
the keyword arguments of :func:`~metacadi.tasks.make_meta_protocol` (``gp-anm`` data) or
:func:`~metacadi.sergio.make_sergio_protocol` (``sergio`` data) by :func:`setting_protocol`.

Additive-noise (``gp-anm``) settings, ``[<mechanism>-][<graph>-]<regime>``: the optional prefixes
pick the mechanism (``gp`` default, ``mlp``, ``linear``) and the graph family (``er`` default,
``sf``), e.g. ``mlp-sf-soft-scale``. Regimes (``s_j``: observational sd, ``sigma_j``: noise sd of
the target; see :mod:`metacadi.scm`):

``hard``                 ``x_j ~ N(mu_j + 2 s_j, s_j^2)``, parents cut (easy)
``soft``                 ``x_j = 0.5 f_j + 1.0 s_j + eps_j`` (easy)
``hard-offtarget``       ``hard``, every other variable an extra target with probability 0.3
``hard-mean-preserving`` ``x_j ~ N(mu_j, (0.5 s_j)^2)``: parents cut, mean kept, spread halved
``soft-subtle``          ``x_j = 0.5 f_j + 0.3 s_j + 3 eps_j``: weaker mechanism, a mean shift
                         of at most about one (new) noise sd, noisier
``soft-scale``           ``x_j = f_j + 3 eps_j``: scale-only (variance change, no mean shift)
``soft-scale-offtarget`` ``soft-scale`` with off-target rate 0.3

SERGIO settings (:mod:`metacadi.sergio`): ``hard`` = knockouts, ``soft`` = knock-downs to 25 %
production, ``knockdown-mild`` = knock-downs to 50 %, ``knockout-dropout`` = knockouts with 80 %
dropout (observational zeros are so common that an all-zero column no longer gives a knockout
away), ``knockdown-dropout`` = 50 % knock-downs with 60 % dropout.

Difficulty is measured, not assumed: :func:`difficulty` labels a setting by the shift score's
Intv-AUROC (see :mod:`metacadi.reference_scores`), which every benchmark table reports.
"""

from __future__ import annotations

from typing import Any

from .errors import MetaCaDIInputError

__all__ = ["ANM_REGIMES", "SERGIO_SETTINGS", "difficulty", "setting_names", "setting_protocol"]

#: regime name -> extra arguments of make_meta_protocol
ANM_REGIMES: dict[str, dict[str, Any]] = {
    "hard": dict(intervention="hard"),
    "soft": dict(intervention="soft"),
    "hard-offtarget": dict(intervention="hard", off_target_rate=0.3),
    "hard-mean-preserving": dict(intervention="hard", intervention_params=dict(loc=0.0, scale=0.5)),
    "soft-subtle": dict(intervention="soft", intervention_params=dict(gain=0.5, shift=0.3, noise_gain=3.0)),
    "soft-scale": dict(intervention="soft", intervention_params=dict(gain=1.0, shift=0.0, noise_gain=3.0)),
    "soft-scale-offtarget": dict(
        intervention="soft", off_target_rate=0.3, intervention_params=dict(gain=1.0, shift=0.0, noise_gain=3.0)
    ),
}
ANM_MECHANISMS: tuple[str, ...] = ("gp", "mlp", "linear")
ANM_GRAPHS: tuple[str, ...] = ("er", "sf")

#: setting name -> extra arguments of make_sergio_protocol
SERGIO_SETTINGS: dict[str, dict[str, Any]] = {
    "hard": dict(intervention="knockout"),
    "soft": dict(intervention="knockdown"),
    "knockdown-mild": dict(intervention="knockdown", knockdown_factor=0.5),
    "knockout-dropout": dict(intervention="knockout", dropout_rate=0.8),
    "knockdown-dropout": dict(intervention="knockdown", knockdown_factor=0.5, dropout_rate=0.6),
}


def setting_names(data: str) -> list[str]:
    """The base setting names of a data source (``gp-anm`` names also take mechanism/graph prefixes)."""
    if data == "gp-anm":
        return list(ANM_REGIMES)
    if data == "sergio":
        return list(SERGIO_SETTINGS)
    raise MetaCaDIInputError(f"no named settings for data {data!r}; settings exist for 'gp-anm' and 'sergio'.")


def _parse_anm(name: str) -> tuple[str, str, str] | None:
    tokens = name.split("-")
    mechanism, graph = "gp", "er"
    if tokens and tokens[0] in ANM_MECHANISMS:
        mechanism, tokens = tokens[0], tokens[1:]
    if tokens and tokens[0] in ANM_GRAPHS:
        graph, tokens = tokens[0], tokens[1:]
    regime = "-".join(tokens)
    return (mechanism, graph, regime) if regime in ANM_REGIMES else None


def is_setting(data: str, name: str) -> bool:
    """Whether ``name`` is a setting of ``data``."""
    if data == "gp-anm":
        return _parse_anm(name) is not None
    if data == "sergio":
        return name in SERGIO_SETTINGS
    return False


def setting_protocol(data: str, name: str) -> dict[str, Any]:
    """Keyword arguments of the protocol simulator for setting ``name`` of ``data``.

    ``gp-anm``: arguments of :func:`~metacadi.tasks.make_meta_protocol` (``mechanism``,
    ``graph_family``, ``intervention``, and where the regime has them ``off_target_rate``,
    ``intervention_params``); ``sergio``: of :func:`~metacadi.sergio.make_sergio_protocol`.
    Raises :class:`~metacadi.errors.MetaCaDIInputError` naming the valid settings otherwise.
    """
    if data == "gp-anm":
        parsed = _parse_anm(name)
        if parsed is not None:
            mechanism, graph, regime = parsed
            options = {k: (dict(v) if isinstance(v, dict) else v) for k, v in ANM_REGIMES[regime].items()}
            return dict(mechanism=mechanism, graph_family=graph, **options)
    elif data == "sergio" and name in SERGIO_SETTINGS:
        return dict(SERGIO_SETTINGS[name])
    valid = setting_names(data)
    extra = " (optionally prefixed by a mechanism gp/mlp/linear and a graph er/sf, e.g. 'mlp-sf-soft-scale')" if data == "gp-anm" else ""
    raise MetaCaDIInputError(f"intervention must be one of the {data} settings {valid}{extra}; got {name!r}.")


def difficulty(shift_auroc: float) -> str:
    """Label of a setting by the shift score's Intv-AUROC: ``easy`` (>= 0.95), ``medium`` (>= 0.85), ``hard``."""
    if shift_auroc != shift_auroc:  # NaN
        return "unmeasured"
    if shift_auroc >= 0.95:
        return "easy"
    return "medium" if shift_auroc >= 0.85 else "hard"
