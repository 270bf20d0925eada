"""deploy/terraform/: parsed with python-hcl2 and compared with the code it must agree with
(tables, event pattern, queue settings, the task's settings and health check); checked by
checkov (with the task role's policy rendered in, so checkov's IAM checks see it), and by
`terraform fmt` when terraform is on PATH.

python-hcl2 comes with the `test` extra; checkov is a CI tool, not a project dependency:
`.ci/run` installs it into its own venv (.venv/tools); each test skips when its tool is
missing. No `terraform init/validate`: that downloads the AWS provider, which these machines
cannot reach.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from aiops_agent.provision import bootstrap
from aiops_agent.provision.iam_policy import TEMPLATE_VARIABLES
from aiops_agent.settings import Settings
from aiops_agent.store import tables
from tests.unit.test_deploy_files import DOCKERFILE, ROOT

TERRAFORM = ROOT / "deploy" / "terraform"

try:
    import hcl2
except ImportError:  # pragma: no cover - depends on the CI tools
    hcl2 = None

needs_hcl2 = pytest.mark.skipif(hcl2 is None, reason="python-hcl2 not installed")

SKIPPED_CHECKOV_CHECKS = {
    # main.tf, the KMS key policy: a key policy's Resource can only be "*" (it means this key)
    # and the account root keeps kms:* on it (AWS's default key policy), or the key becomes
    # unmanageable. Each skip is also explained beside it in main.tf.
    ("CKV_AWS_109", "aws_iam_policy_document.kms"),
    ("CKV_AWS_111", "aws_iam_policy_document.kms"),
    ("CKV_AWS_356", "aws_iam_policy_document.kms"),
    # console.tf (the optional console ALB), each explained beside it: no WAF on an internal ALB
    # whose every forwarded request passed OIDC; access logs need a bucket of the user's
    # (console_access_logs_bucket); TLS ends at the ALB, the task serves HTTP to it alone.
    ("CKV2_AWS_28", "aws_lb.console"),
    ("CKV_AWS_91", "aws_lb.console"),
    ("CKV_AWS_378", "aws_lb_target_group.console"),
}


def checkov_path() -> str | None:
    """checkov on PATH, beside this interpreter, or in .ci/run's tools venv."""
    for candidate in (
        shutil.which("checkov"),
        str(Path(sys.executable).parent / "checkov"),
        str(ROOT / ".venv" / "tools" / "bin" / "checkov"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


# -- parsing -----------------------------------------------------------------------------------


@cache
def _config() -> dict[str, Any]:
    """Every .tf file merged: {"resource": {type: {name: body}}, "data": ..., "locals": {...}}."""
    assert hcl2 is not None
    options = hcl2.SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True
    )
    merged: dict[str, Any] = {"resource": {}, "data": {}, "locals": {}, "variable": {}}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle, serialization_options=options)
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    merged[kind].setdefault(rtype, {}).update(named)
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
        for block in parsed.get("variable", []):
            merged["variable"].update(block)
    return merged


