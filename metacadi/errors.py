"""Exceptions raised by metacadi.

Every error a user can trigger with bad input is a :class:`MetaCaDIInputError`, a subclass
of :class:`ValueError`, so ``except ValueError`` keeps working for callers that do not care
about this package's own types.
"""

from __future__ import annotations


class MetaCaDIInputError(ValueError):
    """Input had the wrong shape, type, values or size; the message says what was expected."""


class NotFittedError(MetaCaDIInputError, AttributeError):
    """A method that needs a fitted model was called before ``fit`` (or ``load``)."""


class CheckpointError(MetaCaDIInputError):
    """A checkpoint file is missing, incompatible with this version, or was tampered with."""
