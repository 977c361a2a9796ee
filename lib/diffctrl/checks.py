"""Input checks shared by the library's entry points: a reward's values and a data array must
have the expected shape and be finite, else ``ValueError`` / ``TypeError`` naming the argument
(``book/notation.md``, *Arrays, randomness and devices*)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["call_reward", "check_data", "check_reward_values"]


def _traced(t: torch.Tensor) -> bool:
    """True for a tensor wrapped by a torch.func transform (no data-dependent checks there)."""
    probe = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return bool(probe(t)) if probe is not None else False


def check_reward_values(r, n: int, name: str = "reward") -> torch.Tensor:
    """``r``, the values of ``name`` at ``n`` points, checked: a tensor of shape ``(n,)`` with
    finite entries. An ``(n, 1)`` result is refused rather than broadcast against ``(n,)``."""
    if not isinstance(r, torch.Tensor):
        raise TypeError(
            f"{name} must return a torch.Tensor of shape ({n},), got {type(r).__name__}"
        )
    if tuple(r.shape) != (n,):
        raise ValueError(
            f"{name} must return shape ({n},) (one value per sample), "
            f"got {tuple(r.shape)}"
        )
    if _traced(r):  # inside torch.func.vmap / grad: values are not concrete, shape only
        return r
    if not bool(torch.isfinite(r).all()):
        bad = int((~torch.isfinite(r)).sum())
        raise ValueError(
            f"{name} returned {bad} non-finite value(s) (NaN or inf) of {n}"
        )
    return r


def call_reward(
    reward: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    name: str = "reward",
) -> torch.Tensor:
    """``reward(y)`` for samples ``y`` (n, ...), checked by :func:`check_reward_values`: a
    reward that is not callable or returns no tensor raises ``TypeError``, a wrong shape or a
    non-finite value ``ValueError`` (every entry point of the library, fine-tuning included)."""
    if not callable(reward):
        raise TypeError(
            f"{name} must be callable y (n, ...) -> (n,), got {type(reward).__name__}"
        )
    return check_reward_values(reward(y), y.shape[0], name)


def check_data(
    x,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    min_rows: int = 0,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``x`` as a tensor (``dtype`` if given), checked: ``ndim`` (an int or the allowed ones),
    ``shape`` (``None`` entries are free), at least ``min_rows`` rows, every entry finite."""
    if isinstance(x, (bool, str)) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    try:
        t = (
            torch.as_tensor(x, dtype=dtype)
            if not isinstance(x, torch.Tensor)
            else (x if dtype is None else x.to(dtype))
        )
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be an array of numbers ({err})") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.ndim not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                f"got shape {tuple(t.shape)}"
            )
    if shape is not None:
        if t.ndim != len(shape) or any(
            s is not None and s != d for s, d in zip(shape, t.shape)
        ):
            parts = ["*" if s is None else str(s) for s in shape]
            want = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
            raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    if min_rows and (t.ndim == 0 or t.shape[0] < min_rows):
        raise ValueError(
            f"{name} needs at least {min_rows} rows, got shape {tuple(t.shape)}"
        )
    if t.is_floating_point() or t.is_complex():
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return t
