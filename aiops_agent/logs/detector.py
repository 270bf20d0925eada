"""The anomaly detector of the log analyzer: one streaming series per (log group, template).

It judges each window's value against the series' own recent history, in robust, scale-free
terms (medians and interquartile ranges, no constant fitted to a series), with three tests and
one alert state:

- spike: the value leaves the range the series has shown over its history (the last
  `history` windows) by more than `margin` robust standard deviations, and is at least
  `threshold` robust z-scores from the median. A point as high as one already seen in the last
  days is not news: real series have spiky but normal stretches.
- level: the same test on the series' level (the median of the last `level_windows` values,
  an hour) against the levels of the history. A sustained shift hides inside the range of the
  raw values, because one past spike widens it; it does not hide inside the range of levels.
- flat: the value has repeated for `flat_min` windows or more, longer than twice any run of
  repeats the series has shown, and the series was not flat from the start (a metric that
  stops moving, a count stuck at one value).

Seasonality: the detector keeps each value's residual against the same time of day on the
previous days in its history (the median of those values, `season_width` windows either side).
When those residuals spread less than `season_gain` times the values themselves (the daily
pattern explains most of the variation), the spike and level tests run on the residuals instead
of the values: a value normal at noon can be an anomaly at midnight, and a missing daily peak
or a day gone flat is a departure from the pattern even inside the usual range.

After an alert the detector disarms and re-arms only after `rearm_after` consecutive windows
back inside every range, so one long excursion raises one alert, not one per window.

The windows are counted, not timed: `DetectorConfig.for_window(seconds)` turns spans of time
(three days of history, a day of warm-up, six hours to re-arm, one-hour levels, a day's
season) into windows of the given length. The state is small and bounded (`series_state.py`), so the
analyzer persists it per template and a restart loses nothing.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from statistics import NormalDist
from typing import Any, Literal

from aiops_agent.logs.series_state import (
    SeriesState,
    Spread,
    decode_values,
    encode_values,
    rolling_levels,
)

__all__ = [
    "MAD_TO_SIGMA",
    "Detector",
    "DetectorConfig",
    "SeriesState",
    "Verdict",
    "decode_values",
    "encode_values",
    "rolling_levels",
    "typical_window",
]

MAD_TO_SIGMA = 1.4826
_EPS = 1e-9
DAY_SECONDS = 86_400.0
MAX_HISTORY = 864
"""The most windows a series remembers (three days of 5-minute windows): it bounds the stored
state (~10 KB a series) and the work per window."""


@dataclass(frozen=True)
class DetectorConfig:
    history: int = 864
    """Windows remembered (three days of 5-minute windows; see `for_window`)."""
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
    level_margin: float = 2.0
    """How far past the highest/lowest level of the history, in the levels' robust sigmas
    (decided on realAWSCloudwatch: 1.0 finds the same 24 windows with 12 % more false episodes)."""
    season: int = 288
    """Windows in a day (the seasonal period); 0 turns the seasonal residuals off."""
    season_width: int = 3
    """Windows either side of the same time of day that make the seasonal baseline."""
    season_gain: float = 0.5
    """The residuals replace the values when their robust sigma is below this share of the
    values' (the daily pattern explains three quarters of the variance or more)."""
    flat_min: int = 12
    """The shortest run of repeated values that can be a flat-line alert (an hour)."""
    windows_per_day: float = 288.0
    """Windows in a day (set by `for_window`): what the false-alarm budget is spread over."""
    alarm_budget: float = 0.05
    """False alarms a day that Gaussian noise alone may raise: the z-score a value needs is at
    least the one that noise passes this often (3.73 for 5-minute windows, 3.09 for hourly
    ones); `threshold` stays the floor. 0 turns it off."""
    resolution: float = 1e-3
    """Smallest robust sigma, as a share of the series' scale: differences below it are
    rounding, not signal (a perfectly periodic series has residuals of zero)."""

    @classmethod
    def for_window(cls, seconds: float, **changes: Any) -> DetectorConfig:
        """The default configuration for windows of `seconds`, in the same spans of time: a
        history of three days, but no less than 288 windows and no more than `MAX_HISTORY`; a
        day (no less than 96 windows) before the first alert; six hours to re-arm; one-hour
        levels and flat runs; the season is a day when a day is a whole number of windows that
        fits twice in the history."""
        seconds = max(float(seconds), 1.0)
        per_day = DAY_SECONDS / seconds
        history = int(min(max(3 * per_day, 288), MAX_HISTORY))
        season = round(per_day)
        seasonal = 12 <= season <= history // 2 and abs(per_day - season) < 1e-6 * per_day
        hour = min(max(3, round(3600 / seconds)), history // 12)  # short windows: what fits
        spans: dict[str, Any] = {
            "history": history,
            "min_history": int(min(max(per_day, 96), history // 2)),
            "rearm_after": min(max(3, round(6 * 3600 / seconds)), history // 2),
            "level_windows": hour,
            "season": season if seasonal else 0,
            "season_width": max(1, round(season / 96)) if seasonal else 0,
            "flat_min": hour,
            "windows_per_day": per_day,
        }
        return cls(**{**spans, **changes})


Kind = Literal["spike", "level", "flat"]


@dataclass(frozen=True)
class Verdict:
    score: float
    """Signed robust z-score of the value (of its residual, when seasonal) against the history."""
    anomaly: bool
    """True when the analyzer would alert on this window."""
    median: float
    """The baseline: the history's median (plus the seasonal baseline, when seasonal)."""
    upper: float
    """The highest the history went (in the same terms as `median`)."""
    sigma: float
    kind: Kind = "spike"
    """Which test fired (`spike` when none did)."""
    level: float = 0.0
    """The series' level (median of the last `level_windows` values, this one included)."""
    level_score: float = 0.0
    """Robust z-score of the level against the history's levels."""
    level_median: float = 0.0
    level_upper: float = 0.0
    """The highest level of the history."""
    seasonal: bool = False
    """The tests ran on the residuals against the daily pattern."""


@dataclass(frozen=True)
class _Assessment:
    verdict: Verdict
    residual: float | None
    level: float | None
    residual_level: float | None
    run: int


class Detector:
    """Stateless logic over a `SeriesState` (one per series); `update` scores and learns."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = cfg = config or DetectorConfig()
        self.threshold = cfg.threshold
        """The z-score a departure needs: `threshold`, or what the alarm budget asks if higher."""
        if cfg.alarm_budget > 0 and cfg.windows_per_day > 0:
            tail = min(0.5, cfg.alarm_budget / (2 * cfg.windows_per_day))
            self.threshold = max(cfg.threshold, NormalDist().inv_cdf(1 - tail))

    def new_state(self) -> SeriesState:
        history = self.config.history
        return SeriesState(
            values=deque(maxlen=history),
            levels=deque(maxlen=history),
            residuals=deque(maxlen=history),
            residual_levels=deque(maxlen=history),
        )

    def load(self, item: dict[str, Any]) -> SeriesState:
        """A stored state (of any version) for this configuration."""
        cfg = self.config
        return SeriesState.from_item(item, cfg.history, cfg.level_windows, self.residuals_of)

    def update(self, state: SeriesState, value: float) -> Verdict:
        cfg = self.config
        value = float(value)
        seen = self._assess(state, value)
        verdict = seen.verdict
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
        if seen.run == 0:
            state.longest_run = max(state.longest_run, state.run)
        state.run = seen.run
        state.push("values", value, cfg.history)
        if seen.level is not None:
            state.push("levels", seen.level, cfg.history)
        if seen.residual is not None:
            state.push("residuals", seen.residual, cfg.history)
            if seen.residual_level is not None:
                state.push("residual_levels", seen.residual_level, cfg.history)
        state.seen += 1
        return replace(verdict, anomaly=fired)

    def score(self, state: SeriesState, value: float) -> Verdict:
        """Score `value` against the history without learning; `anomaly` = out of range."""
        return self._assess(state, float(value)).verdict

    def seasonal_baseline(self, values: Sequence[float]) -> float | None:
        """The median of the same time of day on the previous days, or None before a day."""
        cfg = self.config
        period, width, n = cfg.season, cfg.season_width, len(values)
        if not period or n < period + width:
            return None
        # Whole neighbourhoods only: a truncated one leans to one side of a sharp daily step.
        days = (n - width) // period
        picks = [
            values[i]
            for k in range(1, days + 1)
            for i in range(n - k * period - width, n - k * period + width + 1)
        ]
        return statistics.median(picks)

    def residuals_of(self, values: list[float]) -> list[float]:
        """The residual of each value against the values before it (rebuilds an old state)."""
        out: list[float] = []
        for i, value in enumerate(values):
            base = self.seasonal_baseline(values[:i])
            if base is not None:
                out.append(value - base)
        return out

    def _assess(self, state: SeriesState, value: float) -> _Assessment:
        cfg = self.config
        values = state.values
        run = state.run + 1 if values and value == values[-1] else 0
        base = self.seasonal_baseline(values)
        residual = None if base is None else value - base
        width = cfg.level_windows
        level = residual_level = None
        if width and len(values) >= width - 1:
            level = statistics.median([value, *itertools.islice(reversed(values), width - 1)])
        if width and residual is not None and len(state.residuals) >= width - 1:
            recent = itertools.islice(reversed(state.residuals), width - 1)
            residual_level = statistics.median([residual, *recent])
        if not values:
            verdict = Verdict(0.0, False, value, value, 0.0, level=value, level_median=value)
            return _Assessment(verdict, residual, level, residual_level, run)
        spread = state.sorted_view("values").spread(0.0)
        floor = cfg.resolution * max(abs(spread.median), spread.sigma) + _EPS
        spread.sigma = max(spread.sigma, floor)
        seasonal = False
        offset = 0.0
        subject, subject_level = value, level
        levels_name = "levels"
        if residual is not None and len(state.residuals) >= max(cfg.season, 1):
            rspread = state.sorted_view("residuals").spread(floor)
            if rspread.sigma < cfg.season_gain * spread.sigma:
                seasonal, offset = True, float(base or 0.0)
                spread, subject, subject_level = rspread, residual, residual_level
                levels_name = "residual_levels"
        z = (subject - spread.median) / spread.sigma
        spike = _beyond(subject, z, spread, cfg.margin, self.threshold)
        level_z = level_median = level_upper = 0.0
        shifted = False
        lv = getattr(state, levels_name)
        if subject_level is not None and width and len(lv) >= width:
            lspread = state.sorted_view(levels_name).spread(floor)
            level_z = (subject_level - lspread.median) / lspread.sigma
            shifted = _beyond(subject_level, level_z, lspread, cfg.level_margin, self.threshold)
            level_median, level_upper = lspread.median + offset, lspread.upper + offset
        flat = (
            run >= max(cfg.flat_min, 2 * state.longest_run + 1)
            and state.seen - run >= cfg.min_history
        )
        kind: Kind = "spike" if spike else "level" if shifted else "flat" if flat else "spike"
        verdict = Verdict(
            z,
            spike or shifted or flat,
            spread.median + offset,
            spread.upper + offset,
            spread.sigma,
            kind=kind,
            level=(subject_level if subject_level is not None else value) + offset,
            level_score=level_z,
            level_median=level_median,
            level_upper=level_upper,
            seasonal=seasonal,
        )
        return _Assessment(verdict, residual, level, residual_level, run)


def typical_window(stamps: Sequence[datetime]) -> float | None:
    """The series' window length in seconds: the median gap between its timestamps (None with
    fewer than two, or when they do not move forward)."""
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    step = statistics.median(gaps) if gaps else 0.0
    return step if step > 0 else None


def _beyond(value: float, z: float, spread: Spread, margin: float, threshold: float) -> bool:
    """Past the range by more than `margin` sigmas and past `threshold` in robust z."""
    return (value - spread.upper > margin * spread.sigma and z > threshold) or (
        spread.lower - value > margin * spread.sigma and z < -threshold
    )
