"""Baselines behind one interface: ``Baseline.fit(tasks) -> BaselineResult``.

* :class:`DistributionShift`: non-causal reference (marginal shift per variable; no graph).
* :class:`JCIPC`: PC with a context variable per experiment (JCI), via causal-learn.
* :class:`UTIGSP`: permutation search with unknown-target invariance tests (numpy).
* :class:`DCDIG`: DCDI-G with learned intervention masks (torch).
* :class:`BaCaDI`: DiBS-style SVGD particles over graphs and targets (torch, linear Gaussian).

Every baseline sees all given tasks at once and returns one row of target scores per task.
"""

from .bacadi import BaCaDI
from .base import Baseline, BaselineResult, acyclic_projection, score_from_pvalue
from .dcdi import DCDIG
from .distribution_shift import DistributionShift
from .jci_pc import JCIPC
from .ut_igsp import UTIGSP

#: name -> class, for runners that pick baselines by name
BASELINES: dict[str, type[Baseline]] = {
    "distribution-shift": DistributionShift,
    "jci-pc": JCIPC,
    "ut-igsp": UTIGSP,
    "dcdi-g": DCDIG,
    "bacadi": BaCaDI,
}

__all__ = [
    "BASELINES",
    "BaCaDI",
    "Baseline",
    "BaselineResult",
    "DCDIG",
    "DistributionShift",
    "JCIPC",
    "UTIGSP",
    "acyclic_projection",
    "score_from_pvalue",
]
