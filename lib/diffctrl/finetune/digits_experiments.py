"""The experiments of the digits notebook (``notebooks/finetune_digits.md``, chapter
``book/finetune.md``): the paper's image experiment (Han, Razaviyayn, Xu 2025, Sec. 6) scaled
down to the book's digit U-Net; the rules of its claims are :mod:`.digits_analysis`.

The notebook builds a :class:`DigitsProblem` (the strided sub-chain of the pre-trained U-Net,
the reward classifier and the judge); each function here runs one section's experiment on it and
returns a :class:`~diffctrl.repro.Outcome`: the headline numbers (``values``), the
keyword arguments of ``rec.verdict`` per claim (``verdicts``) and what the figures show
(``data``). One fine-tuning run is :func:`train_run`: a fresh objective from ``torch.manual_seed``
of its seed, trained by :func:`.trainer.finetune_guarded` (a diverged run, a non-finite loss or
samples beyond ``blowup`` times the pre-trained range, is retried once at a smaller step) and
scored on the same evaluation noise as every other run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..diffusion.models import SmallUNet
from ..diffusion.schedules import Schedule
from ..digits.classifiers import (
    ClassLogProb,
    DigitClassifier,
    DigitCNN,
    accuracy,
    data_nn_floor,
    digit_quality,
    nearest_distance,
    train_classifier,
)
from ..digits.images import model_chain, score_samples
from ..digits.unet import DIGIT_UNET, strided
from ..repro import Outcome
from .defaults import PAPER_DEFAULTS
from .digits_analysis import (
    beta_kl_claim,
    head_to_head_claim,
    quality_claim,
    reward_up_claim,
    summary,
    sweep_summary,
)
from .large.lora import AdapterControl
from .losses import LOSSES
from .nets import ControlMLP, ValueMLP
from .objective import FinetuneObjective
from .trainer import finetune_guarded

__all__ = [
    "QUOTED",
    "RUN_METHODS",
    "DigitsProblem",
    "beta_sweep",
    "compare_methods",
    "evaluate_chain",
    "lora_lr",
    "pretrained_quality",
    "pretrained_scores",
    "settings",
    "train_classifiers",
    "train_run",
]

#: The chapter's method labels and the losses they run: "pift" is actor-critic PI-FT (the
#: variant ``"pift_ac"`` of :mod:`.losses`, one AdamW step on every step at once), not the
#: paper's backward sweep; "dpok" is REINFORCE with a leave-one-out baseline (DPOK-style).
RUN_METHODS = {"pift": "pift_ac", "dpok": "dpok"}

#: The profile settings the prose quotes, recorded as they are.
QUOTED = (
    "T",
    "n_traj",
    "iters",
    "method_beta",
    "blowup",
    "lora_rank",
    "lora_iters",
    "lora_n_traj",
    "lr",
)


def settings(cfg) -> dict:
    """The settings the prose quotes (:data:`QUOTED`), the number of seeds and the retry's
    learning-rate factor."""
    return {key: cfg[key] for key in QUOTED} | {
        "n_seeds": len(cfg.method_seeds),
        "beta_n_seeds": len(cfg.beta_seeds),
        "lora_n_seeds": len(cfg.lora_seeds),
        "lora_lr": lora_lr(cfg),
        "retry_factor": cfg.retry_factors[-1],
    }


def train_classifiers(
    digits: torch.Tensor, labels: torch.Tensor, cfg, *, seed: int, device
) -> tuple[DigitClassifier, DigitCNN, dict]:
    """The reward classifier (an MLP on three quarters of the digits with Gaussian pixel noise
    ``cfg.clf_noise``) and the judge (a CNN on the same digits without noise), initialised from
    ``torch.manual_seed(seed)`` and ``seed + 1``; returns them with their accuracies on the
    held-out quarter."""
    perm = torch.randperm(
        digits.shape[0], generator=torch.Generator().manual_seed(seed)
    )
    cut = 3 * digits.shape[0] // 4
    tr, te = perm[:cut], perm[cut:]
    torch.manual_seed(seed)
    clf = DigitClassifier(64, 10, hidden=128)
    train_classifier(
        clf,
        digits[tr],
        labels[tr],
        cfg.clf_steps,
        noise_std=cfg.clf_noise,
        seed=seed,
        device=device,
    )
    torch.manual_seed(seed + 1)
    judge_net = DigitCNN(10).to(device)
    train_classifier(
        judge_net, digits[tr], labels[tr], cfg.judge_steps, seed=seed + 1, device=device
    )
    judge_net.eval()
    values = {
        "clf_accuracy": accuracy(clf, digits[te].to(device), labels[te]),
        "judge_accuracy": accuracy(judge_net, digits[te].to(device), labels[te]),
    }
    return clf, judge_net, values


@dataclass
class DigitsProblem:
    """What every experiment of the notebook shares: the profile ``cfg``, ``seed`` and
    ``device``; the ``digits`` (n, 1, 8, 8); the pre-trained model on its strided sub-chain
    (``sub_net``, ``sched``); the reward ``r(x) = log p(target | x)`` of the classifier ``clf``;
    the ``judge`` (never trained against)."""

    cfg: object
    seed: int
    device: object
    digits: torch.Tensor
    sub_net: nn.Module
    sched: Schedule
    reward: ClassLogProb
    clf: DigitClassifier
    judge: nn.Module

    def chain_at(self, beta: float, net: nn.Module | None = None):
        """The chain of ``net`` (default the pre-trained sub-chain) at KL weight ``beta``, on
        flattened 8x8 images, with the large variance."""
        return model_chain(
            self.sub_net if net is None else net, self.sched, beta, (1, 8, 8)
        )


def evaluate_chain(p: DigitsProblem, chain, control) -> tuple[dict, torch.Tensor]:
    """:func:`diffctrl.digits.images.score_samples` of ``cfg.n_eval`` samples on the same
    evaluation noise (``seed + 100``) for every run, with the judge, plus ``nn``: the median
    distance of the samples to their nearest digit."""
    sc, y = score_samples(
        chain,
        control,
        p.reward,
        p.clf,
        p.cfg.target,
        p.cfg.n_eval,
        seed=p.seed + 100,
        device=p.device,
        judge=p.judge,
    )
    sc["nn"] = float(nearest_distance(y, p.digits.flatten(1)).median())
    return sc, y


def pretrained_quality(p: DigitsProblem, sched_full: Schedule) -> Outcome:
    """Claim ``pretrained_digits``: :func:`diffctrl.digits.classifiers.digit_quality` of
    ``cfg.n_quality`` samples of the pre-trained sub-chain per seed of ``cfg.quality_seeds``,
    against the untrained U-Net (from ``torch.manual_seed(seed + 2)``) on the same chain."""
    cfg, seed = p.cfg, p.seed
    torch.manual_seed(seed + 2)
    untrained, _ = strided(
        SmallUNet(sched_full.N, base=DIGIT_UNET[cfg.unet]["base"]).to(p.device),
        sched_full,
        cfg.T,
    )
    qual, qual0 = [], []
    for s in cfg.quality_seeds:
        for net, out in ((p.sub_net, qual), (untrained, qual0)):
            _, y = score_samples(
                p.chain_at(1.0, net),
                None,
                p.reward,
                p.clf,
                cfg.target,
                cfg.n_quality,
                seed=seed + 200 + s,
                device=p.device,
            )
            out.append(digit_quality(y.cpu(), p.digits, p.clf.cpu(), seed=seed + s))
    p.clf.to(p.device)
    values = {}
    for name in ("tv", "nn", "fd"):
        values[f"pre_{name}"] = float(np.mean([q[name] for q in qual]))
        values[f"pre_{name}_floor"] = float(np.mean([q[f"{name}_floor"] for q in qual]))
        values[f"pre_{name}_untrained"] = float(np.mean([q[name] for q in qual0]))
    return Outcome(values, verdicts={"pretrained_digits": quality_claim(qual, qual0)})


def pretrained_scores(p: DigitsProblem) -> Outcome:
    """The pre-trained chain at ``cfg.method_beta`` scored as every fine-tuned run
    (:func:`evaluate_chain`), the data's own nearest-digit floor
    (:func:`diffctrl.digits.classifiers.data_nn_floor`) and the range of the samples (at least
    the pixel range) that defines a blow-up. ``data``: ``scores``, ``images``, ``range``,
    ``nn_floor``."""
    nn_floor = data_nn_floor(p.digits)
    pre, imgs = evaluate_chain(p, p.chain_at(p.cfg.method_beta), None)
    keys = ("reward", "target_frac", "judge_target_frac", "judge_logp")
    keys += ("class_entropy", "judge_entropy", "pairwise", "nn")
    values = {f"{key}_pre": pre[key] for key in keys}
    values["objective_pre"] = pre["reward"]  # the pre-trained chain has KL 0
    values["data_nn_floor"] = nn_floor
    values["pre_range"] = pre_range = max(1.0, float(imgs.abs().max()))
    data = dict(scores=pre, images=imgs, range=pre_range, nn_floor=nn_floor)
    return Outcome(values, data=data)


def lora_lr(cfg) -> float:
    """The LoRA learning rate that gives the paper's total movement: its lr times its steps
    (3e-4 x 1000) spread over ``cfg.lora_iters`` iterations."""
    return PAPER_DEFAULTS["lr"] * PAPER_DEFAULTS["steps"] / cfg.lora_iters


def train_run(
    p: DigitsProblem,
    method: str,
    beta: float,
    s: int,
    pre_range: float,
    control: str = "mlp",
    curves: bool = False,
    iters: int | None = None,
) -> tuple[dict | None, torch.Tensor | None, dict]:
    """One fine-tuning run of ``method`` at ``beta`` from seed ``s``: a control network
    (``control="mlp"``, :class:`.nets.ControlMLP`, ``cfg.iters`` iterations at ``cfg.lr``;
    with ``curves`` scored every ``cfg.eval_every``) or LoRA adapters on the U-Net
    (``"lora"``, :class:`.large.lora.AdapterControl`, ``cfg.lora_iters`` iterations at
    :func:`lora_lr`, the paper's total movement), gradients clipped to ``cfg.clip``;
    ``iters`` overrides the number of iterations (equal budgets). Returns ``(scores with J,
    nfe and forward-equivalents fe, samples, {"history", "tries"})``; scores and samples are
    ``None`` when every attempt diverged."""
    cfg, dev = p.cfg, p.device
    chain, last = p.chain_at(beta), {}
    loss = RUN_METHODS[method]  # this chapter's labels -> the registry (.losses.LOSSES)

    def in_range(obj):  # scores the final samples; False when they blew up
        last["sc"], last["y"] = evaluate_chain(p, chain, obj.control)
        return bool(last["y"].abs().max() <= cfg.blowup * pre_range)

    def make():
        torch.manual_seed(s)
        if control == "mlp":
            ctrl = ControlMLP(64, chain.sigma, chain.beta, hidden=cfg.hidden).to(dev)
            n_traj = cfg.n_traj
        else:
            ctrl = AdapterControl(
                p.sub_net, p.sched, (1, 8, 8), rank=cfg.lora_rank, seed=s
            ).to(dev)
            n_traj = cfg.lora_n_traj
        critic = (
            ValueMLP(64, chain.T + 1, hidden=cfg.hidden).to(dev)
            if LOSSES[loss].critic
            else None
        )
        return FinetuneObjective(
            chain, p.reward, ctrl, loss, critic=critic, n_traj=n_traj, device=dev
        )

    if iters is None:
        iters = cfg.iters if control == "mlp" else cfg.lora_iters
    if control == "mlp":  # with curves: evaluated every eval_every iterations
        obj, res, tries = finetune_guarded(
            make,
            iters,
            lr=cfg.lr,
            lr_factors=cfg.retry_factors,
            check=in_range,
            seed=s,
            max_grad_norm=cfg.clip,
            eval_every=cfg.eval_every if curves else 0,
            callback=(lambda o: evaluate_chain(p, o.chain, o.control)[0])
            if curves
            else None,
        )
    else:  # the paper's total movement
        obj, res, tries = finetune_guarded(
            make,
            iters,
            lr=lora_lr(cfg),
            lr_factors=cfg.retry_factors,
            check=in_range,
            seed=s,
            max_grad_norm=cfg.clip,
        )
    if obj is None:
        return None, None, dict(history=[], tries=tries)
    sc = dict(
        last["sc"],
        J=last["sc"]["reward"] - beta * last["sc"]["kl"],
        nfe=obj.budget.nfe,
        fe=obj.budget.forward_equivalents,
    )
    return sc, last["y"], dict(history=res.history, tries=tries)


def _fe_per_iteration(p: DigitsProblem, method: str, control: str) -> int:
    """Forward-equivalents one iteration of ``method`` charges (one dry iteration)."""
    cfg, dev = p.cfg, p.device
    chain = p.chain_at(cfg.method_beta)
    loss = RUN_METHODS[method]
    if control == "mlp":
        ctrl, n_traj = (
            ControlMLP(64, chain.sigma, chain.beta, hidden=cfg.hidden),
            cfg.n_traj,
        )
    else:
        ctrl = AdapterControl(p.sub_net, p.sched, (1, 8, 8), rank=cfg.lora_rank, seed=0)
        n_traj = cfg.lora_n_traj
    critic = (
        ValueMLP(64, chain.T + 1, hidden=cfg.hidden) if LOSSES[loss].critic else None
    )
    obj = FinetuneObjective(
        chain,
        p.reward,
        ctrl.to(dev),
        loss,
        critic=critic and critic.to(dev),
        n_traj=n_traj,
        device=dev,
    )
    obj(torch.Generator().manual_seed(0))
    return obj.budget.forward_equivalents


def compare_methods(p: DigitsProblem, pre: Outcome, control: str = "mlp") -> Outcome:
    """PI-FT against DPOK at ``cfg.method_beta`` at equal forward-equivalents (DPOK runs
    more, cheaper iterations) from every seed of ``cfg.method_seeds``, with a
    control network (``control="mlp"``, with training curves; claims ``pift_vs_dpok`` and
    ``reward_up``) or LoRA adapters (``"lora"``: claim ``pift_vs_dpok_lora``, values prefixed
    ``lora_``). ``data["runs"]``: ``{(method, seed): train_run(...)}``."""
    cfg = p.cfg
    seeds = cfg.lora_seeds if control == "lora" else cfg.method_seeds
    runs = {}
    # equal budgets: DPOK runs as many iterations as make PI-FT's forward-equivalents
    # (a backward pass counts as two forwards; PI-FT's iterations also train a critic)
    base = cfg.iters if control == "mlp" else cfg.lora_iters
    ratio = _fe_per_iteration(p, "pift", control) / _fe_per_iteration(
        p, "dpok", control
    )
    iters = {"pift": base, "dpok": max(1, round(base * ratio))}
    for method in ("pift", "dpok"):
        for s in seeds:
            runs[method, s] = train_run(
                p,
                method,
                cfg.method_beta,
                s,
                pre.data["range"],
                control=control,
                curves=control == "mlp",
                iters=iters[method],
            )
    prefix = "" if control == "mlp" else "lora_"
    values = summary(prefix, runs, "pift", seeds) | summary(prefix, runs, "dpok", seeds)
    values[f"{prefix}iters_dpok"] = iters["dpok"]
    if control != "mlp":
        J_pre = pre.data["scores"]["reward"]  # the pre-trained chain has KL 0
        claims = {"pift_vs_dpok_lora": head_to_head_claim(runs, seeds, J_pre)}
        return Outcome(values, verdicts=claims, data=dict(runs=runs))
    judge_pre, nn_floor = pre.data["scores"]["judge_target_frac"], pre.data["nn_floor"]
    claims = {
        "pift_vs_dpok": head_to_head_claim(runs, seeds, pre.data["scores"]["reward"]),
        "reward_up": reward_up_claim(runs, seeds, judge_pre, nn_floor),
    }
    return Outcome(values, verdicts=claims, data=dict(runs=runs))


def beta_sweep(p: DigitsProblem, pre: Outcome, methods: Outcome) -> Outcome:
    """PI-FT with the control network at every beta of ``cfg.betas`` (at ``cfg.method_beta``
    the runs of :func:`compare_methods`) from every seed of ``cfg.beta_seeds``: the scores of
    :func:`.digits_analysis.sweep_summary` and claim ``beta_kl``. ``data``: ``sweep``
    ``{(beta, seed): train_run(...)}``, ``ok_betas`` (where a seed did not diverge)."""
    cfg, seeds = p.cfg, p.cfg.beta_seeds
    runs = methods.data["runs"]
    sweep = {}
    for b in cfg.betas:
        for s in seeds:
            sweep[b, s] = (
                runs["pift", s]
                if b == cfg.method_beta
                else train_run(p, "pift", b, s, pre.data["range"])
            )
    values = sweep_summary(sweep, cfg.betas, seeds)
    beta_kl = beta_kl_claim(sweep, cfg.betas, seeds)
    ok_betas = [b for b in cfg.betas if any(sweep[b, s][0] is not None for s in seeds)]
    return Outcome(
        values, verdicts={"beta_kl": beta_kl}, data=dict(sweep=sweep, ok_betas=ok_betas)
    )
