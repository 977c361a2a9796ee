"""What one gradient estimate costs: network passes, flops, peak memory, wall time.

The paper's cost claim (Wang, Blanchet & Glynn 2024, Sec. 4-5) is that the generator gradient's
work per estimate does not grow with the parameter count ``n`` beyond what evaluating the
network itself costs, whereas forward sensitivities carry a ``d + d n``-dimensional state.
Deterministic measures (no wall time) make that testable:

- :func:`count_network_calls`: Python-level passes through the control network (a pass with a
  batch of tangents or a vmapped VJP counts once);
- :func:`count_flops`: floating-point operations of matmul-type kernels
  (``torch.utils.flop_counter``), to divide by the flops of one network evaluation;
- :func:`peak_memory`: peak memory during the call above the level before it (CUDA: tensor
  bytes from the caching allocator; CPU: the process's peak resident set).

:func:`count_work` tabulates the deterministic measures over ``n``; :func:`time_call` and
:func:`benchmark_estimators` produce the runtime / memory vs ``n`` table
(``benchmarks/bench_gradients.py`` and the chapter's Fig. 1 analogue); :func:`time_methods`
times several estimators on one problem, interleaved (the chapter's equal-time comparison).
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .estimators import METHODS, estimate_gradient, state_dimension
from .networks import mlp_width_for
from .problems import point_mass_lq
from .sde import ControlledSDE

__all__ = [
    "benchmark_estimators",
    "count_flops",
    "count_network_calls",
    "count_work",
    "network_eval_flops",
    "peak_memory",
    "predicted_bytes",
    "time_call",
    "time_methods",
]


def count_network_calls(fn: Callable[[], Any], problem: ControlledSDE) -> int:
    """Passes through ``problem.network`` made by ``fn()``."""
    if problem.network is None:
        raise ValueError(f"problem {problem.name!r} has no network to count")
    problem.network.counter.reset()
    fn()
    return problem.network.counter.calls


def count_flops(fn: Callable[[], Any]) -> int:
    """Total flops of ``fn()`` as counted by ``torch.utils.flop_counter.FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def network_eval_flops(
    problem: ControlledSDE, theta: torch.Tensor, n_paths: int
) -> int:
    """Flops of one batched evaluation of the coefficients (one network pass) on ``n_paths``."""
    x = problem.x0.to(theta).expand(n_paths, -1)
    t = torch.zeros(n_paths, dtype=theta.dtype, device=theta.device)
    return count_flops(lambda: problem.drift_cost(problem.params(theta), t, x))


