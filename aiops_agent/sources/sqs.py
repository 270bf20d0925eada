"""The SQS consumer: long polling, batches of up to 10, bounded concurrency, nothing lost.

A message is deleted only after its handler returned, that is after what it caused is stored.
Deletes of handled messages are gathered across receives for up to `DELETE_LINGER_S` (or until
ten wait), so two half-full receives cost one DeleteMessageBatch; stop flushes what waits. A
message handled but not yet deleted when the process dies is redelivered, and handlers are
idempotent.
A handler exception leaves the message for redelivery (the queue's redrive policy moves a message
that keeps failing to the dead-letter queue). Input that can never be handled (a poison message)
is forwarded to the dead-letter queue at once, with the reason, and deleted.
On stop: receiving ends (the open long poll is let finish, and what it brings is made visible again
at once), in-flight messages get a bounded drain, and the messages of whatever is still running
are made visible again for another consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from aiops_agent.aws.clients import AwsClients
from aiops_agent.obs.health import Health
from aiops_agent.obs.metrics import Metrics

log = structlog.get_logger(__name__)

Handler = Callable[[str], Awaitable[None]]
DELETE_LINGER_S = 0.2
"""How long a handled message may wait for others to share its DeleteMessageBatch."""
RECEIVE_LINGER_S = 0.1
"""With some slots busy, how long a receive waits for more to free (a fuller receive: fewer
ReceiveMessage calls) before it asks for what is free now."""
RETRY_BASE_S = 5.0
RETRY_MAX_S = 300.0
RETRY_FACTOR = 4.0
CALL_TIMEOUT_S = 10.0
"""A bound on each queue call around the handler (DLQ send, delete, visibility)."""


def redelivery_delay(
    receives: int,
    base_s: float = RETRY_BASE_S,
    max_s: float = RETRY_MAX_S,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds until a message whose handler failed on its `receives`-th receive comes back:
    `base * 4^(receives-1)` capped at `max`, less up to a quarter at random (retries spread out).

    With the defaults (5 s, 300 s) and maxReceiveCount 5: 5, 20, 80, 300, 300 s, so the 5th
    receive comes 5-7 minutes after the first failure and the dead-letter queue only after 9-12
    minutes: an outage of several minutes (throttling, a regional blip) costs no event. Pure.
    """
    delay = min(base_s * RETRY_FACTOR ** max(receives - 1, 0), max_s)
    return max(1.0, min(delay * (1 - 0.25 * rand()), 43_200.0))


@dataclass(frozen=True)
class QueueFacts:
    visibility_timeout: int
    dead_letter_url: str | None


