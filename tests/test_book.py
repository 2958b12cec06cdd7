"""The book: its table of contents, the nbval collection of MyST chapters, and a clean HTML build.

The chapters themselves are executed by ``book/conftest.py`` (``pytest book``); these tests check
the machinery around them:

* every chapter is in ``book/_toc.yml`` and every entry of the table of contents is a chapter;
* the collection hook really fails the run when a chapter raises (a chapter that errors must not
  pass silently), and runs a good one;
* ``jupyter-book build`` with warnings as errors succeeds (slow: it executes every chapter again).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"

HEADER = textwrap.dedent(
    """\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
        format_version: 0.13
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---
    """
)


def _chapter(body: str) -> str:
    return HEADER + "\n" + textwrap.dedent(body)


def _is_page_without_code(name: str) -> bool:
    """A plain MyST page of the book (landing page, references): no jupytext header, no cells."""
    text = (BOOK / f"{name}.md").read_text(encoding="utf-8")
    return "jupytext:" not in text.split("\n---", 1)[0] and "{code-cell}" not in text


def _toc_files() -> list[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [toc["root"]]
    for entry in toc.get("chapters", []):
        files.append(entry["file"])
    for part in toc.get("parts", []):
        files.extend(entry["file"] for entry in part.get("chapters", []))
    return files


def _load_conftest():
    """``book/conftest.py`` as a module of its own (pytest may hold other modules named conftest)."""
    spec = importlib.util.spec_from_file_location("metacadi_book_conftest", BOOK / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_chapter_is_in_the_table_of_contents():
    is_chapter = _load_conftest().is_chapter
    chapters = sorted(path.stem for path in BOOK.glob("*.md") if is_chapter(path))
    listed = _toc_files()
    assert chapters, "no jupytext chapter found in book/"
    missing = [name for name in listed if not (BOOK / f"{name}.md").exists()]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"
    listed_chapters = sorted(name for name in listed if is_chapter(BOOK / f"{name}.md"))
    assert listed_chapters == chapters, f"_toc.yml lists chapters {listed_chapters}, book/ has chapters {chapters}"
    others = [name for name in listed if name not in chapters]
    assert all(_is_page_without_code(name) for name in others), f"pages in _toc.yml that are neither a chapter nor plain: {others}"
    assert len(set(listed)) == len(listed), f"_toc.yml lists a page twice: {listed}"


def test_only_jupytext_markdown_directly_in_the_book_is_a_chapter(tmp_path):
    is_chapter = _load_conftest().is_chapter
    assert is_chapter(BOOK / "01_problem.md")
    chapter = tmp_path / "chapter.md"
    chapter.write_text(_chapter("```{code-cell} ipython3\n1 + 1\n```\n"))
    plain = tmp_path / "notes.md"
    plain.write_text("---\ntitle: front matter but no jupytext\n---\n# notes\n")
    copy = tmp_path / "_build" / "html" / "_sources" / "chapter.md"
    copy.parent.mkdir(parents=True)
    copy.write_text(chapter.read_text())
    assert is_chapter(chapter, book_dir=tmp_path)
    assert not is_chapter(plain, book_dir=tmp_path)
    assert not is_chapter(copy, book_dir=tmp_path), "copies below the book (e.g. in _build) must not be collected"
    assert not is_chapter(chapter), "a chapter of another folder is not a chapter of book/"


@pytest.mark.notebook
def test_a_chapter_that_raises_fails_pytest_and_a_good_one_passes(tmp_path):
    """Run pytest on a scratch book with the real conftest: one good and one broken chapter."""
    shutil.copy(BOOK / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "good.md").write_text(_chapter(
        """
        # Good

        ```{code-cell} ipython3
        value = 40 + 2
        ```

        ```{code-cell} ipython3
        assert value == 42
        ```
        """
    ))
    (tmp_path / "broken.md").write_text(_chapter(
        """
        # Broken

        ```{code-cell} ipython3
        x = 1
        ```

        ```{code-cell} ipython3
        raise ValueError("this chapter is broken on purpose")
        ```
        """
    ))
    (tmp_path / "notes.md").write_text("# plain markdown, not a notebook\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-o", "addopts=", "-o", "markers=notebook"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 failed, 3 passed" in output, output
    assert "broken.md::Cell 1" in output, output
    assert "this chapter is broken on purpose" in output, output


@pytest.mark.slow
def test_the_book_builds_with_warnings_as_errors(built_book):
    """``jupyter-book build -W -n --keep-going``: executes every chapter and renders every output.

    The build is shared with the offline browser test (``built_book``, ``tests/conftest.py``)."""
    assert built_book.returncode == 0, built_book.output[-6000:]
    is_chapter = _load_conftest().is_chapter
    for name in _toc_files():
        page = built_book.html / f"{name}.html"
        assert page.exists(), f"{page} was not built"
        text = page.read_text()
        if is_chapter(BOOK / f"{name}.md"):
            assert "cell_output" in text, f"{page} has no executed outputs"
        assert "Traceback" not in text, f"{page} shows a traceback"
