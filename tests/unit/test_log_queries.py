"""Insights query strings and GetQueryResults parsing (documented response shapes), window
arithmetic and the overlap's de-duplication."""

from __future__ import annotations

import itertools
from collections import Counter

from aiops_agent.logs.queries import RESULT_CAP, insights_query, is_problem, parse_results
from aiops_agent.logs.state import message_key
from aiops_agent.logs.windows import due_windows, first_window_start, late_arrivals, tail_counts


def test_query_filters_and_aggregates_server_side() -> None:
    query = insights_query()
    parts = query.split(" | ")
    assert parts[0].startswith("filter @message like /(?i)(error|exception|fail")
    assert parts[0].endswith(")/")
    assert "stats count(*) as n by @message" in parts
    assert parts[-2:] == ["sort n desc", f"limit {RESULT_CAP}"]
    assert "/" not in parts[0].removeprefix("filter @message like /").removesuffix("/")


def test_parse_completed_results_in_the_documented_shape() -> None:
    # GetQueryResults: results is a list of rows, each a list of {field, value} (strings).
    response = {
        "status": "Complete",
        "results": [
            [
                {"field": "@message", "value": "ERROR db timeout after 30 s"},
                {"field": "n", "value": "42"},
            ],
            [
                {"field": "@message", "value": "WARN retry failed"},
                {"field": "n", "value": "3"},
            ],
            [{"field": "n", "value": "9"}],  # no message: ignored
        ],
        "statistics": {"recordsMatched": 45.0, "recordsScanned": 1200.0, "bytesScanned": 98304.0},
    }
    counts = parse_results(response)
    assert counts.counts == Counter({"ERROR db timeout after 30 s": 42, "WARN retry failed": 3})
    assert counts.total == 45
    assert counts.bytes_scanned == 98304.0
    assert counts.truncated is False


def test_parse_flags_a_result_at_the_row_cap() -> None:
    rows = [
        [{"field": "@message", "value": f"error {i}"}, {"field": "n", "value": "1"}]
        for i in range(RESULT_CAP)
    ]
    counts = parse_results({"status": "Complete", "results": rows, "statistics": {}})
    assert counts.truncated is True
    assert counts.bytes_scanned == 0.0


def test_parse_tolerates_emulator_quirks() -> None:
    # moto ignores stats: rows carry @timestamp (epoch ms) and @message, no `n`.
    rows = [
        [{"field": "@timestamp", "value": "1767225600000"}, {"field": "@message", "value": "x"}],
        [{"field": "@message", "value": "x"}, {"field": "n", "value": "not-a-number"}],
    ]
    assert parse_results({"results": rows}).counts == Counter({"x": 2})


def test_is_problem_matches_the_server_side_filter_words() -> None:
    assert is_problem("ERROR boom")
    assert is_problem("request Timed Out after 3s")
    assert is_problem("connection refused")
    assert not is_problem("INFO all good")


def test_windows_are_aligned_non_overlapping_and_bounded() -> None:
    start = first_window_start(horizon_ms=1_000_250, period_ms=100, backfill=3)
    assert start == 999_900
    windows = due_windows(start, horizon_ms=1_000_250, period_ms=100, limit=10)
    assert windows == [(999_900, 1_000_000), (1_000_000, 1_000_100), (1_000_100, 1_000_200)]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert len(due_windows(start, 1_000_250, 100, limit=2)) == 2
    assert due_windows(1_000_200, 1_000_250, 100, limit=5) == []  # incomplete window waits


def test_overlap_counts_only_what_the_previous_window_did_not_see() -> None:
    taken = tail_counts(Counter({"ERROR a": 3, "ERROR b": 1}))
    assert taken == {message_key("ERROR a"): 3, message_key("ERROR b"): 1}
    now_seen = Counter({"ERROR a": 5, "ERROR b": 1, "ERROR c": 2})
    assert late_arrivals(now_seen, taken) == Counter({"ERROR a": 2, "ERROR c": 2})
    assert late_arrivals(Counter({"ERROR a": 3}), taken) == Counter()
