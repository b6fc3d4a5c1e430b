"""The daily rhythm of a desktop: active hours while its user is at it, idle nights.

Simulated time starts when the machine boots, at `boot_hour` on day 0. Agents whose activity
follows the user scale their rates by `activity(t)`: 1 in the active hours, `idle_activity`
outside them (mail checks, cron, background daemons). Daemons that run at fixed times (the nightly
`cron.daily` with updatedb) ask for `next_time_of_day`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fragsim.models.agents.base import param

__all__ = ["DAY_S", "HOUR_S", "Rhythm", "RhythmParams"]

HOUR_S = 3600.0
DAY_S = 24 * HOUR_S


@dataclass(frozen=True)
class RhythmParams:
    """When the user is at the machine."""

    boot_hour: float = param(8.0, "hour of day the machine boots (simulated time 0)")
    active_start_hour: float = param(8.0, "the user starts work at this hour each day")
    active_end_hour: float = param(23.0, "and stops at this hour (evening use included)")
    idle_activity: float = param(0.02, "activity outside the active hours, relative to the "
                                 "active hours (background: mail checks, daemons)")


class Rhythm:
    """`activity(t)` and clock helpers for one run."""

    def __init__(self, params: RhythmParams) -> None:
        p = params
        for name in ("boot_hour", "active_start_hour", "active_end_hour"):
            value = getattr(p, name)
            if not 0 <= value <= 24:
                raise ValueError(f"rhythm.{name} {value} is out of range: allowed 0..24")
        if not 0 <= p.idle_activity <= 1:
            raise ValueError(f"rhythm.idle_activity {p.idle_activity} is out of range: "
                             "allowed 0..1")
        self.params = p

    def hour_of_day(self, t: float) -> float:
        return (self.params.boot_hour + t / HOUR_S) % 24.0

    def active(self, t: float) -> bool:
        h = self.hour_of_day(t)
        a, b = self.params.active_start_hour, self.params.active_end_hour
        return a <= h < b if a <= b else (h >= a or h < b)

    def activity(self, t: float) -> float:
        return 1.0 if self.active(t) else self.params.idle_activity

    def next_time_of_day(self, t: float, hour: float) -> float:
        """The first simulated time > t at which the clock shows `hour`."""
        h = self.hour_of_day(t)
        delta = (hour - h) % 24.0
        if delta <= 1e-9:
            delta = 24.0
        return t + delta * HOUR_S
