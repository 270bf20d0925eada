"""The fault-injecting proxy itself: what botocore sees through it, for each protocol family.

The fault tests rely on these semantics, so they are pinned here against real botocore calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from aiops_agent.aws.clients import AwsClients
from tests.aws_proxy import AwsProxy, ErrorKind

pytestmark = pytest.mark.timeout(60)


class OneShot:
    """aiobotocore clients through the proxy that make one attempt per call (no retries)."""

    def __init__(self, endpoint: str, stack: contextlib.AsyncExitStack) -> None:
        self._endpoint = endpoint
        self._stack = stack
        self._config = AioConfig(retries={"mode": "standard", "total_max_attempts": 1})

    async def client(self, service: str) -> Any:
        return await self._stack.enter_async_context(
            get_session().create_client(
                service,
                region_name="us-east-1",
                endpoint_url=self._endpoint,
                config=self._config,
            )
        )


@pytest.fixture
async def through(proxy: AwsProxy) -> AsyncIterator[OneShot]:
    async with contextlib.AsyncExitStack() as stack:
        yield OneShot(proxy.url, stack)


@pytest.mark.parametrize(
    ("service", "operation", "method", "kind", "code", "status"),
    [
        ("dynamodb", "ListTables", "list_tables", "throttle", "ThrottlingException", 400),
        ("dynamodb", "ListTables", "list_tables", "internal", "InternalFailure", 500),
        ("sqs", "ListQueues", "list_queues", "throttle", "ThrottlingException", 400),
        ("ec2", "DescribeInstances", "describe_instances", "throttle", "RequestLimitExceeded", 503),
        ("ec2", "DescribeInstances", "describe_instances", "internal", "InternalError", 500),
        ("sns", "ListTopics", "list_topics", "throttle", "Throttling", 400),
    ],
)
async def test_injected_errors_look_like_aws_errors_to_botocore(
    proxy: AwsProxy,
    through: OneShot,
    service: str,
    operation: str,
    method: str,
    kind: ErrorKind,
    code: str,
    status: int,
) -> None:
    call = getattr(await through.client(service), method)
    fault = proxy.fail(operation, times=1, error=kind)
    with pytest.raises(ClientError) as caught:
        await call()
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert fault.exhausted
    await call()  # the next one passes
    assert proxy.count(operation, service=service) == 1
    assert proxy.count(operation, outcome="failed") == 1


async def test_standard_retry_mode_rides_out_a_few_throttles(proxy: AwsProxy) -> None:
    async with AwsClients(endpoint_url=proxy.url, max_attempts=3) as clients:
        dynamodb = await clients.client("dynamodb")
        proxy.fail("ListTables", times=2, error="throttle")
        await dynamodb.list_tables()
    assert proxy.count("ListTables", outcome=None) == 3
    assert proxy.count("ListTables") == 1


async def test_a_stall_holds_calls_until_released(proxy: AwsProxy, through: OneShot) -> None:
    dynamodb = await through.client("dynamodb")
    stall = proxy.stall("ListTables", service="dynamodb")
    held = asyncio.ensure_future(dynamodb.list_tables())
    try:
        await stall.wait_held(1, within=60)
        await asyncio.sleep(0.2)
        assert not held.done() and stall.held == 1
        assert proxy.count("ListTables") == 0
        stall.release(forward=True)
        async with asyncio.timeout(10):
            await held
        assert proxy.count("ListTables") == 1
    finally:
        held.cancel()


async def test_a_dropped_stall_never_reaches_the_emulator(
    proxy: AwsProxy, through: OneShot
) -> None:
    dynamodb = await through.client("dynamodb")
    stall = proxy.stall("ListTables")
    held = asyncio.ensure_future(dynamodb.list_tables())
    await stall.wait_held(1, within=60)
    stall.release(forward=False)
    with pytest.raises(ClientError):
        async with asyncio.timeout(10):
            await held
    assert proxy.count("ListTables") == 0
    assert proxy.count("ListTables", outcome="dropped") == 1
