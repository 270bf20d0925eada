"""Silences, freezes and the pause, in the patterns table: every replica sees the same ones.

One partition (`pk = "control"`) holds them all, so one Query reads the whole state:

| sk                     | item                                                  |
|------------------------|-------------------------------------------------------|
| `silence#<id>`         | a silence (expired ones stay, for the record)         |
| `freeze#<id>`          | an own freeze (ended ones stay)                       |
| `pause`                | the kill switch's current state                       |
| `pause-log#<since>`    | every pause, with who resumed it and when             |

Each item is the value as a JSON document (`doc`) and a version (`v`); every write is
conditional (new: the key is absent; change: the version read is still there; pause: not
paused; resume: paused), so two operators racing never lose a change. Records expire (TTL) 90
days after they end.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from pydantic import BaseModel

from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.autonomy import ControlState, Freeze, Pause, Silence
from aiops_agent.domain.ports import ControlError

PK = "control"
KEPT_FOR = timedelta(days=90)


def new_silence_id() -> str:
    """A silence's id, the same whether the CLI or the console adds it."""
    return f"sil-{uuid.uuid4().hex[:12]}"


def new_freeze_id() -> str:
    """A freeze's id, the same whether the CLI or the console adds it."""
    return f"frz-{uuid.uuid4().hex[:12]}"


"""How long an ended silence, freeze or pause stays readable (`silence list --all`)."""

M = TypeVar("M", bound=BaseModel)


def _ended(kind: str, ident: str, at: datetime | None) -> ControlError:
    when = at.isoformat(timespec="seconds") if at else "?"
    return ControlError(f"{kind} {ident} is over already (ended {when})")


def state_from_items(items: list[tuple[str, str]]) -> ControlState:
    """(sk, doc) pairs -> the state, newest first within each kind."""
    silences, freezes, pauses = [], [], []
    pause = Pause(paused=False)
    for sk, doc in items:
        kind = sk.split("#", 1)[0]
        if kind == "silence":
            silences.append(Silence.model_validate_json(doc))
        elif kind == "freeze":
            freezes.append(Freeze.model_validate_json(doc))
        elif kind == "pause":
            pause = Pause.model_validate_json(doc)
        elif kind == "pause-log":
            pauses.append(Pause.model_validate_json(doc))
    return ControlState(
        silences=tuple(sorted(silences, key=lambda s: s.created_at, reverse=True)),
        freezes=tuple(sorted(freezes, key=lambda f: f.created_at, reverse=True)),
        pause=pause,
        pauses=tuple(sorted(pauses, key=lambda p: p.since or datetime.min, reverse=True)),
    )


def _expire_silence(current: Silence | None, sid: str, by: str, now: datetime) -> Silence:
    if current is None:
        raise ControlError(f"no silence {sid}")
    if current.ends_at <= now:
        raise _ended("silence", sid, current.ends_at)
    return current.model_copy(update={"ends_at": now, "expired_by": by})


def _end_freeze(current: Freeze | None, fid: str, by: str, now: datetime) -> Freeze:
    if current is None:
        raise ControlError(f"no freeze {fid}")
    if current.ends_at is not None and current.ends_at <= now:
        raise _ended("freeze", fid, current.ends_at)
    return current.model_copy(update={"ends_at": now, "ended_by": by})


def _paused_already(current: Pause) -> ControlError:
    since = current.since.isoformat(timespec="seconds") if current.since else "?"
    return ControlError(f"paused already, by {current.by} since {since}: {current.reason}")


def _log_key(pause: Pause) -> str:
    return f"pause-log#{pause.since.isoformat() if pause.since else ''}"


class MemoryControlStore:
    """The same semantics in a dict: each method is atomic on one event loop."""

    def __init__(self) -> None:
        self._items: dict[str, str] = {}

    async def state(self) -> ControlState:
        return state_from_items(list(self._items.items()))

    def _get(self, sk: str, model: type[M]) -> M | None:
        doc = self._items.get(sk)
        return model.model_validate_json(doc) if doc is not None else None

    def _put_new(self, sk: str, value: BaseModel) -> None:
        if sk in self._items:
            raise ControlError(f"{sk} exists already")
        self._items[sk] = value.model_dump_json()

    async def add_silence(self, silence: Silence) -> Silence:
        self._put_new(f"silence#{silence.silence_id}", silence)
        return silence

    async def expire_silence(self, silence_id: str, by: str, now: datetime) -> Silence:
        sk = f"silence#{silence_id}"
        ended = _expire_silence(self._get(sk, Silence), silence_id, by, now)
        self._items[sk] = ended.model_dump_json()
        return ended

    async def add_freeze(self, freeze: Freeze) -> Freeze:
        self._put_new(f"freeze#{freeze.freeze_id}", freeze)
        return freeze

    async def end_freeze(self, freeze_id: str, by: str, now: datetime) -> Freeze:
        sk = f"freeze#{freeze_id}"
        ended = _end_freeze(self._get(sk, Freeze), freeze_id, by, now)
        self._items[sk] = ended.model_dump_json()
        return ended

    async def pause(self, by: str, reason: str, now: datetime) -> Pause:
        current = self._get("pause", Pause)
        if current is not None and current.paused:
            raise _paused_already(current)
        new = Pause(paused=True, by=by, reason=reason, since=now)
        self._items["pause"] = self._items[_log_key(new)] = new.model_dump_json()
        return new

    async def resume(self, by: str, now: datetime) -> Pause:
        current = self._get("pause", Pause)
        if current is None or not current.paused:
            raise ControlError("not paused")
        new = current.model_copy(update={"paused": False, "resumed_by": by, "resumed_at": now})
        self._items["pause"] = self._items[_log_key(new)] = new.model_dump_json()
        return new


