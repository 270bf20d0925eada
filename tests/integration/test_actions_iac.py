"""`iac.restore` against the moto server: a CodeBuild build started, then the resource checked.

moto's CodeBuild runs nothing: a build is SUCCEEDED on the first look, can never fail, and moto
ignores `idempotencyToken`. So each test plays Terraform itself: it recreates the resource
between `execute` and `verify`, as the recovery project's `terraform apply` would have, and
asserts PASSED; without that, the resource is not there and verification is PENDING (then
FAILED once the grace period after the build has passed). moto drops
`environmentVariablesOverride`, so what the build was told is not visible here. Build failure
statuses and resource states moto cannot produce are covered by the pure functions in
tests/unit.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiops_agent.actions.iac import IacRestore
from aiops_agent.actions.registry import ActionDeps
from aiops_agent.actions.verifiers import RESTORED_FROM_TAG
from aiops_agent.aws.clients import AwsClients
from tests.aws_proxy import AwsProxy


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


def _params(resource_id: str, resource_type: str = "lambda") -> dict[str, Any]:
    return {"resource_type": resource_type, "resource_id": resource_id}


# ---------------------------------------------------------------- what Terraform would recreate


async def _lambda(aws: AwsClients, name: str) -> None:
    iam = await aws.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = await iam.create_role(RoleName=f"r-{name}", AssumeRolePolicyDocument=json.dumps(trust))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def main(event, context):\n    return 1\n")
    lam = await aws.client("lambda")
    await lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="handler.main",
        Code={"ZipFile": buf.getvalue()},
    )


async def _table(aws: AwsClients, name: str) -> None:
    ddb = await aws.client("dynamodb")
    await ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


async def _bucket(aws: AwsClients, name: str) -> None:
    await (await aws.client("s3")).create_bucket(Bucket=name)


async def _parameter(aws: AwsClients, name: str) -> None:
    await (await aws.client("ssm")).put_parameter(Name=name, Value="v", Type="String")


async def _replacement(aws: AwsClients, old_id: str) -> None:
    ec2 = await aws.client("ec2")
    await ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": RESTORED_FROM_TAG, "Value": old_id}]}
        ],
    )


Recreate = Callable[[AwsClients, str], Awaitable[None]]
CASES: dict[str, tuple[Callable[[str], str], Recreate, str]] = {
    "lambda": (lambda u: f"fn-{u}", _lambda, "Active"),
    "dynamodb": (lambda u: f"tbl-{u}", _table, "ACTIVE"),
    "s3": (lambda u: f"bucket-{u}", _bucket, "exists"),
    "ssm": (lambda u: f"/app/{u}/param", _parameter, "exists"),
    "ec2": (lambda u: f"i-{u}0000000", _replacement, "running"),
}


@pytest.mark.parametrize("resource_type", sorted(CASES))
async def test_restore_verifies_the_resource_itself(
    aws: AwsClients, unique: str, resource_type: str
) -> None:
    name_of, recreate, state = CASES[resource_type]
    resource_id = name_of(unique)
    project = await _project(aws, unique)
    action = IacRestore(ActionDeps(clients=aws, codebuild_project=project))
    params = _params(resource_id, resource_type)

    outcome = await action.execute(params, f"inc-{unique}:0")

    assert outcome.ok, outcome.detail
    build_id = outcome.result["build_id"]
    assert build_id.startswith(f"{project}:")
    codebuild = await aws.client("codebuild")
    assert build_id in (await codebuild.list_builds_for_project(projectName=project))["ids"]

    missing = await action.verify(params, outcome.result)
    assert missing.status == "PENDING", missing.detail  # build done, resource not there yet
    assert missing.checks[-1]["actual"] == "not-found"

    await recreate(aws, resource_id)  # what `terraform apply` would have done
    check = await action.verify(params, outcome.result)

    assert check.status == "PASSED", check.detail
    assert check.checks[0] == {
        "check": "build_status",
        "expected": "SUCCEEDED",
        "actual": "SUCCEEDED",
    }
    assert check.checks[1]["check"] == "resource_state"
    assert check.checks[1]["actual"] == state


async def test_resource_still_missing_after_grace_fails(aws: AwsClients, unique: str) -> None:
    project = await _project(aws, unique)
    action = IacRestore(ActionDeps(clients=aws, codebuild_project=project))
    action.resource_grace_seconds = 0.0
    outcome = await action.execute(_params(f"fn-{unique}"), "tok")

    check = await action.verify(_params(f"fn-{unique}"), outcome.result)

    assert check.status == "FAILED"
    assert "not found" in check.detail


async def test_ec2_without_tagging_trusts_the_build_and_says_so(
    aws: AwsClients, unique: str
) -> None:
    project = await _project(aws, unique)
    deps = ActionDeps(clients=aws, codebuild_project=project, iac_tags_ec2=False)
    action = IacRestore(deps)
    params = _params("i-0123456789abcdef0", "ec2")
    outcome = await action.execute(params, "tok")

    check = await action.verify(params, outcome.result)

    assert check.status == "PASSED"
    assert check.checks[1]["check"] == "replacement_instance"
    assert check.checks[1]["actual"] == "not checked: build success only"


async def test_same_token_twice_and_a_long_token(aws: AwsClients, unique: str) -> None:
    """AWS returns the first build for a repeated idempotencyToken (within 5 minutes); moto
    ignores the token. So what is asserted is what reaches the API, through the proxy: the
    incident's token as idempotencyToken on both calls (and in the build's environment), and a
    token over CodeBuild's 64 characters sent as its SHA-256."""
    project = await _project(aws, unique)
    token = f"inc-{unique}:0"
    long_token = "x" * 200
    async with (
        AwsProxy(aws.endpoint_url or "") as proxy,
        AwsClients(endpoint_url=proxy.url, max_attempts=1) as clients,
    ):
        action = IacRestore(ActionDeps(clients=clients, codebuild_project=project))
        first = await action.execute(_params("fn"), token)
        second = await action.execute(_params("fn"), token)
        long = await action.execute(_params("fn"), long_token)

    assert first.ok and second.ok and long.ok
    starts = proxy.select("StartBuild")
    assert [c.params.get("idempotencyToken") for c in starts] == [
        token,
        token,
        hashlib.sha256(long_token.encode()).hexdigest(),
    ]
    for call, sent in zip(starts, (token, token, long_token), strict=True):
        env = {v["name"]: v["value"] for v in call.params["environmentVariablesOverride"]}
        assert env["AIOPS_INCIDENT_TOKEN"] == sent
        assert call.params["projectName"] == project


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
    text = await action.dry_run({"resource_type": "ssm", "resource_id": "/app/db"})
    assert "aiops-recovery" in text and "ssm /app/db" in text
