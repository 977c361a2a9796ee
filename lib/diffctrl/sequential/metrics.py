"""Checks of generated sequences against the exact Gaussian law.

- :func:`empirical_acf`: autocorrelation pooled over positions and samples (stationary data);
- :func:`pacf_from_acf`: partial autocorrelation by the Durbin-Levinson recursion
  (Brockwell & Davis 1991, Prop. 5.2.1);
- :func:`conditional_fit`: least-squares regression of generated X_k on its prefix, the
  estimate of the conditional mean (affine) and variance of X_k | X_{<k};
- :func:`conditional_errors`: those against the exact conditionals of
  :func:`~diffctrl.sequential.gaussian.conditionals`, in units of the exact conditional std;
- :func:`tv_proxy`: sqrt(KL / 2) (Pinsker's bound on total variation) between the Gaussian
  fitted to the samples and the true law (:func:`~diffctrl.diffusion.metrics.gaussian_kl`);
  :func:`truncated_oracle_tv`: the same bound for the oracle truncated to ``d_trunc`` entries,
  exactly (its law is Gaussian: no sampling);
- :func:`assess_sample`: all of these for one sample against tolerances (the criterion of the
  chapter's ARMA and Gaussian-process claims); :func:`oracle_power`: the probability that
  exact samples meet those tolerances (the power of the equivalence criterion at its margins).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..diffusion.metrics import gaussian_kl
from .gaussian import F64, check_cov, conditionals, oracle_sample, sequential_law

__all__ = [
    "assess_sample",
    "assessment_table",
    "conditional_errors",
    "conditional_fit",
    "empirical_acf",
    "fitted_kl",
    "oracle_power",
    "pacf_from_acf",
    "truncated_oracle_tv",
    "tv_proxy",
]


def _check_x(x: torch.Tensor) -> torch.Tensor:
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(
            f"x must be (n, L) with n >= 2 sequences, got {tuple(x.shape)}"
        )
    return x.double()


def empirical_acf(x: torch.Tensor, nlags: int) -> torch.Tensor:
    """rho_hat(0..nlags) of sequences x (n, L), pooled: gamma_h = mean over samples and t of
    (x_t - m)(x_{t+h} - m), m the overall mean; rho = gamma / gamma_0."""
    x = _check_x(x)
    if (
        isinstance(nlags, bool)
        or not isinstance(nlags, int)
        or not 0 <= nlags < x.shape[1]
    ):
        raise ValueError(f"nlags must be an int in 0..{x.shape[1] - 1}, got {nlags!r}")
    y = x - x.mean()
    g = torch.stack(
        [(y[:, : y.shape[1] - h] * y[:, h:]).mean() for h in range(nlags + 1)]
    )
    return g / g[0]


def pacf_from_acf(rho: torch.Tensor) -> torch.Tensor:
    """Partial autocorrelations alpha(0..H) (alpha(0) = 1) from rho(0..H), Durbin-Levinson."""
    rho = torch.as_tensor(rho, dtype=F64)
    H = rho.shape[0] - 1
    out = [1.0]
    phi = torch.zeros(0, dtype=F64)
    for h in range(1, H + 1):
        num = rho[h] - (phi * rho[1:h].flip(0)).sum()
        den = 1 - (phi * rho[1:h]).sum()
        a = num / den
        phi = torch.cat([phi - a * phi.flip(0), a.reshape(1)])
        out.append(float(a))
    return torch.tensor(out, dtype=F64)


def conditional_fit(
    x: torch.Tensor, k: int, history: int | None = None
) -> tuple[torch.Tensor, float, float]:
    """OLS of x[:, k] on [1, x[:, k-h..k-1]] (h = ``history``, default the whole prefix).

    Returns (coefficients (h,), intercept, residual variance with n - h - 1 degrees of freedom).
    """
    x = _check_x(x)
    n, L = x.shape
    if not 0 <= k < L:
        raise ValueError(f"k must lie in 0..{L - 1}, got {k}")
    h = k if history is None else min(int(history), k)
    if history is not None and history < 0:
        raise ValueError(f"history must be >= 0, got {history}")
    if n <= h + 1:
        raise ValueError(f"need more than {h + 1} sequences, got {n}")
    X = torch.cat([torch.ones(n, 1, dtype=F64), x[:, k - h : k]], dim=1)
    beta = torch.linalg.lstsq(X, x[:, k : k + 1]).solution[:, 0]
    r = x[:, k] - X @ beta
    return beta[1:], float(beta[0]), float((r**2).sum() / (n - h - 1))


def conditional_errors(
    x: torch.Tensor, cov: torch.Tensor, mean: torch.Tensor | None = None, ks=None
) -> dict[str, torch.Tensor]:
    """Per position k: the error of the fitted conditional mean and the ratio of variances.

    ``mean_err[k] = sqrt(E (m_hat(X) - m(X))^2) / sqrt(v_k)`` under the true prefix law (X_{<k}
    ~ N(mean, cov)), with m, v the exact conditional mean and variance; ``var_ratio[k] =
    v_hat / v_k``. ``ks`` defaults to 1..L-1.
    """
    cov = check_cov(cov)
    L = cov.shape[0]
    m = torch.zeros(L, dtype=F64) if mean is None else torch.as_tensor(mean, dtype=F64)
    B, v = conditionals(cov)
    ks = list(range(1, L)) if ks is None else list(ks)
    me, vr = [], []
    for k in ks:
        b_hat, c_hat, v_hat = conditional_fit(x, k)
        db = b_hat - B[k, :k]
        # m_hat(X) - m(X) = c_hat + b_hat.X - (m_k + B_k.(X - m)) = const + db.X
        const = c_hat - m[k] + B[k, :k] @ m[:k] + db @ m[:k]
        sq = const**2 + db @ cov[:k, :k] @ db
        me.append(float(sq.sqrt() / v[k].sqrt()))
        vr.append(v_hat / float(v[k]))
    return {
        "k": torch.tensor(ks),
        "mean_err": torch.tensor(me, dtype=F64),
        "var_ratio": torch.tensor(vr, dtype=F64),
    }


def fitted_kl(
    x: torch.Tensor, cov: torch.Tensor, mean: torch.Tensor | None = None
) -> float:
    """KL(N(m_hat, S_hat) || N(mean, cov)) of the Gaussian fitted to x (n, L) from the law
    N(mean, cov) (zero mean by default): ``(tr(cov^-1 S_hat) + dm^T cov^-1 dm - L
    + log det cov - log det S_hat) / 2``, with the eigenvalues of S_hat floored at 1e-12 of its
    trace (a degenerate sample gets a large finite KL, not an error). For exact samples its
    expectation is about L (L + 3) / (4 n) (the Monte Carlo floor)."""
    x = _check_x(x)
    cov = check_cov(cov)
    L = cov.shape[0]
    m = torch.zeros(L, dtype=F64) if mean is None else torch.as_tensor(mean, dtype=F64)
    S1 = torch.cov(x.T).reshape(L, L)
    if not torch.isfinite(S1).all() or not torch.isfinite(x.mean(0)).all():
        return float("1e300")
    ev = torch.linalg.eigvalsh(S1).clamp_min(
        1e-12 * float(S1.trace().clamp_min(1e-300))
    )
    C = torch.linalg.cholesky(cov)
    dm = (x.mean(0) - m)[:, None]
    tr = torch.cholesky_solve(S1, C).trace()
    quad = (dm.T @ torch.cholesky_solve(dm, C)).squeeze()
    logdet = 2 * torch.log(C.diagonal()).sum() - torch.log(ev).sum()
    return max(float(0.5 * (tr + quad - L + logdet)), 0.0)


def tv_proxy(
    x: torch.Tensor, cov: torch.Tensor, mean: torch.Tensor | None = None
) -> float:
    """sqrt(KL / 2) of :func:`fitted_kl`: Pinsker's bound on the total variation between the
    Gaussian fitted to x (n, L) and the true law (informative only where it is below 1). Its
    Monte Carlo floor for exact samples is about sqrt(L (L + 3) / (8 n))."""
    return math.sqrt(fitted_kl(x, cov, mean) / 2)


def truncated_oracle_tv(cov: torch.Tensor, d_trunc: int) -> float:
    """Exact :func:`tv_proxy` of the oracle truncated to the last ``d_trunc`` entries: its law
    is N(0, A diag(v) A^T), A = (I - B)^{-1}, with (B, v) the truncated conditionals
    (:func:`~diffctrl.sequential.gaussian.conditionals`,
    :func:`~diffctrl.sequential.gaussian.sequential_law`), against N(0, cov)."""
    L = cov.shape[0]
    B, v = conditionals(cov, d_trunc)
    kl = gaussian_kl(torch.zeros(L), sequential_law(B, v), torch.zeros(L), cov)
    return (max(kl, 0.0) / 2) ** 0.5


def assess_sample(
    x: torch.Tensor,
    cov: torch.Tensor,
    acf_true: np.ndarray | None = None,
    *,
    tol_mean: float,
    tol_var: float,
    tol_acf: float,
) -> dict:
    """Samples x (n, L) against N(0, cov): the largest conditional-mean error (in conditional
    std) and |log variance ratio| over k (:func:`conditional_errors`),
    the fitted KL (:func:`fitted_kl`; ``"tv"``: its Pinsker bound) and, given the exact ACF, the largest ACF error at lags 1-3. ``"pass"``: all
    within the tolerances (the criterion of the claims ``arma`` and ``gp``). A sample with a
    non-finite path (a generator that blew up) fails, with every statistic at 1e300 and
    ``"nonfinite"`` the share of such paths."""
    x = _check_x(x)
    finite = torch.isfinite(x).all(dim=1)
    if not finite.all():
        L = x.shape[1]
        out = {
            "mean_err": 1e300,
            "var_dev": 1e300,
            "var_ratio": np.full(L - 1, 1e300),
            "kl": 1e300,
            "tv": 1e150,
            "nonfinite": float((~finite).double().mean()),
            "pass": False,
        }
        if acf_true is not None:
            out["acf"], out["acf_err"] = np.full(4, np.nan), 1e300
        return out
    ce = conditional_errors(x, cov)
    out = {
        "mean_err": float(ce["mean_err"].max()),
        "var_dev": float(np.abs(np.log(ce["var_ratio"].numpy())).max()),
        "var_ratio": ce["var_ratio"].numpy(),
        "kl": fitted_kl(x, cov),
    }
    out["tv"] = math.sqrt(out["kl"] / 2)
    ok = out["mean_err"] <= tol_mean and out["var_dev"] <= np.log(tol_var)
    if acf_true is not None:
        out["acf"] = empirical_acf(x, 3).numpy()
        out["acf_err"] = float(np.abs(out["acf"][1:] - acf_true[1:4]).max())
        ok = ok and out["acf_err"] <= tol_acf
    out["pass"] = bool(ok)
    return out


def oracle_power(
    cov: torch.Tensor,
    n: int,
    reps: int,
    acf_true: np.ndarray | None = None,
    *,
    tol_mean: float,
    tol_var: float,
    tol_acf: float,
    seed: int = 0,
) -> dict[str, float]:
    """The power of the :func:`assess_sample` criterion at its margins: the share of ``reps``
    independent exact samples of n sequences (the adapted oracle with the full prefix, seeds
    ``seed``, ``seed + 1``, ...) that meet every tolerance (``"all"``), and each statistic's
    share alone (``"mean"``, ``"var"``, ``"acf"``), with the 0.8 quantiles of the statistics
    (``"q80_*"``): the sampling distribution of the criterion under the exact law."""
    if reps < 1 or n < 2:
        raise ValueError(f"need reps >= 1 and n >= 2, got reps={reps}, n={n}")
    tol = dict(tol_mean=tol_mean, tol_var=tol_var, tol_acf=tol_acf)
    rows = []
    for r in range(reps):
        g = torch.Generator().manual_seed(seed + r)
        a = assess_sample(oracle_sample(cov, n, generator=g), cov, acf_true, **tol)
        rows.append((a["mean_err"], a["var_dev"], a.get("acf_err", 0.0), a["pass"]))
    m, v, c, ok = (np.array(col, dtype=float) for col in zip(*rows))
    out = {
        "all": float(ok.mean()),
        "mean": float((m <= tol_mean).mean()),
        "var": float((v <= math.log(tol_var)).mean()),
        "q80_mean_err": float(np.quantile(m, 0.8)),
        "q80_var_dev": float(np.quantile(v, 0.8)),
    }
    if acf_true is not None:
        out["acf"] = float((c <= tol_acf).mean())
        out["q80_acf_err"] = float(np.quantile(c, 0.8))
    return out


def assessment_table(
    runs: dict, rows: dict[str, Sequence[str]], seeds: Sequence[int]
) -> str:
    """A text table of :func:`assess_sample` results ``runs[(name, generator, seed)]``: one
    line per name and generator of ``rows`` (``{name: generators}``) with the worst errors
    over ``seeds``, the median fitted KL and the number of seeds that pass."""
    lines = []
    for name, gens in rows.items():
        for g in gens:
            r = [runs[(name, g, s)] for s in seeds]
            acf = max(a.get("acf_err", float("nan")) for a in r)
            lines.append(
                f"{name:11s} {g:15s} acf err {acf:8.3g}  mean err "
                f"{max(a['mean_err'] for a in r):8.3g}  |log var ratio| "
                f"{max(a['var_dev'] for a in r):8.3g}  KL "
                f"{np.median([a['kl'] for a in r]):8.3g}  "
                f"passes {sum(a['pass'] for a in r)}/{len(r)}"
            )
    return "\n".join(lines)
