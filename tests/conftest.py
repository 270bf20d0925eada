"""Shared fixtures: a moto server in its own process on a free loopback port, and AWS clients.

This is how aiobotocore tests itself: real HTTP, real botocore serialization, no mocks.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aiops_agent.aws.clients import AwsClients

SHARED = Path(__file__).resolve().parents[2] / "shared"
"""`../shared` beside the project checkout: real events, logs and series."""
EVENTS_DIR = SHARED / "data" / "events"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
async def aws(moto_endpoint: str) -> AsyncIterator[AwsClients]:
    """Clients against the moto server; one attempt, so an emulator 500 is not retried 4 times."""
    async with AwsClients(endpoint_url=moto_endpoint, max_attempts=1) as clients:
        yield clients


@pytest.fixture
def unique() -> str:
    """A fresh suffix for resource names, so tests never see each other's resources."""
    return uuid.uuid4().hex[:10]
