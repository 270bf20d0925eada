"""The metrics module: names, bounded labels, the AWS call hook, and promtool's opinion."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from aiops_agent.obs.metrics import RESOURCE_TYPES, Metrics, bounded


def _families(metrics: Metrics) -> dict[str, object]:
    payload, _ = metrics.render()
    return {f.name: f for f in text_string_to_metric_families(payload.decode())}


def _sample_value(metrics: Metrics, name: str, labels: dict[str, str]) -> float | None:
    payload, _ = metrics.render()
    for family in text_string_to_metric_families(payload.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def _exercise(metrics: Metrics) -> None:
    """Touch every collector once, so the render has a sample of each kind."""
    metrics.event_received("ec2")
    metrics.events_rejected.labels(reason="unparseable").inc()
    metrics.classified("FAILURE", "lambda")
    metrics.transitions.labels(from_state="RECEIVED", to_state="ANALYZING").inc()
    metrics.in_flight.inc()
    metrics.incident_closed("COMPLETED", "ec2", 42.0)
    metrics.suppressions.labels(reason="cooldown").inc()
    metrics.manual_review("ssm")
    metrics.verification("ec2", "passed")
    metrics.actions.labels(action="ec2.start_instance", outcome="ok").inc()
    metrics.notifications.labels(outcome="ok").inc()
    metrics.message_dead_lettered("unparseable")
    metrics.message_handled("deleted")
    metrics.message_age.observe(1.5)
    metrics.invalid_signals.labels(state="COMPLETED", signal="approved").inc()
    metrics.on_aws_call("sqs", "ReceiveMessage", "ok")
    metrics.loop_heartbeat.labels(loop="sqs").set(1.0)
    metrics.step_duration.labels(command="analyze").observe(0.2)


def test_every_family_is_aiops_prefixed_and_parses() -> None:
    metrics = Metrics()
    _exercise(metrics)
    families = _families(metrics)
    assert families, "render produced no metric families"
    bad = [name for name in families if not name.startswith("aiops_")]
    assert bad == []
    for expected in (
        "aiops_events_received",
        "aiops_incidents",
        "aiops_recovery_duration_seconds",
        "aiops_sqs_message_age_seconds",
        "aiops_loop_last_beat_timestamp_seconds",
        "aiops_build_info",
        "aiops_process_cpu_seconds",
    ):
        assert expected in families, expected


def test_render_content_type_is_prometheus_text() -> None:
    payload, content_type = Metrics().render()
    assert content_type.startswith("text/plain")
    assert b"# TYPE aiops_incidents_in_flight gauge" in payload


def test_fresh_registry_per_instance() -> None:
    first, second = Metrics(), Metrics()
    first.on_aws_call("ec2", "StartInstances", "ok")
    labels = {"service": "ec2", "operation": "StartInstances", "outcome": "ok"}
    assert _sample_value(first, "aiops_aws_api_calls_total", labels) == 1.0
    assert _sample_value(second, "aiops_aws_api_calls_total", labels) is None


def test_accepts_a_given_registry() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    assert metrics.registry is registry
    assert registry.get_sample_value("aiops_incidents_in_flight") == 0.0


def test_on_aws_call_counts_by_service_operation_outcome() -> None:
    metrics = Metrics()
    metrics.on_aws_call("sqs", "DeleteMessage", "ok")
    metrics.on_aws_call("sqs", "DeleteMessage", "ok")
    metrics.on_aws_call("sqs", "DeleteMessage", "ReceiptHandleIsInvalid")
    ok = {"service": "sqs", "operation": "DeleteMessage", "outcome": "ok"}
    err = {"service": "sqs", "operation": "DeleteMessage", "outcome": "ReceiptHandleIsInvalid"}
    assert _sample_value(metrics, "aiops_aws_api_calls_total", ok) == 2.0
    assert _sample_value(metrics, "aiops_aws_api_calls_total", err) == 1.0


def test_build_info_is_one() -> None:
    metrics = Metrics()
    families = _families(metrics)
    samples = families["aiops_build_info"].samples  # type: ignore[attr-defined]
    assert len(samples) == 1
    assert samples[0].value == 1.0
    assert set(samples[0].labels) == {"version", "python"}


def test_bounded() -> None:
    assert bounded("ec2", RESOURCE_TYPES) == "ec2"
    assert bounded("i-0123456789abcdef0", RESOURCE_TYPES) == "other"
    assert bounded("x", {"a"}, other="unknown") == "unknown"


def test_unknown_resource_type_lands_in_other() -> None:
    metrics = Metrics()
    metrics.event_received("my-bucket-name")
    metrics.incident_closed("NOT_A_STATE", "arn:aws:s3:::bucket", 3.0)
    assert _sample_value(metrics, "aiops_events_received_total", {"resource_type": "other"}) == 1.0
    assert (
        _sample_value(metrics, "aiops_events_received_total", {"resource_type": "my-bucket-name"})
        is None
    )
    labels = {"outcome": "other", "resource_type": "other"}
    assert _sample_value(metrics, "aiops_incidents_total", labels) == 1.0


def test_alerted_series_exist_at_zero_from_the_start() -> None:
    metrics = Metrics()
    failed = {"outcome": "FAILED", "resource_type": "ec2"}
    assert _sample_value(metrics, "aiops_incidents_total", failed) == 0.0
    assert _sample_value(metrics, "aiops_messages_dead_lettered_total", {"reason": "other"}) == 0.0


def test_incident_closed_observes_duration() -> None:
    metrics = Metrics()
    metrics.incident_closed("COMPLETED", "lambda", 90.0)
    labels = {"resource_type": "lambda", "outcome": "COMPLETED"}
    assert _sample_value(metrics, "aiops_recovery_duration_seconds_count", labels) == 1.0
    assert _sample_value(metrics, "aiops_recovery_duration_seconds_sum", labels) == 90.0
    le60 = {**labels, "le": "60.0"}
    le120 = {**labels, "le": "120.0"}
    assert _sample_value(metrics, "aiops_recovery_duration_seconds_bucket", le60) == 0.0
    assert _sample_value(metrics, "aiops_recovery_duration_seconds_bucket", le120) == 1.0


def test_dead_lettered_counts_reason_and_message_outcome() -> None:
    metrics = Metrics()
    metrics.message_dead_lettered("max_receives")
    reason = {"reason": "max_receives"}
    assert _sample_value(metrics, "aiops_messages_dead_lettered_total", reason) == 1.0
    outcome = {"outcome": "dead_lettered"}
    assert _sample_value(metrics, "aiops_sqs_messages_total", outcome) == 1.0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not on PATH")
def test_promtool_finds_nothing_wrong() -> None:
    metrics = Metrics()
    _exercise(metrics)
    payload, _ = metrics.render()
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=payload,
        capture_output=True,
        timeout=30,
        check=False,
    )
    problems = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, problems
    assert problems.strip() == "", problems
