"""SSM Parameter Store: put back the value a parameter had before it was tampered with.

`ssm.restore_parameter` reads the parameter's history (decrypted), picks the version to restore
(the newest one older than `bad_version`, the tampering version from CloudTrail; without it, the
one before the newest) and writes that version's value again with its type, tier, KMS key,
description, allowed pattern and data type.

Secrets: a SecureString's value is held in memory only. Neither the result (stored in DynamoDB
and shown in timelines) nor any log event carries a value: the result holds its SHA-256, which is
what `verify` compares the current value against. A digest of a low-entropy secret can be guessed
by brute force; the digest protects against reading, not against guessing a four-digit PIN.

Idempotency, without a client token in PutParameter: two labels derived from the step's token.
`<label>.src` marks the version chosen as the source before anything is written, so a retry after
a crash restores the same version even though the write moved "the one before the newest". The
version written gets `<label>`; a retry that finds it returns ok without writing again. When the
current value already equals the source's, nothing is written and the current version is labelled.
Labels pin versions (SSM refuses to drop the oldest of 100 versions if it is labelled), so the
`.src` label is removed once the restore is done. Parameter policies (expiration) are not restored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from aiops_agent.actions.registry import CATALOG, BaseAction, Region, error_code, token_digest
from aiops_agent.domain.ports import CheckOutcome, StepOutcome

log = structlog.get_logger(__name__)

MAX_HISTORY_PAGES = 5
"""SSM keeps at most 100 versions; 50 per page."""

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class RestoreParameterParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=2048, description="the parameter's name")
    region: Region = None
    bad_version: int | None = Field(
        default=None, ge=1, description="the tampering version; restore the newest one before it"
    )


def value_digest(value: str) -> str:
    """What is stored instead of a parameter value: its SHA-256, hex."""
    return hashlib.sha256(value.encode()).hexdigest()


def restore_label(idempotency_token: str) -> str:
    """The SSM label for the version a step restores: readable, unique per token, always valid.

    Labels allow letters, digits, `.`, `-`, `_`, up to 100 characters, and must not start with a
    digit, `aws` or `ssm`: the `aiops-` prefix and the replacement of anything else take care of it.
    """
    readable = _LABEL_UNSAFE.sub("-", idempotency_token)[:40]
    return f"aiops-{readable}-{token_digest(idempotency_token, 12)}"


def source_label(idempotency_token: str) -> str:
    return f"{restore_label(idempotency_token)}.src"


def own_restore(history: Sequence[Mapping[str, Any]]) -> int | None:
    """The newest version, if the agent's own restore wrote it (it carries a restore label).

    A restore is itself a change: Parameter Store reports it with a `Parameter Store Change`
    event that has no principal, which reads like tampering. Undoing it would put the bad value
    back, and the next restore would undo that: a loop. The label says whose write it was.
    """
    if not history:
        return None
    newest = max(history, key=lambda v: int(v["Version"]))
    labels = newest.get("Labels") or []
    if any(lab.startswith("aiops-") and not lab.endswith(".src") for lab in labels):
        return int(newest["Version"])
    return None


@dataclass(frozen=True)
class RestoreDecision:
    """What `execute` does, decided from the history alone (pure, unit-tested per case)."""

    kind: Literal["done", "adopt", "write", "impossible"]
    detail: str
    source: Mapping[str, Any] | None = None
    restored: Mapping[str, Any] | None = None
    """`done`/`adopt`: the version that holds the restored value."""


def _same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("Value", "Type", "KeyId")
    return all(a.get(k) == b.get(k) for k in keys)


def decide_restore(
    history: Sequence[Mapping[str, Any]], bad_version: int | None, label: str, src_label: str
) -> RestoreDecision:
    """Which version to restore and whether a write is needed, given the parameter's history."""
    versions = sorted(history, key=lambda v: int(v["Version"]))
    if not versions:
        return RestoreDecision("impossible", "the parameter has no history")
    newest = versions[-1]
    done = [v for v in versions if label in v.get("Labels", [])]
    if done:
        return RestoreDecision("done", "already restored by this step", restored=done[-1])
    marked = [v for v in versions if src_label in v.get("Labels", [])]
    if marked:
        source = marked[-1]
    elif bad_version is not None:
        if bad_version > int(newest["Version"]):
            return RestoreDecision(
                "impossible",
                f"version {bad_version} is not in the history (newest is {newest['Version']})",
            )
        older = [v for v in versions if int(v["Version"]) < bad_version]
        if not older:
            return RestoreDecision("impossible", f"no version older than {bad_version} to restore")
        source = older[-1]
    else:
        if len(versions) < 2:
            return RestoreDecision("impossible", "the parameter has a single version")
        source = versions[-2]
    if int(newest["Version"]) > int(source["Version"]) and _same_content(newest, source):
        return RestoreDecision(
            "adopt",
            f"the current version {newest['Version']} already holds version "
            f"{source['Version']}'s value",
            source=source,
            restored=newest,
        )
    return RestoreDecision("write", f"restore version {source['Version']}", source=source)