def count_work(
    ns: Sequence[float],
    methods: Sequence[str] = METHODS,
    *,
    n_paths: int = 16,
    n_steps: int = 50,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[dict[str, Any]]:
    """Deterministic work per gradient estimate vs parameter count, on the point mass.

    For each target ``n`` of ``ns`` the point mass gets the MLP ``(5, W, W, W, 2)`` with the
    smallest ``W`` reaching ``n`` (initialised from ``seed``); each method makes one
    path-averaged estimate from ``n_paths`` paths of ``n_steps`` steps. Rows: ``n``,
    ``method``, ``calls`` (:func:`count_network_calls`), ``flops_per_eval`` (its flops over
    those of one network evaluation on the same paths) and ``state_dim``
    (:func:`~diffctrl.gradients.estimators.state_dimension`).
    """
    device = torch.device(device)
    rows = []
    for target in ns:
        w = mlp_width_for(target)
        p_, th_ = point_mass_lq(
            hidden=(w,) * 3,
            generator=torch.Generator(device=device).manual_seed(int(seed)),
            device=device,
        )
        per_eval = network_eval_flops(p_, th_, n_paths)
        for m in methods:

            def run(m=m):
                return estimate_gradient(
                    m,
                    p_,
                    th_,
                    n_paths=n_paths,
                    n_steps=n_steps,
                    generator=torch.Generator(device=device).manual_seed(int(seed)),
                    per_path=False,
                )

            rows.append(
                dict(
                    n=p_.n_params,
                    method=m,
                    calls=count_network_calls(run, p_),
                    flops_per_eval=count_flops(run) / per_eval,
                    state_dim=state_dimension(m, p_),
                )
            )
    return rows


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _proc_status_kb(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"no {key} in /proc/self/status")


def _malloc_trim() -> None:
    """Hand freed heap pages back to the OS (glibc), so that reuse shows up in the peak RSS."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _can_reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        _proc_status_kb("VmHWM")
        return True
    except OSError:
        return False


def peak_memory(
    fn: Callable[[], Any], device: str | torch.device = "cpu", method: str = "auto"
) -> int:
    """Peak bytes used during ``fn()`` above the level just before the call.

    CUDA: tensor bytes, ``torch.cuda.max_memory_allocated`` after a reset. CPU, ``method="rss"``
    (the default on Linux): the process's peak resident set (``VmHWM``, reset through
    ``/proc/self/clear_refs``) minus the resident set before the call, after ``malloc_trim``
    has returned freed heap pages; it counts every byte the process touches (tensors, the
    autograd tape, Python objects). ``method="profiler"``: the
    profiler's tensor allocation events replayed in time order (exact for tensors, but slow).
    """
    device = torch.device(device)
    gc.collect()
    if device.type == "cuda":
        _sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    if method not in ("auto", "rss", "profiler"):
        raise ValueError(f"method must be 'auto', 'rss' or 'profiler', got {method!r}")
    if method == "auto":
        method = "rss" if _can_reset_peak_rss() else "profiler"
    if method == "rss":
        _malloc_trim()
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        base = _proc_status_kb("VmRSS")
        fn()
        return max(0, (_proc_status_kb("VmHWM") - base) * 1024)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(
        (e.time_range.start, e.self_cpu_memory_usage)
        for e in prof.events()
        if e.self_cpu_memory_usage
    )
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return int(peak)


def time_call(
    fn: Callable[[], Any],
    *,
    repeats: int = 3,
    warmup: int = 1,
    device: str | torch.device = "cpu",
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs, read on
    ``clock`` (wall time by default; ``time.process_time`` for the process's CPU time)."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = clock()
        fn()
        _sync(device)
        times.append(clock() - t0)
    return statistics.median(times)


def time_methods(
    problem: ControlledSDE,
    theta: torch.Tensor,
    methods: Sequence[str],
    *,
    n_paths: int,
    n_steps: int,
    repeats: int = 5,
    seed: int = 0,
) -> list[float]:
    """Median seconds per gradient estimate (``n_paths`` paths of ``n_steps`` steps,
    path-averaged) of each entry of ``methods`` on ``problem`` at ``theta``, in that order.

    After one untimed call each, the methods are timed in ``repeats`` interleaved rounds, so
    that a slow spell of a shared machine hits them alike; a method listed twice is timed
    twice, independently. Clock: the process's CPU time on a CPU (what other processes' load
    does not inflate), synchronised wall time on CUDA.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods must be among {METHODS}, got {unknown}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    device = theta.device
    clock = time.perf_counter if device.type == "cuda" else time.process_time

    def run(m):
        return estimate_gradient(
            m,
            problem,
            theta,
            n_paths=n_paths,
            n_steps=n_steps,
            generator=torch.Generator(device=device).manual_seed(int(seed)),
            per_path=False,
        )

    for m in dict.fromkeys(methods):
        run(m)
    times: list[list[float]] = [[] for _ in methods]
    for _ in range(repeats):
        for i, m in enumerate(methods):
            times[i].append(
                time_call(
                    lambda m=m: run(m), repeats=1, warmup=0, device=device, clock=clock
                )
            )
    return [statistics.median(t) for t in times]


def predicted_bytes(
    method: str, n: int, d: int, n_paths: int, per_path: bool, itemsize: int = 4
) -> int:
    """A rough upper estimate of a method's peak memory, to skip runs that would not fit.

    Forward sensitivities hold ``Y``, its update and the per-path Jacobian ``D_theta (mu, rho)``
    (each ``M (d + 1) n`` numbers) plus the per-path VJP intermediates; the others hold a few
    ``n``-vectors (``M n`` with per-path samples).
    """
    if method == "pathwise_forward":
        return int(6 * n_paths * (d + 1) * n * itemsize)
    return int((4 * n + (3 * n_paths * n if per_path else 0)) * itemsize)


