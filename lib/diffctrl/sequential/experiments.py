"""The experiments of the adapted-sequential chapter, with their criteria and verdicts.

Each function runs one section of ``notebooks/adapted_sequential.md`` (Cao, Chen, Han & Xu
2026, the claims declared there) and returns a dict: ``"values"``, the headline numbers the
notebook records in one line (``rec.update(out["values"])``); ``"verdict"``, the keyword
arguments of ``rec.verdict(key, **out["verdict"])`` (the verdict by
``diffctrl.repro.judge``, its evidence, per-seed outcomes and whether the baseline passes
the same criterion); and the per-run numbers the figures draw. Training arguments (``steps``,
``batch_size``, ``lr``, ``hidden``, ``method``, ``device``) are passed through to
:func:`~diffctrl.sequential.generators.fit_and_generate`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

from ..diffusion.schedules import Schedule
from ..repro import Diagnosis, count_verdict, judge
from ..stats import loglog_slope
from .arma import ARMA, arma_acf, arma_cov
from .gaussian import gaussian_paths
from .generators import fit_and_generate, make_sequential
from .metrics import (
    assess_sample,
    assessment_table,
    empirical_acf,
    pacf_from_acf,
    truncated_oracle_tv,
    tv_proxy,
)
from .portfolio import mean_variance_weights, portfolio_stats, scenario_weights
from .sampling import (
    adaptedness_gaps,
    draw_noise,
    sample_sequential,
    sample_whole,
    train_sequential,
    train_whole,
    whole_sequence_model,
)

__all__ = [
    "ARMA_GENERATORS",
    "adaptedness_study",
    "arma_study",
    "gp_study",
    "portfolio_study",
    "rate_study",
    "truncation_study",
]

#: the generators compared on every ARMA process (the transformer is added on one)
ARMA_GENERATORS = ("sequential", "sequential_ddpm", "whole", "untrained", "oracle")


def adaptedness_study(
    cov: torch.Tensor,
    sched: Schedule,
    seeds: Sequence[int],
    *,
    n_train: int,
    n_adapt: int,
    steps: int,
    hidden: int,
    method: str,
    device,
    **opt,
) -> dict:
    """Claim ``adapted``: per seed, the sequential model and the whole-sequence DDPM trained
    (``steps``, ``opt``: batch size and learning rate) on ``n_train`` paths of N(0, cov);
    the noise of entries k+1.. redrawn for every k
    (:func:`~diffctrl.sequential.sampling.adaptedness_gaps`). Passes when entries 0..k move
    by exactly 0; the whole-sequence model is the baseline. ``"sequential"``, ``"whole"``:
    per seed, the (past, future) changes for k = 0..L-2."""
    L = cov.shape[0]
    opt = dict(opt, device=device, progress=False)
    adapt_seq, adapt_whole = [], []
    for s in seeds:
        data = gaussian_paths(cov, n_train, generator=torch.Generator().manual_seed(s))
        net = make_sequential(L, sched.N, None, hidden, seed=s)
        train_sequential(net, sched, data, steps, seed=s, **opt)
        torch.manual_seed(s)
        wm = whole_sequence_model(L, sched.N, sum(p.numel() for p in net.parameters()))
        _, sc = train_whole(wm, sched, data, steps, seed=s, **opt)
        noise = draw_noise(n_adapt, L, torch.Generator().manual_seed(s + 1))
        kw = dict(method=method, device=device)

        def seq(nz, net=net):
            return sample_sequential(net, sched, n_adapt, noise=nz, **kw)

        def whole(nz, wm=wm, sc=sc):
            return sample_whole(wm, sched, n_adapt, sc, noise=nz, **kw)

        for runs, sampler in ((adapt_seq, seq), (adapt_whole, whole)):
            g = torch.Generator().manual_seed(s + 2)
            runs.append(adaptedness_gaps(sampler, noise, range(L - 1), g))
    seq_past = max(p for run in adapt_seq for p, _ in run)
    whole_past = [max(p for p, _ in run) for run in adapt_whole]
    passes = [max(p for p, _ in run) == 0.0 for run in adapt_seq]
    verdict, base = judge(passes, [w == 0.0 for w in whole_past])
    evidence = {"seq_max_past_change": seq_past, "whole_past_change": whole_past}
    return {
        "values": {
            "adapt_seq_max_past_change": seq_past,
            "adapt_seq_min_future_change": min(f for run in adapt_seq for _, f in run),
            "adapt_whole_min_past_change": min(whole_past),
        },
        "verdict": _verdict(verdict, evidence, passes, base),
        "sequential": adapt_seq,
        "whole": adapt_whole,
    }


def _verdict(verdict: str, evidence: dict, passes: list, base, note: str = "") -> dict:
    """The keyword arguments of ``diffctrl.repro.Record.verdict``."""
    return dict(
        verdict=verdict,
        evidence=evidence,
        per_seed=passes,
        baseline_passes=base,
        note=note,
    )


def _law_diagnosis(j, what: str) -> Diagnosis | None:
    """Why a conditional-law claim (``arma``, ``gp``) is not confirmed: the oracle (exact
    conditional laws, same criterion, same draws) failing too means the tolerances are out of
    reach at this sample size; the whole-sequence baseline passing too means the criterion
    does not separate; otherwise our model and budget are far from the paper's."""
    if j.verdict == "confirmed":
        return None
    if j.control_passes is False:
        return Diagnosis(
            "underpowered",
            f"the exact conditional laws fail the same {what} tolerances at this number of "
            "generated paths: more draws (or wider margins) would decide",
        )
    if j.why == "baseline passes":
        return Diagnosis(
            "underpowered",
            "the whole-sequence diffusion model meets the same tolerances: they do not "
            "separate the sequential model from it; tighter equivalence margins with stated "
            "power would",
        )
    return Diagnosis(
        "setting",
        "our model is small next to the paper's (L = 10 entries, 30 VP levels, a window MLP "
        "and an ODE sampler, trained for minutes on a CPU, against the paper's transformer at "
        "L = 32-100 with 200 cosine levels, 2^11 paths and about 1000 epochs); the exact "
        "conditional laws pass the same criterion, so what fails is our learned score",
    )


