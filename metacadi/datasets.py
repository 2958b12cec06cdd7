"""Real interventional data shipped with the package (works offline, no extra dependency).

:func:`sachs` loads the flow-cytometry measurements of Sachs et al. (2005): 11 phosphorylated
proteins and phospholipids of the T-cell signalling network, measured in single human immune
cells under nine experimental conditions (7466 cells). It is the standard real-data benchmark
for causal discovery with interventions.

The two CSV files in ``metacadi/data/`` are byte-for-byte copies of
``cdt/data/resources/cyto_full_data.csv`` and ``cyto_full_target.csv`` from the
``cdt`` 0.6.0 wheel (Causal Discovery Toolbox, MIT licence); ``metacadi/data/README.md`` gives the
attribution. Their SHA-256 checksums are checked every time they are read, so a modified or
truncated copy raises :class:`~metacadi.errors.MetaCaDIInputError` instead of giving silently
different numbers. ``cdt`` itself is never imported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from .errors import MetaCaDIInputError
from .tasks import Task, TaskSet

__all__ = [
    "SACHS_CHECKSUMS",
    "SACHS_EXPERIMENTS",
    "SachsExperiment",
    "sachs",
    "sachs_consensus_graph",
    "sachs_frame",
]

#: SHA-256 of the shipped files (as extracted from the cdt 0.6.0 wheel).
SACHS_CHECKSUMS: dict[str, str] = {
    "cyto_full_data.csv": "fc331dcd0bc1d8765986b88cd1d23dd5a3f52e4ffc299fdf96de9d522ddf01aa",
    "cyto_full_target.csv": "398bc137b2669432ef12e0c57d3783fa876c1c7e2377577d3e75410f085485f6",
}


@dataclass(frozen=True)
class SachsExperiment:
    """One of the nine experimental conditions of Sachs et al. (2005).

    Attributes:
        label: short name used as the experiment label.
        reagents: what was added to the cells.
        n_rows: number of cells measured.
        targets: annotated (intended) target variables, as named in the data; empty for the two
            general stimulations, which the literature pools as the observational reference.
        effect: what the reagent does to its target.
    """

    label: str
    reagents: str
    n_rows: int
    targets: tuple[str, ...]
    effect: str


#: The nine experiments in the order their rows appear in the file.
SACHS_EXPERIMENTS: tuple[SachsExperiment, ...] = (
    SachsExperiment("CD3/CD28", "anti-CD3 + anti-CD28", 853, (), "general T-cell stimulation"),
    SachsExperiment("CD3/CD28+ICAM-2", "anti-CD3 + anti-CD28 + ICAM-2", 902, (), "general stimulation (enhances LFA-1 signalling)"),
    SachsExperiment("Akt inhibitor", "anti-CD3 + anti-CD28 + Akt inhibitor", 911, ("pakts473",), "inhibits Akt activity"),
    SachsExperiment("G0076", "anti-CD3 + anti-CD28 + G0076", 723, ("PKC",), "inhibits PKC activity"),
    SachsExperiment("psitectorigenin", "anti-CD3 + anti-CD28 + psitectorigenin", 810, ("PIP2",), "inhibits PIP2 production"),
    SachsExperiment("U0126", "anti-CD3 + anti-CD28 + U0126", 799, ("pmek",), "inhibits MEK activity"),
    SachsExperiment("LY294002", "anti-CD3 + anti-CD28 + LY294002", 848, ("PIP3",), "inhibits PI3K (PIP3 production)"),
    SachsExperiment("PMA", "PMA (no anti-CD3/CD28)", 913, ("PKC",), "activates PKC"),
    SachsExperiment("β2cAMP", "β2cAMP (no anti-CD3/CD28)", 707, ("PKA",), "activates PKA"),
)

#: Edge of the consensus graph dropped to make it acyclic (see :func:`sachs_consensus_graph`).
_FEEDBACK_EDGE = ("PIP3", "plcg")


def _data_directory():
    """Where the packaged data files live (a ``Traversable``; works from a wheel or a checkout)."""
    return resources.files("metacadi") / "data"


def _read_verified(filename: str) -> bytes:
    """The bytes of a shipped data file, after checking its SHA-256."""
    resource = _data_directory() / filename
    try:
        payload = resource.read_bytes()
    except FileNotFoundError as exc:
        raise MetaCaDIInputError(
            f"the packaged data file metacadi/data/{filename} is missing; reinstall metacadi."
        ) from exc
    digest = hashlib.sha256(payload).hexdigest()
    if digest != SACHS_CHECKSUMS[filename]:
        raise MetaCaDIInputError(
            f"metacadi/data/{filename} failed its checksum (sha256 {digest[:12]}..., expected "
            f"{SACHS_CHECKSUMS[filename][:12]}...): the file was modified or truncated; reinstall metacadi."
        )
    return payload


def sachs_frame(log: bool = True) -> pd.DataFrame:
    """All 7466 cells as one DataFrame: the 11 measured variables plus an ``experiment`` column.

    Args:
        log: natural logarithm of the measurements (the usual transform: the raw intensities
            are heavy-tailed; ``log(x)`` is close to Gaussian within an experiment). The file
            holds no zeros, so the logarithm is finite everywhere.
    Returns:
        DataFrame with the variables in file order, then ``experiment`` (categorical, the nine
        labels of :data:`SACHS_EXPERIMENTS` in row order).
    """
    import io

    frame = pd.read_csv(io.BytesIO(_read_verified("cyto_full_data.csv")))
    sizes = [experiment.n_rows for experiment in SACHS_EXPERIMENTS]
    if len(frame) != sum(sizes):
        raise MetaCaDIInputError(f"cyto_full_data.csv has {len(frame)} rows; expected {sum(sizes)}.")
    values = frame.to_numpy(dtype=np.float64)
    if log:
        if (values <= 0).any():
            raise MetaCaDIInputError("cyto_full_data.csv holds non-positive values; cannot take logarithms.")
        values = np.log(values)
    result = pd.DataFrame(values, columns=[str(c) for c in frame.columns])
    labels = [experiment.label for experiment in SACHS_EXPERIMENTS]
    result["experiment"] = pd.Categorical(np.repeat(labels, sizes), categories=labels, ordered=True)
    return result


def sachs_consensus_graph(acyclic: bool = True) -> pd.DataFrame:
    """The consensus signalling network as a ``(11, 11)`` 0/1 DataFrame (rows = causes).

    The file lists 18 edges from the literature (Sachs et al. 2005, Fig. 2). Three of them form
    the feedback loop ``plcg -> PIP2 -> PIP3 -> plcg``, so the graph is not a DAG. With
    ``acyclic=True`` (default) the edge ``PIP3 -> plcg`` is dropped, giving a 17-edge DAG that
    DAG metrics (SID) can use; ``acyclic=False`` returns all 18 edges.
    """
    import io

    names = list(pd.read_csv(io.BytesIO(_read_verified("cyto_full_data.csv")), nrows=0).columns)
    edges = pd.read_csv(io.BytesIO(_read_verified("cyto_full_target.csv")))
    adjacency = pd.DataFrame(0, index=names, columns=names, dtype=np.int64)
    for cause, effect in zip(edges["Cause"], edges["Effect"]):
        if cause not in adjacency.index or effect not in adjacency.columns:
            raise MetaCaDIInputError(f"cyto_full_target.csv names an unknown variable in {cause} -> {effect}.")
        adjacency.loc[cause, effect] = 1
    if acyclic:
        adjacency.loc[_FEEDBACK_EDGE[0], _FEEDBACK_EDGE[1]] = 0
    return adjacency


def sachs(log: bool = True) -> TaskSet:
    """Sachs et al. (2005) flow cytometry as a :class:`~metacadi.tasks.TaskSet` of nine experiments.

    Each :class:`~metacadi.tasks.Task` is one experimental condition (rows in file order):

    ===================  ====  ==========  =================================
    experiment           rows  target      reagent effect
    ===================  ====  ==========  =================================
    CD3/CD28              853  (none)      general stimulation (reference)
    CD3/CD28+ICAM-2       902  (none)      general stimulation (reference)
    Akt inhibitor         911  pakts473    inhibits Akt activity
    G0076                 723  PKC         inhibits PKC activity
    psitectorigenin       810  PIP2        inhibits PIP2 production
    U0126                 799  pmek        inhibits MEK activity
    LY294002              848  PIP3        inhibits PI3K (PIP3 production)
    PMA                   913  PKC         activates PKC
    β2cAMP                707  PKA         activates PKA
    ===================  ====  ==========  =================================

    Target annotations follow the literature. Sachs et al. (2005) list each reagent's primary
    target. Joint causal inference (Mooij, Magliacane & Claassen 2020, "Joint Causal Inference
    from Multiple Contexts", JMLR 21(99), §5) pools the two general stimulations as the
    reference regime and uses the remaining reagents as context variables whose direct effects
    are their intended targets. IGSP (Wang, Solus, Yang & Uhler 2017, NeurIPS) and UT-IGSP
    (Squires, Wang & Uhler 2020, "Permutation-based causal structure learning with unknown
    intervention targets", UAI) take the 1755 cells of the two general stimulations as
    observational data and the Akt inhibitor (Akt), G0076 (PKC), psitectorigenin (PIP2), U0126
    (MEK) and LY294002 (PIP3) experiments as interventions with those targets. PMA and β2cAMP
    activate PKC and PKA (Sachs et al. 2005); they were run *without* the anti-CD3/CD28
    stimulation, so every variable's distribution moves in them, not only their targets'.

    Caveats every user of these labels should know: the Akt inhibitor and U0126 inhibit the
    *activity* of Akt and MEK, not their phosphorylation, so the measured ``pakts473`` and
    ``pmek`` need not shift (the effect shows in their children); and a reagent may act on
    variables beyond its annotated target (UT-IGSP reports such off-target effects).

    The two general stimulations get ``kind="observational"`` (all-zero targets); the seven
    others ``kind="soft"`` (a drug changes a mechanism, it does not set a value). Each task's
    ``meta`` holds ``experiment``, ``reagents``, ``effect`` and ``index`` (0-8).
    ``TaskSet.graph`` is the 17-edge acyclic consensus graph of :func:`sachs_consensus_graph`.

    Args:
        log: use ``log(x)`` of the measurements (default, as is usual for these data).
    Returns:
        :class:`~metacadi.tasks.TaskSet` of 9 tasks over 11 variables.

    References:
        K. Sachs, O. Perez, D. Pe'er, D. A. Lauffenburger, G. P. Nolan (2005). Causal
        protein-signaling networks derived from multiparameter single-cell data. Science 308.
    """
    frame = sachs_frame(log=log)
    names = tuple(c for c in frame.columns if c != "experiment")
    values = frame.loc[:, list(names)].to_numpy()
    tasks = []
    start = 0
    for index, experiment in enumerate(SACHS_EXPERIMENTS):
        rows = values[start : start + experiment.n_rows]
        start += experiment.n_rows
        unknown = sorted(set(experiment.targets) - set(names))
        if unknown:
            raise MetaCaDIInputError(f"annotated targets {unknown} are not variables of the data {list(names)}.")
        targets = np.array([name in experiment.targets for name in names], dtype=bool)
        kind = "soft" if experiment.targets else "observational"
        meta = {"experiment": experiment.label, "reagents": experiment.reagents, "effect": experiment.effect, "index": index}
        tasks.append(Task(rows, targets, kind, names, targets, meta))
    graph = sachs_consensus_graph(acyclic=True).loc[list(names), list(names)].to_numpy()
    return TaskSet(tasks, graph=graph)
