"""The compute counter every fine-tuning method charges, so that methods compare at equal cost.

Units ([ours], the papers report GPU hours): one *network evaluation* is one sample passing once
through one network (the pre-trained score model, the control, or a critic); a backward pass
through a network counts as one more evaluation of that network. A *reward evaluation* is one
sample scored once (its gradient counts as one more). ``backward`` counts the backward passes
once more, so that ``forward_equivalents = nfe + backward`` weighs a backward pass as two
forwards (the unit the chapters compare methods in). Wall time covers training only, never the
evaluation of metrics.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

__all__ = ["Budget", "Timer"]


@dataclass
class Budget:
    """Running totals: ``nfe`` network evaluations (a backward pass counted as one), the
    ``backward`` passes among them, ``reward_evals``, ``wall`` seconds."""

    nfe: int = 0
    reward_evals: int = 0
    wall: float = 0.0
    backward: int = 0

    def charge(self, nfe: int = 0, reward: int = 0, backward: int = 0) -> None:
        if nfe < 0 or reward < 0 or backward < 0:
            raise ValueError(
                f"charges must be >= 0, got nfe={nfe}, reward={reward}, "
                f"backward={backward}"
            )
        self.nfe += int(nfe)
        self.reward_evals += int(reward)
        self.backward += int(backward)

    @property
    def forward_equivalents(self) -> int:
        """``nfe + backward``: a backward pass weighs two forwards."""
        return self.nfe + self.backward

    def as_dict(self) -> dict:
        return asdict(self) | {"forward_equivalents": self.forward_equivalents}

    def load(self, state: dict) -> Budget:
        self.nfe, self.reward_evals, self.wall = (
            int(state["nfe"]),
            int(state["reward_evals"]),
            float(state["wall"]),
        )
        self.backward = int(state.get("backward", 0))
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
