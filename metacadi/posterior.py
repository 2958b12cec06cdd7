"""Posterior: what MetaCaDI says about a dataset, in friendly types.

``edge_probs`` is the Monte-Carlo edge posterior ``P(i -> j)`` under ``q_phi(A)`` (a
``d x d`` DataFrame, rows = causes, columns = effects); ``target_probs`` the probability that each
variable was intervened on in the adapted dataset, ``E_{q(A)}[sigmoid(gamma_j)]`` (a Series), or
``None`` for the graph posterior alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import networkx as nx
import numpy as np
import pandas as pd

from .errors import MetaCaDIInputError
from .graphs import to_networkx


class Posterior:
    """Edge and intervention-target probabilities with node names.

    Attributes:
        edge_probs: ``(d, d)`` DataFrame, ``edge_probs.loc[a, b] = P(a -> b)``.
        target_probs: ``(d,)`` Series ``P(r_j = 1 | data)``, or ``None``.
        n_rows: rows of the dataset the posterior was adapted to (``0`` for the graph alone).

    Read-only. :meth:`from_arrays` keeps plain arrays and builds the DataFrame and Series on
    first access, so adapting many datasets does not pay for pandas objects nobody reads.
    """

    __slots__ = ("_edge_probs", "_target_probs", "_names", "n_rows", "_graph_sampler")

    def __init__(
        self,
        edge_probs: pd.DataFrame,
        target_probs: pd.Series | None,
        n_rows: int = 0,
        _graph_sampler: Callable[[int, int | None], np.ndarray] | None = None,
    ) -> None:
        object.__setattr__(self, "_edge_probs", edge_probs)
        object.__setattr__(self, "_target_probs", target_probs)
        object.__setattr__(self, "_names", None)
        object.__setattr__(self, "n_rows", n_rows)
        object.__setattr__(self, "_graph_sampler", _graph_sampler)

    @classmethod
    def from_arrays(
        cls,
        edge_probs: np.ndarray,
        target_probs: np.ndarray | None,
        names: Sequence[str],
        n_rows: int = 0,
        graph_sampler: Callable[[int, int | None], np.ndarray] | None = None,
    ) -> "Posterior":
        """A posterior from ``(d, d)`` and ``(d,)`` arrays (not copied: pass arrays nobody
        modifies) and node names; the pandas objects are built when first read."""
        posterior = cls(edge_probs, target_probs, n_rows, graph_sampler)  # type: ignore[arg-type]
        object.__setattr__(posterior, "_names", list(names))
        return posterior

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Posterior is read-only; cannot set {name!r}.")

    def __getstate__(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    @property
    def edge_probs(self) -> pd.DataFrame:
        value = self._edge_probs
        if isinstance(value, np.ndarray):
            value = pd.DataFrame(np.array(value, dtype=np.float64), index=self._names, columns=self._names)
            object.__setattr__(self, "_edge_probs", value)
        return value

    @property
    def target_probs(self) -> pd.Series | None:
        value = self._target_probs
        if isinstance(value, np.ndarray):
            value = pd.Series(np.array(value, dtype=np.float64), index=self._names, name="target_probability")
            object.__setattr__(self, "_target_probs", value)
        return value

    @property
    def names(self) -> list[str]:
        return list(self._names) if self._names is not None else list(self.edge_probs.columns)

    @property
    def n_variables(self) -> int:
        return len(self._names) if self._names is not None else self.edge_probs.shape[0]

    def sample_graphs(self, n_samples: int = 100, seed: int | None = None) -> np.ndarray:
        """``(n_samples, d, d)`` int adjacency matrices drawn from ``q_phi(A)`` (each a DAG)."""
        if self._graph_sampler is None:
            raise MetaCaDIInputError("this Posterior was built without a graph sampler.")
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise MetaCaDIInputError(f"n_samples must be a positive integer; got {n_samples!r}.")
        return self._graph_sampler(int(n_samples), seed)

    def to_networkx(self, threshold: float = 0.5) -> nx.DiGraph:
        """Graph of the edges with ``P(i -> j) >= threshold``; each edge has a ``probability``
        attribute and each node a ``target_probability`` attribute (when known)."""
        if not 0.0 <= threshold <= 1.0:
            raise MetaCaDIInputError(f"threshold must be in [0, 1]; got {threshold}.")
        probs = self.edge_probs.to_numpy()
        kept = np.where(probs >= max(threshold, 1e-12), probs, 0.0)
        graph = to_networkx(kept > 0, self.names, weights=kept, weight_name="probability")
        if self.target_probs is not None:
            nx.set_node_attributes(graph, self.target_probs.to_dict(), "target_probability")
        return graph

    def edge_table(self, threshold: float = 0.0) -> pd.DataFrame:
        """Long table of edges (``cause``, ``effect``, ``probability``), most probable first."""
        table = self.edge_probs.stack().rename("probability").reset_index()
        table.columns = ["cause", "effect", "probability"]
        table = table[(table.cause != table.effect) & (table.probability >= threshold)]
        return table.sort_values("probability", ascending=False, kind="stable").reset_index(drop=True)

    def top_targets(self, k: int = 3) -> pd.Series:
        """The ``k`` most probable intervention targets."""
        if self.target_probs is None:
            raise MetaCaDIInputError("this Posterior has no target probabilities (no dataset was adapted).")
        return self.target_probs.sort_values(ascending=False, kind="stable").head(k)

    def __repr__(self) -> str:
        head = f"Posterior(d={self.n_variables}, adapted to {self.n_rows} rows"
        if self.target_probs is not None:
            top = ", ".join(f"{name}: {p:.2f}" for name, p in self.top_targets(3).items())
            head += f"; top targets {top}"
        return head + ")"
