"""metacadi: meta-learning a shared causal graph and unknown intervention targets (MetaCaDI)."""

from .errors import CheckpointError, MetaCaDIInputError, NotFittedError
from .graphs import erdos_renyi_dag, random_dag, scale_free_dag, to_networkx, from_networkx
from .tasks import Task, TaskSet

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "MetaCaDIInputError",
    "NotFittedError",
    "Task",
    "TaskSet",
    "erdos_renyi_dag",
    "scale_free_dag",
    "random_dag",
    "to_networkx",
    "from_networkx",
]

from . import metrics  # noqa: E402
from .scm import SCM, Intervention, random_intervention  # noqa: E402
from .tasks import MetaProtocol, make_meta_protocol  # noqa: E402

__all__ += ["SCM", "Intervention", "random_intervention", "MetaProtocol", "make_meta_protocol", "metrics"]

#: names served lazily (PEP 562): the estimator needs torch, which ``import metacadi`` avoids
_LAZY = {"MetaCaDI": ".model", "Posterior": ".posterior"}
__all__ += list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
