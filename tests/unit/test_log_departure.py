"""Which firing verdicts become alerts, and what the alert says of the baseline."""

from __future__ import annotations

from aiops_agent.logs.analyzer import _departure
from aiops_agent.logs.detector import Detector, DetectorConfig, SeriesState, Verdict

CONFIG = DetectorConfig(history=60, min_history=20, rearm_after=3, level_windows=4)
SPIKY = [10.0, 11, 9, 10, 30, 10, 11, 9, 10, 10] * 3


def _fired(values: list[float]) -> tuple[Verdict, SeriesState]:
    det = Detector(CONFIG)
    state = det.new_state()
    for v in SPIKY:
        det.update(state, v)
    for v in values:
        verdict = det.update(state, v)
        if verdict.anomaly:
            return verdict, state
    raise AssertionError("no alert")


def test_a_spike_names_the_raw_baseline() -> None:
    verdict, state = _fired([90])
    anomaly = _departure("/g", "t1", "ERROR x", 90, verdict, state)
    assert anomaly is not None and anomaly.kind == "spike"
    assert (anomaly.count, anomaly.baseline_median, anomaly.baseline_max) == (90, 10, 30)
    assert anomaly.history_windows == len(SPIKY)


def test_a_level_shift_names_the_baseline_of_levels() -> None:
    verdict, state = _fired([18, 18])
    anomaly = _departure("/g", "t1", "ERROR x", 18, verdict, state)
    assert anomaly is not None and anomaly.kind == "level_shift"
    assert (anomaly.level, anomaly.baseline_median, anomaly.baseline_max) == (14, 10, 10.5)
    assert anomaly.score > 3


def test_drops_raise_no_alert() -> None:
    verdict, state = _fired([0])
    assert _departure("/g", "t1", "ERROR x", 0, verdict, state) is None
    verdict, state = _fired([2, 2])
    assert _departure("/g", "t1", "ERROR x", 2, verdict, state) is None
