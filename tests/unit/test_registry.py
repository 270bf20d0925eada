"""The action catalog: registration, validation, permissions; and the actions' pure check logic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import BaseModel

from aiops_agent.actions.ec2 import interpret_instance
from aiops_agent.actions.iac import build_token, interpret_build
from aiops_agent.actions.registry import (
    BUILTIN_MODULES,
    CATALOG,
    ActionDeps,
    ActionRegistry,
    ActionValidationError,
    BaseAction,
    BoundCatalog,
    InvalidParamsError,
    UnknownActionError,
    describe_catalog,
)
from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import PlanStep
from aiops_agent.domain.ports import Action, CheckOutcome, StepOutcome


class _Params(BaseModel):
    target: str


def _action_class(permissions: tuple[str, ...] = ("ssm:GetParameter",)) -> type[BaseAction[Any]]:
    class Probe(BaseAction[_Params]):
        resource_types = ("ssm",)
        description = "probe"
        params_model = _Params

        async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
            return StepOutcome(True, self.parse(params).target)

        async def verify(
            self, params: Mapping[str, Any], result: Mapping[str, Any]
        ) -> CheckOutcome:
            return CheckOutcome("PASSED", "ok")

        async def dry_run(self, params: Mapping[str, Any]) -> str:
            return "would probe"

    Probe.permissions = permissions
    return Probe


# ---------------------------------------------------------------- the built-in catalog


CONTRACT_ACTIONS = {
    "ec2.start_instances": False,
    "iac.restore": False,
    "ssm.restore_parameter": False,
    "ec2.revoke_ingress": False,
    "ecs.force_new_deployment": True,
    "ec2.stop_start_instances": True,
}
"""The action names the rules' plans use (shared contract), and whether each needs approval."""


def test_catalog_has_the_contract_actions() -> None:
    assert set(CONTRACT_ACTIONS) <= set(CATALOG.names())
    for name, approval in CONTRACT_ACTIONS.items():
        assert CATALOG.spec(name).requires_approval is approval, name
        assert CATALOG.requires_approval(name) is approval, name
    with pytest.raises(UnknownActionError):
        CATALOG.requires_approval("ec2.reboot_everything")
    assert len(BUILTIN_MODULES) == len(set(BUILTIN_MODULES))


@pytest.mark.parametrize("name", sorted(CONTRACT_ACTIONS))
def test_every_action_takes_an_optional_region(name: str) -> None:
    schema = CATALOG.spec(name).params_schema()
    assert "region" in schema["properties"]
    assert "region" not in schema.get("required", [])
    model = CATALOG.spec(name).params_model
    with pytest.raises(ValueError):
        model.model_validate({**_minimal(name), "region": "not a region"})
    assert model.model_validate({**_minimal(name), "region": "eu-west-1"}) is not None


def _minimal(name: str) -> dict[str, Any]:
    minimal: dict[str, dict[str, Any]] = {
        "ec2.start_instances": {"instance_id": "i-0abc12345678"},
        "ec2.stop_start_instances": {"instance_id": "i-0abc12345678"},
        "iac.restore": {"resource_type": "ssm", "resource_id": "/a/b"},
        "ssm.restore_parameter": {"name": "/a/b", "bad_version": 3},
        "ec2.revoke_ingress": {"group_id": "sg-0abc1234", "cidr": "0.0.0.0/0", "ip_protocol": "-1"},
        "ecs.force_new_deployment": {"cluster": "c", "service": "s"},
    }
    return minimal[name]


def test_describe_catalog_is_plain_data_for_policy_and_docs() -> None:
    described = describe_catalog()
    assert [d["name"] for d in described] == list(CATALOG.names())
    for entry in described:
        assert set(entry) == {
            "name",
            "description",
            "resource_types",
            "permissions",
            "requires_approval",
            "params_schema",
        }
        assert entry["permissions"] == sorted(entry["permissions"])
        assert all("*" not in p for p in entry["permissions"])
        assert entry["params_schema"]["type"] == "object"
        assert entry["description"]
    by_name = {d["name"]: d for d in described}
    assert by_name["ecs.force_new_deployment"]["requires_approval"] is True
    assert "ssm:PutParameter" in by_name["ssm.restore_parameter"]["permissions"]
    assert by_name["iac.restore"]["resource_types"] == ["ec2", "lambda", "dynamodb", "s3", "ssm"]
    registry = ActionRegistry()
    registry.register("ssm.probe")(_action_class())
    assert [d["name"] for d in describe_catalog(registry)] == ["ssm.probe"]
    assert describe_catalog(registry)[0]["requires_approval"] is False