class SqsConsumer:
    def __init__(
        self,
        *,
        clients: AwsClients,
        queue_url: str,
        handler: Handler,
        metrics: Metrics,
        health: Health,
        poison: tuple[type[Exception], ...] = (),
        dead_letter_url: str | None = None,
        max_concurrency: int = 10,
        wait_seconds: int = 20,
        drain_seconds: float = 20.0,
        visibility_timeout: int = 30,
        loop_name: str = "sqs",
        delete_linger_s: float = DELETE_LINGER_S,
        retry_base_s: float = RETRY_BASE_S,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self._clients = clients
        self._queue_url = queue_url
        self._handler = handler
        self._metrics = metrics
        self._health = health
        self._poison = poison
        self._dlq_url = dead_letter_url
        self._max = max_concurrency
        self._free = max_concurrency
        self._capacity = asyncio.Condition()
        self._wait_seconds = wait_seconds
        self._drain_seconds = drain_seconds
        self._visibility = visibility_timeout
        self._loop_name = loop_name
        self._delete_linger_s = delete_linger_s
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._to_delete: list[dict[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        health.register_loop(loop_name, max_age_s=max(60.0, wait_seconds * 3.0))

    @staticmethod
    async def queue_facts(clients: AwsClients, queue_url: str) -> QueueFacts:
        """The queue's visibility timeout and its dead-letter queue (from the redrive policy)."""
        sqs = await clients.client("sqs")
        attrs = await sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
        )
        values = attrs.get("Attributes", {})
        visibility = int(values.get("VisibilityTimeout", 30))
        policy = values.get("RedrivePolicy")
        if not policy:
            return QueueFacts(visibility_timeout=visibility, dead_letter_url=None)
        arn = json.loads(policy)["deadLetterTargetArn"]
        name, account = arn.split(":")[5], arn.split(":")[4]
        got = await sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        return QueueFacts(visibility_timeout=visibility, dead_letter_url=str(got["QueueUrl"]))

    async def run(self, stop: asyncio.Event) -> None:
        sqs = await self._clients.client("sqs")
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._drain_on(stop))
                while not stop.is_set():
                    self._health.beat(self._loop_name)
                    slots = await self._wait_for_capacity(stop)
                    if slots == 0:
                        break
                    messages = await self._receive(sqs, stop, slots)
                    if not messages:
                        continue
                    async with self._capacity:
                        self._free -= len(messages)
                    task = group.create_task(self._process_batch(sqs, messages))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._flusher
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self.flush(sqs)  # handled messages are not left to be redelivered

    async def _drain_on(self, stop: asyncio.Event) -> None:
        """After stop: give in-flight batches a bounded drain, then cancel what is left."""
        await stop.wait()
        if self._tasks:
            log.info("sqs.draining", batches=len(self._tasks), budget_s=self._drain_seconds)
            _, still_running = await asyncio.wait(set(self._tasks), timeout=self._drain_seconds)
            for task in still_running:
                task.cancel()

    async def _wait_for_capacity(self, stop: asyncio.Event) -> int:
        """Free slots to receive into: each message frees its own when it is handled, so a
        slow one (a recovery step) holds one slot, not its whole batch's."""
        full = min(10, self._max)
        async with self._capacity:
            while self._free == 0 and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._capacity.wait()
                self._health.beat(self._loop_name)
            if self._free < full and not stop.is_set():
                # Others may be about to finish: a moment's wait makes a fuller receive.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECEIVE_LINGER_S):
                        await self._capacity.wait_for(lambda: self._free >= full)
            return 0 if stop.is_set() else min(10, self._free)

    async def _receive(self, sqs: Any, stop: asyncio.Event, slots: int) -> list[dict[str, Any]]:
        receive = asyncio.ensure_future(
            sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=slots,
                WaitTimeSeconds=self._wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        try:
            async with asyncio.timeout(self._wait_seconds + 15):
                await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            pass
        finally:
            stopping.cancel()
        if not receive.done() and stop.is_set():
            return await self._last_poll(sqs, receive)
        if not receive.done():
            receive.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receive
            return []
        try:
            response = receive.result()
        except Exception as exc:
            log.warning("sqs.receive_failed", error=repr(exc))
            self._metrics.sqs_failure("receive")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await stop.wait()
            return []
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    async def _last_poll(self, sqs: Any, receive: asyncio.Future[Any]) -> list[dict[str, Any]]:
        """Stopping with a long poll open: let it finish and give back what it brings at once.

        SQS completes a long poll whose caller has gone: a message arriving within its wait is
        received for nobody and stays invisible for the whole visibility timeout (the next task
        of a rolling deploy would wait that long for it). So the poll is awaited (at most its
        wait) and whatever it returns is made visible again (ChangeMessageVisibility 0).
        """
        try:
            async with asyncio.timeout(self._wait_seconds + 5):
                response = await receive
        except Exception as exc:
            log.warning("sqs.last_receive_failed", error=repr(exc))
            return []
        messages: list[dict[str, Any]] = response.get("Messages", [])
        if messages:
            await self._release(sqs, messages)
        return []

    async def _process_batch(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        unfinished = {m["ReceiptHandle"]: m for m in messages}

        handled: set[str] = set()

        async def process(message: dict[str, Any]) -> None:
            handle = message["ReceiptHandle"]
            try:
                ok = await self._process(sqs, message)
            except Exception:  # around the handler (metrics, a queue call): survived
                log.exception("sqs.process_failed", message_id=message.get("MessageId"))
                self._metrics.sqs_failure("process")
                ok = False  # not deleted: it comes back after its visibility timeout
            finally:
                unfinished.pop(handle, None)
                async with self._capacity:  # its slot is free for the next receive
                    self._free += 1
                    self._capacity.notify_all()
            handled.add(handle)  # not reached when cancelled while it ran
            if ok:
                await self._delete(sqs, [message])  # gathered with others' (DELETE_LINGER_S)

        try:
            extender = asyncio.ensure_future(self._keep_invisible(sqs, unfinished))
            try:
                await asyncio.gather(*(process(m) for m in messages))
            finally:
                extender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await extender
        except asyncio.CancelledError:
            await self._release(sqs, [m for m in messages if m["ReceiptHandle"] not in handled])
            raise

    async def _keep_invisible(self, sqs: Any, unfinished: dict[str, dict[str, Any]]) -> None:
        """While steps run long, extend the visibility of their messages (every third of it)."""
        period = max(1.0, self._visibility / 3)
        while True:
            await asyncio.sleep(period)
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": self._visibility}
                for i, handle in enumerate(list(unfinished)[:10])
            ]
            if not entries:
                continue
            try:
                async with asyncio.timeout(10):
                    response = await sqs.change_message_visibility_batch(
                        QueueUrl=self._queue_url, Entries=entries
                    )
                failed = self._batch_failures(response, "change_visibility")
                log.info(
                    "sqs.visibility_extended",
                    count=len(entries) - failed,
                    failed=failed,
                    seconds=self._visibility,
                )
            except Exception as exc:
                log.warning("sqs.visibility_extend_failed", error=repr(exc))
                self._metrics.sqs_failure("change_visibility")

    async def _process(self, sqs: Any, message: dict[str, Any]) -> bool:
        """True when the message's effect is stored and it may be deleted."""
        attributes = message.get("Attributes", {})
        sent = attributes.get("SentTimestamp")
        if sent:
            self._metrics.message_age.observe(max(0.0, time.time() - int(sent) / 1000))
        body = message.get("Body", "")
        try:
            await self._handler(body)
            return True
        except self._poison as exc:
            reason = str(getattr(exc, "reason", type(exc).__name__))
            log.warning(
                "sqs.poison_message",
                message_id=message.get("MessageId"),
                reason=reason,
                error=str(exc),
            )
            self._metrics.events_rejected.labels(reason=reason).inc()
            if await self._dead_letter(sqs, message, reason, str(exc)):
                return True
            # Not forwarded (no DLQ, or it failed): leave it; after maxReceiveCount receives the
            # queue's own redrive policy moves it to the dead-letter queue.
            await self._retry_later(sqs, message, int(attributes.get("ApproximateReceiveCount", 1)))
            return False
        except Exception:
            receives = int(attributes.get("ApproximateReceiveCount", 1))
            log.exception(
                "sqs.handler_failed", message_id=message.get("MessageId"), receive_count=receives
            )
            self._metrics.message_handled("retried")
            await self._retry_later(sqs, message, receives)
            return False

    async def _retry_later(self, sqs: Any, message: dict[str, Any], receives: int) -> None:
        """Make a failed message visible again after a backoff that spans an AWS outage of
        minutes (`redelivery_delay`), not one of 2..32 s that dead-letters an event after a
        one-minute hiccup; the redrive policy still ends a message that keeps failing in the
        dead-letter queue."""
        backoff = redelivery_delay(receives, self._retry_base_s, self._retry_max_s)
        try:
            async with asyncio.timeout(5):
                await sqs.change_message_visibility(
                    QueueUrl=self._queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=round(backoff),
                )
        except Exception as exc:  # it comes back after the visibility timeout instead
            log.warning("sqs.backoff_failed", error=repr(exc))
            self._metrics.sqs_failure("change_visibility")

    async def _dead_letter(
        self, sqs: Any, message: dict[str, Any], reason: str, error: str
    ) -> bool:
        """Forward a poison message to the DLQ; False if it was not (no DLQ, or the send failed:
        KMS throttling, AccessDenied, a network error), and the message stays where it is."""
        if self._dlq_url is None:
            # No dead-letter queue to forward to: the redrive policy (if any) takes it.
            return False
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                await sqs.send_message(
                    QueueUrl=self._dlq_url,
                    MessageBody=message.get("Body", "") or "<empty>",
                    MessageAttributes={
                        "aiops-reject-reason": {"DataType": "String", "StringValue": reason},
                        "aiops-error": {
                            "DataType": "String",
                            "StringValue": error[:1000] or reason,
                        },
                        "aiops-source-message-id": {
                            "DataType": "String",
                            "StringValue": str(message.get("MessageId", "")),
                        },
                    },
                )
        except Exception as exc:
            log.warning(
                "sqs.dead_letter_failed", message_id=message.get("MessageId"), error=repr(exc)
            )
            self._metrics.sqs_failure("dead_letter")
            return False
        self._metrics.message_dead_lettered(reason)
        return True

    async def _delete(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        """Queue handled messages for deletion; a full batch goes at once, the rest soon."""
        self._to_delete.extend(messages)
        while len(self._to_delete) >= 10:
            batch, self._to_delete = self._to_delete[:10], self._to_delete[10:]
            await self._delete_now(sqs, batch)
        if self._to_delete and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.ensure_future(self._flush_later(sqs))

    async def _flush_later(self, sqs: Any) -> None:
        await asyncio.sleep(self._delete_linger_s)
        await self.flush(sqs)

    async def flush(self, sqs: Any) -> None:
        """Delete every handled message still waiting (at stop, and after the linger)."""
        while self._to_delete:
            batch, self._to_delete = self._to_delete[:10], self._to_delete[10:]
            await self._delete_now(sqs, batch)

    async def _delete_now(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                response = await sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except Exception as exc:
            # Not deleted means redelivered: the handlers are idempotent, so this is safe.
            log.warning("sqs.delete_failed", error=repr(exc), count=len(entries))
            self._metrics.sqs_failure("delete")
            return
        failed = response.get("Failed", [])
        for failure in failed:
            log.warning("sqs.delete_entry_failed", code=failure.get("Code"))
            self._metrics.sqs_failure("delete")
        for _ in range(len(entries) - len(failed)):
            self._metrics.message_handled("deleted")

    def _batch_failures(self, response: Any, operation: str) -> int:
        """Log and count the `Failed` entries of a batch answer; how many there were."""
        failed = response.get("Failed", []) if isinstance(response, dict) else []
        for failure in failed:
            log.warning(f"sqs.{operation}_entry_failed", code=failure.get("Code"))
            self._metrics.sqs_failure(operation)
        return len(failed)

    async def _release(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        """Make cancelled messages visible again at once (shielded and bounded)."""
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)
        ]

        async def release() -> Any:
            async with asyncio.timeout(5):
                return await sqs.change_message_visibility_batch(
                    QueueUrl=self._queue_url, Entries=entries
                )

        try:
            response = await asyncio.shield(release())
            # A batch call answers 200 with a `Failed` entry per message it did not change:
            # those come back after their visibility timeout, and are not counted as released.
            failed = self._batch_failures(response, "release")
            for _ in range(len(entries) - failed):
                self._metrics.message_handled("released")
            log.info("sqs.released", count=len(entries) - failed, failed=failed)
        except Exception as exc:
            log.warning("sqs.release_failed", error=repr(exc))
            self._metrics.sqs_failure("release")
