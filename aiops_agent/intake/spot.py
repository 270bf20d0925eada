"""EC2 Spot: the two-minute interruption warning and the rebalance recommendation.

Both are about one instance (`detail.instance-id`, else the instance ARN in `resources`; the
node termination handler's samples spell that ARN without an account). AWS is taking the
capacity back: the rules notify and never plan a start, and the planner remembers the warning
when the instance's stop or termination is reported (engine/planner.py).
"""

from __future__ import annotations

import re
from typing import Any

from aiops_agent.domain.models import NormalizedEvent
from aiops_agent.intake.ec2 import EC2_SOURCE, instance_id
from aiops_agent.intake.envelope import Envelope, InvalidEvent, text_field
from aiops_agent.intake.registry import normalizer

SPOT_INTERRUPTION = "EC2 Spot Instance Interruption Warning"
REBALANCE_RECOMMENDATION = "EC2 Instance Rebalance Recommendation"
INTERRUPTION_ACTION = "spot:interruption-warning"
REBALANCE_ACTION = "spot:rebalance-recommendation"
SPOT_ACTIONS = frozenset({INTERRUPTION_ACTION, REBALANCE_ACTION})

_INSTANCE_IN_ARN = re.compile(r":instance/(i-[0-9A-Za-z]{1,32})$")


def _instance(env: Envelope) -> str:
    found = instance_id(env.detail.get("instance-id", env.detail.get("instance_id")))
    if found is None:
        for arn in env.resources:
            match = _INSTANCE_IN_ARN.search(text_field(arn, 256))
            if match is not None:
                found = match.group(1)
                break
    if found is None:
        raise InvalidEvent("missing_field", f"{env.detail_type}: no valid 'detail.instance-id'")
    return found


@normalizer(EC2_SOURCE, SPOT_INTERRUPTION)
def spot_interruption(env: Envelope) -> list[NormalizedEvent]:
    details: dict[str, Any] = {"spot": True}
    action = text_field(env.detail.get("instance-action"), 32).lower()
    if action:
        details["instance_action"] = action
    return [
        env.normalized(
            resource_type="ec2",
            resource_id=_instance(env),
            action=INTERRUPTION_ACTION,
            details=details,
        )
    ]


@normalizer(EC2_SOURCE, REBALANCE_RECOMMENDATION)
def rebalance_recommendation(env: Envelope) -> list[NormalizedEvent]:
    return [
        env.normalized(
            resource_type="ec2",
            resource_id=_instance(env),
            action=REBALANCE_ACTION,
            details={"spot": True},
        )
    ]
