"""The compute counter every fine-tuning method charges, so that methods compare at equal cost.

Units ([ours], the papers report GPU hours): one *network evaluation* is one sample passing once
through one network (the pre-trained score model, the control, or a critic); a backward pass
through a network counts as one more evaluation of that network. A *reward evaluation* is one
sample scored once (its gradient counts as one more). Wall time covers training only, never the
evaluation of metrics.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

__all__ = ["Budget", "Timer"]


@dataclass
class Budget:
    """Running totals: ``nfe`` network evaluations, ``reward_evals``, ``wall`` seconds."""

    nfe: int = 0
    reward_evals: int = 0
    wall: float = 0.0

    def charge(self, nfe: int = 0, reward: int = 0) -> None:
        if nfe < 0 or reward < 0:
            raise ValueError(f"charges must be >= 0, got nfe={nfe}, reward={reward}")
        self.nfe += int(nfe)
        self.reward_evals += int(reward)

    def as_dict(self) -> dict:
        return asdict(self)

    def load(self, state: dict) -> Budget:
        self.nfe, self.reward_evals, self.wall = (
            int(state["nfe"]),
            int(state["reward_evals"]),
            float(state["wall"]),
        )
        return self


class Timer:
    """``with Timer(budget): ...`` adds the elapsed wall time to ``budget.wall``."""

    def __init__(self, budget: Budget):
        self.budget = budget

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.budget.wall += time.perf_counter() - self.t0
        return False
