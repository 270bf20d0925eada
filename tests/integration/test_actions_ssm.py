"""`ssm.restore_parameter` against the moto server: history, labels, SecureString, verification."""

from __future__ import annotations

import hashlib
from typing import Any

import structlog

from aiops_agent.actions.registry import CATALOG, ActionDeps, BoundCatalog
from aiops_agent.actions.ssm import restore_label, source_label
from aiops_agent.aws.clients import AwsClients


def _action(aws: AwsClients) -> Any:
    return BoundCatalog(CATALOG, ActionDeps(clients=aws)).get("ssm.restore_parameter")


async def _history(aws: AwsClients, name: str) -> list[dict[str, Any]]:
    ssm = await aws.client("ssm")
    resp = await ssm.get_parameter_history(Name=name, WithDecryption=True, MaxResults=50)
    return sorted(resp["Parameters"], key=lambda v: v["Version"])


async def _value(aws: AwsClients, name: str) -> str:
    ssm = await aws.client("ssm")
    return str((await ssm.get_parameter(Name=name, WithDecryption=True))["Parameter"]["Value"])


async def test_restores_the_version_before_the_tampering(aws: AwsClients, unique: str) -> None:
    name = f"/app/{unique}/db-host"
    ssm = await aws.client("ssm")
    await ssm.put_parameter(
        Name=name, Value="db.internal:5432", Type="String", Description="primary database"
    )
    bad = await ssm.put_parameter(
        Name=name, Value="evil.example:5432", Type="String", Overwrite=True, Description="x"
    )
    action = _action(aws)
    params = {"name": name, "bad_version": bad["Version"]}

    outcome = await action.execute(params, f"inc-{unique}:0")

    assert outcome.ok, outcome.detail
    assert outcome.result["written"] is True
    assert outcome.result["restored_from_version"] == 1
    assert outcome.result["version"] == 3
    assert await _value(aws, name) == "db.internal:5432"
    history = await _history(aws, name)
    assert [v["Version"] for v in history] == [1, 2, 3]
    assert history[2]["Description"] == "primary database"
    assert history[2]["Labels"] == [restore_label(f"inc-{unique}:0")]
    assert history[0]["Labels"] == []  # the source marker is removed once done
    check = await action.verify(params, outcome.result)
    assert check.status == "PASSED", check.detail
    assert {c["check"] for c in check.checks} == {
        "parameter_exists",
        "value_sha256",
        "parameter_type",
    }

    again = await action.execute(params, f"inc-{unique}:0")

    assert again.ok and again.result["written"] is False
    assert again.result["version"] == 3
    assert "already restored" in again.detail
    assert len(await _history(aws, name)) == 3  # nothing written twice
    assert (await action.verify(params, again.result)).status == "PASSED"


async def test_secure_string_keeps_attributes_and_never_shows_the_value(
    aws: AwsClients, unique: str
) -> None:
    name = f"/app/{unique}/api-key"
    secret, forged = f"s3cr3t-{unique}", f"forged-{unique}"
    ssm = await aws.client("ssm")
    await ssm.put_parameter(
        Name=name,
        Value=secret,
        Type="SecureString",
        KeyId="alias/payments",
        Tier="Advanced",
        Description="payments API key",
    )
    await ssm.put_parameter(Name=name, Value=forged, Type="SecureString", Overwrite=True)
    action = _action(aws)
    params = {"name": name}  # no bad_version: the version before the newest

    with structlog.testing.capture_logs() as logs:
        outcome = await action.execute(params, f"inc-{unique}:0")
        check = await action.verify(params, outcome.result)
        again = await action.execute(params, f"inc-{unique}:0")

    assert outcome.ok, outcome.detail
    assert check.status == "PASSED", check.detail
    assert again.ok and again.result["written"] is False
    assert any(e["event"] == "ssm.parameter_restored" for e in logs)  # the capture works
    shown = repr((outcome, check, again, logs, await action.dry_run(params)))
    assert secret not in shown and forged not in shown
    assert outcome.result["value_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    newest = (await _history(aws, name))[-1]
    assert newest["Value"] == secret
    assert newest["Type"] == "SecureString"
    assert newest["KeyId"] == "alias/payments"
    assert newest["Tier"] == "Advanced"
    assert newest["Description"] == "payments API key"


async def test_verify_fails_when_changed_again_or_deleted(aws: AwsClients, unique: str) -> None:
    name = f"/app/{unique}/flag"
    ssm = await aws.client("ssm")
    await ssm.put_parameter(Name=name, Value="on", Type="String")
    await ssm.put_parameter(Name=name, Value="off", Type="String", Overwrite=True)
    action = _action(aws)
    outcome = await action.execute({"name": name}, "tok")
    assert outcome.ok and await _value(aws, name) == "on"

    await ssm.put_parameter(Name=name, Value="off", Type="String", Overwrite=True)
    changed = await action.verify({"name": name}, outcome.result)
    assert changed.status == "FAILED"
    assert "differs" in changed.detail

    await ssm.delete_parameter(Name=name)
    gone = await action.verify({"name": name}, outcome.result)
    assert gone.status == "FAILED"
    assert gone.checks[0] == {"check": "parameter_exists", "expected": True, "actual": False}


async def test_retry_after_a_crash_restores_the_same_version(aws: AwsClients, unique: str) -> None:
    """A crash after the write, before the label: the retry must not restore the bad value.

    Without `bad_version`, "the one before the newest" is the bad version once our write is the
    newest; the `.src` label written before the put keeps the choice.
    """
    name = f"/app/{unique}/endpoint"
    token = f"inc-{unique}:0"
    ssm = await aws.client("ssm")
    await ssm.put_parameter(Name=name, Value="good", Type="String")
    await ssm.put_parameter(Name=name, Value="bad", Type="String", Overwrite=True)
    # What the first attempt did before it died: marked the source, wrote it, no final label.
    await ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=[source_label(token)])
    await ssm.put_parameter(Name=name, Value="good", Type="String", Overwrite=True)

    outcome = await _action(aws).execute({"name": name}, token)

    assert outcome.ok, outcome.detail
    assert outcome.result["written"] is False
    assert outcome.result["version"] == 3
    assert await _value(aws, name) == "good"
    history = await _history(aws, name)
    assert len(history) == 3
    assert history[2]["Labels"] == [restore_label(token)]
    assert history[0]["Labels"] == []


