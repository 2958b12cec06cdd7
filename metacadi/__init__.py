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
