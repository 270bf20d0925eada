"""The agent as a separate process (`python -m aiops_agent run`), for the fault-injection tests.

`AgentProcess.start(env, log_path)` runs the daemon with its JSON log lines going to a file (not a
pipe: a pipe nobody drains would block the daemon once full); `wait_ready` polls `/readyz`;
`events("incident.opened")` reads the log lines back; `terminate`/`kill` send SIGTERM/SIGKILL and
`wait_exit` waits for the exit code without blocking the event loop.

Also here: helpers the fault tests share (polling, EventBridge-shaped EC2 events, queue depth).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp

T = TypeVar("T")


async def wait_for(
    predicate: Callable[[], Awaitable[T | None]],
    within: float = 30.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll `predicate` until it returns something truthy; that value. AssertionError on timeout."""
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within:.0f}s (last: {value!r})")
        await asyncio.sleep(interval)


class AgentProcess:
    """One `python -m aiops_agent run`, its HTTP port and its log file."""

    def __init__(
        self, name: str, proc: subprocess.Popen[bytes], port: int, log_path: Path, log: IO[bytes]
    ) -> None:
        self.name = name
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self._log = log
        self.started_at = time.monotonic()

    @classmethod
    def start(cls, name: str, env: Mapping[str, str], log_path: Path) -> AgentProcess:
        """Start the daemon with `env` added to this process's environment."""
        port = int(env["AIOPS_HTTP_PORT"])
        log = log_path.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiops_agent", "run"],
            env={**os.environ, "AIOPS_LOG_FORMAT": "json", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return cls(name, proc, port, log_path, log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    # ------------------------------------------------------------ HTTP

    async def status(self, path: str, deadline_s: float = 5.0) -> int | None:
        """The HTTP status of GET `path`, or None if the server does not answer."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=deadline_s)) as http,
                http.get(f"{self.url}{path}") as resp,
            ):
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def text(self, path: str, deadline_s: float = 5.0) -> str:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=deadline_s)) as http,
            http.get(f"{self.url}{path}") as resp,
        ):
            resp.raise_for_status()
            return await resp.text()

    async def wait_ready(self, within: float = 30.0) -> None:
        """Until `/readyz` answers 200; AssertionError, with the log's tail, on exit or timeout."""

        async def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
            return await self.status("/readyz", deadline_s=1.0) == 200

        try:
            await wait_for(ready, within=within, interval=0.1, what=f"{self.name} ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.tail()}") from None

    # ------------------------------------------------------------ signals and exit

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    async def wait_exit(self, within: float = 30.0) -> int:
        """The exit code; AssertionError if the process is still running after `within` s."""
        try:
            return await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {within}s") from None

    async def stop(self) -> None:
        """Cleanup: kill the process if it still runs, reap it, close the log file."""
        if self.alive():
            self.kill()
        await asyncio.to_thread(self.proc.wait, 10)
        self._log.close()

    # ------------------------------------------------------------ logs

    def lines(self) -> list[dict[str, Any]]:
        """Every complete JSON log line so far (anything else the process printed is skipped)."""
        self._log.flush()
        found: list[dict[str, Any]] = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            if not raw.startswith("{"):
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                continue  # a line being written right now
            if isinstance(value, dict):
                found.append(value)
        return found

    def events(self, *names: str) -> list[dict[str, Any]]:
        """The log lines whose `event` is one of `names`."""
        return [line for line in self.lines() if line.get("event") in names]

    def tail(self, count: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-count:])


# ---------------------------------------------------------------- metrics, events and queues


_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def metric_samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric `name` in a Prometheus text exposition: (labels, value)."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == name:
            found.append((dict(_LABEL.findall(match.group(2) or "")), float(match.group(3))))
    return found


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 if none)."""
    return sum(
        value
        for found, value in metric_samples(text, name)
        if all(found.get(k) == v for k, v in labels.items())
    )


def ec2_state_event(
    instance_id: str,
    state: str,
    *,
    event_id: str | None = None,
    at: datetime | None = None,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """An `EC2 Instance State-change Notification` as EventBridge delivers it to SQS."""
    when = at or datetime.now(UTC)
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:ec2:{region}:123456789012:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "state": state},
    }


async def send_bodies(sqs: Any, queue_url: str, bodies: Iterable[str]) -> int:
    """Send `bodies` in batches of 10; how many were accepted (all, or AssertionError)."""
    pending = list(bodies)
    sent = 0
    for start in range(0, len(pending), 10):
        chunk = pending[start : start + 10]
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        async with asyncio.timeout(30):
            got = await sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        assert not got.get("Failed"), got.get("Failed")
        sent += len(got.get("Successful", []))
    return sent


async def queue_depth(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages, as SQS approximates them."""
    async with asyncio.timeout(30):
        got = await sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    attrs = got["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


async def launch_instances(ec2: Any, count: int, *, stopped: bool = True) -> list[str]:
    """`count` fresh instances (stopped, unless told otherwise), in one RunInstances call."""
    async with asyncio.timeout(60):
        image = "ami-12345678"  # describe_images costs seconds in moto; any id will do
        got = await ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count)
        ids = [str(i["InstanceId"]) for i in got["Instances"]]
        if stopped:
            await ec2.stop_instances(InstanceIds=ids)
    return ids


async def instance_states(ec2: Any, instance_ids: list[str]) -> dict[str, str]:
    async with asyncio.timeout(30):
        got = await ec2.describe_instances(InstanceIds=instance_ids)
    return {
        i["InstanceId"]: i["State"]["Name"] for r in got["Reservations"] for i in r["Instances"]
    }
