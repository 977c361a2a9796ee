"""The book's one pre-trained digit model: a :class:`~diffctrl.diffusion.models.SmallUNet` trained
by denoising score matching (Ho et al. 2020; ``book/notation.md``, *Noise levels, schedules and
the forward process*) on scikit-learn's 8x8 digits,
trained once per build and shared by the Preliminaries and the fine-tuning chapter.

- :data:`DIGIT_UNET` the configurations (``"full"``: the published model; ``"smoke"``: a tiny
  one for CI, with its own hash); :func:`artifact_key` the SHA-256 (first 16 hex digits) of the
  configuration, the training data and the source of every module the training runs through;
- :func:`digit_unet` trains-or-loads: an explicit ``source`` (a local file or an http(s) URL),
  else the cached artifact ``$DIFFCTRL_ARTIFACTS/digit_unet-<key>.pt`` (:data:`ARTIFACTS_ENV`;
  default ``<repo>/_build/artifacts``), else a download from :func:`weights_url`
  (``$DIFFCTRL_WEIGHTS_URL``, or on Colab and Binder the published book's ``_static/artifacts/``,
  :data:`PUBLISHED_ARTIFACTS`: how a reader gets the weights without retraining; a failed
  download falls back to training), else training. Training holds an exclusive ``fcntl`` lock
  on ``.<file>.lock`` (two notebooks running in parallel train once) and writes atomically
  (:func:`diffctrl.atomic.atomic_save`);
- :func:`strided` the sub-chain of ``n_steps`` transitions of the ``N``-level model (levels
  ``k_j = offset + (j - 1) N / n_steps + 1``, ``alpha_bar`` read off the model's schedule,
  ``beta_j = 1 - alpha_bar_{k_j} / alpha_bar_{k_{j-1}}``:
  :func:`diffctrl.finetune.respacing.strided_schedule`, the same respacing as the Stable
  Diffusion path) as a model with ``N = n_steps`` levels.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import inspect
import json
import os
import sys
import textwrap
import time
import urllib.request
import warnings
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_save, atomic_write
from ..diffusion import data as ddata
from ..diffusion import models, schedules, training
from ..diffusion.models import SmallUNet, batch_levels
from ..diffusion.schedules import Schedule, make_schedule
from ..finetune.respacing import strided_schedule

__all__ = [
    "ARTIFACTS_ENV",
    "DIGIT_UNET",
    "PUBLISHED_ARTIFACTS",
    "WEIGHTS_URL_ENV",
    "StridedModel",
    "artifact_key",
    "artifact_name",
    "artifacts_dir",
    "check_config",
    "code_fingerprint",
    "digit_unet",
    "sha256_file",
    "strided",
    "weights_url",
]

#: The environment variable naming the folder of trained artifacts (the book's build sets it
#: to ``_build/artifacts``); :func:`artifacts_dir` reads it.
ARTIFACTS_ENV = "DIFFCTRL_ARTIFACTS"
#: The environment variable naming a base URL to download the trained model from
#: (:func:`weights_url`).
WEIGHTS_URL_ENV = "DIFFCTRL_WEIGHTS_URL"
#: Where the published book serves its artifacts (GitHub Pages of the repository of
#: ``[tool.diffctrl.book]``); used on Colab and Binder when ``$DIFFCTRL_WEIGHTS_URL`` is not set.
PUBLISHED_ARTIFACTS = "https://diffctrl.github.io/diffctrl-book/_static/artifacts"

#: The configurations of the digit U-Net: ``"full"`` the published model, ``"smoke"`` a tiny
#: one for CI (its own key). Keys: the noise ``schedule`` and its ``N`` levels, the U-Net's
#: ``base`` width, the training ``steps``, ``batch_size``, ``lr`` and ``seed``.
DIGIT_UNET = {
    "full": dict(
        schedule="linear", N=1000, base=32, steps=5000, batch_size=128, lr=2e-3, seed=0
    ),
    "smoke": dict(
        schedule="linear", N=1000, base=8, steps=150, batch_size=64, lr=3e-3, seed=0
    ),
}
_KEYS = ("schedule", "N", "base", "steps", "batch_size", "lr", "seed")


def check_config(config) -> dict:
    """A configuration: a name of :data:`DIGIT_UNET` or a dict with exactly its keys."""
    if isinstance(config, str):
        if config not in DIGIT_UNET:
            raise ValueError(
                f"config must be one of {sorted(DIGIT_UNET)} or a dict, got {config!r}"
            )
        return dict(DIGIT_UNET[config])
    if not isinstance(config, dict):
        raise TypeError(f"config must be a name or a dict, got {type(config).__name__}")
    if set(config) != set(_KEYS):
        raise ValueError(
            f"config must have exactly the keys {_KEYS}, got {sorted(config)}"
        )
    for k in ("N", "base", "steps", "batch_size", "seed"):
        if (
            not isinstance(config[k], int)
            or isinstance(config[k], bool)
            or config[k] < 0
        ):
            raise ValueError(f"config[{k!r}] must be an int >= 0, got {config[k]!r}")
    if not float(config["lr"]) > 0:
        raise ValueError(f"config['lr'] must be > 0, got {config['lr']!r}")
    return dict(config)


def code_fingerprint(source: str) -> str:
    """The syntax tree of Python ``source`` without docstrings, as text: the same for any
    formatting, comments or docstrings, different for any change of what the code does."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def artifact_key(config) -> str:
    """SHA-256 (16 hex digits) of the configuration, the digits and the training code
    (:func:`code_fingerprint` of the schedules, models, training and data modules and of the
    training function ``_train``)."""
    cfg = check_config(config)
    h = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode())
    for mod in (schedules, models, training, ddata):
        h.update(code_fingerprint(inspect.getsource(mod)).encode())
    h.update(code_fingerprint(textwrap.dedent(inspect.getsource(_train))).encode())
    x, y = ddata.load_digits()
    h.update(x.numpy().tobytes())
    h.update(y.numpy().tobytes())
    return h.hexdigest()[:16]


