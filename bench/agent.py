"""`python -m bench.agent`: `aiops-agent run`, with recovery actions that succeed at once.

Everything else is the production daemon: settings from the environment, the rules analyzer,
the DynamoDB store and coordination, SNS, the SQS consumer, the sweeper, the HTTP server, JSON
log lines on stdout. Only the catalog differs, so that no EC2 instance is needed and an action's
own duration does not enter the pipeline's figures.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiops_agent.app import run_daemon
from aiops_agent.domain.models import PlanStep
from aiops_agent.domain.ports import Action, CheckOutcome, StepOutcome
from aiops_agent.obs.logs import configure_logging
from aiops_agent.settings import SettingsError, load_settings

INSTANT_ACTIONS: tuple[tuple[str, str], ...] = (
    ("ec2.start_instances", "ec2"),
    ("iac.restore", "ec2"),
)


@dataclass
class InstantAction:
    """An action that succeeds at once and verifies at once."""

    name: str
    resource_type: str
    description: str = "succeeds at once (benchmark)"
    permissions: tuple[str, ...] = ()

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
        return StepOutcome(ok=True, detail="done (instant)", result={"token": idempotency_token})

    async def verify(self, params: Mapping[str, Any], result: Mapping[str, Any]) -> CheckOutcome:
        return CheckOutcome("PASSED", "verified (instant)", [{"check": "instant", "ok": True}])

    async def dry_run(self, params: Mapping[str, Any]) -> str:
        return f"would run {self.name} (instant)"

    async def precheck(self, params: Mapping[str, Any]) -> str | None:
        return None


class InstantCatalog:
    """Implements `ActionCatalog` with `InstantAction`s under the built-in actions' names."""

    def __init__(self, actions: tuple[tuple[str, str], ...] = INSTANT_ACTIONS) -> None:
        self._actions = {name: InstantAction(name, rtype) for name, rtype in actions}

    def get(self, name: str) -> Action:
        return self._actions[name]

    def validate(self, step: PlanStep) -> PlanStep:
        self.get(step.action)
        return step

    def requires_approval(self, name: str) -> bool:
        self.get(name)
        return False


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"bench.agent: {exc}", file=sys.stderr)
        return 2
    configure_logging(level=settings.log_level, fmt=settings.log_format, stream=sys.stdout)
    return asyncio.run(run_daemon(settings, catalog=InstantCatalog()))


if __name__ == "__main__":
    sys.exit(main())
