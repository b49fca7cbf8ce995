"""Retry backoff: exponential with full jitter, so a burst of failing runs spreads out."""

from __future__ import annotations

import random


def backoff_ms(attempt: int, base_ms: int, cap_ms: int, rng: random.Random | None = None) -> int:
    """Delay before retry number ``attempt + 1`` (``attempt`` is the 0-based attempt that failed).

    Half of the exponential step is fixed and half is jitter, so retries never bunch at zero.
    """
    draw = rng.random() if rng is not None else random.random()
    ceiling = min(cap_ms, base_ms * (2 ** min(attempt, 30)))
    return ceiling // 2 + int(draw * (ceiling - ceiling // 2))
