"""The anomaly detector of the log analyzer: one streaming series per (log group, template).

A value is anomalous when it leaves the range the series has shown over its recent history (the
last `history` windows) by more than `margin` robust standard deviations (MAD x 1.4826), and is
at least `threshold` robust z-scores from the median. After an alert the detector disarms and
re-arms only after `rearm_after` consecutive windows back inside the range, so one long
excursion raises one alert, not one per window.

Why a range test rather than a z-score alone: real series (bench/detect.py, NAB CloudWatch) have
spiky but normal stretches; a point as high as one already seen in the last two days is not news.
This halves the false alarms of a rolling robust z-score while finding as many incidents.

The state is small and plain (`to_item` / `from_item`), so the analyzer persists it per template
and a restart loses nothing.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class SeriesState:
    values: deque[float] = field(default_factory=deque)
    armed: bool = True
    calm: int = 0
    seen: int = 0
    """Windows observed in total (the deque holds only the last `history`)."""

    def to_item(self) -> dict[str, Any]:
        return {
            "values": encode_values(self.values),
            "armed": self.armed,
            "calm": self.calm,
            "seen": self.seen,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any], history: int) -> SeriesState:
        values = deque(decode_values(str(item.get("values", ""))), maxlen=history)
        return cls(
            values=values,
            armed=bool(item.get("armed", True)),
            calm=int(item.get("calm", 0)),
            seen=int(item.get("seen", len(values))),
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
        return SeriesState(values=deque(maxlen=self.config.history))

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
        state.values.append(float(value))
        state.seen += 1
        return Verdict(verdict.score, fired, verdict.median, verdict.upper, verdict.sigma)

    def score(self, state: SeriesState, value: float) -> Verdict:
        """Score `value` against the history without learning; `anomaly` = out of range."""
        cfg = self.config
        if not state.values:
            return Verdict(0.0, False, value, value, 0.0)
        ordered = sorted(state.values)
        median = statistics.median(ordered)
        mad = statistics.median(abs(v - median) for v in ordered)
        sigma = mad * MAD_TO_SIGMA + _EPS
        upper, lower = ordered[-1], ordered[0]
        z = (value - median) / sigma
        outside = (value - upper > cfg.margin * sigma and z > cfg.threshold) or (
            lower - value > cfg.margin * sigma and z < -cfg.threshold
        )
        return Verdict(z, outside, median, upper, sigma)
