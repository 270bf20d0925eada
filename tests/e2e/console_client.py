"""A console user over real HTTP: one aiohttp session (its own cookie jar) per browser tab/user.

Also the shared steps of the console tests: a waiting incident made by a real daemon.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp

from aiops_agent.domain.models import Incident, WorkflowState
from tests.e2e.agent_process import ec2_state_event, launch_instances, wait_for
from tests.e2e.conftest import QueueStack

TOKEN = "console-test-token-0123456789abcdef"
"""The token the test daemons run with (`AIOPS_CONSOLE_TOKEN`)."""
TOKEN_CONSOLE = {"AIOPS_CONSOLE_AUTH": "token", "AIOPS_CONSOLE_TOKEN": TOKEN}
TIMEOUT = aiohttp.ClientTimeout(total=20)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


class ConsoleUser:
    """`async with ConsoleUser(url) as user:` then `await user.sign_in("alice")`, `get`, `post`."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.base = base_url.rstrip("/")
        self._headers = headers or {}
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ConsoleUser:
        # unsafe=True: keep cookies for an IP-address host (127.0.0.1), as a browser does.
        self._http = aiohttp.ClientSession(
            timeout=TIMEOUT, cookie_jar=aiohttp.CookieJar(unsafe=True), headers=self._headers
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None
        return self._http

    async def get(self, path: str, **kw: Any) -> tuple[int, dict[str, str], str]:
        async with self.http.get(self.base + path, allow_redirects=False, **kw) as resp:
            return resp.status, dict(resp.headers), await resp.text()

    async def post(
        self, path: str, data: dict[str, str], **kw: Any
    ) -> tuple[int, dict[str, str], str]:
        async with self.http.post(self.base + path, data=data, allow_redirects=False, **kw) as resp:
            return resp.status, dict(resp.headers), await resp.text()

    async def sign_in(self, name: str, token: str = TOKEN) -> tuple[int, dict[str, str]]:
        status, headers, _ = await self.post(
            "/console/signin", {"name": name, "token": token, "next": "/console/incidents"}
        )
        return status, headers

    async def page_csrf(self, path: str) -> str:
        status, _, html = await self.get(path)
        assert status == 200, (status, html[:300])
        return csrf_of(html)


async def make_waiting_incident(aws: Any, stack: QueueStack) -> tuple[str, str]:
    """A stopped instance reported by a replayed event: the daemon asks a person. (id, instance)."""
    ec2 = await aws.client("ec2")
    (instance_id,) = await launch_instances(ec2, 1)
    event = ec2_state_event(instance_id, "stopped")
    event["replay-name"] = "archive-replay-1"
    sqs = await aws.client("sqs")
    await sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(event))

    async def waiting() -> Incident | None:
        # Settled: waiting, and its own outbox done (the "approval needed" notification is a
        # command the daemon runs and stores after reaching the state: one more version).
        found = await stack.store.list_incidents(state=WorkflowState.AWAITING_APPROVAL)
        return next((i for i in found if i.resource_id == instance_id and not i.pending), None)

    incident = await wait_for(waiting, within=60, what="incident awaiting approval")
    return incident.incident_id, instance_id


async def state_of(stack: QueueStack, incident_id: str) -> Incident:
    incident = await stack.store.get(incident_id)
    assert incident is not None
    return incident
