"""The generated benchmark report states issue 9's targets from the result files."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench.common import code_version
from bench.report import MixedCommits, _log_targets, _pipeline_reading, check_one_commit


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


def _result(commit: str, dirty: list[str] | None = None) -> dict[str, Any]:
    return {"code": {"commit": commit, "dirty": dirty or []}}


def test_the_report_refuses_results_of_different_commits() -> None:
    assert check_one_commit({"calls": _result("abc"), "pipeline": _result("abc")}) == "abc"
    with pytest.raises(MixedCommits, match="calls abc"):
        check_one_commit({"calls": _result("abc"), "pipeline": _result("def")})
    # Measured on changed code, or before commits were recorded: not one clean commit.
    with pytest.raises(MixedCommits):
        check_one_commit({"calls": _result("abc", ["aiops_agent/app.py"])})
    with pytest.raises(MixedCommits):
        check_one_commit({"calls": {}})


def test_results_record_the_commit_and_changed_code(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    git("init", "-q")
    (root / "a.py").write_text("x = 1\n")
    (root / "bench" / "results").mkdir(parents=True)
    (root / "bench" / "results" / "calls.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    clean = code_version(root)
    assert len(clean["commit"]) == 40 and clean["dirty"] == []
    (root / "bench" / "results" / "calls.json").write_text("{}\n\n")
    assert code_version(root)["dirty"] == []  # the benchmarks' own output
    (root / "a.py").write_text("x = 2\n")
    assert code_version(root)["dirty"] == ["a.py"]


def test_the_pipeline_reading_comes_from_the_numbers() -> None:
    daemon = {
        "events": 100,
        "seconds": 10.0,
        "aws_calls": 300,
        "aws_calls_by_operation": {"sqs:ReceiveMessage": 20, "dynamodb:Query": 150},
    }
    floor = {"events": 100, "seconds": 10.0, "aws_calls": 150, "receives": 20, "puts": 100}
    text, _, why, query = _pipeline_reading(daemon, floor)
    assert "30.0 calls/s" in text and "15.0 calls/s" in text
    assert "2.0x the floor's rate" in text and "2.0x the floor's calls per event" in text
    assert "dynamodb:Query 1.50" in text and "ReceiveMessage" not in text
    # Same events/s on both sides, twice the calls: the calls alone would make it 0.5.
    assert "the inverse of the calls per event: 0.5; measured: 1.0" in why
    assert query.startswith("- dynamodb:Query (1.50 per event): correlation")
    same = {**floor, "aws_calls": 300}
    assert "about the same rate" in _pipeline_reading(daemon, same)[0]


def test_the_latency_reading_says_when_the_feeder_fell_short() -> None:
    from bench.latency import reading

    run = {
        "rate_target": 200.0,
        "rate_sent": 16.8,
        "queue_lag_s": {"p50": 79.8},
        "latency_s": {"p50": 99.0},
        "max_backlog": 775,
        "feeder_short_of_target": True,
    }
    text = reading([run])
    assert "sent only 16.8/s" in text and "the backlog grew to 775" in text
    assert "handled fewer than that" in text
    caught_up = reading([{**run, "max_backlog": 12}])
    assert "the daemon kept up with what was sent (backlog up to 12" in caught_up
    kept_up = {**run, "rate_target": 10.0, "rate_sent": 10.0, "feeder_short_of_target": False}
    assert "sent only" not in reading([kept_up])


def test_out_of_fold_grouping_is_a_target_of_its_own() -> None:
    mining = _mining(raw_bgl=1.0)
    mining["summary"]["ours_content_out_of_fold_avg_ga"] = 0.91
    rows = {r[0]: r for r in _log_targets({"logmining": mining})}
    assert rows["`logs mine` GA out of fold, content (avg)"][2:4] == [0.91, False]
    assert "`logs mine` GA out of fold, raw (avg)" not in rows  # not measured: no row


def test_the_throughput_target_is_the_one_the_result_was_judged_against() -> None:
    """The wanted column comes from the result (issue 18's 0.8), not from a string of its own."""
    from bench.pipeline import TARGET_RATIO
    from bench.report import _targets

    pipeline = {
        "ratio": 0.53,
        "targets": {"ratio_min": TARGET_RATIO, "met": False},
        "daemon": {"aws_calls": 5300},
        "floor": {"aws_calls": 2600},
    }
    (row,) = [line for line in _targets({"pipeline": pipeline}) if "bare floor" in line]
    assert "| >= 0.8 |" in row and "| 0.53 |" in row
    assert "2.0x the floor's AWS calls" in row
