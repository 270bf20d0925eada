"""The moving parts of a benchmark run: the emulator, the daemon as a child process, the feeders.

The daemon runs as its own process (`python -m bench.agent`, which is `aiops-agent run` with an
action catalog whose actions succeed at once), so its resident size is its own and it does not
share a CPU with the feeder. Its counters are read from its `/metrics` endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog
from prometheus_client.parser import text_string_to_metric_families

from aiops_agent.aws.clients import AwsClients
from aiops_agent.demo.emulator import DUMMY_CREDENTIALS, MotoServer, free_port
from aiops_agent.provision.bootstrap import bootstrap
from aiops_agent.settings import Settings
from bench.common import Feed

log = structlog.get_logger(__name__)

Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]

AWS_ENV = {**DUMMY_CREDENTIALS, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
DEFAULT_DEPTH = 40
"""Messages outstanding (sent, not yet deleted) that the closed-loop feeder keeps: shallow."""
BATCH = 10


# ---------------------------------------------------------------- metrics text


def parse_metrics(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = float(sample.value)
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and wanted <= set(lab))


def delta(after: Samples, before: Samples) -> Samples:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def aws_calls(samples: Samples) -> dict[str, float]:
    """`service:Operation` -> calls, from `aiops_aws_api_calls_total` (all outcomes)."""
    calls: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if name != "aiops_aws_api_calls_total" or not value:
            continue
        lab = dict(labels)
        key = f"{lab['service']}:{lab['operation']}"
        calls[key] = calls.get(key, 0.0) + value
    return dict(sorted(calls.items()))


def rss_mib(pid: int) -> dict[str, float]:
    """Resident (`VmRSS`) and peak resident (`VmHWM`) size of a process, in MiB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found["rss_mib" if key == "VmRSS" else "peak_rss_mib"] = round(
                int(value.split()[0]) / 1024, 1
            )
    return found


# ---------------------------------------------------------------- the emulator and resources


@dataclass
class Stack:
    server: MotoServer
    settings: Settings
    queue_url: str
    topic_arn: str

    @property
    def endpoint(self) -> str:
        return self.server.url

    def agent_env(self, http_port: int, **extra: str) -> dict[str, str]:
        env = {
            **AWS_ENV,
            "AIOPS_AWS_ENDPOINT_URL": self.endpoint,
            "AIOPS_QUEUE_URL": self.queue_url,
            "AIOPS_SNS_TOPIC_ARN": self.topic_arn,
            "AIOPS_INCIDENT_TABLE": self.settings.incident_table,
            "AIOPS_PATTERNS_TABLE": self.settings.patterns_table,
            "AIOPS_CODEBUILD_PROJECT": self.settings.codebuild_project,
            "AIOPS_HTTP_PORT": str(http_port),
            "AIOPS_LOG_FORMAT": "json",
            # Every recovery here is a fresh instance: the mass-failure breaker would (rightly)
            # stop a flood of them, which is not what a throughput figure measures.
            "AIOPS_BREAKER_THRESHOLD": "1000000000",
            # The "recovered" events are EC2 state changes, which carry no author: in production
            # they wait (AIOPS_ATTRIBUTION_GRACE_SECONDS) for their CloudTrail record. Throughput
            # and latency here measure the pipeline, not that deliberate wait.
            "AIOPS_ATTRIBUTION_GRACE_SECONDS": "0",
        }
        return {**env, **extra}


@contextlib.asynccontextmanager
async def stack(prefix: str = "bench") -> AsyncIterator[Stack]:
    """A fresh moto server with the agent's resources bootstrapped; stopped on exit."""
    os.environ.update(AWS_ENV)
    server = MotoServer()
    await asyncio.to_thread(server.start)
    try:
        tag = f"{prefix}-{uuid.uuid4().hex[:6]}"
        settings = Settings(
            aws_endpoint_url=server.url,
            incident_table=f"{tag}-incidents",
            patterns_table=f"{tag}-patterns",
            codebuild_project=f"{tag}-recovery",
        )
        async with AwsClients(endpoint_url=server.url, max_attempts=3) as clients:
            async with asyncio.timeout(180):
                made = await bootstrap(
                    clients,
                    settings,
                    queue_name=f"{tag}-events",
                    rule_name=f"{tag}-rule",
                    topic_name=f"{tag}-topic",
                )
        yield Stack(server, settings, made.queue_url, made.sns_topic_arn)
    finally:
        await asyncio.to_thread(server.stop)


# ---------------------------------------------------------------- the daemon as a child


