"""Who the agent is: its own principal, so that its own changes never open a recovery."""

from __future__ import annotations

import asyncio

import structlog

from aiops_agent.aws.clients import AwsClients

log = structlog.get_logger(__name__)


def principal_patterns(arn: str) -> list[str]:
    """Glob patterns matching every ARN under which CloudTrail records this principal.

    An assumed-role session `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` shows up as that ARN,
    as any other session of the role, and as the role itself (`arn:aws:iam::ACCT:role/ROLE`).
    """
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        account = parts[4]
        role = parts[5].split("/")[1]
        return [
            arn,
            f"arn:{parts[1]}:sts::{account}:assumed-role/{role}/*",
            f"arn:{parts[1]}:iam::{account}:role/{role}",
            f"arn:{parts[1]}:iam::{account}:role/*/{role}",
        ]
    return [arn]


async def own_principals(clients: AwsClients, deadline_s: float = 10.0) -> list[str]:
    """The agent's identity as glob patterns; empty (with a warning) if STS cannot say."""
    try:
        async with asyncio.timeout(deadline_s):
            sts = await clients.client("sts")
            identity = await sts.get_caller_identity()
    except Exception as exc:
        log.warning("identity.unknown", error=repr(exc))
        return []
    arn = str(identity.get("Arn", ""))
    if not arn:
        return []
    log.info("identity.known", arn=arn)
    return principal_patterns(arn)
