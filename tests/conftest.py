"""Shared fixtures: a moto server in its own process on a free loopback port, and AWS clients.

This is how aiobotocore tests itself: real HTTP, real botocore serialization, no mocks.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.demo.emulator import MotoServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EVENTS_DIR = FIXTURES / "events"
MORE_EVENTS_DIR = FIXTURES / "events_more"
"""Issue 14's payloads: AWS kinds beyond the first corpus, each with its expected verdict."""
"""Real EventBridge/CloudTrail payloads copied into the repository (origin, licence: SOURCES)."""


@pytest.fixture(scope="session", autouse=True)
def _aws_env() -> Iterator[None]:
    """Dummy credentials and a region, so nothing ever reaches for a real account."""
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
    )
    for key in list(os.environ):
        if key.startswith("AIOPS_"):
            del os.environ[key]
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """`python -m moto.server` on 127.0.0.1:<free port>, for the whole session."""
    with MotoServer() as server:
        yield server.url


@pytest.fixture
async def aws(moto_endpoint: str) -> AsyncIterator[AwsClients]:
    """Clients against the moto server; one attempt, so an emulator 500 is not retried 4 times."""
    async with AwsClients(endpoint_url=moto_endpoint, max_attempts=1) as clients:
        yield clients


@pytest.fixture
def unique() -> str:
    """A fresh suffix for resource names, so tests never see each other's resources."""
    return uuid.uuid4().hex[:10]