def test_for_resource_ec2_includes_both_ec2_actions() -> None:
    names = [spec.name for spec in CATALOG.for_resource("ec2")]
    assert names == sorted(names)
    assert {
        "ec2.start_instances",
        "ec2.stop_start_instances",
        "ec2.revoke_ingress",
        "iac.restore",
    } <= set(names)
    assert [s.name for s in CATALOG.for_resource("ecs")] == ["ecs.force_new_deployment"]
    assert {"iac.restore", "ssm.restore_parameter"} <= {s.name for s in CATALOG.for_resource("ssm")}


@pytest.mark.parametrize("resource_type", ["lambda", "dynamodb", "s3", "ssm"])
def test_iac_restore_applies_to_declared_types(resource_type: str) -> None:
    names = [spec.name for spec in CATALOG.for_resource(resource_type)]
    assert "iac.restore" in names
    assert "ec2.start_instances" not in names


def test_for_unknown_resource_is_empty() -> None:
    assert CATALOG.for_resource("quantum") == []


def test_permissions_are_sorted_specific_iam_actions() -> None:
    perms = CATALOG.permissions()
    assert perms == sorted(set(perms))
    assert all("*" not in p and ":" in p for p in perms)
    assert {
        "ec2:StartInstances",
        "ec2:DescribeInstances",
        "codebuild:StartBuild",
        "ssm:GetParameterHistory",
        "ec2:RevokeSecurityGroupIngress",
        "ecs:UpdateService",
        "ec2:StopInstances",
        "lambda:GetFunctionConfiguration",
        "dynamodb:DescribeTable",
    } <= set(perms)


def test_validate_unknown_action_is_a_clear_error() -> None:
    with pytest.raises(UnknownActionError, match=r"unknown action 'ec2\.reboot_everything'"):
        CATALOG.validate(PlanStep(action="ec2.reboot_everything"))
    # Planners catch ValueError, lookups catch KeyError: it is both.
    with pytest.raises(ValueError):
        CATALOG.validate(PlanStep(action="nope.nope"))
    with pytest.raises(KeyError):
        CATALOG.spec("nope.nope")


@pytest.mark.parametrize(
    "params",
    [{}, {"instance_id": "not-an-instance"}, {"instance_id": "i-0abc12345678", "extra": 1}],
)
def test_validate_rejects_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidParamsError, match=r"invalid params for ec2\.start_instances"):
        CATALOG.validate(PlanStep(action="ec2.start_instances", params=params))


def test_validate_iac_rejects_unsupported_resource_type() -> None:
    step = PlanStep(action="iac.restore", params={"resource_type": "rds", "resource_id": "db1"})
    with pytest.raises(ActionValidationError, match="resource_type"):
        CATALOG.validate(step)


def test_validate_returns_normalized_step_with_description() -> None:
    step = PlanStep(action="ec2.start_instances", params={"instance_id": "i-0abc12345678"})
    valid = CATALOG.validate(step)
    assert valid.params == {"instance_id": "i-0abc12345678"}
    assert valid.description == CATALOG.spec("ec2.start_instances").description
    iac = CATALOG.validate(
        PlanStep(action="iac.restore", params={"resource_type": "lambda", "resource_id": "fn"})
    )
    assert iac.params == {"resource_type": "lambda", "resource_id": "fn"}  # None dropped


# ---------------------------------------------------------------- registration


