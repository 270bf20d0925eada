"""The IaC restore's post-conditions per resource type, and the build's age (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aiops_agent.actions.iac import build_age_seconds, interpret_build
from aiops_agent.actions.verifiers import EXPECTATIONS, build_only, interpret_resource, merge
from aiops_agent.domain.ports import CheckOutcome


@pytest.mark.parametrize(
    ("resource_type", "observed", "status"),
    [
        ("lambda", "Active", "PASSED"),
        ("lambda", "Inactive", "PASSED"),
        ("lambda", "Pending", "PENDING"),
        ("lambda", "Failed", "FAILED"),
        ("dynamodb", "ACTIVE", "PASSED"),
        ("dynamodb", "UPDATING", "PASSED"),
        ("dynamodb", "CREATING", "PENDING"),
        ("dynamodb", "DELETING", "FAILED"),
        ("dynamodb", "INACCESSIBLE_ENCRYPTION_CREDENTIALS", "FAILED"),
        ("s3", "exists", "PASSED"),
        ("s3", "forbidden", "FAILED"),
        ("ssm", "exists", "PASSED"),
        ("ec2", "running", "PASSED"),
        ("ec2", "pending", "PENDING"),
    ],
)
def test_interpret_resource(resource_type: str, observed: str, status: str) -> None:
    outcome = interpret_resource(
        resource_type, "r1", observed, build_age_seconds=5.0, grace_seconds=120.0
    )
    assert outcome.status == status
    assert outcome.checks == [
        {
            "check": "resource_state",
            "resource": f"{resource_type} r1",
            "expected": EXPECTATIONS[resource_type].expected,
            "actual": observed,
        }
    ]


@pytest.mark.parametrize(
    ("age", "status"), [(None, "PENDING"), (0.0, "PENDING"), (119.0, "PENDING"), (121.0, "FAILED")]
)
@pytest.mark.parametrize("resource_type", sorted(EXPECTATIONS))
def test_missing_resource_is_pending_within_grace(
    resource_type: str, age: float | None, status: str
) -> None:
    outcome = interpret_resource(
        resource_type, "r1", None, build_age_seconds=age, grace_seconds=120.0
    )
    assert outcome.status == status
    assert outcome.checks[0]["actual"] == "not-found"


def test_build_only_says_what_was_not_checked() -> None:
    outcome = build_only("i-0abc")
    assert outcome.status == "PASSED"
    assert "not checked" in outcome.detail
    assert outcome.checks[0]["expected"] == "tagged aiops:restored-from=i-0abc"


def test_merge_keeps_both_checks_and_the_resource_status() -> None:
    build = interpret_build({"id": "p:1", "buildStatus": "SUCCEEDED"})
    resource = CheckOutcome("PENDING", "lambda f is Pending", [{"check": "resource_state"}])
    merged = merge(build, resource)
    assert merged.status == "PENDING"
    assert [c["check"] for c in merged.checks] == ["build_status", "resource_state"]
    assert "succeeded" in merged.detail and "Pending" in merged.detail


def test_build_age_seconds() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert build_age_seconds({"endTime": now - timedelta(seconds=30)}, now) == 30.0
    assert build_age_seconds({"endTime": "2026-01-01T11:59:00+00:00"}, now) == 60.0
    assert build_age_seconds({"endTime": datetime(2026, 1, 1, 11, 59)}, now) == 60.0  # naive=UTC
    assert build_age_seconds({"endTime": now + timedelta(seconds=5)}, now) == 0.0  # clock skew
    assert build_age_seconds({}, now) is None
    assert build_age_seconds({"endTime": "yesterday"}, now) is None
