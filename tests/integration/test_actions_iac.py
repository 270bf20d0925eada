"""`iac.restore` against the moto server: a CodeBuild build started, then verified.

moto builds are SUCCEEDED on the first look and can never fail, and moto ignores
`idempotencyToken`; the failure statuses are covered by `interpret_build` in
tests/unit/test_registry.py.
"""

from __future__ import annotations

from typing import Any

from aiops_agent.actions.iac import IacRestore
from aiops_agent.actions.registry import ActionDeps
from aiops_agent.aws.clients import AwsClients


async def _project(aws: AwsClients, unique: str) -> str:
    sts = await aws.client("sts")
    account = (await sts.get_caller_identity())["Account"]
    name = f"recovery-{unique}"
    codebuild = await aws.client("codebuild")
    await codebuild.create_project(
        name=name,
        source={"type": "NO_SOURCE", "location": "none", "buildspec": "version: 0.2"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=f"arn:aws:iam::{account}:role/cb-{unique}",
    )
    return name


def _params(resource_id: str) -> dict[str, Any]:
    return {"resource_type": "lambda", "resource_id": resource_id}


async def test_restore_starts_a_build_and_verifies(aws: AwsClients, unique: str) -> None:
    project = await _project(aws, unique)
    action = IacRestore(ActionDeps(clients=aws, codebuild_project=project))

    outcome = await action.execute(_params(f"fn-{unique}"), f"inc-{unique}:0")

    assert outcome.ok, outcome.detail
    build_id = outcome.result["build_id"]
    assert build_id.startswith(f"{project}:")
    codebuild = await aws.client("codebuild")
    assert build_id in (await codebuild.list_builds_for_project(projectName=project))["ids"]
    check = await action.verify(_params(f"fn-{unique}"), outcome.result)
    assert check.status == "PASSED", check.detail
    assert list(check.checks) == [
        {"check": "build_status", "expected": "SUCCEEDED", "actual": "SUCCEEDED"}
    ]


async def test_same_token_twice_and_a_long_token(aws: AwsClients, unique: str) -> None:
    project = await _project(aws, unique)
    action = IacRestore(ActionDeps(clients=aws, codebuild_project=project))
    token = f"inc-{unique}:0"

    first = await action.execute(_params("fn"), token)
    second = await action.execute(_params("fn"), token)
    long = await action.execute(_params("fn"), "x" * 200)  # > 64 chars: sent hashed

    # AWS returns the first build for a repeated token within 5 minutes; moto ignores the token
    # and starts another. Both calls are accepted: that is what can be asserted here.
    assert first.ok and second.ok and long.ok
    codebuild = await aws.client("codebuild")
    ids = (await codebuild.list_builds_for_project(projectName=project))["ids"]
    assert {first.result["build_id"], second.result["build_id"], long.result["build_id"]} <= set(
        ids
    )


async def test_missing_project_is_a_failed_step(aws: AwsClients, unique: str) -> None:
    action = IacRestore(ActionDeps(clients=aws, codebuild_project=f"absent-{unique}"))
    outcome = await action.execute(_params("fn"), "tok")
    assert not outcome.ok
    assert "ResourceNotFoundException" in outcome.detail
    assert outcome.result["project"] == f"absent-{unique}"


async def test_verify_unknown_build_and_no_build(aws: AwsClients, unique: str) -> None:
    action = IacRestore(ActionDeps(clients=aws, codebuild_project=f"p-{unique}"))
    gone = await action.verify(_params("fn"), {"build_id": f"p-{unique}:nope"})
    assert gone.status == "FAILED"
    assert gone.checks[0]["actual"] == "NOT_FOUND"
    assert (await action.verify(_params("fn"), {})).status == "FAILED"


async def test_dry_run_names_project_and_resource(aws: AwsClients) -> None:
    action = IacRestore(ActionDeps(clients=aws, codebuild_project="aiops-recovery"))
    text = await action.dry_run({"resource_type": "dynamodb", "resource_id": "orders"})
    assert "aiops-recovery" in text and "dynamodb orders" in text
