"""The generated benchmark report states issue 9's targets from the result files."""

from __future__ import annotations

from typing import Any

from bench.report import _log_targets


def _mining(raw_bgl: float) -> dict[str, Any]:
    def system(published: float, raw: float) -> dict[str, Any]:
        return {
            "published_drain": published,
            "ours_content": {"ga": 1.0},
            "ours_raw": {"ga": raw},
        }

    return {
        "systems": {"BGL": system(0.963, raw_bgl), "HDFS": system(0.998, 1.0)},
        "summary": {
            "ours_content_avg_ga": 0.99,
            "ours_raw_avg_ga": round((raw_bgl + 1.0) / 2, 3),
            "ours_content_lines_per_s": 30_000,
            "drain3_content_lines_per_s": 40_000,
        },
    }


def test_grouping_targets_name_the_systems_below_the_published_figure() -> None:
    rows = {r[0]: r for r in _log_targets({"logmining": _mining(raw_bgl=0.41)})}
    content = rows["`logs mine` GA, content (avg; systems >= published)"]
    raw = rows["`logs mine` GA, raw (avg; systems >= published)"]
    assert content[2:4] == ["0.99; 2/2", True]
    assert raw[2:] == ["0.705; 1/2", False, "below published Drain on BGL"]
    assert rows["miner speed / drain3 (content, same run)"][2:4] == [0.75, False]


def test_detector_and_scan_targets() -> None:
    detect = {"ours": {"windows_found": 23, "windows": 30, "false_episodes_per_day": 0.33}}
    rows = _log_targets({"detect": detect, "logscan_cost": {"ratio_seed_over_ours": 10.9}})
    assert rows[0][2:4] == ["23/30; 0.33", False]
    assert rows[1][2:4] == [10.9, True]
