"""diffctrl_book: the build tool of the companion book (the ``diffctrl-book`` command).

- :mod:`.cli`            the command line: ``execute``, ``build``, ``verdicts``, ``profile``,
  ``sync``, ``cache-key`` (also ``python -m diffctrl_book``);
- :mod:`.booktree`       the table of contents, the notebook sources and their parameters
  (papermill's ``inspect_notebook``);
- :mod:`.execute`        papermill runs, outputs written atomically, the run's summary;
- :mod:`.prerequisites`  the declared shared work (the digit U-Net) and the expected costs;
- :mod:`.scheduling`     the task queue: prerequisites first, then longest first, ``jobs`` at
  a time;
- :mod:`.cache`, :mod:`.deps`  the content-hash execution cache and what a notebook imports;
- :mod:`.outputs`        executed notebooks cleaned before they become pages;
- :mod:`.site`           staging and rendering with Jupyter Book;
- :mod:`.ledger`, :mod:`.timings`  the generated pages: claims ledger and execution profile;
- :mod:`.sync`           Colab cells, "Re-run this page" boxes, ``_config.yml``, the twins
  (jupytext);
- :mod:`.sphinx_api`     the Sphinx extension behind the API reference of ``diffctrl``.

It imports ``diffctrl`` (the results records it reads, the prerequisite it runs); ``diffctrl``
never imports it. A reader's ``pip install diffctrl`` (the Colab cell) does not carry it.
"""

from .booktree import (
    PipelineError,
    book_notebooks,
    notebook_parameters,
    notebook_sources,
    read_source,
    repo_root,
    toc_files,
    twin_path,
)
from .cli import main, profile, verdicts
from .execute import default_threads, execute_all, execute_notebook
from .prerequisites import Prerequisite, cost_hints, declared_prerequisites
from .site import (
    build_book,
    combined_cache_key,
    executed_profiles,
    publish_extras,
    stage_site,
)
from .sync import sync_all, write_twins

__all__ = [
    "PipelineError",
    "Prerequisite",
    "book_notebooks",
    "build_book",
    "combined_cache_key",
    "cost_hints",
    "declared_prerequisites",
    "default_threads",
    "executed_profiles",
    "execute_all",
    "execute_notebook",
    "main",
    "notebook_parameters",
    "notebook_sources",
    "profile",
    "publish_extras",
    "read_source",
    "repo_root",
    "stage_site",
    "sync_all",
    "toc_files",
    "twin_path",
    "verdicts",
    "write_twins",
]
