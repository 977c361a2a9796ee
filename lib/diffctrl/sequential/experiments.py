"""The experiments of the adapted-sequential chapter, with their criteria and verdicts.

Each function runs one section of ``notebooks/adapted_sequential.md`` (Cao, Chen, Han & Xu
2026, the claims declared there) and returns a dict: ``"values"``, the headline numbers the
notebook records in one line (``rec.update(out["values"])``); ``"verdict"``, the keyword
arguments of ``rec.verdict(key, **out["verdict"])`` (a :class:`~diffctrl.repro.Judgement`
by ``diffctrl.repro.judge`` with its per-seed, baseline and control outcomes, the evidence
and a diagnosis when short of confirmed), or ``"verdicts"``, one such dict per claim key;
and the per-run numbers the figures draw. Training arguments (``steps``,
``batch_size``, ``lr``, ``hidden``, ``method``, ``device``) are passed through to
:func:`~diffctrl.sequential.generators.fit_and_generate`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

from ..diffusion.schedules import Schedule
from ..repro import Diagnosis, judge
from .gaussian import conditionals, gaussian_paths
from .generators import fit_and_generate, make_sequential
from .metrics import assess_sample, assessment_table, oracle_power
from .portfolio import (
    myopic_weights,
    quadratic_utility,
)
from .sampling import (
    adaptedness_gaps,
    data_scale,
    draw_noise,
    sample_next,
    sample_sequential,
    sample_whole,
    train_sequential,
    train_whole,
    whole_sequence_model,
)

__all__ = ["adaptedness_study", "law_study", "multiperiod_study"]


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
    j = judge(passes, [w == 0.0 for w in whole_past])
    evidence = {"seq_max_past_change": seq_past, "whole_past_change": whole_past}
    diag = None
    if j.verdict != "confirmed":
        diag = Diagnosis(
            "setting", "our sampler lets later noise reach earlier entries"
        )
    return {
        "values": {
            "adapt_seq_max_past_change": seq_past,
            "adapt_seq_min_future_change": min(f for run in adapt_seq for _, f in run),
            "adapt_whole_min_past_change": min(whole_past),
        },
        "verdict": dict(verdict=j, evidence=evidence, diagnosis=diag),
        "sequential": adapt_seq,
        "whole": adapt_whole,
    }


def _law_diagnosis(
    j, power: float, power_min: float, whole_fails: bool, worst_ratio: float = 1.0
) -> Diagnosis | None:
    """Why a per-process conditional-law claim is not confirmed: the criterion's power at its
    margins below ``power_min`` or the oracle failing means the margins are out of reach at
    this number of draws; the whole-sequence baseline passing means the criterion does not
    separate; otherwise the exact laws pass and the learned model does not."""
    if j.verdict == "confirmed":
        return None
    if power < power_min or j.control_passes is False:
        return Diagnosis(
            "underpowered",
            f"the exact conditional laws meet the margins with probability {power:.2f} at "
            "this number of generated paths and the oracle's own draws fail on "
            f"{'some' if j.control_passes is False else 'no'} seeds: more draws (or "
            "wider margins) would decide",
        )
    if j.why == "baseline passes" or not whole_fails:
        return Diagnosis(
            "underpowered",
            "the whole-sequence diffusion model meets the same margins: they do not "
            "separate the sequential model from it",
        )
    return Diagnosis(
        "setting",
        "the exact conditional laws pass the same margins (power >= "
        f"{power_min:.1f}), so what fails is our learned score (largest conditional-variance "
        f"ratio over positions and seeds {worst_ratio:.3g}): a window MLP trained for 1000 "
        "Adam steps on a CPU with 30 VP levels and an ODE sampler, against the paper's "
        "transformer, 200 cosine levels and about 1000 epochs on a GPU",
    )


def _key(name: str) -> str:
    """A record key for a process name: letters and digits in lower case."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def law_study(
    targets: dict[str, tuple[torch.Tensor, np.ndarray | None]],
    sched: Schedule,
    seeds: Sequence[int],
    *,
    prefix: str,
    n_train: int,
    n_gen: int,
    tol: dict[str, float],
    reps: int,
    power_min: float = 0.8,
    **train,
) -> dict:
    """Claims ``<prefix>_<process>`` (``arma_*``, ``gp_*``), one per target: ``targets``
    maps a name to (covariance, exact ACF or None). Per target and seed, the sequential model,
    the whole-sequence diffusion model (the baseline, same paths and parameter count) and the
    oracle (the control: exact conditional laws, same draws) are judged by
    :func:`~diffctrl.sequential.metrics.assess_sample` at the equivalence margins ``tol``; the
    criterion's power is the share of ``reps`` exact samples of ``n_gen`` paths that meet
    them (:func:`~diffctrl.sequential.metrics.oracle_power`), declared adequate at
    ``power_min``. Also judged (claim ``<prefix>_beats_whole``): per seed, the sequential
    model's worst margin-normalised error below the whole-sequence model's on every target.
    ``"runs"``: ``{(name, generator, seed): assess_sample(...)}``; ``"verdicts"``:
    ``{claim key: rec.verdict kwargs}``; ``"power"``: ``{name: oracle_power(...)}``."""
    runs, power = {}, {}
    which = ("sequential", "whole", "oracle")
    for name, (cov, acf) in targets.items():
        power[name] = oracle_power(cov, n_gen, reps, acf, seed=1_000_000, **tol)
        for s in seeds:
            xs = fit_and_generate(
                cov, sched, n_train, n_gen, seed=s, which=which, **train
            )
            for g, x in xs.items():
                runs[(name, g, s)] = assess_sample(x, cov, acf, **tol)

    def score(a):
        """The worst statistic in units of its margin (<= 1: within every margin)."""
        parts = [a["mean_err"] / tol["tol_mean"], a["var_dev"] / np.log(tol["tol_var"])]
        if "acf_err" in a:
            parts.append(a["acf_err"] / tol["tol_acf"])
        return max(parts)

    values, verdicts = {}, {}
    for name in targets:
        key = f"{prefix}_{_key(name)}"
        got = {g: [runs[(name, g, s)] for s in seeds] for g in which}
        for g, r in got.items():
            values[f"{key}_{g}_mean_err"] = max(a["mean_err"] for a in r)
            values[f"{key}_{g}_var_dev"] = max(a["var_dev"] for a in r)
            values[f"{key}_{g}_var_ratio_max"] = max(
                float(np.max(a["var_ratio"])) for a in r
            )
            values[f"{key}_{g}_kl"] = float(np.median([a["kl"] for a in r]))
            if "acf_err" in r[0]:
                values[f"{key}_{g}_acf_err"] = max(a["acf_err"] for a in r)
        values[f"{key}_power"] = power[name]["all"]
        ok = {g: [a["pass"] for a in r] for g, r in got.items()}
        j = judge(ok["sequential"], ok["whole"], ok["oracle"])
        evidence = {
            "power": power[name],
            **{f"{g}_score": [round(score(a), 3) for a in r] for g, r in got.items()},
        }
        diag = _law_diagnosis(
            j,
            power[name]["all"],
            power_min,
            not any(ok["whole"]),
            values[f"{key}_sequential_var_ratio_max"],
        )
        verdicts[key] = dict(verdict=j, evidence=evidence, diagnosis=diag)

    def beats(g):
        return [
            all(score(runs[(n, g, s)]) < score(runs[(n, "whole", s)]) for n in targets)
            for s in seeds
        ]

    jb = judge(beats("sequential"), control=beats("oracle"))
    diag = None
    if jb.verdict != "confirmed":
        diag = Diagnosis(
            "setting",
            "on some process and seed the whole-sequence model of the same parameter count "
            "comes closer to the exact conditional laws than our sequential model",
        )
    verdicts[f"{prefix}_beats_whole"] = dict(
        verdict=jb,
        evidence={
            f"{_key(n)}": [
                [round(score(runs[(n, g, s)]), 3) for s in seeds]
                for g in ("sequential", "whole")
            ]
            for n in targets
        },
        diagnosis=diag,
    )
    values[f"{prefix}_min_power"] = min(p["all"] for p in power.values())
    return {
        "values": values,
        "verdicts": verdicts,
        "runs": runs,
        "power": power,
        "summary": assessment_table(runs, {n: which for n in targets}, seeds),
    }