def arma_study(
    procs: dict[str, ARMA],
    sched: Schedule,
    seeds: Sequence[int],
    *,
    L: int,
    n_train: int,
    n_gen: int,
    tol: dict[str, float],
    transformer: str = "AR(1)",
    **train,
) -> dict:
    """Claim ``arma``: every generator of :data:`ARMA_GENERATORS` (and the causal transformer
    on the process named ``transformer``) trained on ``n_train`` stationary windows of length
    L of each process; ``n_gen`` draws judged by
    :func:`~diffctrl.sequential.metrics.assess_sample` (``tol``: its tolerances), per process
    and seed; the untrained network is the baseline. Record keys name a process by its name
    without brackets and commas, in lower case (``"ARMA(1,1)"`` -> ``arma11``).
    ``"runs"``: ``{(name, generator, seed): assess_sample(...)}``."""

    def gens(name):
        return ARMA_GENERATORS + (("transformer",) if name == transformer else ())

    runs = {}
    for name, proc in procs.items():
        cov = arma_cov(proc, L)
        acf_true = arma_acf(proc, L - 1).numpy()
        for s in seeds:
            xs = fit_and_generate(
                cov, sched, n_train, n_gen, seed=s, which=gens(name), **train
            )
            for g, x in xs.items():
                runs[(name, g, s)] = assess_sample(x, cov, acf_true, **tol)
                runs[(name, g, s)]["pacf"] = pacf_from_acf(empirical_acf(x, 3)).numpy()

    def worst(name, g, key):
        return max(runs[(name, g, s)][key] for s in seeds)

    def share(g):
        return [runs[(n, g, s)]["pass"] for n in procs for s in seeds]

    values = {}
    for name in procs:
        key = name.replace("(", "").replace(")", "").replace(",", "").lower()
        for g in ("sequential", "sequential_ddpm", "whole", "oracle"):
            for m in ("mean_err", "acf_err", "var_dev"):
                values[f"arma_{key}_{g}_{m}"] = worst(name, g, m)
    for m in ("acf_err", "mean_err"):
        values[f"arma_ar1_transformer_{m}"] = worst(transformer, "transformer", m)
    passes, base, whole, ddpm, oracle = (
        share(g)
        for g in ("sequential", "untrained", "whole", "sequential_ddpm", "oracle")
    )
    values["arma_pass_frac"] = float(np.mean(passes))
    values["arma_whole_pass_frac"] = float(np.mean(whole))
    values["arma_ddpm_pass_frac"] = float(np.mean(ddpm))
    values["arma_oracle_pass_frac"] = float(np.mean(oracle))
    # baseline: the whole-sequence diffusion model (it could pass); control: the oracle
    j = judge(passes, whole, oracle)
    evidence = {
        "whole_pass_frac": float(np.mean(whole)),
        "sequential_ddpm_pass_frac": float(np.mean(ddpm)),
        "untrained_pass_frac": float(np.mean(base)),
        "oracle_pass_frac": float(np.mean(oracle)),
        "per_process": {
            n: count_verdict([runs[(n, "sequential", s)]["pass"] for s in seeds])
            for n in procs
        },
    }
    return {
        "values": values,
        "verdict": dict(
            verdict=j, evidence=evidence, diagnosis=_law_diagnosis(j, "ARMA")
        ),
        "runs": runs,
        "summary": assessment_table(runs, {n: gens(n) for n in procs}, seeds),
    }


