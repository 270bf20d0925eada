"""Every AWS operation the daemon's code can call is allowed by the task role's policy.

moto allows everything, so a call the policy lacks fails only in a real account, at 3 a.m. This
test reads the code instead: every `<client>.<operation>(...)` call on a botocore client of a
service the module names (`clients.client("ec2")`), mapped to the IAM action that authorizes it,
must be granted by `iam_policy.build_policy()` (which Terraform deploys). The commands an
operator runs with their own credentials (cli/, provision/, demo/) are not the task role's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache

import botocore.session
from botocore import xform_name

from aiops_agent.provision import iam_policy
from tests.unit.test_deploy_files import ROOT

PACKAGE = ROOT / "aiops_agent"
OPERATOR_ONLY_PACKAGES = ("cli", "provision", "demo")
OPERATOR_ONLY_CALLS: dict[str, frozenset[str]] = {
    # ensure_tables: run by `aiops-agent bootstrap` (and the demo), never by the daemon
    "store/tables.py": frozenset(
        {"create_table", "describe_table", "describe_time_to_live", "update_time_to_live"}
    ),
    # the demo's log generator
    "logs/demo.py": frozenset({"put_log_events", "create_log_group", "create_log_stream"}),
}
IAM_PREFIX = {"bedrock-runtime": "bedrock", "resourcegroupstaggingapi": "tag"}
IAM_ACTIONS: dict[str, tuple[str, ...]] = {
    # the Converse API is authorized as InvokeModel
    "bedrock-runtime:Converse": ("bedrock:InvokeModel",),
    "bedrock-runtime:ConverseStream": ("bedrock:InvokeModelWithResponseStream",),
    # HeadBucket is authorized by ListBucket, HeadObject by GetObject
    "s3:HeadBucket": ("s3:ListBucket",),
    "s3:HeadObject": ("s3:GetObject",),
    # batch calls are authorized by the single-message action
    "sqs:DeleteMessageBatch": ("sqs:DeleteMessage",),
    "sqs:SendMessageBatch": ("sqs:SendMessage",),
    "sqs:ChangeMessageVisibilityBatch": ("sqs:ChangeMessageVisibility",),
    # a transaction is authorized item by item
    "dynamodb:TransactWriteItems": (
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:ConditionCheckItem",
    ),
    "dynamodb:TransactGetItems": ("dynamodb:GetItem",),
}


@cache
def operations(service: str) -> dict[str, str]:
    """`describe_instances` -> `DescribeInstances`, for one botocore service."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


def _constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                for target in targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = value.value
    return found


def _services(tree: ast.Module) -> set[str]:
    """The services a module asks `AwsClients.client(...)` for (literals or module constants)."""
    constants = _constants(tree)
    services: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "client"
            and node.args
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                services.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in constants:
                services.add(constants[arg.id])
    return services


def daemon_modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in OPERATOR_ONLY_PACKAGES:
            continue
        yield relative.as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def called_operations() -> dict[str, set[str]]:
    """`service:Operation` -> the modules that call it."""
    modules = list(daemon_modules())
    every = set().union(*(_services(tree) for _, tree in modules))
    calls: dict[str, set[str]] = {}
    for name, tree in modules:
        own = _services(tree)
        skip = OPERATOR_ONLY_CALLS.get(name, frozenset())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method = node.func.attr
            if method in skip:
                continue
            if method == "get_paginator" and node.args:
                arg = node.args[0]
                method = arg.value if isinstance(arg, ast.Constant) else method
            candidates = {s for s in every if method in operations(s)}
            # a module's own services first; a client passed in (instances.py) by its service
            chosen = (candidates & own) or candidates
            for service in chosen:
                calls.setdefault(f"{service}:{operations(service)[method]}", set()).add(name)
    return calls


def iam_actions(call: str) -> tuple[str, ...]:
    if call in IAM_ACTIONS:
        return IAM_ACTIONS[call]
    service, operation = call.split(":")
    return (f"{IAM_PREFIX.get(service, service)}:{operation}",)


def test_the_scan_sees_the_calls_it_must() -> None:
    calls = called_operations()
    for expected in (
        "sqs:ReceiveMessage",
        "dynamodb:TransactWriteItems",
        "ec2:StartInstances",
        "codebuild:StartBuild",
        "logs:StartQuery",
        "bedrock-runtime:Converse",
        "sns:Publish",
    ):
        assert expected in calls, f"the scan missed {expected}"


def test_every_operation_the_daemon_calls_is_allowed() -> None:
    granted = iam_policy.granted_actions(iam_policy.build_policy())
    missing = {
        f"{action} (for {call} in {', '.join(sorted(modules))})"
        for call, modules in called_operations().items()
        for action in iam_actions(call)
        if action not in granted
    }
    assert sorted(missing) == []