def _resource(rtype: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = _config()["resource"][rtype][name]
    return body


def _block(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body[key]
    return value[0] if isinstance(value, list) else value


@needs_hcl2
def test_every_file_parses_and_declares_the_issue_resources() -> None:
    resources = _config()["resource"]
    for rtype in (
        "aws_ecs_cluster",
        "aws_ecs_service",
        "aws_ecs_task_definition",
        "aws_iam_role",
        "aws_iam_role_policy",
        "aws_sqs_queue",
        "aws_sqs_queue_policy",
        "aws_cloudwatch_event_rule",
        "aws_cloudwatch_event_target",
        "aws_dynamodb_table",
        "aws_sns_topic",
        "aws_cloudwatch_log_group",
        "aws_cloudwatch_metric_alarm",
        "aws_appautoscaling_target",
        "aws_appautoscaling_policy",
        "aws_kms_key",
    ):
        assert rtype in resources, f"no {rtype}"


# -- DynamoDB against aiops_agent/store/tables.py ---------------------------------------------


@needs_hcl2
def test_incident_table_matches_the_store() -> None:
    table = _resource("aws_dynamodb_table", "incidents")
    assert table["hash_key"] == tables.INCIDENT_HASH_KEY
    assert "range_key" not in table
    attributes = [
        {"AttributeName": a["name"], "AttributeType": a["type"]} for a in table["attribute"]
    ]
    assert sorted(attributes, key=str) == sorted(tables.INCIDENT_ATTRIBUTE_DEFINITIONS, key=str)
    gsis = {
        gsi["name"]: (gsi["hash_key"], gsi["range_key"], gsi["projection_type"])
        for gsi in table["global_secondary_index"]
    }
    expected = {name: (*keys, "ALL") for name, keys in tables.INCIDENT_INDEXES.items()}
    assert gsis == expected


@needs_hcl2
def test_patterns_table_matches_the_store() -> None:
    table = _resource("aws_dynamodb_table", "patterns")
    assert (table["hash_key"], table["range_key"]) == (
        tables.PATTERNS_HASH_KEY,
        tables.PATTERNS_RANGE_KEY,
    )
    attributes = [
        {"AttributeName": a["name"], "AttributeType": a["type"]} for a in table["attribute"]
    ]
    assert attributes == tables.PATTERNS_ATTRIBUTE_DEFINITIONS
    assert "global_secondary_index" not in table


@needs_hcl2
@pytest.mark.parametrize("name", ["incidents", "patterns"])
def test_tables_have_ttl_pitr_and_encryption(name: str) -> None:
    table = _resource("aws_dynamodb_table", name)
    ttl = _block(table, "ttl")
    assert ttl == {"attribute_name": tables.TTL_ATTRIBUTE, "enabled": True}
    assert _block(table, "point_in_time_recovery") == {"enabled": True}
    sse = _block(table, "server_side_encryption")
    assert sse["enabled"] is True
    assert sse["kms_key_arn"] == "${aws_kms_key.agent.arn}"
    assert table["billing_mode"] == "PAY_PER_REQUEST"


# -- queue and EventBridge against aiops_agent/provision/bootstrap.py ------------------------


def test_event_pattern_json_is_the_bootstraps() -> None:
    path = TERRAFORM / "event_pattern.json"
    assert json.loads(path.read_text()) == bootstrap.event_pattern()
    assert path.read_text() == json.dumps(bootstrap.event_pattern(), indent=2) + "\n", (
        "stale: run python deploy/terraform/generate.py"
    )


@needs_hcl2
def test_the_rule_reads_the_pattern_and_targets_the_queue() -> None:
    rule = _resource("aws_cloudwatch_event_rule", "events")
    assert rule["event_pattern"] == '${file("${path.module}/event_pattern.json")}'
    target = _resource("aws_cloudwatch_event_target", "queue")
    assert target["arn"] == "${aws_sqs_queue.events.arn}"
    assert target["target_id"] == bootstrap.TARGET_ID
    assert _block(target, "dead_letter_config")["arn"] == "${aws_sqs_queue.dlq.arn}"
    policy = _config()["data"]["aws_iam_policy_document"]["events_queue"]
    statement = _block(policy, "statement")
    assert statement["actions"] == ["sqs:SendMessage"]
    assert _block(statement, "condition")["values"] == ["${aws_cloudwatch_event_rule.events.arn}"]


@needs_hcl2
def test_queue_redrive_and_settings_match_the_agent() -> None:
    local = _config()["locals"]
    assert local["max_receive_count"] == bootstrap.MAX_RECEIVE_COUNT
    defaults = Settings()
    assert local["visibility_timeout"] == defaults.visibility_timeout_seconds
    queue = _resource("aws_sqs_queue", "events")
    assert queue["visibility_timeout_seconds"] == "${local.visibility_timeout}"
    assert "deadLetterTargetArn = aws_sqs_queue.dlq.arn" in queue["redrive_policy"]
    assert "maxReceiveCount = local.max_receive_count" in queue["redrive_policy"]
    assert queue["receive_wait_time_seconds"] == defaults.receive_wait_seconds
    dlq = _resource("aws_sqs_queue", "dlq")
    assert "14 * 24 * 3600" in str(dlq["message_retention_seconds"])
    assert bootstrap.DLQ_RETENTION_SECONDS == 14 * 24 * 3600
    for name in ("events", "dlq"):
        assert _resource("aws_sqs_queue", name)["kms_master_key_id"] == "${aws_kms_key.agent.arn}"
    assert _resource("aws_sns_topic", "notifications")["kms_master_key_id"] == (
        "${aws_kms_key.agent.arn}"
    )


# -- ECS ---------------------------------------------------------------------------------------


@needs_hcl2
def test_task_definition_is_hardened_and_checked() -> None:
    task = _resource("aws_ecs_task_definition", "agent")
    assert task["requires_compatibilities"] == ["FARGATE"]
    assert task["network_mode"] == "awsvpc"
    assert task["task_role_arn"] == "${aws_iam_role.task.arn}"
    assert task["execution_role_arn"] == "${aws_iam_role.execution.arn}"
    container = task["container_definitions"]
    for setting in (
        "readonlyRootFilesystem = true",
        'user = "10001:10001"',
        "privileged = false",
        "stopTimeout = 30",
        'logDriver = "awslogs"',
        "awslogs-group = aws_cloudwatch_log_group.agent.name",
        'healthCheck = {command = ["CMD", "python", "-c", local.health_command]',
        'containerPath = "/tmp"',
        'drop = ["ALL"]',
    ):
        assert setting in container, f"container definition lacks {setting}"
    # the health check is the Dockerfile's, on /healthz
    health = _config()["locals"]["health_command"]
    assert "/healthz" in health
    assert health in DOCKERFILE.read_text().replace("\\\n", "")


@needs_hcl2
def test_service_runs_private_with_a_circuit_breaker() -> None:
    service = _resource("aws_ecs_service", "agent")
    assert service["launch_type"] == "FARGATE"
    assert _block(service, "network_configuration")["assign_public_ip"] is False
    assert _block(service, "deployment_circuit_breaker") == {"enable": True, "rollback": True}
    scaling = _resource("aws_appautoscaling_target", "agent")
    assert scaling["scalable_dimension"] == "ecs:service:DesiredCount"
    alarm = _resource("aws_cloudwatch_metric_alarm", "queue_depth_high")
    assert alarm["metric_name"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["alarm_actions"] == ["${aws_appautoscaling_policy.scale_out.arn}"]


@needs_hcl2
def test_container_environment_names_real_settings() -> None:
    environment = _config()["locals"]["environment"]
    names = set(re.findall(r"\b(AIOPS_[A-Z_]+) =", environment))
    assert {"AIOPS_QUEUE_URL", "AIOPS_INCIDENT_TABLE", "AIOPS_SNS_TOPIC_ARN"} <= names
    fields = set(Settings.model_fields)
    unknown = sorted(name for name in names if name.removeprefix("AIOPS_").lower() not in fields)
    assert unknown == [], f"not settings: {unknown}"


@needs_hcl2
def test_task_role_policy_is_the_generated_template_with_every_variable() -> None:
    rendered = _config()["locals"]["task_role_policy"]
    assert rendered.startswith('${templatefile("${path.module}/task_role_policy.json", {')
    passed = set(re.findall(r"\b(\w+) = ", rendered))
    assert passed == set(TEMPLATE_VARIABLES)
    policy = _resource("aws_iam_role_policy", "task")
    assert policy["role"] == "${aws_iam_role.task.id}"
    assert policy["policy"] == "${jsonencode(jsondecode(local.task_role_policy))}"


# -- tools -------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform not on PATH")
def test_terraform_fmt() -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-diff", "-no-color", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def render_task_policy_example(model_id: str = "anthropic.claude-3-5-sonnet-20240620-v1:0") -> str:
    """task_role_policy.json rendered as Terraform would, with example values."""
    values = {
        "partition": "aws",
        "region": "eu-west-1",
        "account_id": "123456789012",
        "queue_arn": "arn:aws:sqs:eu-west-1:123456789012:aiops-events",
        "dead_letter_queue_arn": "arn:aws:sqs:eu-west-1:123456789012:aiops-events-dlq",
        "incident_table_arn": "arn:aws:dynamodb:eu-west-1:123456789012:table/aiops-incidents",
        "patterns_table_arn": "arn:aws:dynamodb:eu-west-1:123456789012:table/aiops-patterns",
        "sns_topic_arn": "arn:aws:sns:eu-west-1:123456789012:aiops-notifications",
        "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-12345678",
        "codebuild_project": "aiops-recovery",
        "log_group_prefix": "/aws/lambda/",
        "model_id": model_id,
        # iam.tf: replace(var.model_id, "/^(us|eu|apac|us-gov|ca|jp|au|global)\\./", "")
        "foundation_model_id": re.sub(r"^(us|eu|apac|us-gov|ca|jp|au|global)\.", "", model_id),
    }
    text = (TERRAFORM / "task_role_policy.json").read_text()
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


@pytest.mark.skipif(checkov_path() is None, reason="checkov not installed")
@pytest.mark.timeout(
    400
)  # checkov alone takes 25 s on an idle 2-core machine, minutes on a busy one
def test_checkov_finds_nothing(tmp_path: Path) -> None:
    checkov = checkov_path()
    assert checkov is not None
    workdir = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, workdir, ignore=shutil.ignore_patterns(".terraform*", "*.py"))
    # templatefile() is opaque to checkov: add the rendered task policy so its IAM checks
    # (no "*" resource for restrictable actions, no unconstrained write, ...) judge it too.
    (workdir / "zz_rendered_task_policy.tf").write_text(
        'resource "aws_iam_policy" "rendered_task_role" {\n'
        '  name   = "rendered-task-role"\n'
        "  policy = <<JSON\n" + render_task_policy_example() + "JSON\n}\n"
    )
    result = subprocess.run(
        [
            checkov,
            "-d",
            str(workdir),
            "--framework",
            "terraform",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    results = report["results"]
    failed = [
        f"{c['check_id']} {c['resource']} {c['file_path']}: {c['check_name']}"
        for c in results["failed_checks"]
    ]
    assert failed == []
    # checkov names a data source `data.TYPE.NAME` or `TYPE.NAME`, depending on the version
    skipped = {
        (c["check_id"], c["resource"].removeprefix("data.")) for c in results["skipped_checks"]
    }
    assert skipped == SKIPPED_CHECKOV_CHECKS
    assert report["summary"]["passed"] >= 100
    assert any(
        c["resource"] == "aws_iam_policy.rendered_task_role" for c in results["passed_checks"]
    )
    sources = "".join(path.read_text() for path in sorted(TERRAFORM.glob("*.tf")))
    for check_id, _ in SKIPPED_CHECKOV_CHECKS:
        assert re.search(rf"# checkov:skip={check_id}:\S.+", sources), f"{check_id} unexplained"


def test_mode_defaults_to_shadow_as_the_readme_says() -> None:
    """A first `terraform apply` must not let the agent change anything (README: start in
    shadow, then set mode = "active"). Read without hcl2 so that it runs everywhere."""
    text = (TERRAFORM / "variables.tf").read_text(encoding="utf-8")
    block = re.search(r'variable "mode" \{(.*?)\n\}', text, re.S)
    assert block is not None
    default = re.search(r'^\s*default\s*=\s*"(\w+)"', block.group(1), re.M)
    assert default is not None and default.group(1) == "shadow"


# -- the operator console (console.tf) ----------------------------------------------------------


@needs_hcl2
def test_console_is_off_by_default_and_everything_of_it_hangs_on_the_switch() -> None:
    variables = _config()["variable"]
    assert variables["console_enabled"]["default"] is False
    for rtype, name in (
        ("aws_lb", "console"),
        ("aws_lb_target_group", "console"),
        ("aws_lb_listener", "console"),
        ("aws_lb_listener_rule", "console"),
        ("aws_security_group", "console_alb"),
        ("aws_vpc_security_group_ingress_rule", "tasks_from_console"),
    ):
        assert _resource(rtype, name)["count"] == "${local.console_count}", (rtype, name)
    assert _config()["locals"]["console_count"] == "${var.console_enabled ? 1 : 0}"


@needs_hcl2
def test_console_alb_is_internal_and_forwards_only_console_paths_after_oidc() -> None:
    alb = _resource("aws_lb", "console")
    assert alb["internal"] is True and alb["load_balancer_type"] == "application"
    assert alb["drop_invalid_header_fields"] is True
    listener = _resource("aws_lb_listener", "console")
    assert listener["protocol"] == "HTTPS" and listener["port"] == 443
    default = _block(listener, "default_action")
    assert default["type"] == "fixed-response"  # nothing else of the agent through the ALB
    rule = _resource("aws_lb_listener_rule", "console")
    paths = _block(_block(rule, "condition"), "path_pattern")["values"]
    assert paths == ["/console", "/console/*"]
    actions = sorted(rule["action"], key=lambda a: a["order"])
    assert [a["type"] for a in actions] == ["authenticate-oidc", "forward"]
    oidc = _block(actions[0], "authenticate_oidc")
    assert oidc["on_unauthenticated_request"] == "authenticate"


@needs_hcl2
def test_tasks_admit_the_console_alb_alone_and_the_agent_is_told_to_verify_it() -> None:
    ingress = _resource("aws_vpc_security_group_ingress_rule", "tasks_from_console")
    assert ingress["security_group_id"] == "${aws_security_group.agent.id}"
    assert ingress["referenced_security_group_id"] == "${aws_security_group.console_alb[0].id}"
    assert "cidr_ipv4" not in ingress
    assert ingress["from_port"] == ingress["to_port"] == "${var.http_port}"
    environment = _config()["locals"]["console_environment"]
    assert 'AIOPS_CONSOLE_AUTH = "alb-oidc"' in environment
    assert "AIOPS_CONSOLE_ALB_ARN = aws_lb.console[0].arn" in environment
    names = set(re.findall(r"\b(AIOPS_[A-Z_]+) =", environment))
    fields = set(Settings.model_fields)
    assert {n for n in names if n.removeprefix("AIOPS_").lower() not in fields} == set()
    assert "local.console_environment" in _config()["locals"]["environment"]
    service = _resource("aws_ecs_service", "agent")
    assert _block(service, "dynamic")["load_balancer"]["for_each"] == (
        "${aws_lb_target_group.console}"
    )
