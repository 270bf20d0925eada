"""`iac.restore` against CodeBuild as AWS runs it (the proxy's `codebuild` rule over moto).

moto's build is SUCCEEDED on the first look, never fails, ignores `idempotencyToken` and drops
`environmentVariablesOverride`. AWS honours the token for 5 minutes only (StartBuild API
reference), a build runs for minutes and may fail or time out (default timeout 60 minutes).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiops_agent.actions.iac import IacRestore
from aiops_agent.actions.registry import ActionDeps
from aiops_agent.aws.clients import AwsClients
from tests.aws_proxy import AwsProxy
from tests.integration.test_actions_iac import _project

PARAMS = {"resource_type": "ssm", "resource_id": "/app/config"}


def _action(clients: AwsClients, project: str, **deps: Any) -> IacRestore:
    return IacRestore(ActionDeps(clients=clients, codebuild_project=project, **deps))


async def test_a_resume_after_the_token_expired_follows_its_own_build(
    aws: AwsClients, proxy: AwsProxy, proxied: AwsClients, unique: str
) -> None:
    """The step is resumed after a long outage (the token's 5 minutes are over): the action
    finds the build it started and follows it, instead of a second `terraform apply`."""
    project = await _project(aws, unique)
    builds = proxy.codebuild(running_for=3600)
    action = _action(proxied, project)
    first = await action.execute(PARAMS, f"inc-{unique}:0")
    assert first.ok and builds.started == 1

    builds.expire_tokens()
    other = await action.execute(PARAMS, f"inc-other-{unique}:0")  # another incident: its own
    resumed = await action.execute(PARAMS, f"inc-{unique}:0")

    assert resumed.ok, resumed.detail
    assert resumed.result["build_id"] == first.result["build_id"]
    assert resumed.result.get("resumed") is True
    assert "already started for this incident" in resumed.detail
    assert other.result["build_id"] != first.result["build_id"]
    assert builds.started == 2, "one build per incident, none twice"


@pytest.mark.parametrize("final", ["FAILED", "TIMED_OUT"])
async def test_a_build_that_fails_fails_verification_at_once(
    aws: AwsClients, proxy: AwsProxy, proxied: AwsClients, unique: str, final: str
) -> None:
    project = await _project(aws, unique)
    builds = proxy.codebuild(running_for=3600, final_status=final)
    action = _action(proxied, project)
    started = await action.execute(PARAMS, f"inc-{unique}:0")
    assert (await action.verify(PARAMS, started.result)).status == "PENDING"
    builds.finish()
    check = await action.verify(PARAMS, started.result)
    assert check.status == "FAILED" and check.settled, check
    assert final in check.detail


async def test_a_build_outlasting_verification_is_stopped_and_reported(
    aws: AwsClients, proxy: AwsProxy, proxied: AwsClients, unique: str
) -> None:
    """Verification gives up at AIOPS_VERIFY_TIMEOUT_SECONDS; the build would run on for up to
    its own timeout (60 minutes by default), changing the account with no one watching."""
    project = await _project(aws, unique)
    builds = proxy.codebuild(running_for=3600)
    action = _action(proxied, project, verify_timeout_seconds=1.0)
    action.give_up_margin_seconds = 0.0
    started = await action.execute(PARAMS, f"inc-{unique}:0")
    await asyncio.sleep(1.2)  # the build has now run longer than verification waits (1 s)

    check = await action.verify(PARAMS, started.result)

    assert check.status == "FAILED" and check.settled
    assert "stopped it (StopBuild)" in check.detail
    assert builds.stopped == 1
    assert proxy.count("StopBuild", outcome=None) == 1