def gp_study(
    kernels: dict[str, torch.Tensor],
    sched: Schedule,
    seeds: Sequence[int],
    *,
    n_train: int,
    n_gen: int,
    tol: dict[str, float],
    **train,
) -> dict:
    """Claim ``gp``: the sequential model, the untrained network (the baseline) and the oracle
    for each Gaussian-process covariance of ``kernels``, judged per kernel and seed by
    :func:`~diffctrl.sequential.metrics.assess_sample` (without the ACF). Record keys name a
    kernel by the first word of its name in lower case (``"Matern-3/2"`` -> ``matern``).
    ``"runs"``: ``{(name, generator, seed): assess_sample(...)}``."""
    runs = {}
    which = ("sequential", "untrained", "oracle")
    for name, cov in kernels.items():
        for s in seeds:
            xs = fit_and_generate(
                cov, sched, n_train, n_gen, seed=s, which=which, **train
            )
            for g, x in xs.items():
                runs[(name, g, s)] = assess_sample(x, cov, **tol)
    passes = [runs[(n, "sequential", s)]["pass"] for n in kernels for s in seeds]
    base = [runs[(n, "untrained", s)]["pass"] for n in kernels for s in seeds]
    oracle = [runs[(n, "oracle", s)]["pass"] for n in kernels for s in seeds]
    values = {}
    for name in kernels:
        for g in ("sequential", "oracle"):
            r = [runs[(name, g, s)] for s in seeds]
            key = f"gp_{re.match(r'[A-Za-z]+', name).group(0).lower()}_{g}"
            values[f"{key}_mean_err"] = max(a["mean_err"] for a in r)
            values[f"{key}_var_dev"] = max(a["var_dev"] for a in r)
            values[f"{key}_tv"] = float(np.mean([a["tv"] for a in r]))
    values["gp_pass_frac"] = float(np.mean(passes))
    j = judge(passes, base, oracle)
    evidence = {
        "untrained_pass_frac": float(np.mean(base)),
        "oracle_pass_frac": float(np.mean(oracle)),
        "per_kernel": {
            n: count_verdict([runs[(n, "sequential", s)]["pass"] for s in seeds])
            for n in kernels
        },
    }
    return {
        "values": values,
        "verdict": dict(
            verdict=j, evidence=evidence, diagnosis=_law_diagnosis(j, "GP")
        ),
        "runs": runs,
        "summary": assessment_table(
            runs, {n: ("sequential", "oracle") for n in kernels}, seeds
        ),
    }


