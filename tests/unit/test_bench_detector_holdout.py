"""The held-out detector benchmark's scoring: windows, false episodes, lead from the point."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench.detector_holdout import GROUPS, TUNED_ON, Group, main, meets, score_group, score_series

T0 = datetime(2024, 1, 1)


def _stamps(n: int) -> list[datetime]:
    return [T0 + timedelta(minutes=5 * i) for i in range(n)]


def test_lead_is_measured_from_the_labelled_point_not_the_window_start() -> None:
    stamps = _stamps(100)
    flags = [False] * 100
    flags[40] = True  # 10 minutes before the point at row 42
    spans = [(stamps[20], stamps[60])]
    result = score_series(stamps, flags, spans, [stamps[42]])
    assert result["found"] == 1
    assert result["delays_from_point_minutes"] == [-10.0]
    flags[40], flags[21] = False, True  # 105 minutes early: found, but not near the point
    assert score_series(stamps, flags, spans, [stamps[42]])["delays_from_point_minutes"] == [-105.0]
    flags[21], flags[40] = False, True
    flags[40], flags[45] = False, True
    assert score_series(stamps, flags, spans, [stamps[42]])["delays_from_point_minutes"] == [15.0]


def test_false_episodes_merge_alerts_twelve_rows_apart_or_closer() -> None:
    stamps = _stamps(200)
    flags = [False] * 200
    for i in (10, 22, 35, 150):  # 10 and 22 one episode; 35 (13 after) a second; 150 a third
        flags[i] = True
    flags[100] = True  # inside the window: a hit, no false episode
    result = score_series(stamps, flags, [(stamps[90], stamps[110])], [stamps[100]])
    assert (result["found"], result["false_episodes"], result["alerts"]) == (1, 3, 5)


def test_the_target_is_per_group_and_the_quiet_group_counts_every_alert() -> None:
    ok = {"found_share": 0.8, "false_episodes_per_day": 0.3, "alerts_per_day": 9.0}
    assert meets("realTraffic", ok)
    assert not meets("realTraffic", {**ok, "found_share": 0.79})
    assert not meets("realTraffic", {**ok, "false_episodes_per_day": 0.31})
    assert not meets("artificialNoAnomaly", ok)
    assert meets("artificialNoAnomaly", {**ok, "alerts_per_day": 0.1})
    assert TUNED_ON in {g.name for g in GROUPS}


def test_absent_data_is_said_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "NAB data absent" in err and "AIOPS_BENCH_DATA" in err
    assert not (tmp_path / "r.json").exists()


def test_a_group_sums_its_series_and_counts_hits_near_the_point(tmp_path: Path) -> None:
    stamps = _stamps(300)
    rows = "\n".join(f"{t:%Y-%m-%d %H:%M:%S},{i % 7}" for i, t in enumerate(stamps))
    (tmp_path / "g").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "g" / name).write_text("timestamp,value\n" + rows + "\n")
    span = [f"{stamps[100]:%Y-%m-%d %H:%M:%S}", f"{stamps[200]:%Y-%m-%d %H:%M:%S}"]
    point = f"{stamps[150]:%Y-%m-%d %H:%M:%S}"
    (tmp_path / "w.json").write_text(json.dumps({"g/a.csv": [span], "g/b.csv": [span]}))
    (tmp_path / "l.json").write_text(json.dumps({"g/a.csv": [point], "g/b.csv": [point]}))
    group = Group("g", "g", "w.json", "l.json")

    def runner(_stamps: list[datetime], values: list[float]) -> list[bool]:
        flags = [False] * len(values)
        flags[105] = flags[160] = True  # a: 225 minutes early; b: same rows
        return flags

    result = score_group(runner, tmp_path, group)
    assert (result["windows_found"], result["windows"], result["series"]) == (2, 2, 2)
    assert result["found_within_hour_of_point"] == 0
    assert result["median_delay_from_point_minutes"] == -225.0
    assert result["alerts_before_point"] == 2 and result["false_episodes"] == 0
