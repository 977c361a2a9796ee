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
from ..repro import Claim, Diagnosis, judge
from .gaussian import conditionals, gaussian_paths
from .generators import fit_and_generate, make_sequential
from .metrics import assess_sample, assessment_table, oracle_power
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
    "MARGIN",
    "adaptedness_study",
    "beats_claim",
    "is_stationary_ar1",
    "law_claim",
    "law_study",
    "paper_network_check",
]

#: the equivalence margins of every conditional-law claim, declared before the first run at
#: L = 40 (not a knob): conditional-mean error in conditional sd, conditional-variance ratio,
#: ACF error at lags 1-3
MARGIN = dict(tol_mean=0.2, tol_var=1.25, tol_acf=0.05)
_CRITERION = (
    "conditional-mean error <= 0.2 conditional sd at every k (a one-step forecast at most "
    "4% worse in mean square than the exact one), conditional-variance ratio in [0.8, 1.25] "
    "at every k (a 95% prediction interval keeps a coverage in about [92%, 97%])"
)
_ACF = "; |ACF error| <= 0.05 at lags 1-3 (the sampling error of rho(1) from one path of 400)"
_POWER = "; power >= 0.8: the oracle's draws meet the margins with that probability"


def law_claim(key: str, name: str, where: str, acf: bool, ar1_family: bool) -> Claim:
    """The claim that the sequential model reproduces the conditional laws of ``name``
    (judged by :func:`law_study` at :data:`MARGIN`, with the ACF when ``acf``). Its baseline:
    the whole-sequence model and, unless the target is itself an AR(1) (``ar1_family``), the
    moment-matched AR(1); its control: the oracle."""
    base = (
        "the whole-sequence diffusion model of the same parameter count, trained on the "
        "same paths (it could pass)"
    )
    if not ar1_family:
        base += (
            ", and the moment-matched AR(1) of those paths (two numbers: variance and "
            "lag-1 autocorrelation); either passing is the baseline passing"
        )
    else:
        base += (
            "; the moment-matched AR(1) is the correctly specified fit here, shown, not "
            "a baseline"
        )
    return Claim(
        key,
        paper="cao2026adapted",
        where=where,
        statement=f"the sequential model reproduces the conditional laws of {name}",
        criterion=_CRITERION
        + (_ACF if acf else "")
        + _POWER
        + "; per seed, all must pass",
        baseline=base,
        control="the oracle: every entry drawn from its exact conditional law, same draws",
    )


def beats_claim(key: str, what: str) -> Claim:
    """The paper's comparison: closer to the exact conditional laws than the whole-sequence
    model, per seed, on every one of ``what`` (e.g. "the five ARMA processes")."""
    return Claim(
        key,
        paper="cao2026adapted",
        where="abstract: adapted generation vs whole-sequence models",
        statement="the sequential model's conditional laws are closer to the exact ones "
        f"than the whole-sequence model's, on {what}",
        criterion="per seed: worst statistic in units of its margin smaller than the "
        f"whole-sequence model's, on each of {what}",
        no_baseline="a comparison of two trained models; the oracle against the same "
        "whole-sequence model is its control",
        control="the oracle against the whole-sequence model, same rule",
    )


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
    j,
    power: float,
    power_min: float,
    baseline_fails: bool,
    worst_ratio: float = 1.0,
    reference: dict | None = None,
) -> Diagnosis | None:
    """Why a per-process conditional-law claim is not confirmed: the criterion's power at its
    margins below ``power_min`` or the oracle failing means the margins are out of reach at
    this number of draws; a baseline passing means the criterion does not separate;
    otherwise the exact laws pass and the learned model does not."""
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
    if j.why == "baseline passes" or not baseline_fails:
        return Diagnosis(
            "underpowered",
            "a baseline (the whole-sequence diffusion model, or the moment-matched AR(1) "
            "where that family is misspecified) meets the same margins on some seed: they "
            "do not separate the sequential model from it",
        )
    ref = ""
    if reference is not None:
        vr = reference["var_ratio"]
        ref = (
            "; the paper's kind of network (a causal transformer over the whole prefix, "
            "same paths and training, one seed) gets a conditional-mean error of "
            f"{reference['mean_err']:.3g} sd and variance ratios in [{min(vr):.3g}, "
            f"{max(vr):.3g}]: it "
            + ("meets" if reference["pass"] else "does not meet")
            + " the margins"
        )
    return Diagnosis(
        "setting",
        "the exact conditional laws pass the same margins (power >= "
        f"{power_min:.1f}), so what fails is our learned score (largest conditional-variance "
        f"ratio over positions and seeds {worst_ratio:.3g}): a window MLP trained for 1000 "
        "Adam steps on a CPU with 30 VP levels and an ODE sampler, against the paper's "
        "transformer, 200 cosine levels and about 1000 epochs on a GPU" + ref,
    )