def rate_study(
    name: str,
    cov: torch.Tensor,
    runs: dict,
    sched: Schedule,
    seeds: Sequence[int],
    *,
    sizes: Sequence[int],
    n_train: int,
    n_gen: int,
    slope_max: float,
    **train,
) -> dict:
    """Claim ``rate_n``: the TV proxy of the sequential model (and of the untrained network,
    the baseline) trained on n paths of N(0, cov) for each n of ``sizes``, and its log-log
    slope against n (:func:`diffctrl.stats.loglog_slope`), per seed; passes when the slope
    is <= ``slope_max``. At n = ``n_train`` the runs of :func:`gp_study` for the kernel
    ``name`` serve (``runs``), and their oracle gives the Monte Carlo floor. ``"tv"``:
    ``{generator: (seeds, sizes) array}``; ``"slopes"``: ``{generator: per seed}``."""
    err_n = {g: np.zeros((len(seeds), len(sizes))) for g in ("sequential", "untrained")}
    for i, s in enumerate(seeds):
        for j, n in enumerate(sizes):
            if n == n_train:
                for g in err_n:
                    err_n[g][i, j] = runs[(name, g, s)]["tv"]
                continue
            xs = fit_and_generate(
                cov, sched, n, n_gen, seed=s, which=("sequential", "untrained"), **train
            )
            for g in err_n:
                err_n[g][i, j] = tv_proxy(xs[g], cov)
    slopes = {g: [loglog_slope(sizes, e) for e in err_n[g]] for g in err_n}
    passes = [sl <= slope_max for sl in slopes["sequential"]]
    verdict, base = judge(passes, [sl <= slope_max for sl in slopes["untrained"]])
    seq = slopes["sequential"]
    evidence = {"slopes": seq, "untrained_slopes": slopes["untrained"]}
    return {
        "values": {
            "rate_slope_mean": float(np.mean(seq)),
            "rate_slope_min": float(np.min(seq)),
            "rate_slope_max": float(np.max(seq)),
            "rate_untrained_slope_mean": float(np.mean(slopes["untrained"])),
            "rate_oracle_floor": float(
                np.mean([runs[(name, "oracle", s)]["tv"] for s in seeds])
            ),
        },
        "verdict": _verdict(verdict, evidence, passes, base),
        "tv": err_n,
        "slopes": slopes,
    }


