"""Helpers every action module shares; a leaf module (it imports no action and no registry).

The registry imports the built-in action modules when it is first imported, so a helper that
two action modules share must not live in one of them: it lives here or in a module like it.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from pydantic import Field

Region = Annotated[
    str | None,
    Field(
        default=None,
        pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$",
        description="the resource's region (the event's); default: the agent's",
    ),
]
"""The optional `region` every action's params carry; actions pass it to `clients.client`."""


def token_digest(idempotency_token: str, length: int = 16) -> str:
    """A short, stable hex digest of an idempotency token, for labels and tags that hold it."""
    return hashlib.sha256(idempotency_token.encode()).hexdigest()[:length]


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore `ClientError` (empty for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "")
    return ""
