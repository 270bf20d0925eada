"""The detector's math, its persisted state, and `detect`."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import replace
from pathlib import Path

import pytest

from aiops_agent.cli.logs import detect
from aiops_agent.logs.detector import (
    Detector,
    DetectorConfig,
    SeriesState,
    decode_values,
    encode_values,
)

SMALL = DetectorConfig(history=50, min_history=10, margin=0.5, threshold=3.0, rearm_after=3)


def _feed(detector: Detector, state: SeriesState, values: list[float]) -> list[bool]:
    return [detector.update(state, v).anomaly for v in values]


def test_no_alert_before_min_history() -> None:
    det = Detector(SMALL)
    state = det.new_state()
    assert _feed(det, state, [1, 2, 1, 2, 100]) == [False] * 5


def test_a_value_beyond_the_historical_range_alerts_once_per_excursion() -> None:
    det = Detector(SMALL)
    state = det.new_state()
    normal = [10, 12, 11, 9, 10, 13, 11, 10, 12, 11, 10, 9]
    assert not any(_feed(det, state, normal))
    flags = _feed(det, state, [60, 70, 65, 11, 10, 12, 11, 90])
    assert flags == [True, False, False, False, False, False, False, True]


def test_values_inside_the_range_seen_before_do_not_alert() -> None:
    det = Detector(SMALL)
    state = det.new_state()
    history = [10, 30, 10, 11, 29, 10, 12, 31, 10, 11, 10, 30]
    assert not any(_feed(det, state, [*history, 31, 10, 29]))


def test_score_is_a_robust_z_against_the_median() -> None:
    det = Detector(SMALL)
    state = det.new_state()
    _feed(det, state, [10, 11, 9, 10, 11, 9, 10, 11, 9, 10])
    verdict = det.score(state, 20)
    assert verdict.median == 10
    assert verdict.upper == 11
    # quartiles 9.25 and 10.75 (linear interpolation): sigma is the IQR / 1.349
    assert verdict.score == pytest.approx(10 / (1.5 / 1.349), rel=1e-3)


def test_drops_below_the_range_alert_too() -> None:
    det = Detector(SMALL)
    state = det.new_state()
    _feed(det, state, [50, 52, 51, 49, 50, 53, 51, 50, 52, 51])
    verdict = det.update(state, 0)
    assert verdict.anomaly and verdict.score < 0


def test_a_flat_zero_history_alerts_on_the_first_nonzero() -> None:
    det = Detector(SMALL)
    state = det.new_state()
    _feed(det, state, [0] * 10)
    assert det.update(state, 1).anomaly  # the analyzer's min_count decides for counts


def test_values_encoding_round_trips_with_zero_runs() -> None:
    values = [0, 0, 0, 1, 2.5, 0, 7, 0, 0]
    text = encode_values(values)
    assert text == "0*3,1,2.5,0,7,0*2"
    assert decode_values(text) == values
    assert decode_values("") == []


def test_state_survives_a_round_trip_through_an_item() -> None:
    det = Detector(SMALL)
    state = det.new_state()
    _feed(det, state, [10, 11, 9, 10, 11, 9, 10, 11, 9, 10, 80])
    restored = SeriesState.from_item(json.loads(json.dumps(state.to_item())), SMALL.history)
    assert list(restored.values) == list(state.values)
    assert (restored.armed, restored.calm, restored.seen) == (False, 0, 11)
    assert det.update(restored, 85).anomaly is False  # still disarmed after the restart


def test_history_is_bounded() -> None:
    det = Detector(SMALL)
    state = SeriesState(values=deque(maxlen=5))
    _feed(det, state, list(range(120)))
    assert len(state.values) == SMALL.history


def test_detect_jsonl_one_object_per_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = ["timestamp,value"] + [f"2024-01-01 00:{i:02d}:00,{10 + i % 2}" for i in range(300)]
    rows.append("2024-01-01 05:00:00,500")
    path = tmp_path / "s.csv"
    path.write_text("\n".join(rows) + "\n")
    assert detect(path, jsonl=True) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(out) == 301
    assert set(out[0]) == {"timestamp", "value", "score", "anomaly"}
    assert out[-1]["anomaly"] is True and out[-1]["value"] == 500
    assert sum(o["anomaly"] for o in out) == 1


def test_detect_rejects_a_bad_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n2024-01-01,abc\n")
    assert detect(path, jsonl=False) == 2
    assert "expected timestamp,value" in capsys.readouterr().err


LEVELS = DetectorConfig(
    history=60, min_history=20, margin=0.5, threshold=3.0, rearm_after=3, level_windows=4
)
SPIKY = [10.0, 11, 9, 10, 30, 10, 11, 9, 10, 10] * 3
"""Normal with a regular spike to 30: the raw range is 9..30."""


def test_a_sustained_shift_inside_the_raw_range_alerts_once_as_a_level_shift() -> None:
    det = Detector(LEVELS)
    state = det.new_state()
    assert not any(_feed(det, state, SPIKY))
    verdicts = [det.update(state, v) for v in [18, 18, 19, 18, 18, 18, 17, 18]]
    assert [v.anomaly for v in verdicts] == [False, True, False, False, False, False, False, False]
    alert = verdicts[1]  # one alert for the whole excursion, once half the last hour is high
    assert alert.kind == "level"
    assert alert.level == 14 and alert.level_score > 3.0  # median of 10, 10, 18, 18
    assert alert.level_upper == 10.5  # the highest past level: one spike in 4 barely moves it
    assert alert.upper == 30  # the raw range held it


def test_without_the_level_test_the_same_shift_goes_unseen() -> None:
    det = Detector(replace(LEVELS, level_windows=0))
    state = det.new_state()
    assert not any(_feed(det, state, [*SPIKY, 18, 18, 19, 18, 18, 18, 17, 18]))
    assert not state.levels


def test_a_single_spike_is_no_level_shift() -> None:
    det = Detector(LEVELS)
    state = det.new_state()
    _feed(det, state, SPIKY)
    verdict = det.update(state, 25)  # inside the raw range, one value does not move the median
    assert not verdict.anomaly and verdict.level == 10


def test_levels_survive_a_round_trip_and_an_old_item_rebuilds_them() -> None:
    det = Detector(LEVELS)
    state = det.new_state()
    _feed(det, state, SPIKY)
    item = json.loads(json.dumps(state.to_item()))
    restored = SeriesState.from_item(item, LEVELS.history, LEVELS.level_windows)
    assert list(restored.levels) == list(state.levels)
    del item["levels"]  # written before the level test existed
    rebuilt = SeriesState.from_item(item, LEVELS.history, LEVELS.level_windows)
    assert list(rebuilt.levels) == list(state.levels)
    assert det.update(rebuilt, 18).level == det.update(restored, 18).level