def truncation_study(
    covs: dict[float, torch.Tensor],
    sched: Schedule,
    seeds: Sequence[int],
    *,
    runs: dict,
    name: str,
    n_train: int,
    n_gen: int,
    trunc_factor: float,
    **train,
) -> dict:
    """Claim ``trunc_fbm``: ``covs`` the fBm covariances with H = 0.2 (rough; the kernel
    ``name`` of :func:`gp_study`, whose full-history ``runs`` serve) and H = 0.5 (Brownian
    motion, Markov: the baseline). The exact TV proxy of the oracle truncated to d entries
    (:func:`~diffctrl.sequential.metrics.truncated_oracle_tv`), d = 1..L-1, and that of the
    sequential model trained with d_trunc = 1 and with the full history; passes when
    truncation multiplies the TV proxy by >= ``trunc_factor``, per seed. ``"exact"``:
    ``{(H, d): TV}``; ``"learned"``: ``{(H, d_trunc, seed): TV}``."""
    exact = {
        (H, d): truncated_oracle_tv(cov, d)
        for H, cov in covs.items()
        for d in range(1, cov.shape[0])
    }
    learned = {}
    for H, cov in covs.items():
        for d in (1, None):
            for s in seeds:
                if H == 0.2 and d is None:
                    learned[(H, d, s)] = runs[(name, "sequential", s)]["tv"]
                    continue
                xs = fit_and_generate(
                    cov,
                    sched,
                    n_train,
                    n_gen,
                    seed=s,
                    d_trunc=d,
                    which=("sequential",),
                    **train,
                )
                learned[(H, d, s)] = tv_proxy(xs["sequential"], cov)

    def lossy(H):
        return [
            learned[(H, 1, s)] >= trunc_factor * learned[(H, None, s)] for s in seeds
        ]

    passes = lossy(0.2)
    tags = ((0.2, "h02"), (0.5, "h05"))
    values = {f"trunc_exact_{tag}_d1": exact[(H, 1)] for H, tag in tags}
    for H, tag in tags:
        for d, dtag in ((1, "d1"), (None, "full")):
            values[f"trunc_learned_{tag}_{dtag}"] = float(
                np.mean([learned[(H, d, s)] for s in seeds])
            )
    verdict, base = judge(passes, lossy(0.5))
    evidence = {
        tag: [[learned[(H, 1, s)], learned[(H, None, s)]] for s in seeds]
        for H, tag in tags
    }
    return {
        "values": values,
        "verdict": _verdict(verdict, evidence, passes, base),
        "exact": exact,
        "learned": learned,
    }


def portfolio_study(
    mu: torch.Tensor,
    S: torch.Tensor,
    sched: Schedule,
    seeds: Sequence[int],
    *,
    n_port: int,
    n_gen: int,
    sharpe_slack: float,
    **train,
) -> dict:
    """Claim ``portfolio``: per seed, the generator trained on ``n_port`` real scenarios of
    N(mu, S) draws ``n_gen``; the mean-variance portfolio of the generated scenarios, judged
    out of sample, passes when its Sharpe ratio >= that of the plug-in portfolio of the real
    scenarios - ``sharpe_slack`` x the optimal one. The untrained network is the baseline.
    ``"stats"``: ``{(portfolio, seed): portfolio_stats(...)}``; ``"optimal"``."""
    opt = portfolio_stats(mean_variance_weights(mu, S), mu, S)
    port = {}
    for s in seeds:
        g = torch.Generator().manual_seed(s)
        real = gaussian_paths(S, n_port, mean=mu, generator=g)
        xs = fit_and_generate(
            S,
            sched,
            n_port,
            n_gen,
            seed=s,
            mean=mu,
            which=("sequential", "untrained"),
            **train,
        )
        port[("plug-in", s)] = portfolio_stats(scenario_weights(real), mu, S)
        for g in ("sequential", "untrained"):
            port[(g, s)] = portfolio_stats(scenario_weights(xs[g]), mu, S)

    def ok(g):
        slack = sharpe_slack * opt["sharpe"]
        return [
            port[(g, s)]["sharpe"] >= port[("plug-in", s)]["sharpe"] - slack
            for s in seeds
        ]

    passes, base = ok("sequential"), ok("untrained")
    names = ("sequential", "plug-in", "untrained")
    values = {
        f"port_{g.replace('-', '')}_{m}": float(
            np.mean([port[(g, s)][m] for s in seeds])
        )
        for g in names
        for m in ("sharpe", "mean", "var")
    }
    values |= {f"port_optimal_{m}": opt[m] for m in ("sharpe", "mean", "var")}
    equal = torch.full_like(mu, 1 / len(mu))
    values["port_equal_sharpe"] = portfolio_stats(equal, mu, S)["sharpe"]
    values["port_untrained_pass_frac"] = float(np.mean(base))
    verdict, base_passes = judge(passes, base)
    evidence = {g: [port[(g, s)]["sharpe"] for s in seeds] for g in names}
    note = "inconclusive: the untrained generator passes too" if base_passes else ""
    return {
        "values": values,
        "verdict": _verdict(verdict, evidence, passes, base_passes, note),
        "stats": port,
        "optimal": opt,
    }
