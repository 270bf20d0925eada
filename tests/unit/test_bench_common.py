"""The benchmarks' pure math: percentiles, histogram quantiles, the workload, metric parsing."""

from __future__ import annotations

import json
import math

import pytest

from bench.common import (
    counts,
    ec2_event,
    histogram_quantile,
    homogeneous,
    percentile,
    ratio,
    summary,
    workload,
)
from bench.harness import aws_calls, delta, parse_metrics, total
from bench.latency import latencies, outcome_times


def test_percentile_interpolates_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile([5.0], 99) == 5.0


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_of_values() -> None:
    s = summary([float(i) for i in range(1, 101)])
    assert s["count"] == 100
    assert s["p50"] == pytest.approx(50.5)
    assert s["max"] == 100
    assert summary([]) == {"count": 0}


def test_histogram_quantile_interpolates_within_a_bucket() -> None:
    buckets = [(0.1, 0.0), (0.5, 50.0), (1.0, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.5)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.3)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.99)
    assert histogram_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]) is None


def test_histogram_quantile_in_the_inf_bucket_answers_its_lower_bound() -> None:
    assert histogram_quantile(0.99, [(1.0, 10.0), (math.inf, 100.0)]) == 1.0


def test_ratio() -> None:
    assert ratio(1.0, 2.0) == 0.5
    assert ratio(1.0, 0.0) is None


def test_workload_follows_the_mix_and_duplicates_repeat_an_earlier_recovery() -> None:
    feeds = workload(200)
    assert counts(feeds) == {"normal": 120, "duplicate": 20, "recovered": 40, "review": 20}
    keys = {f.key for f in feeds}
    assert len(keys) == len(feeds)
    recovered = {f.event_id: i for i, f in enumerate(feeds) if f.kind == "recovered"}
    for i, feed in enumerate(feeds):
        if feed.kind == "duplicate":
            assert recovered[feed.event_id] < i
    again = workload(200)  # deterministic, but for the event time (now, to the second)
    assert [(f.kind, f.event_id, f.key) for f in again] == [
        (f.kind, f.event_id, f.key) for f in feeds
    ]


def test_events_carry_what_decides_their_outcome() -> None:
    normal, recovered, review = (homogeneous(k, 1)[0] for k in ("normal", "recovered", "review"))
    assert json.loads(normal.body)["detail"]["state"] == "running"
    assert json.loads(recovered.body)["detail"]["state"] == "stopped"
    assert "replay-name" in json.loads(review.body)
    event = ec2_event("i-0123456789abcdef0", "stopped", event_id="e1")
    assert event["id"] == "e1" and event["source"] == "aws.ec2" and "account" not in event


METRICS = """\
# HELP aiops_aws_api_calls_total AWS API calls.
# TYPE aiops_aws_api_calls_total counter
aiops_aws_api_calls_total{operation="ReceiveMessage",outcome="ok",service="sqs"} 3.0
aiops_aws_api_calls_total{operation="PutItem",outcome="ok",service="dynamodb"} 5.0
aiops_aws_api_calls_total{operation="PutItem",outcome="Conflict",service="dynamodb"} 1.0
# HELP aiops_sqs_messages_total Queue messages handled.
# TYPE aiops_sqs_messages_total counter
aiops_sqs_messages_total{outcome="deleted"} 20.0
"""


def test_metrics_are_parsed_summed_and_differenced() -> None:
    samples = parse_metrics(METRICS)
    assert total(samples, "aiops_sqs_messages_total", outcome="deleted") == 20
    assert aws_calls(samples) == {"dynamodb:PutItem": 6.0, "sqs:ReceiveMessage": 3.0}
    before = parse_metrics(METRICS.replace("} 3.0", "} 1.0"))
    assert aws_calls(delta(samples, before)) == {"sqs:ReceiveMessage": 2.0}


def test_outcome_times_and_latencies_from_log_lines() -> None:
    lines = [
        json.dumps({"event": "event.normal", "event_id": "a", "timestamp": "2026-01-01T00:00:01Z"}),
        json.dumps(
            {
                "event": "incident.transition",
                "to_state": "VERIFYING",
                "event_id": "b",
                "timestamp": "2026-01-01T00:00:02Z",
            }
        ),
        json.dumps(
            {
                "event": "incident.transition",
                "to_state": "COMPLETED",
                "event_id": "b",
                "timestamp": "2026-01-01T00:00:03.500000Z",
            }
        ),
        json.dumps(
            {"event": "event.duplicate", "event_id": "b", "timestamp": "2026-01-01T00:00:09Z"}
        ),
        "not json",
    ]
    done = outcome_times(lines)
    assert set(done) == {"normal:a", "recovered:b", "duplicate:b"}
    t0 = done["normal:a"] - 1.0
    sent = {"normal:a": t0 + 0.5, "recovered:b": t0 + 1.0, "review:c": t0}
    by_kind = latencies(sent, done)
    assert by_kind["normal"] == [pytest.approx(0.5)]
    assert by_kind["recovered"] == [pytest.approx(2.5)]
    assert "review" not in by_kind
