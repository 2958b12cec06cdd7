"""Run every book chapter (a MyST-markdown notebook) as a pytest test with nbval.

nbval only collects ``.ipynb`` files and the chapters are kept as jupytext MyST markdown, so this
hook reads each ``book/*.md`` whose front matter has a ``jupytext`` section into a notebook in
memory (``jupytext.read``) and hands it to nbval. Semantics are those of ``--nbval-lax``: every
code cell must run without an exception; outputs are compared only in cells marked
``# NBVAL_CHECK_OUTPUT`` (a chapter never stores outputs, so there is nothing else to compare).
The kernel is the Python of the environment running pytest and starts in ``book/``, as in
JupyterLab. Each cell is one test item, marked ``notebook``; a failing cell fails the run.

    .venv/bin/pytest book -q                 # all chapters
    .venv/bin/pytest book/03_dpdag.md -q     # one chapter
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import jupytext
import pytest
from nbval.kernel import CURRENT_ENV_KERNEL_NAME, RunningKernel
from nbval.plugin import IPyNbCell, IPyNbFile, find_comment_markers, find_metadata_tags

BOOK_DIR = Path(__file__).resolve().parent

# The HTML build copies the chapters into _build; never collect those copies.
collect_ignore_glob = ["_build/*", "_build"]


def is_chapter(path: Path, book_dir: Path = BOOK_DIR) -> bool:
    """A jupytext MyST notebook directly inside ``book_dir`` (not in a subfolder such as ``_build``)."""
    if path.suffix != ".md" or path.resolve().parent != Path(book_dir).resolve():
        return False
    head = path.read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and "jupytext:" in head.split("\n---", 1)[0]


class MystNotebookFile(IPyNbFile):
    """nbval's notebook collector fed from a MyST markdown file through jupytext."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # --nbval-lax semantics whatever the command line says.
        self.compare_outputs = False

    def collect(self):
        notebook = jupytext.read(str(self.path))
        if not any(cell.cell_type == "code" for cell in notebook.cells):
            raise pytest.UsageError(f"{self.path} is a jupytext chapter without a single code cell.")
        self.nb = notebook
        for cell_num, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
            # The same markers nbval reads (# NBVAL_CHECK_OUTPUT, # NBVAL_SKIP, ... or cell tags).
            options = defaultdict(bool, find_metadata_tags(cell.metadata))
            options.update(dict(find_comment_markers(cell.source)))
            options.setdefault("check", self.compare_outputs)
            item = IPyNbCell.from_parent(self, name=f"Cell {cell_num}", cell_num=cell_num, cell=cell, options=options)
            item.add_marker(pytest.mark.notebook)
            yield item

    def setup(self):
        # The kernel of the environment running pytest (the project's .venv), started in book/.
        self.kernel = RunningKernel(
            CURRENT_ENV_KERNEL_NAME,
            cwd=str(BOOK_DIR),
            startup_timeout=self.config.option.nbval_kernel_startup_timeout,
        )
        self.setup_sanitize_files()


def pytest_collect_file(file_path: Path, parent):
    if is_chapter(file_path):
        return MystNotebookFile.from_parent(parent, path=file_path)
    return None
