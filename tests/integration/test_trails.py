"""The start-up and bootstrap check for a trail logging management events, against moto."""

from __future__ import annotations

from aiops_agent.aws.clients import AwsClients
from aiops_agent.aws.trails import management_trail
from tests.aws_proxy import AwsProxy
from tests.aws_rules import Exchange, Reply


async def test_a_trail_counts_only_while_it_logs_management_writes(
    aws: AwsClients, moto_endpoint: str, unique: str
) -> None:
    cloudtrail = await aws.client("cloudtrail")
    s3 = await aws.client("s3")
    bucket, name = f"trail-{unique}", f"trail-{unique}"
    await s3.create_bucket(Bucket=bucket)
    async with (
        AwsProxy(moto_endpoint) as proxy,
        AwsClients(endpoint_url=proxy.url, max_attempts=1) as through,
    ):
        # Only this test's trail: the emulator is shared with other tests.
        def only_ours(_ex: Exchange, reply: Reply) -> Reply:
            if reply.status != 200:
                return reply
            trails = [t for t in reply.json().get("trailList", []) if t.get("Name") == name]
            return reply.with_json({"trailList": trails})

        proxy.transform("DescribeTrails", only_ours)
        none = await management_trail(through)
        assert none.logging is False and "no CloudTrail trail" in none.detail
        await cloudtrail.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=True)
        try:
            assert (await management_trail(through)).logging is False, "created, not logging"
            await cloudtrail.start_logging(Name=name)
            found = await management_trail(through)
            assert found.logging is True and found.trail and found.trail.endswith(name)
            await cloudtrail.put_event_selectors(
                TrailName=name,
                EventSelectors=[{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}],
            )
            assert (await management_trail(through)).logging is False, "read-only events"
            proxy.fail("GetTrailStatus", error="access_denied")
            unknown = await management_trail(through)
            assert unknown.logging is None and "could not read" in unknown.detail
        finally:
            await cloudtrail.delete_trail(Name=name)
