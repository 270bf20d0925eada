"""The anomaly detector of the log analyzer: one streaming series per (log group, template).

Two tests, one alert state:

- spike: a value is anomalous when it leaves the range the series has shown over its recent
  history (the last `history` windows) by more than `margin` robust standard deviations
  (MAD x 1.4826), and is at least `threshold` robust z-scores from the median;
- level: the same test applied to the series' level, the median of its last `level_windows`
  values (an hour of 5-minute windows), against the levels of the same history with
  `level_margin`. A sustained shift (an error rate that doubles and stays, a CPU that settles
  higher) hides inside the range of the raw values, because one past spike widens that range;
  it does not hide inside the range of past levels, which single spikes barely move.

After an alert the detector disarms and re-arms only after `rearm_after` consecutive windows
back inside both ranges, so one long excursion raises one alert, not one per window.

Why a range test rather than a z-score alone: real series (bench/detect.py, NAB CloudWatch) have
spiky but normal stretches; a point as high as one already seen in the last two days is not news.
This halves the false alarms of a rolling robust z-score while finding as many incidents.

The state is small and plain (`to_item` / `from_item`), so the analyzer persists it per template
and a restart loses nothing.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Literal

MAD_TO_SIGMA = 1.4826
_EPS = 1e-9


@dataclass(frozen=True)
class DetectorConfig:
    history: int = 576
    """Windows remembered (two days of 5-minute windows)."""
    min_history: int = 288
    """No alert before this many windows (one day of 5-minute windows)."""
    margin: float = 0.5
    """How far past the historical max/min, in robust sigmas."""
    threshold: float = 3.0
    """Robust z-score against the median (AIOPS_ANOMALY_THRESHOLD)."""
    rearm_after: int = 72
    """Consecutive in-range windows before a new alert is possible."""
    level_windows: int = 12
    """Values in the rolling median that makes the level (one hour); 0 turns the level test off."""
    level_margin: float = 1.0
    """How far past the highest/lowest level of the history, in the levels' robust sigmas."""


@dataclass
class SeriesState:
    values: deque[float] = field(default_factory=deque)
    armed: bool = True
    calm: int = 0
    seen: int = 0
    """Windows observed in total (the deque holds only the last `history`)."""
    levels: deque[float] = field(default_factory=deque)
    """The level (rolling median) after each of the last `history` full level windows."""

    def to_item(self) -> dict[str, Any]:
        return {
            "values": encode_values(self.values),
            "levels": encode_values(self.levels),
            "armed": self.armed,
            "calm": self.calm,
            "seen": self.seen,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any], history: int, level_windows: int = 0) -> SeriesState:
        values = deque(decode_values(str(item.get("values", ""))), maxlen=history)
        if "levels" in item:
            levels = deque(decode_values(str(item["levels"])), maxlen=history)
        else:  # a state written before the level test: rebuild the levels from the values
            levels = deque(rolling_levels(list(values), level_windows), maxlen=history)
        return cls(
            values=values,
            armed=bool(item.get("armed", True)),
            calm=int(item.get("calm", 0)),
            seen=int(item.get("seen", len(values))),
            levels=levels,
        )


@dataclass(frozen=True)
class Verdict:
    score: float
    """Signed robust z-score of the value against the history's median (0 without history)."""
    anomaly: bool
    """True when the analyzer would alert on this window."""
    median: float
    upper: float
    """The historical maximum (the baseline the value is compared with)."""
    sigma: float
    kind: Literal["spike", "level"] = "spike"
    """Which test fired (`spike` when none did)."""
    level: float = 0.0
    """The series' level (median of the last `level_windows` values, this one included)."""
    level_score: float = 0.0
    """Robust z-score of the level against the history's levels."""
    level_median: float = 0.0
    level_upper: float = 0.0
    """The highest level of the history."""


