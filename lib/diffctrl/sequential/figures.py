"""The figure both adapted-sequential notebooks draw for a :func:`~.experiments.law_study`.

Matplotlib only; no computation: every number drawn is in the study's ``"runs"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["law_figure"]


def law_figure(
    study: dict,
    names: Sequence[str],
    L: int,
    seeds: Sequence[int],
    tol_var: float,
    acf: dict | None = None,
    generators: Sequence[tuple[str, str]] = (
        ("sequential", "C0"),
        ("whole", "C1"),
        ("ar1_fit", "C2"),
        ("oracle", "k"),
    ),
):
    """Per target and seed (no averaging): the conditional-variance ratio of each generator
    against the position k (log scale, the margin [1/tol_var, tol_var] shaded, the frame cut at
    1e3 so that a blow-up leaves it at the top) and, given ``acf`` ({name: exact ACF}), the
    ACF at lags 0-3 of the sequential and whole-sequence models against the exact one.
    Returns the figure."""
    import matplotlib.pyplot as plt

    rows = 2 if acf else 1
    fig, axes = plt.subplots(rows, len(names), figsize=(3.4 * len(names), 3.2 * rows))
    axes = np.asarray(axes).reshape(rows, len(names))
    for j, name in enumerate(names):
        ax = axes[0, j]
        for g, col in generators:
            for i, s in enumerate(seeds):
                vr = np.minimum(study["runs"][(name, g, s)]["var_ratio"], 1e6)
                ax.plot(np.arange(1, L), vr, color=col, lw=1, alpha=0.8,
                        label=g if i == 0 else None)  # fmt: skip
        ax.axhspan(1 / tol_var, tol_var, color="g", alpha=0.15)
        ax.set_yscale("log")
        ax.set_ylim(0.1, 1e3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("position k")
        ax.set_ylabel("fitted / exact cond. variance")
        ax.legend(fontsize=7)
        if acf:
            ax = axes[1, j]
            ax.plot(range(4), acf[name][:4], "k-", lw=2, label="exact")
            for g, m, col in (("sequential", "o", "C0"), ("whole", "s", "C1")):
                for s in seeds:
                    ax.plot(range(4), study["runs"][(name, g, s)]["acf"], m,
                            color=col, alpha=0.7)  # fmt: skip
            ax.set_xlabel("lag")
            ax.set_ylabel("ACF")
    fig.tight_layout()
    return fig