def paper_network_check(
    cov: torch.Tensor,
    acf: np.ndarray | None,
    sched: Schedule,
    seed: int,
    *,
    n_train: int,
    n_gen: int,
    tol: dict[str, float],
    key: str,
    **train,
) -> dict:
    """The paper's kind of network on one target and seed: the causal transformer over the
    whole prefix (``fit_and_generate(..., which=("transformer",))``), trained and sampled
    like the window MLP on the same ``n_train`` paths, judged by
    :func:`~diffctrl.sequential.metrics.assess_sample` at the margins ``tol``. One seed: a
    diagnosis of what the window MLP's failure is owed to, not a verdict. Returns
    ``"assess"`` (for :func:`law_study`'s ``reference``) and ``"values"``, its statistics
    under ``<key>_*`` with ``<key>_meets``: "meets" or "does not meet" (the margins)."""
    x = fit_and_generate(
        cov, sched, n_train, n_gen, seed=seed, which=("transformer",), **train
    )["transformer"]
    a = assess_sample(x, cov, acf, **tol)
    values = {f"{key}_{k}": a[k] for k in ("mean_err", "var_dev", "kl") if k in a}
    if "acf_err" in a:
        values[f"{key}_acf_err"] = a["acf_err"]
    values[f"{key}_var_ratio_min"] = float(np.min(a["var_ratio"]))
    values[f"{key}_var_ratio_max"] = float(np.max(a["var_ratio"]))
    values[f"{key}_meets"] = "meets" if a["pass"] else "does not meet"
    return {"assess": a, "values": values}


def is_stationary_ar1(cov: torch.Tensor, tol: float = 1e-9) -> bool:
    """Whether N(0, cov) is a stationary AR(1) window: cov is Toeplitz and every exact
    conditional X_k | X_{<k} uses the last entry only (Markov). There the moment-matched
    AR(1) is the correctly specified two-parameter fit, not a baseline."""
    B, _ = conditionals(cov)
    idx = torch.arange(cov.shape[0])
    lag = (idx[:, None] - idx[None, :]).abs()
    toeplitz = all(
        float(cov.diagonal(h).std()) <= tol * float(cov.diagonal().mean())
        for h in range(1, cov.shape[0] - 1)
    ) and float(cov.diagonal().std()) <= tol * float(cov.diagonal().mean())
    return toeplitz and float(B[lag > 1].abs().max()) <= tol


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
    reference: dict[str, dict] | None = None,
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
    ``{claim key: rec.verdict kwargs}``; ``"power"``: ``{name: oracle_power(...)}``.
    ``reference``: ``{name: assess_sample(...)}`` of another network on that target
    (:func:`paper_network_check`), quoted in the diagnosis of its claim."""
    runs, power, ar1_true = {}, {}, {}
    which = ("sequential", "whole", "ar1_fit", "oracle")
    for name, (cov, acf) in targets.items():
        ar1_true[name] = is_stationary_ar1(cov)
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
        base = ok["whole"]
        if not ar1_true[name]:  # where the AR(1) family is misspecified
            base = [w or a for w, a in zip(base, ok["ar1_fit"])]
        j = judge(ok["sequential"], base, ok["oracle"])
        evidence = {
            "power": power[name],
            "ar1_fit_is_baseline": not ar1_true[name],
            **{f"{g}_score": [round(score(a), 3) for a in r] for g, r in got.items()},
        }
        diag = _law_diagnosis(
            j,
            power[name]["all"],
            power_min,
            not any(base),
            values[f"{key}_sequential_var_ratio_max"],
            (reference or {}).get(name),
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
