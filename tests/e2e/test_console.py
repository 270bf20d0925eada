"""The operator console over HTTP against a daemon on moto (`AIOPS_CONSOLE_AUTH=token`).

Each test runs a real `aiops-agent run` process whose AWS endpoint is the counting proxy in front
of the moto server, so "exactly one recovery ran" is a count of StartInstances calls that reached
the emulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import WorkflowState
from aiops_agent.store.control import DynamoControlStore
from aiops_agent.store.dynamodb import DynamoIncidentStore
from tests.aws_proxy import AwsProxy
from tests.e2e.agent_process import wait_for
from tests.e2e.conftest import MakeStack, StartAgent
from tests.e2e.console_client import (
    TOKEN,
    TOKEN_CONSOLE,
    ConsoleUser,
    make_waiting_incident,
    state_of,
)

PAGES = ["/console/", "/console/incidents", "/console/incidents?state=AWAITING_APPROVAL"]
"""Console GET URLs (plus the incident's own page, added per test)."""


def posts(incident_id: str) -> list[str]:
    return [
        f"/console/incidents/{incident_id}/approve",
        f"/console/incidents/{incident_id}/reject",
        "/console/signout",
    ]


async def test_console_is_off_by_default(
    aws: AwsClients, make_stack: MakeStack, start_agent: StartAgent, moto_endpoint: str
) -> None:
    stack = await make_stack()
    agent = await start_agent(stack, moto_endpoint)
    async with ConsoleUser(agent.url) as anyone:
        paths = [*PAGES, "/console", "/console/signin", "/console/static/console.css"]
        for path in paths:
            status, _, _ = await anyone.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert status == 404, path
        for path in posts("inc-0123456789abcdef0123"):
            status, _, _ = await anyone.post(path, {"csrf": "x"})
            assert status == 404, path
        status, _, _ = await anyone.get("/readyz")
        assert status == 200


async def test_without_credentials_every_console_url_is_refused(
    aws: AwsClients, make_stack: MakeStack, start_agent: StartAgent, moto_endpoint: str
) -> None:
    stack = await make_stack()
    agent = await start_agent(stack, moto_endpoint, **TOKEN_CONSOLE)
    incident_id, _ = await make_waiting_incident(aws, stack)
    pages = [*PAGES, f"/console/incidents/{incident_id}", "/console/incidents/inc-unknown"]
    async with ConsoleUser(agent.url) as stranger:
        for path in pages:
            status, headers, body = await stranger.get(path)
            assert status == 303, path
            assert headers["Location"].startswith("/console/signin?next="), path
            assert incident_id not in body
            # A wrong token, a wrong scheme, a forged session cookie: 401, nothing shown.
            for auth in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer "):
                status, _, body = await stranger.get(path, headers={"Authorization": auth})
                assert status == 401, (path, auth)
                assert incident_id not in body
            forged = {"Cookie": "aiops_console_session=eyJzaWQiOiJ4In0.AAAA"}
            status, headers, _ = await stranger.get(path, headers=forged)
            assert status == 303, path
        for path in posts(incident_id):
            status, headers, _ = await stranger.post(path, {"csrf": "anything", "reason": "x"})
            assert status == 401, path
            assert headers["WWW-Authenticate"].startswith("Bearer")
        # Wrong token on the sign-in form: no cookie.
        status, headers = await stranger.sign_in("mallory", token="not-the-token-0123456789")
        assert status == 401 and "Set-Cookie" not in headers
        # What is public: the sign-in page and the stylesheet, with the same headers.
        status, headers, body = await stranger.get("/console/signin")
        assert status == 200 and 'name="token"' in body and incident_id not in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        status, _, _ = await stranger.get("/console/static/console.css")
        assert status == 200
    assert (await state_of(stack, incident_id)).workflow_state is WorkflowState.AWAITING_APPROVAL


async def test_signed_in_the_list_shows_the_waiting_incident(
    aws: AwsClients, make_stack: MakeStack, start_agent: StartAgent, moto_endpoint: str
) -> None:
    stack = await make_stack()
    agent = await start_agent(stack, moto_endpoint, **TOKEN_CONSOLE)
    incident_id, instance_id = await make_waiting_incident(aws, stack)
    async with ConsoleUser(agent.url) as alice:
        status, headers = await alice.sign_in("alice")
        assert status == 303 and headers["Location"] == "/console/incidents"
        cookie = headers["Set-Cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console/" in cookie
        assert "secure" not in cookie  # plain http on loopback only; anywhere else it is Secure
        status, headers, html = await alice.get("/console/incidents")
        assert status == 200
        assert incident_id in html and instance_id in html and "AWAITING_APPROVAL" in html
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        csp = headers["Content-Security-Policy"]
        for part in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"):
            assert part in csp
        assert "<script" not in html and "unsafe-inline" not in csp
        # Filters: by state and by type.
        _, _, only_done = await alice.get("/console/incidents?state=COMPLETED")
        assert incident_id not in only_done
        _, _, ec2 = await alice.get("/console/incidents?state=AWAITING_APPROVAL&type=ec2")
        assert incident_id in ec2
        _, _, other = await alice.get("/console/incidents?type=lambda")
        assert incident_id not in other
        status, _, page = await alice.get(f"/console/incidents/{incident_id}")
        assert status == 200 and "Approve and run the plan" in page and "Audit trail" in page
        assert "Policy decision" in page and "autonomy <strong>act</strong>" in page
    # The same pages for a script with the token as a bearer token.
    async with ConsoleUser(agent.url, headers={"Authorization": f"Bearer {TOKEN}"}) as script:
        status, _, html = await script.get("/console/incidents?state=AWAITING_APPROVAL")
        assert status == 200 and incident_id in html


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    aws: AwsClients, make_stack: MakeStack, start_agent: StartAgent, proxy: AwsProxy
) -> None:
    stack = await make_stack()
    agent = await start_agent(stack, proxy.url, **TOKEN_CONSOLE)
    incident_id, _ = await make_waiting_incident(aws, stack)
    before = await state_of(stack, incident_id)
    approve = f"/console/incidents/{incident_id}/approve"
    async with ConsoleUser(agent.url) as alice, ConsoleUser(agent.url) as bob:
        await alice.sign_in("alice")
        await bob.sign_in("bob")
        good = await alice.page_csrf(f"/console/incidents/{incident_id}")
        bobs = await bob.page_csrf(f"/console/incidents/{incident_id}")
        assert good != bobs  # tied to the session
        refused: list[tuple[dict[str, str], dict[str, str]]] = [
            ({"reason": "go"}, {}),  # no token
            ({"reason": "go", "csrf": ""}, {}),
            ({"reason": "go", "csrf": good[:-2] + "xx"}, {}),
            ({"reason": "go", "csrf": bobs}, {}),  # another session's token
            ({"reason": "go", "csrf": good}, {"Origin": "https://evil.example"}),
            ({"reason": "go", "csrf": good}, {"Sec-Fetch-Site": "cross-site"}),
        ]
        for data, headers in refused:
            status, _, body = await alice.post(approve, data, headers=headers)
            assert status == 403, (data, headers)
            assert "CSRF" in body
        # A GET never answers a review (link previewers follow links).
        status, _, _ = await alice.get(approve)
        assert status == 405
    # Nothing changed and nothing ran: the stored version is the witness (any answer, even one
    # the sweeper had not yet acted on, would have bumped it).
    after = await state_of(stack, incident_id)
    assert after.workflow_state is WorkflowState.AWAITING_APPROVAL
    assert after.version == before.version
    assert after.approved_by is None
    assert proxy.count("StartInstances") == 0


async def test_two_sessions_approving_at_once_run_one_action(
    aws: AwsClients, make_stack: MakeStack, start_agent: StartAgent, proxy: AwsProxy, unique: str
) -> None:
    stack = await make_stack()
    sns, sqs = await aws.client("sns"), await aws.client("sqs")
    topic = (await sns.create_topic(Name=f"notify-{unique}"))["TopicArn"]
    inbox = (await sqs.create_queue(QueueName=f"inbox-{unique}"))["QueueUrl"]
    inbox_arn = (await sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    await sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    console_url = "https://console.example.internal"
    agent = await start_agent(
        stack,
        proxy.url,
        AIOPS_SNS_TOPIC_ARN=topic,
        AIOPS_CONSOLE_URL=console_url,
        **TOKEN_CONSOLE,
    )
    incident_id, instance_id = await make_waiting_incident(aws, stack)
    page = f"/console/incidents/{incident_id}"
    async with ConsoleUser(agent.url) as alice, ConsoleUser(agent.url) as bob:
        await alice.sign_in("alice")
        await bob.sign_in("bob")
        tokens = [await alice.page_csrf(page), await bob.page_csrf(page)]
        # Both click at the same moment, each twice (a double click), from two sessions.
        clicks = [
            user.post(f"{page}/approve", {"csrf": token, "reason": "instance must run"})
            for user, token in zip((alice, bob), tokens, strict=True)
            for _ in range(2)
        ]
        answers = await asyncio.gather(*clicks)
        assert all(status == 303 for status, _, _ in answers)
        outcomes = sorted(headers["Location"].rsplit("done=", 1)[1] for _, headers, _ in answers)
        assert outcomes.count("approved") == 1, outcomes
        assert set(outcomes) <= {"approved", "conflict", "not-waiting"}

        async def finished() -> Any:
            incident = await state_of(stack, incident_id)
            return incident if incident.terminal else None

        done = await wait_for(finished, within=60, what="incident closed")
        assert done.workflow_state is WorkflowState.COMPLETED
        # The result shows at once, in the page the redirect leads to.
        winner = next(h["Location"] for _, h, _ in answers if h["Location"].endswith("approved"))
        status, _, html = await (alice if "alice" in str(done.approved_by) else bob).get(winner)
        assert status == 200 and "COMPLETED" in html and "Approved: the plan runs now" in html
        # A late third click changes nothing.
        status, headers, _ = await alice.post(f"{page}/approve", {"csrf": tokens[0]})
        assert headers["Location"].endswith("done=not-waiting")
    assert proxy.count("StartInstances") == 1
    assert done.approved_by in ("alice (token sign-in)", "bob (token sign-in)")
    approvals = [e for e in done.timeline if e.detail.startswith("approved by")]
    assert len(approvals) == 1
    assert approvals[0].detail == f"approved by {done.approved_by}: instance must run"
    audit_store = DynamoIncidentStore(aws, stack.incident_table, audit_table=stack.patterns_table)
    audit = await audit_store.audit_trail(incident_id)
    assert [e.detail for e in audit if e.detail.startswith("approved by")] == [approvals[0].detail]
    # The notification links to the incident's page and names the approver.
    messages: list[str] = []

    async def notified() -> bool:
        got = await sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages.extend(json.loads(m["Body"])["Message"] for m in got.get("Messages", []))
        return any("COMPLETED" in m for m in messages)

    await wait_for(notified, within=30, what="completion notification")
    final = next(m for m in messages if "state: COMPLETED" in m)
    assert f"console: {console_url}/console/incidents/{incident_id}" in final
    assert f"approved by: {done.approved_by}" in final
    assert instance_id in final


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"AIOPS_CONSOLE_AUTH": "token"}, "AIOPS_CONSOLE_TOKEN"),
        ({"AIOPS_CONSOLE_AUTH": "token", "AIOPS_CONSOLE_TOKEN": "short"}, "AIOPS_CONSOLE_TOKEN"),
        ({"AIOPS_CONSOLE_AUTH": "alb-oidc"}, "AIOPS_CONSOLE_ALB_ARN"),
        ({"AIOPS_CONSOLE_AUTH": "sometimes"}, "AIOPS_CONSOLE_AUTH"),
    ],
)
async def test_missing_console_settings_stop_start_up_with_one_line(
    env: dict[str, str], variable: str
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aiops_agent",
        "run",
        env={**os.environ, "AIOPS_QUEUE_URL": "http://127.0.0.1:9/q", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], lines


async def test_silences_freezes_and_the_pause_from_the_console(
    aws: AwsClients, make_stack: MakeStack, start_agent: StartAgent, moto_endpoint: str
) -> None:
    stack = await make_stack()
    agent = await start_agent(stack, moto_endpoint, **TOKEN_CONSOLE)
    control = DynamoControlStore(aws, stack.patterns_table)
    async with ConsoleUser(agent.url) as alice:
        await alice.sign_in("alice")
        csrf = await alice.page_csrf("/console/controls")
        silence = {"matchers": "resource_id=i-0abc*\nregion=us-east-1", "duration": "2h"}
        # No CSRF token: refused, nothing stored.
        status, _, _ = await alice.post("/console/controls/silences", {**silence, "reason": "x"})
        assert status == 403
        assert (await control.state()).silences == ()
        # Bad input: the page says why, nothing stored.
        for bad in ({"matchers": "colour=red"}, {"duration": "forever"}, {"duration": "90d"}):
            status, _, html = await alice.post(
                "/console/controls/silences",
                {**silence, **bad, "reason": "maintenance", "csrf": csrf},
            )
            assert status == 409 and "silence:" in html
        assert (await control.state()).silences == ()

        status, headers, _ = await alice.post(
            "/console/controls/silences", {**silence, "reason": "maintenance", "csrf": csrf}
        )
        assert status == 303 and headers["Location"].endswith("done=silence-added")
        (added,) = (await control.state()).silences
        assert added.author == "alice (token sign-in)" and added.reason == "maintenance"
        assert [str(m) for m in added.matchers] == ["resource_id=i-0abc*", "region=us-east-1"]
        _, _, html = await alice.get("/console/controls")
        assert added.silence_id in html and "Silence added" not in html
        status, _, _ = await alice.post(
            f"/console/controls/silences/{added.silence_id}/expire", {"csrf": csrf}
        )
        assert status == 303
        (ended,) = (await control.state()).silences
        assert ended.expired_by == "alice (token sign-in)"

        status, _, _ = await alice.post(
            "/console/controls/freezes", {"duration": "4h", "reason": "release", "csrf": csrf}
        )
        assert status == 303
        (freeze,) = (await control.state()).freezes
        assert freeze.author == "alice (token sign-in)"
        await alice.post(f"/console/controls/freezes/{freeze.freeze_id}/end", {"csrf": csrf})
        assert (await control.state()).freezes[0].ended_by == "alice (token sign-in)"

        status, _, _ = await alice.post(
            "/console/controls/pause", {"reason": "bad deploy", "csrf": csrf}
        )
        assert status == 303
        pause = (await control.state()).pause
        assert pause.paused and pause.by == "alice (token sign-in)"
        _, _, html = await alice.get("/console/controls")
        assert "PAUSED" in html and "bad deploy" in html
        status, _, html = await alice.post(
            "/console/controls/pause", {"reason": "again", "csrf": csrf}
        )
        assert status == 409  # paused already: the page says so, nothing changes
        assert (await control.state()).pause.reason == "bad deploy"
        status, _, _ = await alice.post("/console/controls/resume", {"csrf": csrf})
        assert status == 303
        assert not (await control.state()).pause.paused


async def test_two_replicas_answering_at_once_run_one_action(
    aws: AwsClients, make_stack: MakeStack, start_agent: StartAgent, proxy: AwsProxy
) -> None:
    """Two daemons on one queue and one table (two ECS tasks behind the console's load
    balancer): one session signed in on the first is accepted by the second (the cookie is
    signed with a key both derive from the token), and approvals sent to both at once run the
    plan once."""
    stack = await make_stack()
    first = await start_agent(stack, proxy.url, name="first", **TOKEN_CONSOLE)
    second = await start_agent(stack, proxy.url, name="second", **TOKEN_CONSOLE)
    incident_id, _ = await make_waiting_incident(aws, stack)
    page = f"/console/incidents/{incident_id}"
    async with ConsoleUser(first.url) as alice_a, ConsoleUser(second.url) as bob_b:
        await alice_a.sign_in("alice")
        await bob_b.sign_in("bob")
        # Alice's session, made by the first replica, opens the page on the second.
        async with ConsoleUser(second.url) as alice_b:
            alice_b.http.cookie_jar.update_cookies(
                {c.key: c.value for c in alice_a.http.cookie_jar}
            )
            status, _, html = await alice_b.get(page)
            assert status == 200 and "signed in as <strong>alice (token sign-in)" in html
        tokens = [await alice_a.page_csrf(page), await bob_b.page_csrf(page)]
        answers = await asyncio.gather(
            alice_a.post(f"{page}/approve", {"csrf": tokens[0]}),
            bob_b.post(f"{page}/approve", {"csrf": tokens[1]}),
        )
        outcomes = sorted(h["Location"].rsplit("done=", 1)[1] for _, h, _ in answers)
        assert outcomes.count("approved") == 1, outcomes

        async def finished() -> Any:
            incident = await state_of(stack, incident_id)
            return incident if incident.terminal else None

        done = await wait_for(finished, within=60, what="incident closed")
    assert done.workflow_state is WorkflowState.COMPLETED
    assert proxy.count("StartInstances") == 1
    assert len([e for e in done.timeline if e.detail.startswith("approved by")]) == 1
