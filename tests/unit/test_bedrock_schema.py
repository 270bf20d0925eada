"""The tool's schema and the strict parse of a Converse reply (schema.py)."""

from __future__ import annotations

from typing import Any

import pytest

from aiops_agent.actions.registry import CATALOG
from aiops_agent.analysis.fake_bedrock import (
    converse_body,
    malformed_json,
    text_reply,
    tool_call,
    verdict,
)
from aiops_agent.analysis.schema import (
    REJECT_REASONS,
    TOOL_NAME,
    ReplyRejected,
    parse_reply,
    tool_config,
    tool_input_schema,
)
from aiops_agent.domain.models import Classification

EC2 = [spec.name for spec in CATALOG.for_resource("ec2")]


def rejected(body: dict[str, Any], allowed: list[str] = EC2) -> str:
    with pytest.raises(ReplyRejected) as info:
        parse_reply(body, allowed)
    assert info.value.reason in REJECT_REASONS
    return info.value.reason


def test_schema_enum_is_the_catalog_for_the_resource_type() -> None:
    schema = tool_input_schema(EC2)
    action = schema["properties"]["plan"]["items"]["properties"]["action"]
    assert action["enum"] == sorted(EC2)
    assert "ec2.start_instances" in action["enum"]
    assert "$ref" not in str(schema) and "$defs" not in schema
    assert set(schema["required"]) >= {"classification", "confidence", "severity", "reasons"}
    assert schema["additionalProperties"] is False


def test_no_catalog_action_means_an_empty_plan() -> None:
    schema = tool_input_schema([])
    assert schema["properties"]["plan"]["maxItems"] == 0
    assert "enum" not in schema["properties"]["plan"]["items"]["properties"]["action"]


def test_tool_choice_forces_the_one_tool() -> None:
    config = tool_config(EC2)
    assert config["toolChoice"] == {"tool": {"name": TOOL_NAME}}
    assert [t["toolSpec"]["name"] for t in config["tools"]] == [TOOL_NAME]


def test_good_tool_call_parses() -> None:
    body = tool_call(verdict("TAMPERING", plan=["ec2.revoke_ingress"])).body
    out = parse_reply(body, EC2)
    assert out.classification is Classification.TAMPERING
    assert [s.action for s in out.plan] == ["ec2.revoke_ingress"]


def test_tool_input_as_json_text_is_accepted_when_valid() -> None:
    import json

    body = tool_call(json.dumps(verdict())).body
    assert parse_reply(body, EC2).confidence == 0.93


def test_text_reply_is_rejected() -> None:
    assert rejected(text_reply().body) == "no_tool_call"


def test_malformed_json_is_rejected() -> None:
    assert rejected(malformed_json().body) == "malformed_json"


def test_other_tool_is_rejected() -> None:
    assert rejected(tool_call(verdict(), name="run_ssm_document").body) == "no_tool_call"


def test_two_tool_calls_are_rejected() -> None:
    block = tool_call(verdict()).body["output"]["message"]["content"][0]
    assert rejected(converse_body([block, block], "tool_use")) == "no_tool_call"


@pytest.mark.parametrize(
    "change",
    [
        {"classification": "DELETE_EVERYTHING"},
        {"confidence": 1.5},
        {"reasons": []},
        {"severity": "APOCALYPTIC"},
        {"extra_field": "x"},
        {"plan": [{"action": "ec2.start_instances", "params": {}, "run_as": "root"}]},
    ],
)
def test_schema_violations_are_rejected(change: dict[str, Any]) -> None:
    assert rejected(tool_call({**verdict(), **change}).body) == "schema_violation"


def test_action_outside_the_catalog_is_rejected() -> None:
    body = tool_call(verdict(plan=["dynamodb.delete_table"])).body
    assert rejected(body) == "action_outside_catalog"


def test_catalog_action_of_another_resource_type_is_rejected() -> None:
    body = tool_call(verdict(plan=["ec2.start_instances"])).body
    lambda_actions = [spec.name for spec in CATALOG.for_resource("lambda")]
    assert "ec2.start_instances" not in lambda_actions
    assert rejected(body, lambda_actions) == "action_outside_catalog"


def test_truncated_reply_is_rejected() -> None:
    body = tool_call(verdict()).body
    assert rejected({**body, "stopReason": "max_tokens"}) == "stop_reason"
