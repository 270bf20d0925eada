"""The EventBridge rule routes every event some normalizer handles (intake/routing.py).

The pattern was a hand-kept list: CloudTrail records of CloudTrail itself (StopLogging,
DeleteTrail: `aws.cloudtrail`), of EventBridge (DisableRule: `aws.events`) and of CloudWatch
(DeleteAlarms: `aws.monitoring`) had normalizers but never arrived. The committed Terraform
pattern is what the rule really matches, so it is the one checked.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiops_agent.intake.cloudtrail import CLOUDTRAIL_NORMALIZERS
from aiops_agent.intake.envelope import CLOUDTRAIL_DETAIL_TYPE
from aiops_agent.intake.normalize import parse_event
from aiops_agent.intake.registry import ANY_SOURCE, EVENT_NORMALIZERS
from aiops_agent.intake.routing import UNROUTED, cloudtrail_source, event_pattern, routed
from aiops_agent.provision.bootstrap import event_pattern as bootstrap_pattern
from tests.unit.test_deploy_files import ROOT

TERRAFORM_PATTERN = ROOT / "deploy" / "terraform" / "event_pattern.json"


def deployed() -> dict[str, list[str]]:
    pattern: dict[str, list[str]] = json.loads(TERRAFORM_PATTERN.read_text())
    return pattern


def test_the_bootstrap_and_terraform_use_the_generated_pattern() -> None:
    assert bootstrap_pattern() == event_pattern() == deployed()


def test_every_normalizer_is_routed_unless_deliberately_not() -> None:
    pattern = deployed()
    missing = [
        (source, detail_type)
        for source, detail_type in EVENT_NORMALIZERS
        if source != ANY_SOURCE
        and detail_type not in UNROUTED
        and not routed(source, detail_type, pattern)
    ]
    assert missing == []
    assert {detail_type for _, detail_type in EVENT_NORMALIZERS} >= UNROUTED, "stale UNROUTED"


def test_every_cloudtrail_normalizer_is_routed() -> None:
    pattern = deployed()
    missing = sorted(
        {
            f"{event_source} {name}"
            for event_source, name in CLOUDTRAIL_NORMALIZERS
            if not routed(cloudtrail_source(event_source), CLOUDTRAIL_DETAIL_TYPE, pattern)
        }
    )
    assert missing == []


def _cloudtrail_event(source: str, event_source: str, name: str, request: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"evt-{name}",
        "detail-type": CLOUDTRAIL_DETAIL_TYPE,
        "source": source,
        "time": "2026-12-03T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "eventSource": event_source,
            "eventName": name,
            "eventTime": "2026-12-03T10:00:00Z",
            "eventID": f"ct-{name}",
            "awsRegion": "us-east-1",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/mallory"},
            "requestParameters": request,
        },
    }


@pytest.mark.parametrize(
    ("source", "event_source", "name", "request_parameters"),
    [
        ("aws.cloudtrail", "cloudtrail.amazonaws.com", "StopLogging", {"name": "main-trail"}),
        ("aws.cloudtrail", "cloudtrail.amazonaws.com", "DeleteTrail", {"name": "main-trail"}),
        ("aws.events", "events.amazonaws.com", "DisableRule", {"name": "aiops-agent-events"}),
        ("aws.monitoring", "monitoring.amazonaws.com", "DeleteAlarms", {"alarmNames": ["cpu"]}),
    ],
)
def test_tampering_with_the_agents_eyes_arrives(
    source: str, event_source: str, name: str, request_parameters: Any
) -> None:
    """As EventBridge names them: the source is `aws.` + the eventSource's first label."""
    body = _cloudtrail_event(source, event_source, name, request_parameters)
    (event,) = parse_event(body)
    assert event.action == name
    assert routed(body["source"], body["detail-type"], deployed()), f"{source} is not routed"
