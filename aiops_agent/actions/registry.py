"""The action catalog: recovery actions registered per resource type, Cloud Custodian style.

An action is a class deriving from `BaseAction` that declares, as class attributes, the resource
types it applies to, a description, the IAM actions it needs and a pydantic model of its
parameters; `@CATALOG.register("service.verb")` records it. The registry knows the catalog
without any AWS client; `bind(deps)` instantiates every action with its dependencies for the
executor. The Terraform task-role policy and the docs are generated from `permissions()`.

    @CATALOG.register("ec2.start_instances")
    class StartInstances(BaseAction[StartInstancesParams]):
        resource_types = ("ec2",)
        permissions = ("ec2:DescribeInstances", "ec2:StartInstances")
        params_model = StartInstancesParams
        ...
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from aiops_agent.actions.common import Region, error_code, token_digest
from aiops_agent.aws.clients import AwsClients
from aiops_agent.domain.models import PlanStep
from aiops_agent.domain.ports import Action, CheckOutcome, StepOutcome

__all__ = [
    "CATALOG",
    "ActionDeps",
    "ActionRegistry",
    "ActionSpec",
    "ActionValidationError",
    "BaseAction",
    "BoundCatalog",
    "InvalidParamsError",
    "Region",
    "UnknownActionError",
    "describe_catalog",
    "error_code",
    "load_builtin_actions",
    "token_digest",
]

P = TypeVar("P", bound=BaseModel)
A = TypeVar("A", bound="type[BaseAction[Any]]")

_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._][a-z0-9]+)+$")
_PERMISSION_RE = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")

BUILTIN_MODULES: tuple[str, ...] = (
    "aiops_agent.actions.ec2",
    "aiops_agent.actions.ecs",
    "aiops_agent.actions.iac",
    "aiops_agent.actions.security_groups",
    "aiops_agent.actions.ssm",
)
"""Modules whose import registers the built-in actions into `CATALOG`."""


class ActionValidationError(ValueError):
    """A plan step names no catalog action, or its parameters do not fit the action."""


class UnknownActionError(ActionValidationError, KeyError):
    """No catalog action has this name (a ValueError for planners, a KeyError for lookups)."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.message = f"unknown action {name!r}; the catalog has: {', '.join(known) or 'none'}"
        super().__init__(self.message)
        self.name = name

    def __str__(self) -> str:
        return self.message


class InvalidParamsError(ActionValidationError):
    def __init__(self, name: str, error: ValidationError) -> None:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in error.errors()
        )
        super().__init__(f"invalid params for {name}: {problems}")
        self.name = name


@dataclass(frozen=True)
class ActionDeps:
    """What actions are built with. Add fields with defaults; actions take what they need."""

    clients: AwsClients
    codebuild_project: str = "aiops-recovery"
    iac_tags_ec2: bool = True
    """The recovery project tags an instance it recreates `aiops:restored-from=<old id>`, so
    `iac.restore` verifies that instance; False: the build's success is all it can check."""
    verify_timeout_seconds: float = 600.0
    """How long verification waits (`AIOPS_VERIFY_TIMEOUT_SECONDS`): an action whose work goes
    on in AWS (a CodeBuild build) stops it before verification gives up on it."""
    extra: Mapping[str, Any] = field(default_factory=dict)


class BaseAction(Generic[P]):
    """Base class of catalog actions; subclasses set the class attributes and the three methods."""

    name: str = ""
    resource_type: str = ""
    """The primary resource type (`Action.resource_type`); `resource_types` lists all of them."""
    resource_types: tuple[str, ...] = ()
    description: str = ""
    permissions: tuple[str, ...] = ()
    requires_approval: bool = False
    """True for actions that must never run without a person's approval (ECS redeploy, reboot)."""
    params_model: type[P]

    def __init__(self, deps: ActionDeps) -> None:
        self.deps = deps

    def parse(self, params: Mapping[str, Any]) -> P:
        try:
            return self.params_model.model_validate(dict(params))
        except ValidationError as exc:
            raise InvalidParamsError(self.name, exc) from None

    async def execute(self, params: Mapping[str, Any], idempotency_token: str) -> StepOutcome:
        raise NotImplementedError

    async def verify(self, params: Mapping[str, Any], result: Mapping[str, Any]) -> CheckOutcome:
        raise NotImplementedError

    async def precheck(self, params: Mapping[str, Any]) -> str | None:
        """Why the action is not needed (None: it is). Default: always needed."""
        return None

    async def dry_run(self, params: Mapping[str, Any]) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class ActionSpec:
    """What the catalog knows about one action, without building it."""

    name: str
    resource_types: tuple[str, ...]
    description: str
    permissions: tuple[str, ...]
    params_model: type[BaseModel]
    factory: Callable[[ActionDeps], Action]
    requires_approval: bool = False

    @property
    def resource_type(self) -> str:
        return self.resource_types[0]

    def params_schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()


class ActionRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec] = {}

    def register(self, name: str) -> Callable[[A], A]:
        """Class decorator: record `cls` under `name` (which is also set as `cls.name`)."""

        def decorate(cls: A) -> A:
            if not _NAME_RE.match(name):
                raise ValueError(f"action name {name!r} must look like 'service.verb_object'")
            if name in self._specs:
                raise ValueError(f"action {name!r} is already registered")
            types = tuple(cls.resource_types) or ((cls.resource_type,) if cls.resource_type else ())
            if not types:
                raise ValueError(f"action {name!r} declares no resource type")
            if not cls.permissions:
                raise ValueError(f"action {name!r} declares no IAM permissions")
            for perm in cls.permissions:
                if "*" in perm or not _PERMISSION_RE.match(perm):
                    raise ValueError(f"action {name!r}: {perm!r} is not one IAM action")
            params_model = getattr(cls, "params_model", None)
            if not (isinstance(params_model, type) and issubclass(params_model, BaseModel)):
                raise ValueError(f"action {name!r} declares no pydantic params_model")
            cls.name = name
            if not cls.resource_type:
                cls.resource_type = types[0]
            cls.resource_types = types
            self._specs[name] = ActionSpec(
                name=name,
                resource_types=types,
                description=cls.description,
                permissions=tuple(cls.permissions),
                params_model=params_model,
                factory=cls,
                requires_approval=bool(cls.requires_approval),
            )
            return cls

        return decorate

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._specs))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ActionSpec]:
        return iter(self._specs[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._specs)

    def spec(self, name: str) -> ActionSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownActionError(name, self.names()) from None

    def requires_approval(self, name: str) -> bool:
        """Whether `name` must wait for a person's approval; UnknownActionError if unknown."""
        return self.spec(name).requires_approval

    def for_resource(self, resource_type: str) -> list[ActionSpec]:
        """The actions that apply to `resource_type`, by name."""
        return [s for s in self if resource_type in s.resource_types]

    def validate(self, step: PlanStep) -> PlanStep:
        """`step` with its params checked and normalized by the action's model.

        Raises `UnknownActionError` or `InvalidParamsError` (both `ActionValidationError`).
        """
        spec = self.spec(step.action)
        try:
            params = spec.params_model.model_validate(step.params)
        except ValidationError as exc:
            raise InvalidParamsError(step.action, exc) from None
        return step.model_copy(
            update={
                "params": params.model_dump(mode="json", exclude_none=True),
                "description": step.description or spec.description,
            }
        )

    def permissions(self) -> list[str]:
        """Sorted union of the IAM actions every registered action needs (never a wildcard)."""
        return sorted({perm for spec in self for perm in spec.permissions})

    def build(self, deps: ActionDeps) -> dict[str, Action]:
        return {spec.name: spec.factory(deps) for spec in self}

    def bind(self, deps: ActionDeps) -> BoundCatalog:
        return BoundCatalog(self, deps)


class BoundCatalog:
    """The catalog with every action built from `deps`: what the executor holds."""

    def __init__(self, registry: ActionRegistry, deps: ActionDeps) -> None:
        self.registry = registry
        self.deps = deps
        self.actions: Mapping[str, Action] = registry.build(deps)

    def get(self, name: str) -> Action:
        """The action called `name`; `UnknownActionError` (a KeyError) if there is none."""
        try:
            return self.actions[name]
        except KeyError:
            raise UnknownActionError(name, self.registry.names()) from None

    def validate(self, step: PlanStep) -> PlanStep:
        return self.registry.validate(step)

    def names(self) -> tuple[str, ...]:
        return self.registry.names()

    def for_resource(self, resource_type: str) -> list[ActionSpec]:
        return self.registry.for_resource(resource_type)

    def requires_approval(self, name: str) -> bool:
        return self.registry.requires_approval(name)

    def __contains__(self, name: object) -> bool:
        return name in self.actions


CATALOG = ActionRegistry()
"""The default registry: the built-in actions register here when their modules are imported."""


def load_builtin_actions() -> ActionRegistry:
    """Import the built-in action modules (idempotent) and return `CATALOG`."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return CATALOG


def describe_catalog(registry: ActionRegistry | None = None) -> list[dict[str, Any]]:
    """The catalog as plain data, by name: what the IAM policy and the docs are generated from.

    Each entry: `name`, `description`, `resource_types`, `permissions` (sorted IAM actions),
    `requires_approval` and `params_schema` (the params model's JSON schema).
    """
    return [
        {
            "name": spec.name,
            "description": spec.description,
            "resource_types": list(spec.resource_types),
            "permissions": sorted(spec.permissions),
            "requires_approval": spec.requires_approval,
            "params_schema": spec.params_schema(),
        }
        for spec in (registry if registry is not None else CATALOG)
    ]


# Importing the registry registers the built-in catalog. The action modules import `CATALOG`
# from here, which is defined above, so the cycle resolves in either import order.
load_builtin_actions()