class AgentChild:
    """`python -m bench.agent` with its JSON log in a file, `/metrics` and its RSS."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path, log: IO[bytes]):
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self._log = log

    @classmethod
    def start(
        cls, stack_: Stack, log_path: Path, module: str = "bench.agent", **extra_env: str
    ) -> AgentChild:
        """`python -m bench.agent`, or with module="aiops_agent" the production `run`.

        An `extra_env` value of "" unsets that variable: the daemon's own default applies.
        """
        port = free_port()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("wb")
        env = {**os.environ, **stack_.agent_env(port, **extra_env)}
        env = {k: v for k, v in env.items() if not (k in extra_env and v == "")}
        command = [sys.executable, "-m", module, *(["run"] if module == "aiops_agent" else [])]
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=str(Path(__file__).resolve().parents[1]),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return cls(proc, port, log_path, log_file)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}{path}", timeout=timeout
            ) as r:
                return int(r.status), r.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), ""

    async def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the agent exited {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(OSError):
                status, _ = await asyncio.to_thread(self._get, "/readyz", 1.0)
                if status == 200:
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the agent was not ready within {within:.0f}s: {self.tail()}")

    async def metrics(self) -> Samples:
        _, text = await asyncio.to_thread(self._get, "/metrics")
        return parse_metrics(text)

    def rss(self) -> dict[str, float]:
        return rss_mib(self.pid)

    def log_bytes(self) -> int:
        self._log.flush()
        return self.log_path.stat().st_size

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def stop(self, within: float = 40.0) -> int:
        """SIGTERM and wait: the daemon drains and exits 0 (SIGKILL after `within`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = await asyncio.to_thread(self.proc.wait)
        self._log.close()
        return int(code)


@contextlib.asynccontextmanager
async def agent(
    stack_: Stack, log_path: Path, module: str = "bench.agent", **extra_env: str
) -> AsyncIterator[AgentChild]:
    child = AgentChild.start(stack_, log_path, module, **extra_env)
    try:
        await child.wait_ready()
        yield child
    finally:
        code = await child.stop()
        if code != 0:
            log.warning("bench.agent_exit", code=code)


async def sample_rss(child: AgentChild, into: list[float], stop: asyncio.Event) -> None:
    """Append the child's RSS (MiB) to `into` once a second until `stop`."""
    while not stop.is_set():
        into.append(child.rss()["rss_mib"])
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await stop.wait()


async def deleted(child: AgentChild) -> int:
    """Messages the daemon deleted (handled) so far."""
    return int(total(await child.metrics(), "aiops_sqs_messages_total", outcome="deleted"))


# ---------------------------------------------------------------- feeders


@dataclass
class FeedLog:
    """When each message was visible (the send returned, by `Feed.key`), and the feeder's own
    figures."""

    sent_at: dict[str, float] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0
    max_outstanding: int = 0
    sends: int = 0

    @property
    def seconds(self) -> float:
        return self.finished - self.started


async def send_batch(sqs: Any, queue_url: str, feeds: Sequence[Feed], log_: FeedLog) -> None:
    entries = [{"Id": str(i), "MessageBody": f.body} for i, f in enumerate(feeds)]
    async with asyncio.timeout(30):
        response = await sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    if response.get("Failed"):
        raise RuntimeError(f"send_message_batch failed: {response['Failed']}")
    now = time.time()
    log_.sends += 1
    for feed in feeds:
        log_.sent_at.setdefault(feed.key, now)


async def feed_closed_loop(
    sqs: Any,
    queue_url: str,
    feeds: Sequence[Feed],
    done: Callable[[], Awaitable[int]],
    *,
    depth: int = DEFAULT_DEPTH,
    poll: float = 0.1,
    within: float = 900.0,
) -> FeedLog:
    """Send `feeds` in batches of 10, never more than `depth` outstanding; return when all are
    done (`done()` counts the handled messages of this feed, starting from 0)."""
    log_ = FeedLog(started=time.time())
    sent = 0
    async with asyncio.timeout(within):
        while True:
            handled = await done()
            outstanding = sent - handled
            log_.max_outstanding = max(log_.max_outstanding, outstanding)
            if handled >= len(feeds):
                break
            while sent < len(feeds) and outstanding + BATCH <= depth:
                batch = feeds[sent : sent + BATCH]
                await send_batch(sqs, queue_url, batch, log_)
                sent += len(batch)
                outstanding += len(batch)
            await asyncio.sleep(poll)
    log_.finished = time.time()
    return log_


async def feed_open_loop(
    sqs: Any,
    queue_url: str,
    feeds: Sequence[Feed],
    rate: float,
    *,
    tick: float = 0.05,
    observe: Callable[[int], Awaitable[None]] | None = None,
) -> FeedLog:
    """Send `feeds` at `rate` per second whatever the consumer does (batches of up to 10 every
    `tick`); `observe(sent)` is called once a second."""
    log_ = FeedLog(started=time.time())
    sent = 0
    next_observe = time.monotonic() + 1.0
    start = time.monotonic()
    while sent < len(feeds):
        due = min(len(feeds), int((time.monotonic() - start) * rate) + 1)
        while sent < due:
            batch = feeds[sent : min(due, sent + BATCH)]
            await send_batch(sqs, queue_url, batch, log_)
            sent += len(batch)
        if observe is not None and time.monotonic() >= next_observe:
            next_observe += 1.0
            await observe(sent)
        await asyncio.sleep(tick)
    log_.finished = time.time()
    return log_


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], within: float, interval: float = 0.25
) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {within:.0f}s")
        await asyncio.sleep(interval)


def env_summary(env: Mapping[str, str]) -> dict[str, str]:
    """The daemon settings a result file records (no endpoint URLs or generated names)."""
    return {k: v for k, v in sorted(env.items()) if k.startswith("AIOPS_") and "URL" not in k}
