"""A resource's own tags, read with the Resource Groups Tagging API (`tag:GetResources`).

One call by ARN covers EC2 (instances, security groups, volumes, ...), Lambda, SSM parameters,
S3, DynamoDB, RDS, ECS and CloudWatch alarms. Results are cached briefly per ARN, so an incident
costs at most one read and a burst of incidents about one resource costs one. A resource the API
does not know (deleted, or never tagged) reads as `None`: the caller may fall back to tags
recorded at an earlier sighting. Tags that cannot be read (AccessDenied, throttling past the
retries, a timeout) read as untagged, and say why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.autonomy import ResourceTags
from aiops_agent.domain.models import Incident

log = structlog.get_logger(__name__)

EC2_TYPES = {
    "i": "instance",
    "sg": "security-group",
    "vol": "volume",
    "vpc": "vpc",
    "subnet": "subnet",
    "eni": "network-interface",
    "igw": "internet-gateway",
    "rtb": "route-table",
    "nat": "natgateway",
}
"""EC2 id prefix -> the resource type in its ARN."""


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def resource_arn(resource_type: str, resource_id: str, region: str, account: str) -> str | None:
    """The ARN the tagging API knows the resource by; None for types it is not asked about."""
    p = partition_of(region)
    base = f"arn:{p}:{resource_type}:{region}:{account}"
    match resource_type:
        case "ec2":
            kind = EC2_TYPES.get(resource_id.split("-", 1)[0])
            return f"{base}:{kind}/{resource_id}" if kind else None
        case "lambda":
            return f"{base}:function:{resource_id}"
        case "ssm":
            return f"{base}:parameter/{resource_id.lstrip('/')}"
        case "s3":
            return f"arn:{p}:s3:::{resource_id}"
        case "dynamodb":
            return f"{base}:table/{resource_id}"
        case "rds":
            return f"{base}:db:{resource_id}"
        case "ecs":
            return f"{base}:service/{resource_id}" if "/" in resource_id else None
        case "cloudwatch":
            return f"{base}:alarm:{resource_id}"
    return None


class TagReader:
    def __init__(
        self,
        clients: AwsClients,
        *,
        account: str | None = None,
        ttl_s: float = 60.0,
        deadline_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self._account = account
        self._ttl = ttl_s
        self._deadline = deadline_s
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, ResourceTags | None]] = {}

    async def account(self) -> str | None:
        """The agent's own account (STS, once): a resource whose event names none is in it."""
        if self._account is None:
            try:
                async with asyncio.timeout(self._deadline):
                    sts = await self._clients.client("sts")
                    self._account = str((await sts.get_caller_identity())["Account"])
            except Exception as exc:
                log.warning("tags.account_unknown", error=repr(exc))
                return None
        return self._account

    async def read(self, incident: Incident) -> ResourceTags | None:
        """The resource's tags; None when the tagging API does not know the resource."""
        account = incident.event.account or await self.account()
        if account is None:
            return ResourceTags(source="unreadable", detail="the account is unknown")
        arn = resource_arn(incident.resource_type, incident.resource_id, incident.region, account)
        if arn is None:
            return ResourceTags(
                source="none", detail=f"tags of {incident.resource_type} resources are not read"
            )
        now = self._monotonic()
        cached = self._cache.get(arn)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        found = await self._get(arn, incident.region)
        self._cache[arn] = (now, found)
        if len(self._cache) > 10_000:  # bounded: drop the oldest half
            for key in sorted(self._cache, key=lambda k: self._cache[k][0])[:5_000]:
                del self._cache[key]
        return found

    async def _get(self, arn: str, region: str) -> ResourceTags | None:
        try:
            async with asyncio.timeout(self._deadline):
                tagging = await self._clients.client("resourcegroupstaggingapi", region)
                got = await tagging.get_resources(ResourceARNList=[arn])
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code") or "error")
            log.warning("tags.unreadable", arn=arn, error=code)
            return ResourceTags(source="unreadable", detail=code)
        except (BotoCoreError, TimeoutError) as exc:
            log.warning("tags.unreadable", arn=arn, error=repr(exc))
            return ResourceTags(source="unreadable", detail=type(exc).__name__)
        for mapping in got.get("ResourceTagMappingList", []):
            if mapping.get("ResourceARN") == arn:
                tags = {str(t["Key"]): str(t["Value"]) for t in mapping.get("Tags", [])}
                return ResourceTags(tags=tags, source="resource")
        return None
