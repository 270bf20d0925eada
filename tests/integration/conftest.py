"""Fixtures of the integration tests: the realism proxy in front of the moto server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aiops_agent.aws.clients import AwsClients
from tests.aws_proxy import AwsProxy


@pytest.fixture
async def proxy(moto_endpoint: str) -> AsyncIterator[AwsProxy]:
    async with AwsProxy(moto_endpoint) as running:
        yield running


@pytest.fixture
async def proxied(proxy: AwsProxy) -> AsyncIterator[AwsClients]:
    """Clients through the proxy, one attempt per call."""
    async with AwsClients(endpoint_url=proxy.url, max_attempts=1) as clients:
        yield clients