def multiperiod_study(
    cov: torch.Tensor,
    mean: float,
    sched: Schedule,
    seeds: Sequence[int],
    *,
    n_train: int,
    n_test: int,
    n_scen: int,
    gamma: float = 5.0,
    share: float = 0.8,
    steps: int,
    hidden: int,
    method: str,
    device,
    **opt,
) -> dict:
    """Claim ``portfolio``: one asset whose returns over L periods are N(mean, cov) (serially
    dependent), held period by period with the quadratic-utility weight
    (:func:`~diffctrl.sequential.portfolio.myopic_weights`) from ``n_scen`` scenarios of
    r_t. Per seed, the sequential model trained on ``n_train`` return paths generates the
    scenarios of r_t given the *observed* past of each of ``n_test`` test paths
    (:func:`~diffctrl.sequential.sampling.sample_next`); it passes when its realised utility
    (:func:`~diffctrl.sequential.portfolio.quadratic_utility`, periods 1..L-1) gains at least
    ``share`` of what the exact conditional law (exact weights) gains over the best strategy
    that ignores the past (weights from the exact marginal law). Baseline: the untrained
    network's conditional scenarios; control: ``n_scen`` scenarios drawn from the exact
    conditional law (the same Monte Carlo error as the generator's); also recorded, the
    trained model's unconditional scenarios. ``"utility"``: ``{(strategy, seed): value}``."""
    L = cov.shape[0]
    mu = torch.full((L,), float(mean), dtype=torch.float64)
    B, v = conditionals(cov)
    opt = dict(opt, device=device, progress=False)
    util = {}
    for s in seeds:
        data = gaussian_paths(
            cov, n_train, mean=mu, generator=torch.Generator().manual_seed(s)
        )
        net = make_sequential(L, sched.N, None, hidden, seed=s)
        base = make_sequential(L, sched.N, None, hidden, seed=s)
        base.scale.fill_(data_scale(data))
        train_sequential(net, sched, data, steps, seed=s, **opt)
        test = gaussian_paths(
            cov, n_test, mean=mu, generator=torch.Generator().manual_seed(s + 40_000)
        )
        r = test[:, 1:]
        w = {}
        for name, model in (("conditional", net), ("untrained", base)):
            cols = []
            for t in range(1, L):
                prefix = test[:, :t].repeat_interleave(n_scen, dim=0)
                g = torch.Generator().manual_seed(s + 50_000 + t)
                x = sample_next(
                    model, sched, prefix, generator=g, method=method, device=device
                )
                cols.append(myopic_weights(x.reshape(n_test, n_scen), gamma))
            w[name] = torch.stack(cols, dim=1)
        uncond = (
            sample_sequential(
                net,
                sched,
                n_scen * 8,
                generator=torch.Generator().manual_seed(s + 60_000),
                method=method,
                device=device,
            )
            .double()
            .cpu()
        )
        w["unconditional"] = myopic_weights(uncond[:, 1:].T, gamma).expand_as(r)
        m_exact = mu[1:] + (test - mu) @ B[1:].T  # exact conditional means (n, L-1)
        w["exact"] = m_exact / (gamma * (v[1:] + m_exact**2))
        z = torch.randn(
            n_test,
            L - 1,
            n_scen,
            generator=torch.Generator().manual_seed(s + 70_000),
            dtype=torch.float64,
        )
        w["exact_scenarios"] = myopic_weights(
            m_exact[..., None] + v[1:, None].sqrt() * z, gamma
        )
        m0, s2 = mu[1:], cov.diagonal()[1:] + mu[1:] ** 2
        w["exact_marginal"] = (m0 / (gamma * s2)).expand_as(r)
        for name, ww in w.items():
            util[(name, s)] = quadratic_utility(ww, r, gamma)

    def gain(name, s):
        return util[(name, s)] - util[("exact_marginal", s)]

    def beats(name):
        return [gain(name, s) >= share * gain("exact", s) for s in seeds]

    j = judge(beats("conditional"), beats("untrained"), beats("exact_scenarios"))
    diag = None
    if j.verdict != "confirmed":
        diag = Diagnosis(
            "setting",
            f"the learned conditional scenarios do not gain {share:.0%} of what the exact "
            "conditional law gains over ignoring the past on every seed: our conditional "
            "mean is too far from the exact one",
        )
    names = (
        "conditional",
        "untrained",
        "unconditional",
        "exact",
        "exact_scenarios",
        "exact_marginal",
    )
    values = {
        f"mp_{n}_utility": float(np.mean([util[(n, s)] for s in seeds])) for n in names
    }
    for n in ("conditional", "untrained", "unconditional", "exact_scenarios"):
        values[f"mp_{n}_share"] = float(
            min(gain(n, s) / gain("exact", s) for s in seeds)
        )
    return {
        "values": values,
        "verdict": dict(
            verdict=j,
            evidence={n: [util[(n, s)] for s in seeds] for n in names},
            diagnosis=diag,
        ),
        "utility": util,
    }
