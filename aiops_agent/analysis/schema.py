"""The model's answer as data: a pydantic model, its JSON schema, and the strict parse of a reply.

The Bedrock analyzer asks for exactly one tool call whose input is a `ModelVerdict`. The tool's
`inputSchema` is generated from that model, with the plan's `action` narrowed to an enum of the
catalog's actions for the event's resource type. A reply is accepted only if it is such a tool
call and its input validates; anything else raises `ReplyRejected`, and the rules decide.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiops_agent.domain.models import Classification, Severity

M = TypeVar("M", bound=BaseModel)

TOOL_NAME = "record_assessment"
TOOL_DESCRIPTION = (
    "Record your assessment of the AWS event: classification, confidence, severity, reasons, "
    "impact, and a recovery plan chosen only from the allowed actions."
)
MAX_REASONS = 6
MAX_REASON_CHARS = 300
MAX_IMPACT_CHARS = 500
MAX_PLAN_STEPS = 8


class ModelPlanStep(BaseModel):
    """One step the model proposes; its params are advisory (the rules' plan has the real ones)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str = Field(description="One of the allowed catalog actions.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters for the action, if any."
    )


class ModelVerdict(BaseModel):
    """What the model must answer, as the tool's input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    classification: Classification = Field(
        description=(
            "FAILURE: something broke or was destroyed; TAMPERING: a deliberate unsafe change; "
            "ANOMALY: unusual, not clearly harmful; NORMAL: expected, nothing to do."
        )
    )
    confidence: float = Field(ge=0.0, le=1.0, description="Your confidence, 0 to 1.")
    severity: Severity
    reasons: list[str] = Field(
        min_length=1,
        max_length=MAX_REASONS,
        description="Short factual reasons, most important first.",
    )
    impact: str = Field(default="", max_length=MAX_IMPACT_CHARS, description="Likely impact.")
    plan: list[ModelPlanStep] = Field(
        default_factory=list,
        max_length=MAX_PLAN_STEPS,
        description="Recovery steps, in order; empty when nothing should be done.",
    )


class ReplyRejected(Exception):
    """The model's reply is not an acceptable tool call. `reason` is a bounded metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


REJECT_REASONS: frozenset[str] = frozenset(
    {
        "no_tool_call",
        "malformed_json",
        "schema_violation",
        "action_outside_catalog",
        "stop_reason",
    }
)


def tool_input_schema(actions: Iterable[str]) -> dict[str, Any]:
    """The JSON schema of `ModelVerdict`, self-contained, with `plan[].action` as an enum.

    With no allowed action the plan must be empty (`maxItems: 0`): a JSON schema enum may not
    be empty.
    """
    schema = inline_schema(ModelVerdict.model_json_schema())
    allowed = sorted(set(actions))
    plan = schema["properties"]["plan"]
    if allowed:
        plan["items"]["properties"]["action"]["enum"] = allowed
    else:
        plan["maxItems"] = 0
    return schema


def tool_config(actions: Iterable[str]) -> dict[str, Any]:
    """The Converse `toolConfig`: one tool, and `toolChoice` forcing it."""
    return forced_tool(TOOL_NAME, TOOL_DESCRIPTION, tool_input_schema(actions))


def forced_tool(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A Converse `toolConfig` with one tool that the model must call."""
    return {
        "tools": [
            {
                "toolSpec": {
                    "name": name,
                    "description": description,
                    "inputSchema": {"json": schema},
                }
            }
        ],
        "toolChoice": {"tool": {"name": name}},
    }


def parse_reply(response: Mapping[str, Any], allowed_actions: Iterable[str]) -> ModelVerdict:
    """The verdict in a Converse response, or `ReplyRejected` saying why there is none."""
    verdict = validate_input(ModelVerdict, tool_input(response, TOOL_NAME))
    allowed = set(allowed_actions)
    outside = [step.action for step in verdict.plan if step.action not in allowed]
    if outside:
        shown = ", ".join(repr(a[:64]) for a in outside[:3])
        raise ReplyRejected("action_outside_catalog", f"plan names {shown}")
    return verdict


def tool_input(response: Mapping[str, Any], tool_name: str) -> Mapping[str, Any]:
    """The input of the one call to `tool_name` in a Converse response, or `ReplyRejected`."""
    stop = str(response.get("stopReason") or "")
    if stop not in ("tool_use", "end_turn"):
        raise ReplyRejected("stop_reason", f"stop reason {stop[:40] or 'missing'!r}")
    message = (response.get("output") or {}).get("message") or {}
    content = message.get("content") or []
    calls = [
        block["toolUse"]
        for block in content
        if isinstance(block, Mapping) and isinstance(block.get("toolUse"), Mapping)
    ]
    if not calls:
        raise ReplyRejected("no_tool_call", "the reply is text, not a tool call")
    if len(calls) > 1:
        raise ReplyRejected("no_tool_call", f"{len(calls)} tool calls, expected one")
    call = calls[0]
    if call.get("name") != tool_name:
        raise ReplyRejected(
            "no_tool_call", f"call to an unknown tool {str(call.get('name'))[:40]!r}"
        )
    raw = call.get("input")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ReplyRejected("malformed_json", f"tool input is not JSON ({exc.msg})") from None
    if not isinstance(raw, Mapping):
        raise ReplyRejected("malformed_json", "tool input is not a JSON object")
    return raw


def validate_input(model: type[M], raw: Mapping[str, Any]) -> M:
    """`raw` as a `model`, or `ReplyRejected("schema_violation")` naming the first error."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise ReplyRejected("schema_violation", f"{where}: {first['msg']}"[:200]) from None


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every local `$ref` replaced by its definition and titles dropped."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                resolved = walk(defs[ref.removeprefix("#/$defs/")])
                extra = {k: walk(v) for k, v in node.items() if k not in ("$ref", "title")}
                return {**resolved, **extra}
            return {k: walk(v) for k, v in node.items() if k not in ("$defs", "title")}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result