def artifacts_dir() -> Path:
    """``$DIFFCTRL_ARTIFACTS``, else ``_build/artifacts`` of the repository above the cwd, else
    ``./_build/artifacts``."""
    env = os.environ.get(ARTIFACTS_ENV)
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists() and (folder / "lib" / "diffctrl").is_dir():
            return folder / "_build" / "artifacts"
    return here / "_build" / "artifacts"


def artifact_name(config) -> str:
    """The file name of the trained model of ``config``: ``digit_unet-<key>.pt``."""
    return f"digit_unet-{artifact_key(config)}.pt"


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _train(cfg: dict, device, progress: bool) -> tuple[nn.Module, dict]:
    sched = make_schedule(cfg["schedule"], cfg["N"])
    digits, _ = ddata.load_digits()
    torch.manual_seed(cfg["seed"])
    net = SmallUNet(sched.N, base=cfg["base"])
    t0, w0 = time.process_time(), time.perf_counter()
    losses = training.train_dsm(
        net,
        sched,
        digits,
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        seed=cfg["seed"],
        device=device,
        progress=progress,
    )
    tail = losses[-min(200, len(losses)) :] if losses else [float("nan")]
    info = {
        "train_cpu_s": time.process_time() - t0,
        "train_wall_s": time.perf_counter() - w0,
        "train_threads": torch.get_num_threads(),
        "final_loss": sum(tail) / len(tail),
    }
    return net.cpu().eval(), info


def _load(path: Path, key: str, cfg: dict, device) -> tuple[nn.Module, dict]:
    st = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(st, dict) or st.get("key") != key:
        got = st.get("key") if isinstance(st, dict) else None
        raise ValueError(
            f"{path} holds the model with key {got!r}, not {key!r}: it was trained "
            "with another configuration, data or code"
        )
    net = SmallUNet(cfg["N"], base=cfg["base"])
    net.load_state_dict(st["state_dict"])
    return net.to(device).eval(), dict(st["info"])


def weights_url() -> str | None:
    """``$DIFFCTRL_WEIGHTS_URL``; else, on Colab or Binder (a reader's copy, with internet),
    :data:`PUBLISHED_ARTIFACTS`; else ``None`` (the build and CI never download)."""
    env = os.environ.get(WEIGHTS_URL_ENV)
    if env:
        return env
    if "google.colab" in sys.modules or any(
        k.startswith("BINDER_") for k in os.environ
    ):
        return PUBLISHED_ARTIFACTS
    return None


