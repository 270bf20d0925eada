"""`ecs.force_new_deployment`'s check: what a service's deployments say about the rollout."""

from __future__ import annotations

from typing import Any

import pytest

from aiops_agent.actions.ecs import interpret_service, primary_deployment


def _service(*deployments: dict[str, Any], status: str = "ACTIVE") -> dict[str, Any]:
    return {"status": status, "desiredCount": 2, "deployments": list(deployments)}


def _deployment(
    rollout: str | None, running: int = 2, desired: int = 2, status: str = "PRIMARY", **extra: Any
) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": f"ecs-svc/{status.lower()}",
        "status": status,
        "desiredCount": desired,
        "runningCount": running,
        **extra,
    }
    if rollout is not None:
        d["rolloutState"] = rollout
    return d


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (_service(_deployment("COMPLETED")), "PASSED"),
        (_service(_deployment("IN_PROGRESS", running=1)), "PENDING"),
        (_service(_deployment("IN_PROGRESS", running=2)), "PENDING"),  # old tasks draining
        (
            _service(_deployment("FAILED", running=0, rolloutStateReason="circuit breaker")),
            "FAILED",
        ),
        (_service(_deployment(None)), "PASSED"),  # no rollout state: counts decide
        (_service(_deployment(None, running=1)), "PENDING"),
        (_service(_deployment(None), _deployment(None, status="ACTIVE")), "PENDING"),
        (_service(_deployment("COMPLETED"), status="DRAINING"), "FAILED"),
        (_service(_deployment("COMPLETED"), status="INACTIVE"), "FAILED"),
        (_service(_deployment("COMPLETED", status="ACTIVE")), "FAILED"),  # no PRIMARY
        (None, "FAILED"),
    ],
)
def test_interpret_service(service: dict[str, Any] | None, expected: str) -> None:
    outcome = interpret_service(service)
    assert outcome.status == expected, outcome.detail
    assert outcome.checks[0]["check"] == "service_status"


def test_failed_rollout_reports_the_reason_and_counts() -> None:
    outcome = interpret_service(
        _service(_deployment("FAILED", running=0, rolloutStateReason="tasks failed to start"))
    )
    assert "tasks failed to start" in outcome.detail
    assert {"check": "running_count", "expected": 2, "actual": 0} in outcome.checks
    assert {"check": "rollout_state", "expected": "COMPLETED", "actual": "FAILED"} in outcome.checks


def test_pending_mentions_failed_tasks() -> None:
    outcome = interpret_service(_service(_deployment("IN_PROGRESS", running=0, failedTasks=3)))
    assert outcome.status == "PENDING"
    assert "3 failed tasks" in outcome.detail


def test_primary_deployment_picks_primary() -> None:
    service = _service(_deployment(None, status="ACTIVE"), _deployment("COMPLETED"))
    primary = primary_deployment(service)
    assert primary is not None and primary["status"] == "PRIMARY"
    assert primary_deployment({"deployments": []}) is None
