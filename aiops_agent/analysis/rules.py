"""The rules analyzer: a deterministic classification of one normalized event.

It makes no network call, so `explain` runs it offline, and it is the referee when a model
advises (`--analyzer bedrock`): its plan bounds what may ever run. The order of the checks is
the policy, most certain first:

1. a call or operation that failed or was denied changed nothing (a denied destructive call
   says so: a security notice, not a recovery);
2. a read-only call changed nothing;
3. the agent's own changes (its identity, its user-agent marker, its CodeBuild recovery
   project) and trusted principals' changes are intended: the loop breaker;
4. EC2 Auto Scaling launching and terminating instances is capacity management;
5. the rule registered for the call (resource type, call name) or the event's detail-type
   (rules_ec2, rules_services, rules_events);
6. otherwise: a change of a policy, a permission or a credential -> TAMPERING, notify only;
   a destructive call -> FAILURE, notify only; any other change -> NORMAL; an AWS event of a
   kind with no rule -> what it says of itself (rules_findings.generic): notified or
   recorded, never a plan.

An archive replay keeps its classification but never clears the confidence bar on its own. An
event whose resource could not be named never carries a plan. Principal names and user agents
are attacker-controlled text: they are compared, never parsed for meaning, and clipped before
they reach a reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatchcase

import structlog

from aiops_agent.analysis import (
    rules_aws,
    rules_ec2,
    rules_events,
    rules_findings,
    rules_rds,
    rules_services,
)
from aiops_agent.analysis.rules_base import (
    CALL_RULES,
    DESTRUCTIVE_VERBS,
    EVENT_RULES,
    destructive,
    normal,
    tampering_notice,
    what,
    who,
)
from aiops_agent.aws.clients import USER_AGENT_MARKER
from aiops_agent.domain.models import Analysis, NormalizedEvent
from aiops_agent.intake.envelope import CLOUDTRAIL_DETAIL_TYPE, clip
from aiops_agent.intake.generic import GENERIC

log = structlog.get_logger(__name__)

_RULE_MODULES = (rules_aws, rules_ec2, rules_events, rules_findings, rules_rds, rules_services)
"""Imported for their registrations."""

AUTOSCALING_SERVICE = "autoscaling.amazonaws.com"
_AUTOSCALING_ROLE = re.compile(
    r"(:assumed-role/|:role/aws-service-role/autoscaling\.amazonaws\.com/)"
    r"AWSServiceRoleForAutoScaling(_[\w+=,.@-]+)?(/|$)"
)
_ASSUMED_ROLE = re.compile(r"^arn:(aws[\w-]*):sts::(\d*):assumed-role/([^/]+)/(.*)$")
_ROLE_NAME = re.compile(r"^arn:aws[\w-]*:iam::\d*:role/(?:[^/]+/)*([^/]+)$")
REPLAY_CONFIDENCE_CAP = 0.5
_DENIED = re.compile(r"(AccessDenied|Unauthorized|Forbidden|NotAuthorized)", re.IGNORECASE)
_POLICY_WORDS = (
    "Policy",
    "Permission",
    "Acl",
    "PublicAccess",
    "AccessKey",
    "LoginProfile",
    "MFADevice",
    "SSHPublicKey",
    "ServiceSpecificCredential",
    "SigningCertificate",
)
"""Words of calls that change who may do what (a policy, a grant, a credential)."""
_CHANGE_VERBS = ("Put", "Attach", "Set", "Add", "Update", "Modify", "Replace")


def codebuild_role_name(project: str) -> str:
    """The recovery project's service role, as `aiops_agent.provision.bootstrap` names it."""
    return f"{project}-codebuild"[:64]