def encode_values(values: deque[float] | list[float]) -> str:
    """Compact text: integers without a decimal point, runs of zeros as `0*N`."""
    parts: list[str] = []
    zeros = 0
    for value in values:
        if value == 0:
            zeros += 1
            continue
        if zeros:
            parts.append("0" if zeros == 1 else f"0*{zeros}")
            zeros = 0
        parts.append(str(int(value)) if float(value).is_integer() else repr(float(value)))
    if zeros:
        parts.append("0" if zeros == 1 else f"0*{zeros}")
    return ",".join(parts)


def rolling_levels(values: list[float], width: int) -> list[float]:
    """The level after each full window of `width` values (medians of `values[i-width+1:i+1]`)."""
    if width <= 0:
        return []
    return [statistics.median(values[i - width : i]) for i in range(width, len(values) + 1)]


def decode_values(text: str) -> list[float]:
    out: list[float] = []
    for part in text.split(",") if text else []:
        if part.startswith("0*"):
            out.extend([0.0] * int(part[2:]))
        else:
            out.append(float(part))
    return out


class Detector:
    """Stateless logic over a `SeriesState` (one per series); `update` scores and learns."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()

    def new_state(self) -> SeriesState:
        history = self.config.history
        return SeriesState(values=deque(maxlen=history), levels=deque(maxlen=history))

    def update(self, state: SeriesState, value: float) -> Verdict:
        cfg = self.config
        verdict = self.score(state, value)
        outside = verdict.anomaly
        fired = False
        if state.armed and outside and state.seen >= cfg.min_history:
            fired = True
            state.armed = False
            state.calm = 0
        elif not state.armed:
            state.calm = 0 if outside else state.calm + 1
            if state.calm >= cfg.rearm_after:
                state.armed = True
        if state.values.maxlen != cfg.history:
            state.values = deque(state.values, maxlen=cfg.history)
        if state.levels.maxlen != cfg.history:
            state.levels = deque(state.levels, maxlen=cfg.history)
        state.values.append(float(value))
        if cfg.level_windows and len(state.values) >= cfg.level_windows:
            state.levels.append(verdict.level)
        state.seen += 1
        return replace(verdict, anomaly=fired)

    def score(self, state: SeriesState, value: float) -> Verdict:
        """Score `value` against the history without learning; `anomaly` = out of range."""
        cfg = self.config
        if not state.values:
            return Verdict(0.0, False, value, value, 0.0, level=value, level_median=value)
        median, sigma, lower, upper = _spread(state.values)
        z = (value - median) / sigma
        spike = _beyond(value, z, lower, upper, sigma, cfg.margin, cfg.threshold)
        level = level_z = level_median = level_upper = 0.0
        shifted = False
        width = cfg.level_windows
        if width and len(state.values) >= width - 1:
            recent = list(itertools.islice(reversed(state.values), width - 1))
            level = statistics.median([value, *recent])
            if len(state.levels) >= width:
                level_median, level_sigma, level_lower, level_upper = _spread(state.levels)
                level_z = (level - level_median) / level_sigma
                shifted = _beyond(
                    level,
                    level_z,
                    level_lower,
                    level_upper,
                    level_sigma,
                    cfg.level_margin,
                    cfg.threshold,
                )
        return Verdict(
            z,
            spike or shifted,
            median,
            upper,
            sigma,
            kind="level" if shifted and not spike else "spike",
            level=level,
            level_score=level_z,
            level_median=level_median,
            level_upper=level_upper,
        )


def _spread(values: deque[float]) -> tuple[float, float, float, float]:
    """(median, robust sigma, min, max) of `values`."""
    ordered = sorted(values)
    median = statistics.median(ordered)
    mad = statistics.median(abs(v - median) for v in ordered)
    return median, mad * MAD_TO_SIGMA + _EPS, ordered[0], ordered[-1]


def _beyond(
    value: float,
    z: float,
    lower: float,
    upper: float,
    sigma: float,
    margin: float,
    threshold: float,
) -> bool:
    """Past the range by more than `margin` sigmas and past `threshold` in robust z."""
    return (value - upper > margin * sigma and z > threshold) or (
        lower - value > margin * sigma and z < -threshold
    )
