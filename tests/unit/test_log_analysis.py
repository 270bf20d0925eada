"""Failure probability rules and the proactive alert text."""

from __future__ import annotations

from dataclasses import replace

from aiops_agent.logs.analysis import Anomaly, alert_text, anomaly_probability, assess, severity


def _anomaly(template: str, kind: str = "spike", count: int = 40, base_max: float = 5) -> Anomaly:
    return Anomaly("/app/api", "abc123def456", template, kind, count, 2.0, base_max, 288, 9.5)  # type: ignore[arg-type]


def test_severity_words_rank_templates() -> None:
    assert severity("FATAL out of memory") > severity("ERROR db timeout") > severity("WARN slow")
    assert severity("INFO ok") == 0.3


def test_bigger_anomalies_and_worse_words_are_more_likely_failures() -> None:
    small = anomaly_probability(_anomaly("ERROR x", count=6, base_max=5), min_count=5)
    big = anomaly_probability(_anomaly("ERROR x", count=200, base_max=5), min_count=5)
    assert small < big <= 0.85
    assert anomaly_probability(_anomaly("WARN x", count=200), 5) < 0.7


def test_assess_combines_anomalies_and_names_the_worst() -> None:
    result = assess([_anomaly("ERROR db <*> refused"), _anomaly("WARN slow <*>")], min_count=5)
    assert 0.7 <= result.failure_probability <= 0.99
    assert "ERROR db <*> refused" in result.root_cause
    assert result.urgency == "high"
    assert assess([], 5).failure_probability == 0.0


def test_alert_says_proactive_and_names_template_counts_and_baseline() -> None:
    anomaly = _anomaly("ERROR db <*> refused", count=40, base_max=5)
    subject, message = alert_text("/app/api", 0, 300_000, [anomaly], assess([anomaly], 5))
    assert "PROACTIVE" in subject and "/app/api" in subject
    assert "PROACTIVE alert" in message
    assert "abc123def456" in message and "ERROR db <*> refused" in message
    assert "40 in this window" in message
    assert "baseline median 2, max 5 over 288 windows" in message
    assert "1970-01-01T00:00:00+00:00 .. 1970-01-01T00:05:00+00:00" in message


def test_a_level_shift_is_sized_by_its_level_and_said_as_a_sustained_rise() -> None:
    shift = Anomaly(
        "/app/api", "abc123def456", "ERROR db <*> refused", "level_shift", 9, 1.0, 2.0, 287, 6.5
    )
    shift = replace(shift, level=8.0)
    lower = replace(shift, level=3.0)
    assert anomaly_probability(lower, 5) < anomaly_probability(shift, 5) <= 0.85
    result = assess([shift], 5)
    assert result.root_cause.startswith("a sustained rise in /app/api")
    _, message = alert_text("/app/api", 0, 300_000, [shift], result)
    assert "level_shift template abc123def456: 9 in this window" in message
    assert "level (median of the last hour) 8; baseline level median 1, max 2" in message