def put_arguments(name: str, source: Mapping[str, Any], current_tier: str | None) -> dict[str, Any]:
    """PutParameter arguments that write `source` again, attributes kept.

    The tier stays Advanced if the parameter is Advanced now: SSM cannot downgrade a parameter.
    """
    kwargs: dict[str, Any] = {
        "Name": name,
        "Value": source["Value"],
        "Type": source["Type"],
        "Overwrite": True,
        "Description": source.get("Description") or "",
    }
    tier = source.get("Tier") or "Standard"
    kwargs["Tier"] = "Advanced" if current_tier == "Advanced" else tier
    if source["Type"] == "SecureString" and source.get("KeyId"):
        kwargs["KeyId"] = source["KeyId"]
    for key in ("AllowedPattern", "DataType"):
        if source.get(key):
            kwargs[key] = source[key]
    return kwargs


def interpret_parameter(
    current: Mapping[str, Any] | None, expected_sha256: str | None, expected_type: str | None
) -> CheckOutcome:
    """Whether the parameter holds the restored value. `current` carries a digest, not a value."""
    exists = current is not None
    checks: list[dict[str, Any]] = [
        {"check": "parameter_exists", "expected": True, "actual": exists}
    ]
    if current is None:
        return CheckOutcome("FAILED", "parameter not found", checks)
    if not expected_sha256:
        return CheckOutcome("FAILED", "no restored value was recorded to compare with", checks)
    actual_sha = str(current.get("value_sha256"))
    checks.append(
        {"check": "value_sha256", "expected": expected_sha256[:16], "actual": actual_sha[:16]}
    )
    if expected_type:
        checks.append(
            {"check": "parameter_type", "expected": expected_type, "actual": current.get("Type")}
        )
    version = current.get("Version")
    if actual_sha != expected_sha256:
        return CheckOutcome(
            "FAILED", f"parameter value (version {version}) differs from the restored one", checks
        )
    if expected_type and current.get("Type") != expected_type:
        return CheckOutcome("FAILED", f"parameter type is {current.get('Type')}", checks)
    return CheckOutcome("PASSED", f"parameter holds the restored value (version {version})", checks)


class _Unwritable(Exception):
    """A put failed; the message names the error code only (AWS messages may quote values)."""


