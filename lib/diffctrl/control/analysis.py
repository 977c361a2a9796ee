"""Sweeps behind the PI-FT chapters' figures: each returns plain arrays for a figure and a
record (the chapters' claims are judged in :mod:`.lq_experiments`,
:mod:`.convergence_experiments`, :mod:`.regularity_experiments` and
:mod:`.lipschitz_bound_analysis`).

- :func:`tilted_gap_vs_T` the fine-tuned terminal law against the tilted target p* as T grows,
  split into its sources (time discretisation, mean-shift class, start N(0, I));
- :func:`tradeoff_curve` reward against KL along beta (the fine-tuned chain and p*);
- :func:`continuous_gap_vs_N` the discrete LQ optimum against the HJB solution;
- :func:`grid_vs_cole_hopf` the discrete grid optimum against the Cole-Hopf value (mixtures);
- :func:`pift_rate_table` measured against predicted contraction factors over random problems;
- :func:`sweep_iterations` the end-to-end error of a PI-FT sweep with m iterations per step;
- :func:`beta_effect` iterations to a tolerance and distance to the pre-trained model along beta;
- :func:`w1_to_density` and :func:`sample_density_1d`: a 1-D density on a grid, measured
  against samples and sampled;
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..checks import check_data
from ..diffusion.metrics import gaussian_kl
from ..diffusion.schedules import vp_sde_schedule
from .chain import ControlledChain
from .continuous import cole_hopf_value, solve_hjb_lq
from .grid import Grid
from .lq import LQProblem, pretrained_policy, random_lq_problem, solve_lq
from .moments import _np, affine_rms
from .pift import pift_grid
from .pift_affine import pift_lq
from .rates import measured_rate
from .tilted import tilted_gaussian

__all__ = [
    "beta_effect",
    "continuous_gap_vs_N",
    "grid_vs_cole_hopf",
    "pift_rate_table",
    "sample_density_1d",
    "sweep_iterations",
    "tilted_gap_vs_T",
    "tradeoff_curve",
    "w1_to_density",
]


def tilted_gap_vs_T(
    mu0,
    S0,
    reward,
    beta: float,
    Ts: Sequence[int],
    *,
    schedule: Callable[[int], object] = vp_sde_schedule,
    variance: str = "large",
) -> dict[str, np.ndarray]:
    """KL(terminal law || p*) for T in ``Ts``, for four chains:

    - ``mean_shift``: the fine-tuned chain of the book (mean-shift kernels, Y_0 ~ N(0, I));
    - ``mean_shift_exact``: the same from the exact level-N marginal;
    - ``full``: the unrestricted Gaussian-kernel (soft-Bellman) optimum from N(0, I);
    - ``full_exact``: that optimum from the exact marginal (only discretisation and memory left);

    and ``pretrained``: KL(pre-trained terminal law || p0), the pre-trained chain's own error;
    ``pretrained_target``: KL(pre-trained terminal law || p*), the u = 0 baseline.
    """
    mus, Ss = tilted_gaussian(mu0, S0, reward, beta)
    out = {
        k: []
        for k in (
            "mean_shift",
            "mean_shift_exact",
            "full",
            "full_exact",
            "pretrained",
            "pretrained_target",
        )
    }
    for T in Ts:
        sched = schedule(int(T))
        for kernel, init, key in (
            ("mean-shift", "standard", "mean_shift"),
            ("mean-shift", "exact", "mean_shift_exact"),
            ("full", "standard", "full"),
            ("full", "exact", "full_exact"),
        ):
            pb = LQProblem.create(
                sched, mu0, S0, reward, beta, variance=variance, init=init
            )
            m, C = solve_lq(pb, kernel).terminal_law()
            out[key].append(gaussian_kl(m, C, mus, Ss))
        pb = LQProblem.create(sched, mu0, S0, reward, beta, variance=variance)
        m, C = pretrained_policy(pb).terminal_law()
        out["pretrained"].append(gaussian_kl(m, C, pb.mu0, pb.S0))
        out["pretrained_target"].append(gaussian_kl(m, C, mus, Ss))
    return {k: np.array(v) for k, v in out.items()} | {"T": np.asarray(Ts)}


def tradeoff_curve(problem: LQProblem, betas: Sequence[float]) -> dict[str, np.ndarray]:
    """Along beta: the optimum's ``E r(Y_T)``, path KL ``sum_t E KL_t`` (unweighted), terminal
    KL to the pre-trained chain's terminal law, objective ``J``; and for the tilted target
    ``E_{p*} r`` and ``KL(p* || p0)``."""
    keys = (
        "reward",
        "path_kl",
        "terminal_kl",
        "J",
        "target_reward",
        "target_kl",
        "rho_max",
    )
    out = {k: [] for k in keys}
    m_pre, C_pre = pretrained_policy(problem).terminal_law()
    P, p, c = problem.reward.quadratic_form()
    for b in betas:
        sol = solve_lq(problem.with_beta(float(b)))
        m, C = sol.terminal_law()
        out["reward"].append(sol.expected_reward())
        out["path_kl"].append(sol.expected_kl(weighted=False))
        out["terminal_kl"].append(gaussian_kl(m, C, m_pre, C_pre))
        out["J"].append(sol.objective())
        ms, Ss = tilted_gaussian(problem.mu0, problem.S0, problem.reward, float(b))
        out["target_reward"].append(
            float(-0.5 * (ms @ P @ ms + torch.trace(P @ Ss)) + p @ ms + c)
        )
        out["target_kl"].append(gaussian_kl(ms, Ss, problem.mu0, problem.S0))
        out["rho_max"].append(float(sol.rho().max()))
    return {k: np.array(v) for k, v in out.items()} | {
        "beta": np.asarray(betas, dtype=float)
    }


def continuous_gap_vs_N(
    mu0, S0, reward, beta: float, Ns: Sequence[int], *, variance: str = "large"
) -> dict[str, np.ndarray]:
    """Discrete LQ optimum on ``vp_sde_schedule(N)`` against the HJB solution: ``|J_N - J|``,
    max |mean_N - mean|, max |cov_N - cov| of the terminal laws, max |P_0 - P(0)|, plus the
    continuous values themselves."""
    cs = solve_hjb_lq(mu0, S0, reward, beta)
    mc, Cc = cs.terminal_law()
    P0c = cs.value_params(0.0)[0]
    out = {k: [] for k in ("J", "mean", "cov", "P0")}
    for N in Ns:
        sol = solve_lq(
            LQProblem.create(
                vp_sde_schedule(int(N)), mu0, S0, reward, beta, variance=variance
            )
        )
        m, C = sol.terminal_law()
        out["J"].append(abs(sol.objective() - cs.J))
        out["mean"].append(float(np.abs(m.numpy() - mc).max()))
        out["cov"].append(float(np.abs(C.numpy() - Cc).max()))
        out["P0"].append(float(np.abs(sol.P[0].numpy() - P0c).max()))
    res = {k: np.array(v) for k, v in out.items()}
    res.update(N=np.asarray(Ns), J_cont=cs.J, mean_cont=mc, cov_cont=Cc)
    return res


def grid_vs_cole_hopf(
    data,
    reward,
    beta: float,
    Ns: Sequence[int],
    grid: Grid,
    y: torch.Tensor,
    *,
    tau: float = 0.0,
    n_iter: int = 30,
    n_gh: int = 12,
    tol: float = 1e-12,
    n_gh_exact: int = 80,
) -> dict[str, np.ndarray]:
    """Grid PI-FT on ``vp_sde_schedule(N)`` (mixture data, any reward) against the exact
    continuous value ``V_tau`` of :func:`~.continuous.cole_hopf_value` at the points ``y``; the
    discrete value is ``V_t`` with ``t = tau N`` (which must be an integer for every N). Returns
    the max error per N, the exact values and the discrete values at the largest N."""
    exact = cole_hopf_value(data, reward, beta, tau, y, n_gh=n_gh_exact)
    errs, last = [], None
    for N in Ns:
        t = round(tau * int(N))
        if abs(t - tau * int(N)) > 1e-9:
            raise ValueError(f"tau * N must be an integer step, got tau={tau}, N={N}")
        chain = ControlledChain.from_data(data, vp_sde_schedule(int(N)), beta)
        res = pift_grid(chain, reward, grid, n_iter, n_gh=n_gh, tol=tol, record=False)
        last = res.value(t, y)
        errs.append(float((last - exact).abs().max()))
    return {
        "N": np.asarray(Ns),
        "err": np.array(errs),
        "exact": exact.numpy(),
        "discrete": last.numpy(),
    }


def pift_rate_table(
    dims: Sequence[int],
    T: int,
    seeds: Sequence[int],
    beta_range=(0.03, 3.0),
    n_iter: int = 200,
) -> dict[str, np.ndarray]:
    """For random LQ problems (:func:`~.lq.random_lq_problem`), every step t with rho_t < 1:
    predicted ``rho_t`` and the measured geometric rate of ``u^(m)`` (and of ``V^(m)``), from
    PI-FT run to convergence (so V_{t+1} is exact)."""
    rows = []
    for d in dims:
        for s in seeds:
            pb = random_lq_problem(
                int(d), T, int(s) + 1000 * int(d), beta_range=beta_range
            )
            ref = solve_lq(pb)
            if float(ref.rho().max()) >= 1:
                continue
            res = pift_lq(pb, n_iter, tol=1e-15, reference=ref)
            for t in range(T):
                if res.u_err[t][0] < 1e-12 or len(res.u_err[t]) < 4:
                    continue
                rows.append(
                    (
                        d,
                        s,
                        t,
                        res.rho[t],
                        measured_rate(res.u_err[t], 1e-9, 1e-12),
                        measured_rate(res.v_err[t], 1e-9, 1e-12),
                        float(pb.beta[0]),
                    )
                )
    a = np.array(rows, dtype=float).reshape(-1, 7)
    return {
        "d": a[:, 0],
        "seed": a[:, 1],
        "t": a[:, 2],
        "rho": a[:, 3],
        "rate_u": a[:, 4],
        "rate_v": a[:, 5],
        "beta": a[:, 6],
    }


def sweep_iterations(
    problem: LQProblem, ms: Sequence[int], eta: float = 1.0
) -> dict[str, np.ndarray]:
    """PI-FT with the same number m of iterations at every step: ``|J(m) - J*|``, the largest
    control error over t (RMS under the pre-trained laws) and the work done."""
    ref = solve_lq(problem)
    pre_m, pre_C = (x.numpy() for x in pretrained_policy(problem).marginals())
    out = {"m": np.asarray(ms), "J_err": [], "u_err": [], "work": []}
    RG, Rg = _np(ref.G), _np(ref.g)
    for m in ms:
        res = pift_lq(problem, int(m), eta=eta, allow_divergence=True)
        G, g = _np(res.policy.G), _np(res.policy.g)
        out["J_err"].append(abs(res.policy.objective() - ref.objective()))
        out["u_err"].append(
            max(
                affine_rms(G[t] - RG[t], g[t] - Rg[t], pre_m[t], pre_C[t])
                for t in range(problem.T)
            )
        )
        out["work"].append(int(np.sum(2 * res.n_iter + 1)))
    out.update(rho_max=float(ref.rho().max()))
    return {k: (np.array(v) if isinstance(v, list) else v) for k, v in out.items()}


def beta_effect(
    problem: LQProblem,
    betas: Sequence[float],
    tol: float = 1e-8,
    max_iter: int = 10_000,
) -> dict[str, np.ndarray]:
    """Along beta: iterations PI-FT needs (residual below ``tol`` at every step; total and
    largest per step), ``max_t rho_t``, and the distance of the fine-tuned chain to the
    pre-trained one (path KL sum_t E KL_t and KL between terminal laws)."""
    out = {
        k: [] for k in ("iters_total", "iters_max", "rho_max", "path_kl", "terminal_kl")
    }
    m_pre, C_pre = pretrained_policy(problem).terminal_law()
    for b in betas:
        pb = problem.with_beta(float(b))
        ref = solve_lq(pb)
        rho = float(ref.rho().max())
        out["rho_max"].append(rho)
        if rho < 1:
            res = pift_lq(pb, max_iter, tol=tol)
            out["iters_total"].append(int(res.n_iter.sum()))
            out["iters_max"].append(int(res.n_iter.max()))
        else:
            out["iters_total"].append(np.nan)
            out["iters_max"].append(np.nan)
        m, C = ref.terminal_law()
        out["path_kl"].append(ref.expected_kl(weighted=False))
        out["terminal_kl"].append(gaussian_kl(m, C, m_pre, C_pre))
    return {k: np.array(v, dtype=float) for k, v in out.items()} | {
        "beta": np.asarray(betas, float)
    }


def w1_to_density(
    samples: torch.Tensor, x: torch.Tensor, density: torch.Tensor
) -> float:
    """1-D Wasserstein-1 distance ``int |F_n - F|`` between samples (n,) and a density on the
    uniform grid ``x`` (the density's CDF by the trapezoid rule)."""
    x = check_data(x, "x", ndim=1, min_rows=2, dtype=torch.float64)
    density = check_data(density, "density", shape=(x.shape[0],), dtype=torch.float64)
    samples = check_data(samples, "samples", min_rows=1)
    if bool((density < 0).any()) or not float(density.sum()) > 0:
        raise ValueError("density must be >= 0 with a positive total")
    dx = float(x[1] - x[0])
    F = torch.cumsum(density, 0) * dx
    F = F / F[-1]
    s = torch.sort(samples.reshape(-1).to(torch.float64)).values
    Fn = torch.searchsorted(s, x, right=True).to(torch.float64) / s.numel()
    return float((Fn - F).abs().sum() * dx)


def sample_density_1d(
    x: torch.Tensor,
    density: torch.Tensor,
    n: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` samples from a density on a uniform 1-D grid by inverting its piecewise-linear CDF."""
    x = check_data(x, "x", ndim=1, min_rows=2, dtype=torch.float64)
    density = check_data(density, "density", shape=(x.shape[0],), dtype=torch.float64)
    if bool((density < 0).any()) or not float(density.sum()) > 0:
        raise ValueError("density must be >= 0 with a positive total")
    F = torch.cumsum(density, 0)
    F = F / F[-1]
    q = torch.rand(n, generator=generator, dtype=torch.float64)
    i = torch.searchsorted(F, q).clamp(1, len(x) - 1)
    f0, f1 = F[i - 1], F[i]
    w = ((q - f0) / (f1 - f0).clamp_min(1e-300)).clamp(0, 1)
    return x[i - 1] + w * (x[i] - x[i - 1])