def _download(url: str, dest: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        data = r.read()
    atomic_write(dest, lambda tmp: tmp.write_bytes(data))


def digit_unet(
    config="full",
    *,
    source: str | os.PathLike | None = None,
    device="cpu",
    progress: bool = False,
    timeout: float = 60.0,
) -> tuple[nn.Module, Schedule, dict]:
    """The trained digit U-Net of ``config`` (module docstring for where it comes from), in
    eval mode on ``device``; returns ``(model, schedule, info)`` with ``info``: ``key``,
    ``path``, ``origin`` (``"source"``, ``"cache"``, ``"download"`` or ``"trained"``),
    ``sha256`` of the file and the training's ``train_cpu_s``, ``train_wall_s``,
    ``final_loss``."""
    cfg = check_config(config)
    key = artifact_key(cfg)
    sched = make_schedule(cfg["schedule"], cfg["N"])
    folder = artifacts_dir()
    path = folder / f"digit_unet-{key}.pt"
    if source is not None:
        src = str(source)
        if src.startswith(("http://", "https://")):
            _download(src, path, timeout)
            origin = "download"
        else:
            path, origin = Path(src), "source"
            if not path.is_file():
                raise ValueError(f"source {src!r} is not a file")
        net, info = _load(path, key, cfg, device)
        return (
            net,
            sched,
            dict(
                info, key=key, path=str(path), origin=origin, sha256=sha256_file(path)
            ),
        )
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".digit_unet-{key}.lock", "w") as lock:  # a dot: not published
        fcntl.flock(
            lock, fcntl.LOCK_EX
        )  # a parallel run waits here, then finds the file
        origin = "cache"
        base = weights_url()
        if not path.exists() and base:
            url = base.rstrip("/") + "/" + path.name
            try:
                _download(url, path, timeout)
                _load(path, key, cfg, "cpu")
                origin = "download"
            except Exception as err:  # noqa: BLE001 - any failure: train instead
                warnings.warn(
                    f"could not use {url} ({err}); training the model instead",
                    stacklevel=2,
                )
                path.unlink(missing_ok=True)
        if not path.exists():
            net, info = _train(cfg, "cpu" if device == "auto" else device, progress)
            atomic_save(
                {
                    "key": key,
                    "config": cfg,
                    "state_dict": net.state_dict(),
                    "info": info,
                },
                path,
            )
            origin = "trained"
    net, info = _load(path, key, cfg, device)
    return (
        net,
        sched,
        dict(info, key=key, path=str(path), origin=origin, sha256=sha256_file(path)),
    )


class StridedModel(nn.Module):
    """``model`` read on a sub-chain: level ``j = 1..n`` of the new chain is level
    ``levels[j - 1]`` of ``model`` (``levels`` (n,), increasing, in ``1..model.N``); ``N = n``,
    the same ``parametrisation``. Parameters are ``model``'s own (a LoRA copy of this module
    adapts the wrapped network)."""

    def __init__(self, model: nn.Module, levels: torch.Tensor):
        super().__init__()
        levels = torch.as_tensor(levels, dtype=torch.long).reshape(-1)
        if (
            levels.numel() < 1
            or int(levels.min()) < 1
            or int(levels.max()) > model.N
            or not bool(torch.all(levels[1:] > levels[:-1]))
        ):
            raise ValueError(f"levels must be increasing in 1..{model.N}")
        self.model = model
        self.N, self.parametrisation = int(levels.numel()), model.parametrisation
        self.register_buffer(
            "levels",
            torch.cat([torch.zeros(1, dtype=torch.long), levels]),
            persistent=False,
        )
        # the same levels as Python ints: a one-level call reads them without a device sync
        self._level_ints = [0, *levels.tolist()]

    def forward(self, x: torch.Tensor, k) -> torch.Tensor:
        if isinstance(k, int) or (torch.is_tensor(k) and k.ndim == 0):
            if not 0 <= int(k) <= self.N:
                raise ValueError(f"level k must lie in 0..{self.N}, got {int(k)}")
            return self.model(x, self._level_ints[int(k)])
        return self.model(x, self.levels.to(x.device)[batch_levels(k, x)])


def strided(
    model: nn.Module, sched: Schedule, n_steps: int, offset: int = 0
) -> tuple[StridedModel, Schedule]:
    """The ``n_steps``-transition sub-chain of ``model`` (module docstring): ``(StridedModel,
    its Schedule with N = n_steps)``; ``offset`` shifts every level (0: the last transition
    ends at the data, level 1 -> 0)."""
    if getattr(model, "N", None) != sched.N:
        raise ValueError(
            f"model was built for N={getattr(model, 'N', None)} levels, "
            f"schedule has N={sched.N}"
        )
    sub, ts = strided_schedule(sched.alpha_bar[1:], n_steps, offset)
    return StridedModel(model, ts + 1), sub
