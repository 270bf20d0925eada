"""Who caused a change, from what AWS says about it: EC2 StateReason, CloudTrail selectors."""

from __future__ import annotations

import pytest

from aiops_agent.aws.trails import logs_management_writes
from aiops_agent.intake.attribution import state_reason_origin


@pytest.mark.parametrize(
    ("code", "transition", "origin"),
    [
        ("Client.UserInitiatedShutdown", "User initiated (2026-12-03 10:00:00 GMT)", "user"),
        ("Client.UserInitiatedHibernate", None, "user"),
        ("Server.InternalError", "Server.InternalError", "system"),
        ("Server.ScheduledStop", "Server.ScheduledStop", "system"),
        ("Server.SpotInstanceTermination", None, "system"),
        ("Client.InstanceInitiatedShutdown", None, "system"),
        (None, "User initiated (2026-12-03 10:00:00 GMT)", "user"),
        (None, "Service initiated", "system"),
        (None, "", "unknown"),
        ("Something.New", None, "unknown"),
    ],
)
def test_state_reason_tells_a_person_from_the_system(
    code: str | None, transition: str | None, origin: str
) -> None:
    assert state_reason_origin(code, transition) == origin


@pytest.mark.parametrize(
    ("basic", "advanced", "logs"),
    [
        (None, None, True),
        ([{"ReadWriteType": "All", "IncludeManagementEvents": True}], None, True),
        ([{"ReadWriteType": "WriteOnly"}], None, True),
        ([{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}], None, False),
        ([{"ReadWriteType": "All", "IncludeManagementEvents": False}], None, False),
        (
            None,
            [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}],
            True,
        ),
        (
            None,
            [
                {
                    "FieldSelectors": [
                        {"Field": "eventCategory", "Equals": ["Management"]},
                        {"Field": "readOnly", "Equals": ["true"]},
                    ]
                }
            ],
            False,
        ),
        (None, [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]}], False),
    ],
)
def test_which_trail_selectors_keep_management_writes(
    basic: list[dict[str, object]] | None, advanced: list[dict[str, object]] | None, logs: bool
) -> None:
    assert logs_management_writes(basic, advanced) is logs