class DynamoControlStore:
    def __init__(self, clients: AwsClients, table: str, *, deadline_s: float = 10.0) -> None:
        self._clients = clients
        self._table = table
        self._deadline = deadline_s

    async def _ddb(self) -> Any:
        return await self._clients.client("dynamodb")

    def _key(self, sk: str) -> dict[str, Any]:
        return {"pk": {"S": PK}, "sk": {"S": sk}}

    def _item(self, sk: str, value: BaseModel, version: int, ends: datetime | None) -> Any:
        """The item; it expires `KEPT_FOR` after `ends` (never while `ends` is None)."""
        item = {**self._key(sk), "doc": {"S": value.model_dump_json()}, "v": {"N": str(version)}}
        if ends is not None:
            item["expires_at"] = {"N": str(int((ends + KEPT_FOR).timestamp()))}
        return item

    async def state(self) -> ControlState:
        ddb = await self._ddb()
        items: list[tuple[str, str]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": PK}},
            "ConsistentRead": True,
        }
        async with asyncio.timeout(self._deadline):
            while True:
                page = await ddb.query(**kwargs)
                items += [(i["sk"]["S"], i["doc"]["S"]) for i in page.get("Items", [])]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return state_from_items(items)

    async def _get(self, sk: str, model: type[M]) -> tuple[M | None, int]:
        ddb = await self._ddb()
        async with asyncio.timeout(self._deadline):
            got = await ddb.get_item(TableName=self._table, Key=self._key(sk), ConsistentRead=True)
        item = got.get("Item")
        if item is None:
            return None, 0
        return model.model_validate_json(item["doc"]["S"]), int(item["v"]["N"])

    async def _put(self, sk: str, value: BaseModel, ends: datetime | None, version: int) -> None:
        """Write version `version + 1` if the stored one is `version` (0: absent)."""
        ddb = await self._ddb()
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if version == 0
            else {
                "ConditionExpression": "v = :v",
                "ExpressionAttributeValues": {":v": {"N": str(version)}},
            }
        )
        item = self._item(sk, value, version + 1, ends)
        try:
            async with asyncio.timeout(self._deadline):
                await ddb.put_item(TableName=self._table, Item=item, **condition)
        except ddb.exceptions.ConditionalCheckFailedException:
            what = "exists already" if version == 0 else "changed meanwhile: try again"
            raise ControlError(f"{sk} {what}") from None

    async def add_silence(self, silence: Silence) -> Silence:
        await self._put(f"silence#{silence.silence_id}", silence, silence.ends_at, 0)
        return silence

    async def expire_silence(self, silence_id: str, by: str, now: datetime) -> Silence:
        sk = f"silence#{silence_id}"
        current, version = await self._get(sk, Silence)
        ended = _expire_silence(current, silence_id, by, now)
        await self._put(sk, ended, ended.ends_at, version)
        return ended

    async def add_freeze(self, freeze: Freeze) -> Freeze:
        await self._put(f"freeze#{freeze.freeze_id}", freeze, freeze.ends_at, 0)
        return freeze

    async def end_freeze(self, freeze_id: str, by: str, now: datetime) -> Freeze:
        sk = f"freeze#{freeze_id}"
        current, version = await self._get(sk, Freeze)
        ended = _end_freeze(current, freeze_id, by, now)
        await self._put(sk, ended, ended.ends_at, version)
        return ended

    async def pause(self, by: str, reason: str, now: datetime) -> Pause:
        new = Pause(paused=True, by=by, reason=reason, since=now)
        try:
            await self._switch(new, "attribute_not_exists(pk) OR paused = :f", False)
        except ControlError:
            current, _ = await self._get("pause", Pause)
            raise _paused_already(current or new) from None
        return new

    async def resume(self, by: str, now: datetime) -> Pause:
        current, _ = await self._get("pause", Pause)
        if current is None or not current.paused:
            raise ControlError("not paused")
        new = current.model_copy(update={"paused": False, "resumed_by": by, "resumed_at": now})
        try:
            await self._switch(new, "paused = :t", True)
        except ControlError:
            raise ControlError("not paused (resumed meanwhile)") from None
        return new

    async def _switch(self, new: Pause, condition: str, expect: bool) -> None:
        """The pause item and its log entry in one transaction, if the condition holds."""
        ddb = await self._ddb()
        current = self._item("pause", new, 1, None)
        current["paused"] = {"BOOL": new.paused}
        log = self._item(_log_key(new), new, 1, new.resumed_at)
        flag = ":t" if expect else ":f"
        try:
            async with asyncio.timeout(self._deadline):
                await ddb.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": current,
                                "ConditionExpression": condition,
                                "ExpressionAttributeValues": {flag: {"BOOL": expect}},
                            }
                        },
                        {"Put": {"TableName": self._table, "Item": log}},
                    ]
                )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            raise ControlError(json.dumps(err.response.get("CancellationReasons", []))) from None
