"""diffctrl_book: the build tool of the companion book.

It executes the notebooks with papermill (:mod:`.pipeline`, :mod:`.scheduling`, with a content
hash cache, :mod:`.cache` and :mod:`.deps`), cleans their outputs (:mod:`.outputs`), stages and
renders the site with Jupyter Book (:mod:`.site`, :mod:`.booktree`), writes the generated
cells and config (:mod:`.sync`), the claims ledger (:mod:`.ledger`) and the execution profile
(:mod:`.timings`), and documents ``diffctrl`` on the API page (:mod:`.sphinx_api`, a Sphinx
extension). Command line: ``diffctrl-book execute|build|verdicts|profile|sync|...``.

It imports ``diffctrl`` (the results records it reads, the digit U-Net it trains once before
the notebooks that load it); ``diffctrl`` never imports it.
"""

__all__: list[str] = []
