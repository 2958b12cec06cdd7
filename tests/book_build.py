"""One HTML build of the book per test session, shared by the tests that need it.

``jupyter-book build`` executes every chapter and takes minutes on two cores, so the build test
(``tests/test_book.py``) and the offline browser test (``tests/test_book_offline.py``) share one
build through the session fixture ``built_book`` (defined in ``tests/conftest.py``).

``METACADI_BOOK_BUILD=DIR`` reuses an existing build instead: ``DIR`` is the ``--path-output`` of
an earlier ``jupyter-book build ... -W -n --keep-going`` (the folder that holds ``_build/html``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
CONFIG = REPO / "jupyter_book_config.yml"
BUILD_TIMEOUT_S = 1800


@dataclass(frozen=True)
class BookBuild:
    """The outcome of ``jupyter-book build -W -n --keep-going``.

    Attributes: ``returncode``, ``output`` (stdout and stderr), ``html`` (the folder of pages),
    ``seconds`` (wall time of the build; 0 when an earlier build was reused).
    """

    returncode: int
    output: str
    html: Path
    seconds: float


def build_book(path_output: Path) -> BookBuild:
    """Build the book with warnings as errors into ``path_output / "_build" / "html"``."""
    reuse = os.environ.get("METACADI_BOOK_BUILD")
    if reuse:
        html = Path(reuse) / "_build" / "html"
        if not html.is_dir():
            raise FileNotFoundError(f"METACADI_BOOK_BUILD={reuse} holds no _build/html.")
        return BookBuild(0, f"reused the build in {reuse}", html, 0.0)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book", "build", str(BOOK),
               "--config", str(CONFIG), "--path-output", str(path_output), "-W", "-n", "--keep-going"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=REPO)
    return BookBuild(result.returncode, result.stdout + result.stderr, path_output / "_build" / "html",
                     time.perf_counter() - start)
