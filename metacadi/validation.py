"""Input validation at the public boundary.

Everything that enters the package from a user goes through one of these functions, so a bad
input fails early with a message naming what was given and what was expected, instead of
crashing deep inside torch or silently producing NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import MetaCaDIInputError


def _to_numpy(data: Any, name: str) -> tuple[np.ndarray, list[str] | None]:
    names = None
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # pandas DataFrame
        names = [str(c) for c in data.columns]
        array = data.to_numpy()
    elif hasattr(data, "detach") and hasattr(data, "cpu"):  # torch tensor
        array = data.detach().cpu().numpy()
    else:
        try:
            array = np.asarray(data)
        except Exception as exc:  # ragged lists and the like
            raise MetaCaDIInputError(
                f"{name} must be a 2-D array-like (numpy array, torch tensor or pandas DataFrame); "
                f"could not convert a {type(data).__name__}: {exc}"
            ) from exc
    if array.dtype == object or not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise MetaCaDIInputError(
            f"{name} must hold numbers; got dtype {array.dtype}. "
            "Convert categorical columns to numbers before passing them in."
        )
    return array, names


def check_data_matrix(
    data: Any,
    *,
    name: str = "data",
    n_variables: int | None = None,
    min_rows: int = 2,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str] | None]:
    """Validate a data matrix and return it as float64 ``(n_rows, n_variables)`` plus column names.

    Accepts numpy arrays, torch tensors and pandas DataFrames (column names are returned).
    Raises :class:`MetaCaDIInputError` for a wrong number of dimensions, a wrong number of
    columns, too few rows, or NaN/inf entries.
    """
    array, found_names = _to_numpy(data, name)
    if array.ndim != 2:
        raise MetaCaDIInputError(
            f"{name} must be 2-D with shape (n_rows, n_variables); got an array of shape {array.shape}."
        )
    n_rows, n_cols = array.shape
    if n_variables is not None and n_cols != n_variables:
        raise MetaCaDIInputError(
            f"{name} has {n_cols} columns but {n_variables} variables were expected."
        )
    if n_rows < min_rows:
        raise MetaCaDIInputError(
            f"{name} has {n_rows} row(s); at least {min_rows} are needed."
        )
    array = array.astype(np.float64, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad_row, bad_col = np.argwhere(~finite)[0]
        raise MetaCaDIInputError(
            f"{name} contains {int((~finite).sum())} NaN or infinite value(s) "
            f"(first at row {bad_row}, column {bad_col}); remove or impute them first."
        )
    if names is not None and found_names is not None and list(names) != found_names:
        raise MetaCaDIInputError(
            f"{name} has columns {found_names} but the variables are {list(names)}."
        )
    return array, found_names


def check_adjacency(adjacency: Any, *, name: str = "adjacency", require_dag: bool = True) -> np.ndarray:
    """Validate a square 0/1 adjacency matrix (``A[i, j] = 1`` iff ``i -> j``); return it as int.

    Raises :class:`MetaCaDIInputError` if it is not square, not binary, has self-loops, or
    (with ``require_dag``) contains a directed cycle.
    """
    array, _ = _to_numpy(adjacency, name)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise MetaCaDIInputError(f"{name} must be a square (d, d) matrix; got shape {array.shape}.")
    if not np.isin(array, (0, 1)).all():
        raise MetaCaDIInputError(f"{name} must contain only 0 and 1; got values {np.unique(array)[:5]}.")
    array = array.astype(np.int64)
    if np.any(np.diag(array)):
        raise MetaCaDIInputError(f"{name} has self-loops on its diagonal; a DAG has none.")
    if require_dag:
        from .graphs import find_cycle

        cycle = find_cycle(array)
        if cycle is not None:
            raise MetaCaDIInputError(
                f"{name} is not acyclic: it contains the directed cycle {' -> '.join(map(str, cycle))}."
            )
    return array


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise MetaCaDIInputError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    if value < minimum:
        raise MetaCaDIInputError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)


def check_probability(value: Any, name: str) -> float:
    """Return ``value`` as a float in [0, 1], or raise."""
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise MetaCaDIInputError(f"{name} must be a number in [0, 1]; got {value!r}.") from exc
    if not 0.0 <= value <= 1.0:
        raise MetaCaDIInputError(f"{name} must be in [0, 1]; got {value}.")
    return value


def check_names(names: Sequence[str] | None, n_variables: int) -> list[str]:
    """Return node names: the given ones (checked for length and uniqueness) or ``X0..X{d-1}``."""
    if names is None:
        return [f"X{i}" for i in range(n_variables)]
    names = [str(n) for n in names]
    if len(names) != n_variables:
        raise MetaCaDIInputError(f"got {len(names)} names for {n_variables} variables.")
    if len(set(names)) != len(names):
        raise MetaCaDIInputError(f"variable names must be unique; got {names}.")
    return names
