"""The learning-rate plan of a training run: linear warm-up, then one cosine to a floor.

A plan is fixed when a run starts and stored in its checkpoint, so a resume
continues the same curve instead of starting (or shortening) another one. It is
measured either in optimizer steps (``--epochs``) or in seconds of training
(``--minutes``: the budget mode of :mod:`sccdm.recipe`, where how many steps fit is
not known in advance).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict

__all__ = ["Plan"]


@dataclass
class Plan:
    """unit: ``"steps"`` or ``"seconds"``; total: steps or seconds; warmup: fraction of total."""

    unit: str
    total: float
    warmup: float = 0.03
    floor: float = 0.02

    def __post_init__(self):
        if self.unit not in ("steps", "seconds"):
            raise ValueError(f"plan unit must be 'steps' or 'seconds', got {self.unit!r}")
        if not self.total > 0:
            raise ValueError(f"plan total must be > 0, got {self.total}")

    def progress(self, step: int, seconds: float) -> float:
        """Fraction of the plan done, in [0, 1]."""
        done = step if self.unit == "steps" else seconds
        return min(1.0, max(0.0, done / self.total))

    def finished(self, step: int, seconds: float) -> bool:
        return (step if self.unit == "steps" else seconds) >= self.total

    def lr_scale(self, p: float) -> float:
        """Multiplier of the base learning rate at progress p."""
        warm = min(1.0, p / self.warmup) if self.warmup > 0 else 1.0
        cos = 0.5 * (1 + math.cos(math.pi * min(p, 1.0)))
        return warm * (self.floor + (1 - self.floor) * cos)

    def remaining_s(self, step: int, seconds: float, steps_per_s: float) -> float:
        if self.unit == "seconds":
            return max(0.0, self.total - seconds)
        return max(0.0, (self.total - step) / max(steps_per_s, 1e-9))

    def to_dict(self) -> dict:
        return asdict(self)