def benchmark_estimators(
    ns: Sequence[float],
    methods: Sequence[str] = METHODS,
    *,
    n_paths: int = 16,
    n_steps: int = 50,
    repeats: int = 3,
    per_path: bool = False,
    measure_memory: bool = True,
    max_bytes: float = 4e9,
    max_seconds: float = 60.0,
    slow_call: float = 2.0,
    max_n: dict[str, float] | None = None,
    seed: int = 0,
    dtype=torch.float32,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Runtime and peak memory per gradient estimate vs parameter count, on the point mass.

    For each target ``n`` the point mass gets a 4-layer tanh MLP ``(5, W, W, W, 2)`` with the
    smallest ``W`` reaching ``n``. A method is skipped at this and larger ``n`` when its
    predicted memory exceeds ``max_bytes``, when its last time scaled linearly in ``n``
    predicts more than ``max_seconds``, or beyond ``max_n[method]`` (row ``status`` says why).
    One call = one gradient estimate from ``n_paths`` paths of ``n_steps`` steps; the first
    call (memory measurement or warm-up) is not timed, then the median of ``repeats`` timed
    calls (one when the first call took over ``slow_call`` seconds).
    Rows: ``n, width, method, seconds, peak_bytes, state_dim, status``.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    itemsize = torch.empty((), dtype=dtype).element_size()
    rows: list[dict[str, Any]] = []
    stopped: dict[str, str] = {}
    last: dict[str, tuple[int, float]] = {}
    # one-time costs of a first call (imports, kernel caches) are nobody's per-estimate cost
    warm_problem, warm_theta = point_mass_lq(
        hidden=(4, 4, 4), dtype=dtype, device=device
    )
    for method in methods:
        estimate_gradient(
            method,
            warm_problem,
            warm_theta,
            n_paths=2,
            n_steps=2,
            generator=torch.Generator(device=device).manual_seed(seed),
            per_path=per_path,
        )
    for target in tqdm(ns, disable=not progress, desc="n"):
        width = mlp_width_for(target)
        gen = torch.Generator(device=device).manual_seed(seed)
        problem, theta = point_mass_lq(
            hidden=(width,) * 3, generator=gen, dtype=dtype, device=device
        )
        n = problem.n_params
        for method in methods:
            row = dict(
                n=n,
                width=width,
                method=method,
                seconds=math.nan,
                peak_bytes=math.nan,
                state_dim=state_dimension(method, problem),
                status="ok",
            )
            if method in stopped:
                row["status"] = stopped[method]
                rows.append(row)
                continue
            if max_n and n > max_n.get(method, math.inf):
                stopped[method] = f"skipped: n > {max_n[method]:.3g} for this method"
                row["status"] = stopped[method]
                rows.append(row)
                continue
            need = predicted_bytes(method, n, problem.d, n_paths, per_path, itemsize)
            if need > max_bytes:
                stopped[method] = (
                    f"skipped: predicted {need / 1e9:.1f} GB > {max_bytes / 1e9:.1f} GB"
                )
                row["status"] = stopped[method]
                rows.append(row)
                continue

            def run():
                g = torch.Generator(device=device).manual_seed(seed + 1)
                # noqa below: run() is called before the loop's `del problem, theta`
                return estimate_gradient(
                    method,
                    problem,  # noqa: F821
                    theta,  # noqa: F821
                    n_paths=n_paths,
                    n_steps=n_steps,
                    generator=g,
                    per_path=per_path,
                )

            if method in last:
                predicted = last[method][1] * n / last[method][0]
                if predicted > max_seconds:
                    stopped[method] = (
                        f"skipped: predicted {predicted:.0f} s > {max_seconds:.0f} s"
                    )
                    row["status"] = stopped[method]
                    rows.append(row)
                    continue
            t0 = time.perf_counter()
            if measure_memory:  # the memory run doubles as the warm-up run
                row["peak_bytes"] = peak_memory(run, device)
            else:
                run()
            first = time.perf_counter() - t0
            row["seconds"] = time_call(
                run,
                repeats=repeats if first < slow_call else 1,
                warmup=0,
                device=device,
            )
            last[method] = (n, row["seconds"])
            rows.append(row)
        del problem, theta
        gc.collect()
    return rows
