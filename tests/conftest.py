"""Fixtures shared by several test modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from book_build import BookBuild, build_book  # noqa: E402


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: the models under test are small, and a second intra-op
    thread only adds contention on a 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> BookBuild:
    """The book built once per session (see ``tests/book_build.py``)."""
    return build_book(tmp_path_factory.mktemp("book"))
