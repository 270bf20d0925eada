"""Settings, read once from the environment (prefix `AIOPS_`), as CONTRACT.md names them."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aiops_agent.domain.autonomy import AutonomySettings
from aiops_agent.domain.machine import Policy
from aiops_agent.domain.models import Autonomy
from aiops_agent.engine.planner import PlannerConfig
from aiops_agent.engine.runner import RunnerConfig

TIERS = ("critical", "standard", "low")


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


MIN_CONSOLE_TOKEN = 16
"""A console token shorter than this is refused at start: it guards approvals of recoveries."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIOPS_", extra="ignore", frozen=True)

    aws_endpoint_url: str | None = None
    region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    queue_url: str | None = None
    incident_table: str = "aiops-incidents"
    patterns_table: str = "aiops-patterns"
    sns_topic_arn: str | None = None
    codebuild_project: str = "aiops-recovery"
    cooldown_minutes: float = Field(default=5, ge=0)
    confidence_threshold: float = Field(default=0.8, ge=0, le=1)
    anomaly_threshold: float = Field(default=3.0, gt=0)
    failure_probability_threshold: float = Field(default=0.7, ge=0, le=1)
    log_groups: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_poll_seconds: float = Field(default=300, gt=0)
    analyzer: Literal["rules", "bedrock"] = "rules"
    model_id: str = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    mode: Literal["active", "shadow"] = "active"
    http_port: int = Field(default=8080, ge=0, le=65535)
    trusted_principals: Annotated[list[str], NoDecode] = Field(default_factory=list)
    console_auth: Literal["off", "token", "alb-oidc"] = "off"
    console_token: SecretStr | None = None
    console_alb_arn: str | None = None
    console_url: str | None = None
    default_autonomy: Literal["off", "notify", "ask", "act"] = "act"
    tier_cooldowns: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    """Cooldown minutes by `aiops:tier`; a tier not named keeps its default (critical 10,
    standard `AIOPS_COOLDOWN_MINUTES`, low 2)."""
    change_calendars: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Added beyond CONTRACT.md (add, don't rename):
    http_host: str = "127.0.0.1"
    incident_ttl_days: int = Field(default=90, gt=0)
    max_concurrency: int = Field(default=10, ge=1, le=100)
    receive_wait_seconds: int = Field(default=20, ge=0, le=20)
    visibility_timeout_seconds: int = Field(default=120, ge=10, le=43200)
    sweep_seconds: float = Field(default=10, gt=0)
    step_lease_seconds: float = Field(default=90, gt=0)
    """How long a step is its worker's: a recovery step is given at most 90% of it, so no other
    worker resumes a step still running; with the sweep period it bounds how soon a dead
    replica's incident is resumed (90 s + 10 s < 2 min)."""
    verify_timeout_seconds: float = Field(default=600, gt=0)
    verify_interval_seconds: float = Field(default=10, gt=0)
    drain_seconds: float = Field(default=20, gt=0, le=28)
    retry_base_seconds: float = Field(default=5, gt=0)
    retry_max_seconds: float = Field(default=300, gt=0, le=43200)
    """A message whose handler failed comes back after base * 4^(n-1) s (n: its receive count),
    at most the max: with maxReceiveCount 5 an outage of several minutes dead-letters nothing."""
    aws_max_attempts: int = Field(default=5, ge=1, le=20)
    bedrock_endpoint_url: str | None = None
    bedrock_timeout_seconds: float = Field(default=20, gt=0)
    bedrock_breaker_failures: int = Field(default=5, ge=1)
    bedrock_breaker_cool_off_seconds: float = Field(default=60, gt=0)
    bedrock_cache_seconds: float = Field(default=300, ge=0)
    max_attempts: int = Field(default=3, ge=1, le=10)
    attempt_window_minutes: float = Field(default=60, gt=0)
    breaker_threshold: int = Field(default=10, ge=1)
    breaker_window_minutes: float = Field(default=5, gt=0)
    review_timeout_minutes: float = Field(default=1440, gt=0)
    attribution_grace_seconds: float = Field(default=120, ge=0)
    """How long a change that AWS reports without its author (an EC2 state change, a Parameter
    Store Change) waits, counted from the change, for its CloudTrail record before the agent
    acts: a trusted principal's call closes the incident (a deploy is not undone), anyone
    else's lets it go on. 0 acts at once."""
    console_alb_keys_url: str | None = None
    """Where `alb-oidc` fetches the ALB's public keys (`{url}/{kid}`); unset: the region's
    `https://public-keys.auth.elb.{region}.amazonaws.com`. For tests and partitions."""
    console_session_hours: float = Field(default=12, gt=0, le=168)
    """How long a console sign-in lasts (token auth)."""
    log_source: Literal["auto", "insights", "filter"] = "auto"
    """Where the log analyzer counts: Logs Insights (`insights`), FilterLogEvents (`filter`), or
    `auto`: Insights on AWS, FilterLogEvents on an emulator endpoint (whose Insights ignores
    `filter` and `stats`)."""
    control_refresh_seconds: float = Field(default=15, gt=0, le=30)
    """How old a replica's copy of the silences, freezes and pause may be (the pause reaches
    every replica within this, and CONTRACT.md promises 30 s)."""
    tags_cache_seconds: float = Field(default=60, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("tier_cooldowns", mode="before")
    @classmethod
    def _tiers(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        tiers: dict[str, float] = {}
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            name, sep, minutes = part.partition("=")
            name = name.strip().lower()
            if not sep or name not in TIERS:
                raise ValueError(
                    f"{part!r} is not TIER=MINUTES with TIER one of {', '.join(TIERS)}"
                )
            try:
                tiers[name] = float(minutes)
            except ValueError:
                raise ValueError(f"{part!r}: {minutes.strip()!r} is not a number") from None
            if tiers[name] < 0:
                raise ValueError(f"{part!r}: minutes cannot be negative")
        return tiers

    @field_validator("log_groups", "trusted_principals", "change_calendars", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("console_auth", "default_autonomy", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    def check_console(self) -> None:
        """The console's settings that depend on each other; SettingsError naming the variable."""
        if self.console_auth == "token":
            token = self.console_token.get_secret_value() if self.console_token else ""
            if not token:
                raise SettingsError(
                    "invalid setting AIOPS_CONSOLE_TOKEN: required with AIOPS_CONSOLE_AUTH=token"
                )
            if len(token) < MIN_CONSOLE_TOKEN:
                raise SettingsError(
                    f"invalid setting AIOPS_CONSOLE_TOKEN: at least {MIN_CONSOLE_TOKEN} "
                    "characters (use a random secret, e.g. `openssl rand -hex 32`)"
                )
        if self.console_auth == "alb-oidc":
            arn = self.console_alb_arn or ""
            if not arn:
                raise SettingsError(
                    "invalid setting AIOPS_CONSOLE_ALB_ARN: "
                    "required with AIOPS_CONSOLE_AUTH=alb-oidc"
                )
            if not arn.startswith("arn:") or ":loadbalancer/app/" not in arn:
                raise SettingsError(
                    "invalid setting AIOPS_CONSOLE_ALB_ARN: not an Application Load Balancer ARN "
                    f"(got {arn!r})"
                )
        if self.console_url is not None and not self.console_url.startswith(
            ("https://", "http://")
        ):
            raise SettingsError(
                f"invalid setting AIOPS_CONSOLE_URL: not an http(s) URL (got {self.console_url!r})"
            )

    def policy(self) -> Policy:
        return Policy(
            confidence_threshold=self.confidence_threshold,
            verify_timeout=timedelta(seconds=self.verify_timeout_seconds),
            verify_interval=timedelta(seconds=self.verify_interval_seconds),
            review_timeout=timedelta(minutes=self.review_timeout_minutes),
            shadow=self.mode == "shadow",
        )

    def cooldowns(self) -> dict[str, float]:
        """Minutes by tier: the defaults, `AIOPS_COOLDOWN_MINUTES` for standard, then ours."""
        defaults = {"critical": 10.0, "standard": self.cooldown_minutes, "low": 2.0}
        return {**defaults, **self.tier_cooldowns}

    def autonomy(self, account: str | None = None) -> AutonomySettings:
        return AutonomySettings(
            default_autonomy=Autonomy(self.default_autonomy),
            tier_cooldowns=self.cooldowns(),
            account=account,
        )

    def runner_config(self) -> RunnerConfig:
        lease = self.step_lease_seconds
        return RunnerConfig(
            command_timeout=min(45.0, lease * 0.9),
            execute_timeout=min(80.0, lease * 0.9),
            console_url=self.console_url,
        )

    def planner_config(self) -> PlannerConfig:
        return PlannerConfig(
            max_attempts=self.max_attempts,
            attempt_window=timedelta(minutes=self.attempt_window_minutes),
            backoff_base=timedelta(minutes=self.cooldown_minutes),
            lease_ttl=timedelta(seconds=self.verify_timeout_seconds + 300),
            breaker_threshold=self.breaker_threshold,
            breaker_window=timedelta(minutes=self.breaker_window_minutes),
            attribution_grace=timedelta(seconds=self.attribution_grace_seconds),
        )


def _env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    if field == "region":
        return "AWS_REGION" if "AWS_REGION" in os.environ else "AWS_DEFAULT_REGION"
    if field.startswith("AWS_"):
        return field
    return f"AIOPS_{field.upper()}"


def load_settings(**overrides: object) -> Settings:
    """Read the settings; a bad value raises `SettingsError` with one line naming the variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        name = _env_name(tuple(err.get("loc", ())))
        raw = err.get("input")
        shown = f" (got {raw!r})" if isinstance(raw, str | int | float) else ""
        raise SettingsError(f"invalid setting {name}: {err['msg']}{shown}") from None
    settings.check_console()
    return settings
