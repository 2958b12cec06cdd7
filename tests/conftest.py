"""Fixtures shared by several test modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from book_build import BookBuild, build_book  # noqa: E402


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> BookBuild:
    """The book built once per session (see ``tests/book_build.py``)."""
    return build_book(tmp_path_factory.mktemp("book"))
