"""The seeded plan of a chaos run: when each fault lands and when each wave of work is started.

The plan is a pure function of the seed and the options, so the repro command printed at the
end of a run replays the same faults at the same offsets against the same workload (what the
fleet does in between still depends on timing: the plan repeats, the interleaving need not).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["PlannedEvent", "plan", "wave_count_for", "SECONDS_PER_FAULT", "SECONDS_PER_WAVE"]

# One fault every ~8 s leaves the fleet time to notice (a pause is held until the member is
# declared dead) and recover between faults at the default member timeout.
SECONDS_PER_FAULT = 8.0
# A wave every ~4 s keeps work arriving across the run, so the faults always hit workflows in flight.
SECONDS_PER_WAVE = 4.0
# The last stretch of the run has no fault: what was hit last has time to be taken over.
QUIET_TAIL_SHARE = 0.1


@dataclass(frozen=True)
class PlannedEvent:
    """One thing to do ``at`` seconds into the run: a ``fault`` of ``kind``, or a ``wave``."""

    at: float
    what: str
    kind: str = ""
    wave: int = 0


def plan(seed: int, seconds: float, kinds: list[str], waves: int | None = None) -> list[PlannedEvent]:
    """Faults and waves over ``seconds``, in time order. Every kind in ``kinds`` lands at least
    once; the rest of the slots take kinds at random. Waves start at 0 and end by 80 % of the run."""
    rng = random.Random(seed)
    fault_span = seconds * (1 - QUIET_TAIL_SHARE)
    count = max(len(kinds), int(fault_span // SECONDS_PER_FAULT)) if kinds else 0
    order = list(kinds) + [rng.choice(kinds) for _ in range(count - len(kinds))]
    rng.shuffle(order)
    slot = fault_span / count if count else 0.0
    events = [PlannedEvent(round(slot * (i + rng.uniform(0.3, 0.7)), 3), "fault", kind=k) for i, k in enumerate(order)]
    wave_count = waves if waves is not None else wave_count_for(seconds)
    events += [PlannedEvent(round(seconds * 0.8 * w / wave_count, 3), "wave", wave=w) for w in range(wave_count)]
    return sorted(events, key=lambda e: (e.at, e.what != "wave"))


def wave_count_for(seconds: float) -> int:
    """How many waves a run of ``seconds`` starts."""
    return max(1, int(seconds * 0.8 // SECONDS_PER_WAVE))