class RulesAnalyzer:
    """Implements the `Analyzer` port; `judge` is the synchronous core."""

    name = "rules"

    def __init__(
        self,
        *,
        trusted_principals: Sequence[str] = (),
        own_principals: Sequence[str] = (),
        codebuild_project: str | None = None,
    ) -> None:
        self.trusted_principals = tuple(p.strip() for p in trusted_principals if p.strip())
        self.own_principals = tuple(p.strip() for p in own_principals if p.strip())
        project = (codebuild_project or "").strip()
        self.codebuild_project = project or None
        self._codebuild_role = codebuild_role_name(project) if project else None

    async def analyze(self, event: NormalizedEvent) -> Analysis:
        return self.judge(event)

    def judge(self, event: NormalizedEvent) -> Analysis:
        analysis = self._classify(event)
        if analysis.plan and event.details.get("resource_unknown"):
            analysis = analysis.model_copy(
                update={
                    "plan": (),
                    "reasons": (
                        *analysis.reasons,
                        "the event does not name the resource: notify only",
                    ),
                }
            )
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
        is_call = event.detail_type == CLOUDTRAIL_DETAIL_TYPE
        if event.error_code:
            return self._failed(event, action, is_call)
        if event.read_only:
            return normal(0.95, f"read-only call ({action}): nothing changed")
        intended = self._intended(event)
        if intended is not None:
            return normal(0.95, intended).model_copy(update={"intended": True})
        if self._by_autoscaling(event):
            kind = "scale-in" if action == "TerminateInstances" else "capacity change"
            return normal(
                0.9, f"{action} by EC2 Auto Scaling: expected {kind}, not recovered"
            ).model_copy(update={"intended": True})
        if is_call:
            rule = CALL_RULES.get((event.resource_type, event.action))
        else:
            rule = EVENT_RULES.get(event.detail_type)
        verdict = rule(event) if rule is not None else None
        if verdict is None:
            verdict = self._fallback(event, action, is_call)
        spoof = self._spoofed_marker(event)
        if spoof is not None:
            verdict = verdict.model_copy(update={"reasons": (*verdict.reasons, spoof)})
        return verdict

    @staticmethod
    def _failed(event: NormalizedEvent, action: str, is_call: bool) -> Analysis:
        code = clip(event.error_code, 64)
        if not is_call and event.details.get(GENERIC):
            return rules_findings.generic(event)
        if not is_call:
            return normal(0.9, f"{action} on {what(event)} failed ({code}): nothing changed")
        reason = f"{action} failed ({code}): nothing changed"
        if _DENIED.search(code) and (
            action.startswith(DESTRUCTIVE_VERBS) or (event.resource_type, action) in CALL_RULES
        ):
            return normal(
                0.95,
                f"{action} on {what(event)} by {who(event)} was denied ({code}): nothing changed",
                "security notice: a denied attempt at a destructive or configuration change",
            )
        return normal(0.95, reason)

    def _intended(self, event: NormalizedEvent) -> str | None:
        """Why this change is ours or intended, or None. The loop breaker."""
        candidates = self._principal_candidates(event)
        own = _first_match(self.own_principals, candidates)
        if own is not None:
            return f"change made by the agent itself ({who(event)}): not recovered again"
        if self._codebuild_role is not None and self._by_our_codebuild(event, candidates):
            return (
                f"change made by the agent's recovery project {clip(self.codebuild_project, 64)} "
                f"({who(event)}): not recovered again"
            )
        if self._marked(event) and not self.own_principals:
            return (
                f"change made by the agent itself (user agent {USER_AGENT_MARKER}): not recovered"
            )
        trusted = _first_match(self.trusted_principals, candidates)
        if trusted is not None:
            return (
                f"change by trusted principal {who(event)} (matches {clip(trusted, 160)}): "
                "intended, not recovered"
            )
        return None

    def _by_our_codebuild(self, event: NormalizedEvent, candidates: Sequence[str]) -> bool:
        """Our recovery project's builds: its service role, or (identity unknown) its marks."""
        for candidate in candidates:
            match = _ROLE_NAME.match(candidate)
            if match is not None and match.group(1) == self._codebuild_role:
                return True
        if self.own_principals:
            return False  # the identity is known: a user agent alone proves nothing
        agent = (event.user_agent or "").lower()
        project = (self.codebuild_project or "").lower()
        return "codebuild" in agent and project in agent

    @staticmethod
    def _fallback(event: NormalizedEvent, action: str, is_call: bool) -> Analysis:
        if not is_call and event.details.get(GENERIC):
            return rules_findings.generic(event)
        if not is_call:
            return normal(
                0.5,
                f"no rule for '{clip(event.detail_type, 80)}' from {clip(event.source, 64)} yet: "
                "recorded, no action",
            )
        if action.startswith((*_CHANGE_VERBS, *DESTRUCTIVE_VERBS, "Detach", "Create")) and any(
            w in action for w in _POLICY_WORDS
        ):
            return tampering_notice(event, "changed a policy, permission or credential")
        if action.startswith(DESTRUCTIVE_VERBS):
            return destructive(
                event,
                f"{action} by {who(event)} on {what(event)}",
                f"no automated recovery for {clip(event.resource_type, 32)} ({action}): "
                "notify only",
                confidence=0.85,
            )
        return normal(0.6, f"unrecognised change {action} on {what(event)}: recorded, no action")

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
                f"user agent claims {USER_AGENT_MARKER} but {who(event)} is not the agent's "
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
                partition, account, role, _session = match.groups()
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