def test_register_sets_name_and_records_spec() -> None:
    registry = ActionRegistry()
    cls = registry.register("ssm.probe")(_action_class())
    assert cls.name == "ssm.probe"
    spec = registry.spec("ssm.probe")
    assert spec.resource_types == ("ssm",)
    assert spec.params_model is _Params
    assert registry.permissions() == ["ssm:GetParameter"]


@pytest.mark.parametrize("permissions", [("ssm:*",), ("*",), ("ssm:Get*",), ("GetParameter",), ()])
def test_register_refuses_wildcards_and_missing_permissions(permissions: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        ActionRegistry().register("ssm.probe")(_action_class(permissions))


def test_register_refuses_duplicates_and_bad_names() -> None:
    registry = ActionRegistry()
    registry.register("ssm.probe")(_action_class())
    with pytest.raises(ValueError, match="already registered"):
        registry.register("ssm.probe")(_action_class())
    with pytest.raises(ValueError, match="must look like"):
        registry.register("Probe")(_action_class())


async def test_bound_catalog_builds_actions_with_deps() -> None:
    registry = ActionRegistry()
    registry.register("ssm.probe")(_action_class())
    async with AwsClients(endpoint_url="http://127.0.0.1:9") as clients:
        bound = BoundCatalog(registry, ActionDeps(clients=clients, codebuild_project="p"))
        action: Action = bound.get("ssm.probe")
        assert "ssm.probe" in bound
        assert bound.requires_approval("ssm.probe") is False
        assert action.name == "ssm.probe"
        assert (await action.execute({"target": "x"}, "tok")).detail == "x"
        with pytest.raises(KeyError):
            bound.get("ssm.other")
        with pytest.raises(InvalidParamsError):
            await action.execute({}, "tok")


# ---------------------------------------------------------------- EC2 verification logic


@pytest.mark.parametrize(
    ("state", "inst", "system", "expected"),
    [
        ("running", "ok", "ok", "PASSED"),
        ("running", None, None, "PASSED"),
        ("running", "initializing", "ok", "PENDING"),
        ("running", "ok", "insufficient-data", "PENDING"),
        ("running", "impaired", "ok", "FAILED"),
        ("running", "ok", "impaired", "FAILED"),
        ("pending", None, None, "PENDING"),
        ("stopping", None, None, "FAILED"),
        ("stopped", None, None, "FAILED"),
        ("shutting-down", None, None, "FAILED"),
        ("terminated", None, None, "FAILED"),
        (None, None, None, "FAILED"),
    ],
)
def test_interpret_instance(
    state: str | None, inst: str | None, system: str | None, expected: str
) -> None:
    outcome = interpret_instance(state, inst, system)
    assert outcome.status == expected
    assert outcome.checks[0] == {
        "check": "instance_state",
        "expected": "running",
        "actual": state or "not-found",
    }
    reported = {c["check"] for c in outcome.checks[1:]}
    if state == "running":
        assert reported == {
            name for name, s in (("instance_status", inst), ("system_status", system)) if s
        }


# ---------------------------------------------------------------- CodeBuild verification logic


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("SUCCEEDED", "PASSED"),
        ("IN_PROGRESS", "PENDING"),
        ("FAILED", "FAILED"),
        ("FAULT", "FAILED"),
        ("STOPPED", "FAILED"),
        ("TIMED_OUT", "FAILED"),
    ],
)
def test_interpret_build(status: str, expected: str) -> None:
    outcome = interpret_build({"id": "p:1", "buildStatus": status, "currentPhase": "BUILD"})
    assert outcome.status == expected
    assert list(outcome.checks) == [
        {"check": "build_status", "expected": "SUCCEEDED", "actual": status}
    ]


def test_interpret_missing_build_fails() -> None:
    outcome = interpret_build(None)
    assert outcome.status == "FAILED"
    assert outcome.checks[0]["actual"] == "NOT_FOUND"


def test_build_token_fits_codebuild() -> None:
    short = "inc-0123456789abcdef0123:0"
    assert build_token(short) == short
    long = "x" * 65
    hashed = build_token(long)
    assert len(hashed) == 64 and hashed != long[:64]
    assert build_token(long) == hashed  # deterministic
    assert build_token("x" * 64) == "x" * 64
