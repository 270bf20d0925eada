"""The rules analyzer: a deterministic classification of one normalized event.

It makes no network call, so `explain` runs it offline, and it is the referee when a model
advises (`--analyzer bedrock`): its plan bounds what may ever run. The order of the checks is
the policy, most certain first:

1. a call that failed or was denied changed nothing;
2. a read-only call changed nothing;
3. the agent's own changes and trusted principals' changes are intended (the loop breaker);
4. EC2 Auto Scaling launching and terminating instances is capacity management;
5. EC2 instance state and lifecycle calls: stopped -> start it, terminated -> restore it;
6. any other destructive call -> FAILURE, notify only; any other change -> NORMAL.

An archive replay keeps its classification but never clears the confidence bar on its own.
Principal names and user agents are attacker-controlled text: they are compared, never parsed
for meaning, and clipped before they reach a reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatchcase

import structlog

from aiops_agent.aws.clients import USER_AGENT_MARKER
from aiops_agent.domain.models import (
    Analysis,
    Classification,
    NormalizedEvent,
    PlanStep,
    Severity,
)
from aiops_agent.intake.ec2 import EC2_SOURCE, EC2_STATE_CHANGE
from aiops_agent.intake.envelope import CLOUDTRAIL_DETAIL_TYPE, clip

log = structlog.get_logger(__name__)

AUTOSCALING_SERVICE = "autoscaling.amazonaws.com"
_AUTOSCALING_ROLE = re.compile(
    r"(:assumed-role/|:role/aws-service-role/autoscaling\.amazonaws\.com/)"
    r"AWSServiceRoleForAutoScaling(_[\w+=,.@-]+)?(/|$)"
)
_ASSUMED_ROLE = re.compile(r"^arn:(aws[\w-]*):sts::(\d*):assumed-role/([^/]+)/")
DESTRUCTIVE_VERBS = ("Delete", "Terminate", "Remove")
REPLAY_CONFIDENCE_CAP = 0.5

START_INSTANCE = "ec2.start_instances"
IAC_RESTORE = "iac.restore"

_TRANSITIONAL_STATES = frozenset({"pending", "stopping", "shutting-down"})


def _normal(confidence: float, *reasons: str) -> Analysis:
    return Analysis(
        classification=Classification.NORMAL,
        confidence=confidence,
        severity=Severity.LOW,
        reasons=reasons,
    )


def _who(event: NormalizedEvent) -> str:
    return clip(event.principal or "an unknown principal", 160)


def _is_root(event: NormalizedEvent) -> bool:
    return event.principal_type == "Root" or (event.principal or "").endswith(":root")


def start_plan(instance_id: str) -> tuple[PlanStep, ...]:
    return (
        PlanStep(
            action=START_INSTANCE,
            params={"instance_id": instance_id},
            description=f"start instance {instance_id} again",
        ),
    )


def restore_plan(resource_type: str, resource_id: str) -> tuple[PlanStep, ...]:
    return (
        PlanStep(
            action=IAC_RESTORE,
            params={"resource_type": resource_type, "resource_id": resource_id},
            description=f"restore {resource_type} {resource_id} from infrastructure as code",
        ),
    )


class RulesAnalyzer:
    """Implements the `Analyzer` port; `judge` is the synchronous core."""

    name = "rules"

    def __init__(
        self, *, trusted_principals: Sequence[str] = (), own_principals: Sequence[str] = ()
    ) -> None:
        self.trusted_principals = tuple(p.strip() for p in trusted_principals if p.strip())
        self.own_principals = tuple(p.strip() for p in own_principals if p.strip())

    async def analyze(self, event: NormalizedEvent) -> Analysis:
        return self.judge(event)

    def judge(self, event: NormalizedEvent) -> Analysis:
        analysis = self._classify(event)
        if event.replayed:
            analysis = self._as_replay(analysis, event)
        log.debug(
            "rules.judged",
            event_id=event.event_id,
            classification=analysis.classification.value,
            confidence=analysis.confidence,
            steps=len(analysis.plan),
        )
        return analysis

    # ------------------------------------------------------------ the policy, in order

    def _classify(self, event: NormalizedEvent) -> Analysis:
        action = clip(event.action, 128)
        if event.error_code:
            return _normal(0.95, f"call failed ({clip(event.error_code, 64)}): nothing changed")
        if event.read_only:
            return _normal(0.95, f"read-only call ({action}): nothing changed")
        intended = self._intended(event)
        if intended is not None:
            return _normal(0.95, intended)
        if self._by_autoscaling(event):
            what = "scale-in" if action == "TerminateInstances" else "capacity change"
            return _normal(0.9, f"{action} by EC2 Auto Scaling: expected {what}, not recovered")
        verdict = self._ec2(event, action)
        if verdict is None:
            verdict = self._fallback(event, action)
        spoof = self._spoofed_marker(event)
        if spoof is not None:
            verdict = verdict.model_copy(update={"reasons": (*verdict.reasons, spoof)})
        return verdict

    def _intended(self, event: NormalizedEvent) -> str | None:
        """Why this change is ours or intended, or None. The loop breaker."""
        candidates = self._principal_candidates(event)
        own = _first_match(self.own_principals, candidates)
        if own is not None:
            return f"change made by the agent itself ({_who(event)}): not recovered again"
        if self._marked(event) and not self.own_principals:
            return (
                f"change made by the agent itself (user agent {USER_AGENT_MARKER}): not recovered"
            )
        trusted = _first_match(self.trusted_principals, candidates)
        if trusted is not None:
            return (
                f"change by trusted principal {_who(event)} (matches {clip(trusted, 160)}): "
                "intended, not recovered"
            )
        return None

    def _ec2(self, event: NormalizedEvent, action: str) -> Analysis | None:
        if event.resource_type != "ec2":
            return None
        iid = clip(event.resource_id, 64)
        if event.source == EC2_SOURCE and event.detail_type == EC2_STATE_CHANGE:
            state = str(event.details.get("state") or action.removeprefix("state:"))
            if state == "stopped":
                return Analysis(
                    classification=Classification.FAILURE,
                    confidence=0.95,
                    severity=Severity.HIGH,
                    reasons=(f"instance {iid} is stopped", "plan: start it again"),
                    plan=start_plan(event.resource_id),
                )
            if state == "terminated":
                return Analysis(
                    classification=Classification.FAILURE,
                    confidence=0.95,
                    severity=Severity.HIGH,
                    reasons=(f"instance {iid} is terminated", "plan: restore it from IaC"),
                    plan=restore_plan("ec2", event.resource_id),
                )
            if state in _TRANSITIONAL_STATES:
                return _normal(
                    0.9, f"instance {iid} is {state}: transitional, the final state decides"
                )
            if state == "running":
                return _normal(0.95, f"instance {iid} is running: healthy")
            return _normal(0.5, f"instance {iid} reported unknown state {clip(state, 32)}")
        if event.detail_type != CLOUDTRAIL_DETAIL_TYPE:
            return None
        if action == "StopInstances":
            return self._destructive(
                event,
                f"{action} by {_who(event)} stopped instance {iid}",
                "plan: start it again",
                start_plan(event.resource_id),
            )
        if action == "TerminateInstances":
            return self._destructive(
                event,
                f"{action} by {_who(event)} terminated instance {iid}",
                "plan: restore it from IaC",
                restore_plan("ec2", event.resource_id),
            )
        if action in ("StartInstances", "RunInstances"):
            return _normal(
                0.9, f"{action} on instance {iid}: a start or launch, nothing to recover"
            )
        return None

    def _destructive(
        self, event: NormalizedEvent, what: str, then: str, plan: tuple[PlanStep, ...]
    ) -> Analysis:
        reasons = [what]
        severity = Severity.HIGH
        if _is_root(event):
            severity = Severity.CRITICAL
            reasons.append("done with the account's root user: critical")
        reasons.append(then)
        return Analysis(
            classification=Classification.FAILURE,
            confidence=0.9,
            severity=severity,
            reasons=tuple(reasons),
            plan=plan,
        )

    def _fallback(self, event: NormalizedEvent, action: str) -> Analysis:
        if event.detail_type != CLOUDTRAIL_DETAIL_TYPE:
            return _normal(
                0.5,
                f"no rule for '{clip(event.detail_type, 80)}' from {clip(event.source, 64)} yet: "
                "recorded, no action",
            )
        resource = f"{clip(event.resource_type, 32)} {clip(event.resource_id, 128)}"
        if action.startswith(DESTRUCTIVE_VERBS):
            return self._destructive(
                event,
                f"{action} by {_who(event)} on {resource}",
                f"no automated recovery for {clip(event.resource_type, 32)} ({action}): "
                "notify only",
                (),
            ).model_copy(update={"confidence": 0.85})
        return _normal(0.6, f"unrecognised change {action} on {resource}: recorded, no action")

    def _as_replay(self, analysis: Analysis, event: NormalizedEvent) -> Analysis:
        name = clip(event.details.get("replay_name") or "unnamed", 64)
        return analysis.model_copy(
            update={
                "confidence": min(analysis.confidence, REPLAY_CONFIDENCE_CAP),
                "reasons": (
                    *analysis.reasons,
                    f"archive replay ({name}): an old event re-delivered, "
                    "not remediated blindly: manual review",
                ),
                "requires_approval": analysis.requires_approval or bool(analysis.plan),
            }
        )

    # ------------------------------------------------------------ identity helpers

    @staticmethod
    def _marked(event: NormalizedEvent) -> bool:
        return USER_AGENT_MARKER in (event.user_agent or "").lower()

    def _spoofed_marker(self, event: NormalizedEvent) -> str | None:
        """The marker is only believed alone when the agent's identity is not configured."""
        if self._marked(event) and self.own_principals:
            return (
                f"user agent claims {USER_AGENT_MARKER} but {_who(event)} is not the agent's "
                "identity: judged like anyone's change"
            )
        return None

    @staticmethod
    def _principal_candidates(event: NormalizedEvent) -> tuple[str, ...]:
        """The principal, the role behind an assumed-role session, and the session issuer."""
        found: list[str] = []
        if event.principal:
            found.append(event.principal)
            match = _ASSUMED_ROLE.match(event.principal)
            if match is not None:
                partition, account, role = match.groups()
                found.append(f"arn:{partition}:iam::{account}:role/{role}")
        issuer = event.details.get("session_issuer")
        if isinstance(issuer, str) and issuer:
            found.append(issuer)
        return tuple(found)

    def _by_autoscaling(self, event: NormalizedEvent) -> bool:
        if event.invoked_by == AUTOSCALING_SERVICE:
            return True
        return any(_AUTOSCALING_ROLE.search(c) for c in self._principal_candidates(event))


def _first_match(patterns: Sequence[str], candidates: Sequence[str]) -> str | None:
    for pattern in patterns:
        if any(fnmatchcase(candidate, pattern) for candidate in candidates):
            return pattern
    return None
