"""The task role's policy: generated from the action catalog plus the agent's own needs.

deploy/terraform/task_role_policy.json is regenerated and compared; the policy grants exactly the
catalog's permissions plus the agent's own, names every action (no `*`), and scopes each to a
resource wherever the action allows one. Where checkov's tools venv is there, its bundled IAM
database (policy_sentry) judges every classification: an action granted on a resource must
support resource-level permissions, and one granted on `*` must support none.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from aiops_agent.actions.registry import CATALOG, ActionRegistry, BaseAction
from aiops_agent.provision import iam_policy
from tests.unit.test_deploy_files import ROOT
from tests.unit.test_terraform import checkov_path, render_task_policy_example

POLICY_FILE = ROOT / "deploy" / "terraform" / "task_role_policy.json"
INLINE_POLICY_LIMIT = 10_240
"""IAM's limit on a role's inline policies, in characters (whitespace not counted)."""


def _policy() -> dict[str, Any]:
    return iam_policy.build_policy()


def _statements_granting(action: str) -> list[dict[str, Any]]:
    return [s for s in _policy()["Statement"] if action in s["Action"]]


def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


def test_the_committed_file_is_current() -> None:
    assert POLICY_FILE.read_text() == iam_policy.render(), (
        "deploy/terraform/task_role_policy.json is stale: run python deploy/terraform/generate.py"
    )


def test_every_catalog_permission_is_classified() -> None:
    assert iam_policy.unclassified() == [], (
        "add these to aiops_agent/provision/iam_policy.py ACTION_SCOPES"
    )


def test_grants_exactly_the_catalog_plus_the_agent() -> None:
    granted = iam_policy.granted_actions(_policy())
    own = {action for actions in iam_policy.AGENT_GRANTS.values() for action in actions}
    kms = {action for use in iam_policy.KMS_VIA_SERVICE for action in use.actions}
    assert granted == set(CATALOG.permissions()) | own | kms
    assert set(CATALOG.permissions()) <= granted
    assert len(CATALOG.permissions()) >= 2


def test_no_wildcard_action_and_no_deny_or_not_action() -> None:
    policy = _policy()
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        keys = {"Sid", "Effect", "Action", "Resource"}
        if statement["Sid"] in {use.sid for use in iam_policy.KMS_VIA_SERVICE}:
            keys.add("Condition")
        assert set(statement) == keys
        for action in statement["Action"]:
            assert "*" not in action and re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), action
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))


def test_only_actions_without_resource_level_permissions_get_star() -> None:
    star = [s for s in _policy()["Statement"] if "*" in _resources(s)]
    assert len(star) == 1
    (statement,) = star
    assert _resources(statement) == ["*"]
    assert statement["Sid"] == iam_policy.UNSCOPED.sid
    for action in statement["Action"]:
        name = action.split(":")[1]
        # the families AWS offers no resource type for
        assert (
            name.startswith(("Describe", "List"))
            or action
            in {
                "sts:GetCallerIdentity",
                "logs:StopQuery",
                "cloudwatch:GetMetricData",
                "tag:GetResources",  # the Tagging API has no resource types at all
            }
            or action.startswith("cloudwatch:GetMetric")
        ), f"{action} is granted on * but may be scopable"


@pytest.mark.parametrize(
    ("actions", "resources"),
    [
        (
            {
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            },
            ["${queue_arn}"],
        ),
        ({"sqs:SendMessage"}, ["${dead_letter_queue_arn}"]),
        (
            {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"},
            [
                "${incident_table_arn}",
                "${incident_table_arn}/index/*",
                "${patterns_table_arn}",
                "${patterns_table_arn}/index/*",
            ],
        ),
        ({"sns:Publish"}, ["${sns_topic_arn}"]),
        (
            {"codebuild:StartBuild", "codebuild:BatchGetBuilds"},
            ["arn:${partition}:codebuild:${region}:${account_id}:project/${codebuild_project}"],
        ),
        (
            {"logs:StartQuery", "logs:GetQueryResults", "logs:FilterLogEvents"},
            ["arn:${partition}:logs:${region}:${account_id}:log-group:${log_group_prefix}*"],
        ),
        ({"logs:StopQuery", "sts:GetCallerIdentity"}, ["*"]),
        ({"kms:Decrypt", "kms:GenerateDataKey"}, ["${kms_key_arn}"]),
    ],
)
def test_the_agents_own_needs_are_scoped(actions: set[str], resources: list[str]) -> None:
    for action in actions:
        statements = _statements_granting(action)
        assert statements, f"{action} not granted"
        assert any(_resources(s) == resources for s in statements), (action, statements)


def test_bedrock_is_invoked_on_the_configured_model_only() -> None:
    (statement,) = _statements_granting("bedrock:InvokeModel")
    assert statement["Action"] == ["bedrock:InvokeModel"]
    for resource in _resources(statement):
        assert resource.endswith(("/${model_id}", "/${foundation_model_id}")), resource


def test_an_inference_profile_may_route_to_the_model_in_any_region() -> None:
    """A cross-Region inference profile (`us.anthropic...`) serves a call from the foundation
    model in any Region of its geography, and IAM checks the foundation model there: granting
    it in our Region only makes every call the profile routes elsewhere AccessDenied."""
    (statement,) = _statements_granting("bedrock:InvokeModel")
    resources = _resources(statement)
    assert "arn:${partition}:bedrock:*::foundation-model/${foundation_model_id}" in resources
    assert (
        "arn:${partition}:bedrock:${region}:${account_id}:inference-profile/${model_id}"
        in resources
    )
    rendered = json.loads(render_task_policy_example(model_id="us.anthropic.claude-3-5-v1:0"))
    (model,) = [s for s in rendered["Statement"] if s["Sid"] == "AnalyzerModel"]
    assert "arn:aws:bedrock:*::foundation-model/anthropic.claude-3-5-v1:0" in model["Resource"]


@pytest.mark.parametrize(
    ("needed_by", "service", "actions"),
    [
        ("ec2:StartInstances", "ec2", {"kms:CreateGrant", "kms:Decrypt"}),
        ("ssm:GetParameter", "ssm", {"kms:Decrypt"}),
        ("ssm:PutParameter", "ssm", {"kms:Encrypt", "kms:GenerateDataKey"}),
    ],
)
def test_customer_managed_keys_are_usable_through_the_service_only(
    needed_by: str, service: str, actions: set[str]
) -> None:
    """EBS volumes and SecureString parameters encrypted with a customer managed key: the
    caller needs kms permissions on that key, which moto never checks. Granted on the account's
    keys, only through that service, CreateGrant only for an AWS resource."""
    assert needed_by in iam_policy.granted_actions(_policy())
    via = f"{service}.*.amazonaws.com"
    for action in actions:
        statements = [
            s
            for s in _statements_granting(action)
            if s.get("Condition", {}).get("StringLike", {}).get("kms:ViaService") == via
        ]
        assert statements, f"{action} via {service} not granted"
        for statement in statements:
            assert statement["Resource"] == "arn:${partition}:kms:*:${account_id}:key/*"
            if action == "kms:CreateGrant":
                assert statement["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_placeholders_are_the_template_variables() -> None:
    text = iam_policy.render()
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(iam_policy.TEMPLATE_VARIABLES)
    assert "$${" not in text and "%{" not in text  # no Terraform escapes or directives


def test_rendered_policy_fits_the_inline_limit() -> None:
    rendered = json.loads(render_task_policy_example())
    assert "${" not in json.dumps(rendered)
    compact = json.dumps(rendered, separators=(",", ":"))
    assert len(compact) < INLINE_POLICY_LIMIT * 0.8, len(compact)


class _Params(BaseModel):
    pass


def test_an_unknown_permission_is_reported_and_still_works() -> None:
    registry = ActionRegistry()

    @registry.register("example.frobnicate")
    class _Frobnicate(BaseAction[_Params]):
        resource_types = ("ec2",)
        permissions = ("ec2:StartInstances", "example:Frobnicate")
        params_model = _Params

    assert iam_policy.unclassified(registry) == ["example:Frobnicate"]
    policy = iam_policy.build_policy(registry)
    star = next(s for s in policy["Statement"] if s["Sid"] == iam_policy.UNSCOPED.sid)
    assert "example:Frobnicate" in star["Action"]
    instances = next(s for s in policy["Statement"] if s["Sid"] == "Ec2Instances")
    assert instances["Action"] == ["ec2:StartInstances"]


def test_the_module_prints_the_policy() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aiops_agent.provision.iam_policy"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == iam_policy.render()


def test_the_module_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "policy.json"
    assert iam_policy.main(["--output", str(out)]) == 0
    assert json.loads(out.read_text()) == _policy()


_POLICY_SENTRY_CHECK = """
import json, sys
from policy_sentry.querying.actions import get_action_data
problems = []
for action, scoped in sorted(json.load(sys.stdin).items()):
    service, name = action.split(":")
    rows = get_action_data(service, name).get(service) or []
    if not rows:
        problems.append(f"{action}: unknown to the IAM database")
        continue
    formats = {row["resource_arn_format"] for row in rows}
    if scoped and formats == {"*"}:
        problems.append(f"{action}: scoped, but the action has no resource-level permission")
    if not scoped and formats != {"*"}:
        problems.append(f"{action}: granted on *, but scopable to {sorted(formats - {'*'})}")
print(json.dumps(problems))
"""


def _tools_python() -> str | None:
    checkov = checkov_path()
    if checkov is None:
        return None
    python = Path(checkov).parent / "python"
    return str(python) if python.exists() else None


@pytest.mark.skipif(_tools_python() is None, reason="checkov's venv (policy_sentry) not found")
def test_classification_agrees_with_the_iam_database() -> None:
    python = _tools_python()
    assert python is not None
    scoped: dict[str, bool] = {}
    for sid, actions in iam_policy.AGENT_GRANTS.items():
        for action in actions:
            scoped[action] = sid != iam_policy.UNSCOPED.sid
    for action, sids in iam_policy.ACTION_SCOPES.items():
        scoped[action] = sids != (iam_policy.UNSCOPED.sid,)
    probe = subprocess.run(
        [python, "-c", "import policy_sentry"], capture_output=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        pytest.skip("policy_sentry not importable in checkov's venv")
    result = subprocess.run(
        [python, "-c", _POLICY_SENTRY_CHECK],
        input=json.dumps(scoped),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
