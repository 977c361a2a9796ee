"""The paper's standardised 1-D pipeline (Liu, Ye, Blanchet & Si 2025, public code
``src/datasets.py``): every data set is standardised by its own sample mean and sd, the
auxiliaries are trained and fused in those coordinates, and the fused model's samples are
mapped back with the target sample's mean and sd, ``x = m_n + s_n z``.

- :func:`standardise_mixture`: the exact law of ``(X - m) / s`` for a Gaussian mixture X;
- :func:`standardised_size_sweep`: W1 to the target against the target sample size for the
  fused model, a model trained from scratch (also standardised), a KDE, the empirical sample
  itself (what a memorising model reaches), the untrained fusion (lambda uniform), and the
  positive control: the fusion of the *exact* standardised auxiliaries with lambda fitted on
  the same points.

Standardisation hands the fused model the target sample's first two moments: after the map
back, even lambda uniform has the target sample's mean and sd.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from scipy.stats import wasserstein_distance
from torch import nn

from ..diffusion.exact import GaussianMixture
from ..diffusion.metrics import w1_1d
from ..diffusion.samplers import sample
from ..diffusion.schedules import Schedule
from .baselines import kde_sample, network_score, train_score_mlp
from .scores import FusedScore, fit_weights

__all__ = ["moments", "standardise_mixture", "standardised_size_sweep"]

F64 = torch.float64


def moments(x: torch.Tensor) -> tuple[float, float]:
    """(mean, sd) of a 1-D sample x (n, 1), sd with ``ddof = 0`` as numpy's ``std``."""
    if x.ndim != 2 or x.shape[1] != 1 or x.shape[0] < 2:
        raise ValueError(f"x must be (n, 1) with n >= 2, got {tuple(x.shape)}")
    xd = x.double()
    return float(xd.mean()), float(xd.std(unbiased=False))


def standardise_mixture(gm: GaussianMixture, mean: float, sd: float) -> GaussianMixture:
    """The law of ``(X - mean) / sd`` for X ~ ``gm`` (1-D): means ``(mu - mean) / sd``,
    variances ``v / sd^2``, same weights."""
    if not sd > 0:
        raise ValueError(f"sd must be positive, got {sd}")
    return GaussianMixture.create(
        gm.weights.double(),
        (gm.means.double() - mean) / sd,
        gm.covs.double() / sd**2,
    )


def _w1_fused(fz, sched, n_test, m, s, test, seed) -> float:
    z = sample(fz, sched, n_test, 1, generator=torch.Generator().manual_seed(seed))
    return w1_1d((m + s * z.detach().double()).float(), test)


def standardised_size_sweep(
    nets: Sequence[nn.Module],
    exact_aux: Sequence[GaussianMixture],
    target: GaussianMixture,
    sched: Schedule,
    sizes: Sequence[int],
    seeds: Sequence[int],
    *,
    n_test: int,
    cutoff: int,
    fit_steps: int,
    scratch_steps: int,
    hidden: int,
    control_sizes: int = 2,
    batch_size: int = 256,
) -> dict:
    """The paper's 1-D experiment in standardised coordinates. ``nets``: auxiliaries trained on
    standardised auxiliary samples; ``exact_aux``: the same auxiliaries' exact standardised
    laws (:func:`standardise_mixture`), fused for the positive control at the first
    ``control_sizes`` sizes. Per seed and target size n (target points drawn afresh), with
    ``(m, s)`` the n points' mean and sd: lambda fitted by DSM on ``(x - m) / s`` at the levels
    ``1..cutoff``, ``n_test`` samples mapped back by ``m + s z`` and their W1 to ``n_test``
    fresh target points; the same for a ScoreMLP trained from scratch on the standardised
    points, a KDE of the points, the points themselves, lambda uniform, and the control.
    Returns lists indexed [seed][size] (``"control"``, ``"uniform"``: [seed][:control_sizes])."""
    if not 1 <= control_sizes <= len(sizes):
        raise ValueError(
            f"control_sizes must be in 1..{len(sizes)}, got {control_sizes}"
        )
    keys = ("fused", "scratch", "kde", "empirical", "uniform", "control", "lam")
    out = {k: [] for k in keys}
    for s in seeds:
        s = int(s)
        g = torch.Generator().manual_seed(1000 + s)
        test = target.sample(n_test, g).float()
        rows = {k: [] for k in keys}
        for j, n in enumerate(sizes):
            data = target.sample(int(n), g).double()
            m, sd = moments(data)
            z = ((data - m) / sd).float()
            fz = FusedScore(nets, sched)
            if j < control_sizes:  # the baseline, where the criterion looks
                rows["uniform"].append(_w1_fused(fz, sched, n_test, m, sd, test, s))
            fit_weights(fz, z, cutoff, fit_steps, batch_size=batch_size, seed=s)
            rows["fused"].append(_w1_fused(fz, sched, n_test, m, sd, test, s))
            rows["lam"].append(fz.weights.detach().tolist())
            if j < control_sizes:
                fx = FusedScore(list(exact_aux), sched)
                fit_weights(fx, z, cutoff, fit_steps, batch_size=batch_size, seed=s)
                rows["control"].append(_w1_fused(fx, sched, n_test, m, sd, test, s))
            net = train_score_mlp(
                z,
                sched,
                1,
                scratch_steps,
                hidden=hidden,
                init_seed=s,
                seed=s,
                batch_size=batch_size,
            )
            rows["scratch"].append(
                _w1_fused(network_score(net, sched), sched, n_test, m, sd, test, s)
            )
            rows["kde"].append(w1_1d(kde_sample(data, n_test, s).float(), test))
            rows["empirical"].append(
                float(wasserstein_distance(data[:, 0].numpy(), test[:, 0].numpy()))
            )
        for k, v in rows.items():
            out[k].append(v)
    return out
