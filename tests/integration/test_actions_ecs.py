"""`ecs.force_new_deployment` against the moto server.

moto gives a service one PRIMARY deployment whose `rolloutState` is COMPLETED when its running
count (0, unless the server runs with MOTO_ECS_SERVICE_RUNNING) reaches the desired count, else
IN_PROGRESS, and never moves it; `forceNewDeployment` replaces the deployment id. So a service
with desiredCount 0 verifies PASSED and one with desiredCount 1 stays PENDING here; FAILED
rollouts and the no-rollout-state case are covered by `interpret_service` in the unit tests.
"""

from __future__ import annotations

from typing import Any

from aiops_agent.actions.ecs import FORCE_DEPLOYMENT_TAG
from aiops_agent.actions.registry import CATALOG, ActionDeps, BoundCatalog, token_digest
from aiops_agent.aws.clients import AwsClients


def _action(aws: AwsClients) -> Any:
    return BoundCatalog(CATALOG, ActionDeps(clients=aws)).get("ecs.force_new_deployment")


async def _service(aws: AwsClients, unique: str, desired: int) -> dict[str, str]:
    ecs = await aws.client("ecs")
    cluster = f"c-{unique}"
    await ecs.create_cluster(clusterName=cluster)
    await ecs.register_task_definition(
        family=f"td-{unique}",
        containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}],
    )
    await ecs.create_service(
        cluster=cluster,
        serviceName=f"svc-{unique}",
        taskDefinition=f"td-{unique}",
        desiredCount=desired,
    )
    return {"cluster": cluster, "service": f"svc-{unique}"}


async def _described(aws: AwsClients, params: dict[str, str]) -> dict[str, Any]:
    ecs = await aws.client("ecs")
    resp = await ecs.describe_services(
        cluster=params["cluster"], services=[params["service"]], include=["TAGS"]
    )
    return dict(resp["services"][0])


async def test_forces_one_deployment_and_verifies(aws: AwsClients, unique: str) -> None:
    params = await _service(aws, unique, desired=0)
    before = (await _described(aws, params))["deployments"][0]["id"]
    action = _action(aws)
    token = f"inc-{unique}:0"

    outcome = await action.execute(params, token)

    assert outcome.ok, outcome.detail
    assert outcome.result["forced"] is True and outcome.result["marked"] is True
    assert outcome.result["previous_deployment_id"] == before
    service = await _described(aws, params)
    after = service["deployments"][0]["id"]
    assert after != before and outcome.result["deployment_id"] == after
    tags = {t["key"]: t["value"] for t in service["tags"]}
    assert tags[FORCE_DEPLOYMENT_TAG] == f"{token_digest(token)} {before}"
    check = await action.verify(params, outcome.result)
    assert check.status == "PASSED", check.detail
    assert check.checks[1] == {
        "check": "rollout_state",
        "expected": "COMPLETED",
        "actual": "COMPLETED",
    }

    again = await action.execute(params, token)

    assert again.ok and again.result["forced"] is False
    assert "already forced" in again.detail
    assert (await _described(aws, params))["deployments"][0]["id"] == after  # no second deploy


async def test_retry_after_a_crash_before_the_update_deploys(aws: AwsClients, unique: str) -> None:
    """Tagged, then died before UpdateService: the primary is unchanged, so deploy now."""
    params = await _service(aws, unique, desired=0)
    service = await _described(aws, params)
    before = service["deployments"][0]["id"]
    token = f"inc-{unique}:0"
    ecs = await aws.client("ecs")
    await ecs.tag_resource(
        resourceArn=service["serviceArn"],
        tags=[{"key": FORCE_DEPLOYMENT_TAG, "value": f"{token_digest(token)} {before}"}],
    )

    outcome = await _action(aws).execute(params, token)

    assert outcome.ok and outcome.result["forced"] is True
    assert (await _described(aws, params))["deployments"][0]["id"] != before


async def test_rollout_in_progress_is_pending(aws: AwsClients, unique: str) -> None:
    params = await _service(aws, unique, desired=1)
    action = _action(aws)
    outcome = await action.execute(params, "tok")
    assert outcome.ok
    check = await action.verify(params, outcome.result)
    assert check.status == "PENDING", check.detail
    assert "0/1 running" in check.detail


async def test_missing_service_or_cluster_fails(aws: AwsClients, unique: str) -> None:
    params = await _service(aws, unique, desired=0)
    action = _action(aws)
    no_service = {**params, "service": f"absent-{unique}"}
    no_cluster = {**params, "cluster": f"absent-{unique}"}

    for missing in (no_service, no_cluster):
        outcome = await action.execute(missing, "tok")
        assert not outcome.ok and "not found" in outcome.detail
        assert (await action.verify(missing, {})).status == "FAILED"


async def test_dry_run_and_approval(aws: AwsClients) -> None:
    text = await _action(aws).dry_run({"cluster": "prod", "service": "api", "region": "eu-west-1"})
    assert text.startswith("would force a new deployment of ECS service api in cluster prod")
    assert CATALOG.spec("ecs.force_new_deployment").requires_approval is True