@CATALOG.register("ssm.restore_parameter")
class RestoreParameter(BaseAction[RestoreParameterParams]):
    resource_types = ("ssm",)
    description = "Restore an SSM parameter's previous version (type, tier and key kept)."
    permissions = (
        "ssm:GetParameter",
        "ssm:GetParameterHistory",
        "ssm:LabelParameterVersion",
        "ssm:PutParameter",
        "ssm:UnlabelParameterVersion",
    )
    """Decrypting SecureStrings also needs kms:Decrypt/kms:Encrypt on their keys (key policy)."""
    params_model = RestoreParameterParams

    async def _history(self, ssm: Any, name: str, decrypt: bool = True) -> list[dict[str, Any]]:
        versions: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Name": name, "WithDecryption": decrypt, "MaxResults": 50}
        for _ in range(MAX_HISTORY_PAGES):
            resp = await ssm.get_parameter_history(**kwargs)
            versions.extend(resp.get("Parameters", []))
            if not resp.get("NextToken"):
                break
            kwargs["NextToken"] = resp["NextToken"]
        return versions

    async def _label(self, ssm: Any, name: str, version: int, label: str) -> bool:
        try:
            resp = await ssm.label_parameter_version(
                Name=name, ParameterVersion=version, Labels=[label]
            )
        except ClientError as exc:
            if error_code(exc) != "ParameterVersionLabelLimitExceeded":
                raise
            log.warning("ssm.label_limit", name=name, version=version)
            return False
        return not resp.get("InvalidLabels")

    async def _unlabel(self, ssm: Any, name: str, version: int, label: str) -> None:
        try:
            await ssm.unlabel_parameter_version(Name=name, ParameterVersion=version, Labels=[label])
        except ClientError as exc:  # a left-over label is harmless; never fail the restore
            log.warning("ssm.unlabel_failed", name=name, version=version, code=error_code(exc))

    async def _put(self, ssm: Any, kwargs: Mapping[str, Any]) -> int:
        try:
            resp = await ssm.put_parameter(**kwargs)
        except ClientError as exc:
            raise _Unwritable(error_code(exc) or "error") from None
        return int(resp["Version"])

    async def precheck(self, params: Mapping[str, Any]) -> str | None:
        """Not needed when the current version is the agent's own restore (see `own_restore`)."""
        p = self.parse(params)
        ssm = await self.deps.clients.client("ssm", region=p.region)
        try:
            history = await self._history(ssm, p.name, decrypt=False)
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                return None  # execute says so, as a failed step
            raise
        version = own_restore(history)
        if version is None:
            return None
        return f"{p.name} version {version} is the agent's own restore: nothing to undo"

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
        p = self.parse(params)
        ssm = await self.deps.clients.client("ssm", region=p.region)
        label, src_label = restore_label(idempotency_token), source_label(idempotency_token)
        result: dict[str, Any] = {"name": p.name, "bad_version": p.bad_version, "label": label}
        try:
            history = await self._history(ssm, p.name)
        except ClientError as exc:
            if error_code(exc) != "ParameterNotFound":
                raise
            return StepOutcome(False, f"parameter {p.name} not found; nothing to restore", result)
        decision = decide_restore(history, p.bad_version, label, src_label)
        if decision.kind == "impossible":
            return StepOutcome(False, f"cannot restore {p.name}: {decision.detail}", result)
        if decision.kind == "done" and decision.restored is not None:
            restored = decision.restored
            result.update(self._describe(restored, written=False))
            return StepOutcome(
                True, f"{p.name} already restored as version {restored['Version']}", result
            )
        source = decision.source
        if source is None:  # "adopt" and "write" always name their source
            return StepOutcome(False, f"cannot restore {p.name}: no source version", result)
        source_version = int(source["Version"])
        result["restored_from_version"] = source_version
        if src_label not in source.get("Labels", []):
            await self._label(ssm, p.name, source_version, src_label)
        if decision.kind == "adopt" and decision.restored is not None:
            restored = decision.restored
            await self._label(ssm, p.name, int(restored["Version"]), label)
            written, version = False, int(restored["Version"])
        else:
            newest = max(history, key=lambda v: int(v["Version"]))
            kwargs = put_arguments(p.name, source, newest.get("Tier"))
            try:
                version = await self._put(ssm, kwargs)
            except _Unwritable as exc:
                return StepOutcome(False, f"cannot write {p.name}: {exc}", result)
            await self._label(ssm, p.name, version, label)
            written = True
            result["tier"] = kwargs["Tier"]
        await self._unlabel(ssm, p.name, source_version, src_label)
        result.update(self._describe({**source, "Version": version}, written=written))
        result.setdefault("tier", source.get("Tier"))
        log.info(
            "ssm.parameter_restored",
            name=p.name,
            from_version=source_version,
            version=version,
            written=written,
        )
        if written:
            detail = f"restored {p.name} version {source_version} as version {version}"
        else:
            detail = f"{p.name} version {version} already holds version {source_version}'s value"
        return StepOutcome(True, detail, result)

    @staticmethod
    def _describe(version: Mapping[str, Any], *, written: bool) -> dict[str, Any]:
        """What the result keeps of a version: never its value."""
        return {
            "version": int(version["Version"]),
            "type": version.get("Type"),
            "value_sha256": value_digest(str(version.get("Value", ""))),
            "written": written,
        }

    async def verify(self, params: Mapping[str, Any], result: Mapping[str, Any]) -> CheckOutcome:
        p = self.parse(params)
        ssm = await self.deps.clients.client("ssm", region=p.region)
        try:
            resp = await ssm.get_parameter(Name=p.name, WithDecryption=True)
        except ClientError as exc:
            if error_code(exc) != "ParameterNotFound":
                raise
            return interpret_parameter(None, None, None)
        param = resp["Parameter"]
        current = {
            "Type": param.get("Type"),
            "Version": param.get("Version"),
            "value_sha256": value_digest(str(param.get("Value", ""))),
        }
        expected = result.get("value_sha256")
        expected_type = result.get("type")
        return interpret_parameter(
            current,
            expected if isinstance(expected, str) else None,
            expected_type if isinstance(expected_type, str) else None,
        )

    async def dry_run(self, params: Mapping[str, Any]) -> str:
        p = self.parse(params)
        which = (
            f"the newest version older than {p.bad_version}"
            if p.bad_version
            else "the version before the newest"
        )
        return f"would restore SSM parameter {p.name} to {which} (type, tier and key kept)"
