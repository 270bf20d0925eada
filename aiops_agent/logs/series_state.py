"""The detector's per-series state: bounded, plain, and readable from any older version.

`SeriesState` holds the last `history` values of a series and what the detector derived from
them (rolling levels, seasonal residuals and their levels, the flat-run counters, the alert
state). `to_item` / `from_item` turn it into a small dict of strings and numbers that the log
analyzer stores per template in DynamoDB (logs/state.py); a state written by an older version
(no `levels`, no `residuals`) loads, and what it lacks is rebuilt from its values.

Beside each deque the state keeps a sorted copy (not persisted, rebuilt on demand) so that the
detector reads medians, quartiles and extremes without sorting the history at every window.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

DIGITS = 7
"""Significant digits kept of the derived series (residuals and their levels)."""
IQR_TO_SIGMA = 1 / 1.349
"""The interquartile range of a normal distribution is 1.349 sigma."""
MEAN_AD_TO_SIGMA = 1.2533
"""sqrt(pi/2): the mean absolute deviation of a normal distribution is 0.798 sigma. The fallback
when the interquartile range is zero (Iglewicz and Hoaglin's modified z-score does the same)."""


@dataclass
class Spread:
    median: float
    sigma: float
    """Robust standard deviation: interquartile range / 1.349 (mean absolute deviation x 1.2533
    when the quartiles coincide)."""
    lower: float
    upper: float


class SortedMirror:
    """A sorted copy of a deque, kept in step by `push` (insort and bisect-remove)."""

    def __init__(self, items: Iterable[float]) -> None:
        self.items = sorted(items)

    def push(self, value: float, evicted: float | None) -> None:
        if evicted is not None:
            del self.items[bisect.bisect_left(self.items, evicted)]
        bisect.insort(self.items, value)

    def quantile(self, q: float) -> float:
        """Linear interpolation between the closest ranks."""
        ordered = self.items
        pos = q * (len(ordered) - 1)
        low = math.floor(pos)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    def spread(self, floor: float) -> Spread:
        ordered = self.items
        median = self.quantile(0.5)
        sigma = (self.quantile(0.75) - self.quantile(0.25)) * IQR_TO_SIGMA
        if sigma == 0:  # half the values or more are one number: the mean absolute deviation
            lo, hi = bisect.bisect_left(ordered, median), bisect.bisect_right(ordered, median)
            below = median * lo - sum(ordered[:lo])
            above = sum(ordered[hi:]) - median * (len(ordered) - hi)
            sigma = MEAN_AD_TO_SIGMA * (below + above) / len(ordered)
        return Spread(median, max(sigma, floor), ordered[0], ordered[-1])


@dataclass
class SeriesState:
    values: deque[float] = field(default_factory=deque)
    armed: bool = True
    calm: int = 0
    seen: int = 0
    """Windows observed in total (the deque holds only the last `history`)."""
    levels: deque[float] = field(default_factory=deque)
    """The level (rolling median of the values) after each of the last full level windows."""
    residuals: deque[float] = field(default_factory=deque)
    """Each value minus its seasonal baseline (the same time of day on the previous days)."""
    residual_levels: deque[float] = field(default_factory=deque)
    """Rolling medians of the residuals, as `levels` is of the values."""
    run: int = 0
    """Consecutive windows with the same value as the one before, ending now."""
    longest_run: int = 0
    """The longest such run that ended before the current one."""
    mirrors: dict[str, SortedMirror] = field(default_factory=dict, repr=False, compare=False)
    """Sorted copies of the deques (not persisted)."""

    def sorted_view(self, name: str) -> SortedMirror:
        """The sorted copy of the deque `name`, rebuilt when it no longer matches."""
        items: deque[float] = getattr(self, name)
        mirror = self.mirrors.get(name)
        if mirror is None or len(mirror.items) != len(items):
            mirror = self.mirrors[name] = SortedMirror(items)
        return mirror

    def push(self, name: str, value: float, maxlen: int) -> None:
        """Append to the deque `name` (bounded to `maxlen`) and to its sorted copy."""
        items: deque[float] = getattr(self, name)
        if items.maxlen != maxlen:
            items = deque(items, maxlen=maxlen)
            setattr(self, name, items)
        mirror = self.sorted_view(name)
        evicted = items[0] if len(items) == maxlen else None
        items.append(value)
        mirror.push(value, evicted)

    def to_item(self) -> dict[str, Any]:
        return {
            "values": encode_values(self.values),
            "levels": encode_values(self.levels),
            "residuals": encode_values(self.residuals, DIGITS),
            "residual_levels": encode_values(self.residual_levels, DIGITS),
            "armed": self.armed,
            "calm": self.calm,
            "seen": self.seen,
            "run": self.run,
            "longest_run": self.longest_run,
        }

    @classmethod
    def from_item(
        cls,
        item: dict[str, Any],
        history: int,
        level_windows: int = 0,
        residuals_of: Callable[[list[float]], list[float]] | None = None,
    ) -> SeriesState:
        """Load a stored state; an older one (no levels, no residuals) is rebuilt from its values.

        `residuals_of` (the detector's seasonal residuals of a list of values) rebuilds missing
        residuals; without it they start empty and fill again as windows come."""
        raw = decode_values(str(item.get("values", "")))
        values = deque(raw, maxlen=history)
        if "levels" in item:
            levels = deque(decode_values(str(item["levels"])), maxlen=history)
        else:
            levels = deque(rolling_levels(list(values), level_windows), maxlen=history)
        if "residuals" in item:
            residuals = deque(decode_values(str(item["residuals"])), maxlen=history)
        else:
            residuals = deque(residuals_of(list(values)) if residuals_of else [], maxlen=history)
        if "residual_levels" in item:
            residual_levels = deque(decode_values(str(item["residual_levels"])), maxlen=history)
        else:
            residual_levels = deque(rolling_levels(list(residuals), level_windows), maxlen=history)
        run = int(item["run"]) if "run" in item else trailing_run(list(values))
        return cls(
            values=values,
            armed=bool(item.get("armed", True)),
            calm=int(item.get("calm", 0)),
            seen=int(item.get("seen", len(values))),
            levels=levels,
            residuals=residuals,
            residual_levels=residual_levels,
            run=run,
            longest_run=int(item.get("longest_run", 0)),
        )


def trailing_run(values: list[float]) -> int:
    """How many values at the end repeat the one before them."""
    run = 0
    for i in range(len(values) - 1, 0, -1):
        if values[i] != values[i - 1]:
            break
        run += 1
    return run


def encode_values(values: deque[float] | list[float], digits: int | None = None) -> str:
    """Compact text: integers without a decimal point, runs of zeros as `0*N`; other numbers
    exactly, or with `digits` significant digits (derived numbers need no more)."""
    parts: list[str] = []
    zeros = 0
    for value in values:
        if value == 0:
            zeros += 1
            continue
        if zeros:
            parts.append("0" if zeros == 1 else f"0*{zeros}")
            zeros = 0
        number = float(value)
        if number.is_integer():
            parts.append(str(int(number)))
        else:
            parts.append(repr(number) if digits is None else f"{number:.{digits}g}")
    if zeros:
        parts.append("0" if zeros == 1 else f"0*{zeros}")
    return ",".join(parts)


def decode_values(text: str) -> list[float]:
    out: list[float] = []
    for part in text.split(",") if text else []:
        if part.startswith("0*"):
            out.extend([0.0] * int(part[2:]))
        else:
            out.append(float(part))
    return out


def rolling_levels(values: list[float], width: int) -> list[float]:
    """The level after each full window of `width` values (medians of `values[i-width+1:i+1]`)."""
    if width <= 0:
        return []
    return [statistics.median(values[i - width : i]) for i in range(width, len(values) + 1)]