async def test_what_cannot_be_restored_is_a_failed_step(aws: AwsClients, unique: str) -> None:
    name = f"/app/{unique}/single"
    ssm = await aws.client("ssm")
    await ssm.put_parameter(Name=name, Value="only", Type="String")
    action = _action(aws)

    single = await action.execute({"name": name}, "tok")
    future = await action.execute({"name": name, "bad_version": 7}, "tok")
    first = await action.execute({"name": name, "bad_version": 1}, "tok")
    missing = await action.execute({"name": f"/app/{unique}/absent"}, "tok")

    assert not single.ok and "single version" in single.detail
    assert not future.ok and "not in the history" in future.detail
    assert not first.ok and "no version older than 1" in first.detail
    assert not missing.ok and "not found" in missing.detail
    assert len(await _history(aws, name)) == 1
    assert (await action.verify({"name": name}, {})).status == "FAILED"  # nothing recorded


async def test_region_param_and_dry_run(aws: AwsClients, unique: str) -> None:
    name = f"/app/{unique}/regional"
    ssm = await aws.client("ssm", region="eu-west-1")
    await ssm.put_parameter(Name=name, Value="a", Type="String")
    await ssm.put_parameter(Name=name, Value="b", Type="String", Overwrite=True)
    action = _action(aws)
    params = {"name": name, "region": "eu-west-1", "bad_version": 2}

    outcome = await action.execute(params, "tok")

    assert outcome.ok, outcome.detail
    value = (await ssm.get_parameter(Name=name))["Parameter"]["Value"]
    assert value == "a"
    assert (await action.verify(params, outcome.result)).status == "PASSED"
    text = await action.dry_run(params)
    assert text.startswith("would restore") and name in text and "older than 2" in text


async def test_the_change_event_of_our_own_restore_is_not_undone(
    aws: AwsClients, unique: str
) -> None:
    """A restore writes a version; Parameter Store reports it without a principal, like any
    change. Restoring "the one before the newest" then would put the bad value back (and the
    next restore would undo that): the precheck sees the agent's label and stops the loop."""
    name = f"/app/{unique}/flag"
    ssm = await aws.client("ssm")
    await ssm.put_parameter(Name=name, Value="good", Type="String")
    await ssm.put_parameter(Name=name, Value="bad", Type="String", Overwrite=True)
    action = _action(aws)
    principal_less = {"name": name}  # what a Parameter Store Change event gives the plan
    assert await action.precheck(principal_less) is None  # the bad write: restore it
    assert (await action.execute(principal_less, f"inc-{unique}:0")).ok
    assert await _value(aws, name) == "good"

    reason = await action.precheck(principal_less)  # the restore's own change event

    assert reason == f"{name} version 3 is the agent's own restore: nothing to undo"
    assert await action.precheck({"name": name, "bad_version": 2}) is not None
    await ssm.put_parameter(Name=name, Value="bad again", Type="String", Overwrite=True)
    assert await action.precheck(principal_less) is None  # tampered again: restore again
    assert await action.precheck({"name": f"/app/{unique}/missing"}) is None
