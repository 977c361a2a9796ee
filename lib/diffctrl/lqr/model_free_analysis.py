"""The model-free variant of the chapter (``book/nearly_lq.md``): its record values and the
check ``model_free``.

Han, Razaviyayn, Xu (arXiv 2303.08431), Sec. 4: ``(A, B, C)`` estimated by least squares from
transitions (:mod:`~diffctrl.lqr.identification`), and policy gradient started from the
estimated ``K^lin``. The functions read the identification curves and the batch of runs and
return what the notebook records in one line, as :mod:`~diffctrl.lqr.analysis` does for the
figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..stats import loglog_slope
from .pg_batch import select_runs

__all__ = ["model_free_values", "model_free_verdict"]


def model_free_values(clean: dict, noisy: dict, out: dict, model0: int = 0) -> dict:
    """The model-free variant: the largest noiseless estimation errors of ``[A B C]`` and
    ``K^lin`` (:func:`~diffctrl.lqr.identification.identification_curve`), the log-log slope of
    the noisy error (over ``N >= 50`` where there are two such sizes), and from the batch
    ``out``: how far the model-free start from 9 transitions is from ``K^lin``, and the final
    gap and outcome of the noisy model-free run."""
    Ns = np.asarray(noisy["sizes"])
    big = Ns >= 50
    err = noisy["error"].mean(1)
    mf = select_runs(out, init="model_free", n_samples=9)[0]
    kl = select_runs(out, seed=model0, scale=1.0, init="klin")[0]
    mfn = select_runs(out, init="model_free", n_samples=300)[0]
    return {
        "mf_clean_error_max": float(clean["error"].max()),
        "mf_clean_k_error_max": float(clean["k_error"].max()),
        "mf_noisy_slope": loglog_slope(Ns[big], err[big])
        if big.sum() >= 2
        else loglog_slope(Ns, err),
        "mf_pg_start_diff": float(
            (out["result"].K[0, mf] - out["result"].K[0, kl]).abs().max()
        ),
        "mf_noisy_pg_gap": float(out["rel_gap"][-1, mfn]),
        "mf_noisy_outcome": str(out["outcome"][mfn]),
    }


def model_free_verdict(values: dict, sizes: Sequence[int]) -> dict:
    """The ``model_free`` check: the noiseless least-squares error of ``[A B C]`` is below
    1e-8 at every ``N >= n + p + d`` and repetition."""
    return dict(
        verdict="confirmed"
        if values["mf_clean_error_max"] < 1e-8
        else "not reproduced",
        evidence={
            "error_max": values["mf_clean_error_max"],
            "k_error_max": values["mf_clean_k_error_max"],
            "sizes": list(sizes),
        },
        baseline_passes=None,
    )
