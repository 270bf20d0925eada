"""Logging: structlog events, JSON lines in production, console rendering on a terminal.

Both structlog loggers and the standard library's (botocore, aiohttp, ...) go through one stdlib
handler with a `structlog.stdlib.ProcessorFormatter`, so every line has the same shape:
`timestamp` (ISO 8601, UTC), `level`, `logger`, `event`, whatever is bound through
`structlog.contextvars.bind_contextvars` (`incident_id`, `event_id`, ...), and the event's keys.

`configure_logging` may be called more than once (tests, the CLI reconfiguring for `--json`): each
call replaces the handler that the previous one installed.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog
from structlog.typing import Processor

LogFormat = Literal["auto", "json", "console"]

NOISY_LOGGERS: tuple[str, ...] = (
    "botocore",
    "aiobotocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "aiohttp",
    "moto",
    "werkzeug",
)
"""Third-party loggers kept at WARNING (or the configured level, if higher)."""

_HANDLER_MARK = "_aiops_agent_handler"

_LEVELS: dict[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _shared_processors() -> list[Processor]:
    """What both structlog events and foreign stdlib records go through first."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _final_processors(json_output: bool, colors: bool) -> list[Processor]:
    meta: Processor = structlog.stdlib.ProcessorFormatter.remove_processors_meta
    if json_output:
        return [
            meta,
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
            structlog.processors.JSONRenderer(sort_keys=False),
        ]
    # ConsoleRenderer formats exceptions itself (and warns if format_exc_info ran before it).
    return [meta, structlog.dev.ConsoleRenderer(colors=colors)]


def configure_logging(
    level: str = "INFO",
    fmt: LogFormat = "auto",
    stream: TextIO | None = None,
) -> None:
    """Route every log line to `stream` (default: stdout) at `level`.

    `fmt="auto"` renders JSON unless `stream` is a terminal. Safe to call again: the handler that
    a previous call installed is replaced, not duplicated.
    """
    numeric = _LEVELS.get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}")
    if fmt not in ("auto", "json", "console"):
        raise ValueError(f"unknown log format {fmt!r}; expected auto, json or console")
    out = stream if stream is not None else sys.stdout
    tty = _is_tty(out)
    json_output = fmt == "json" or (fmt == "auto" and not tty)

    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger first used before (re)configuration must follow the new one.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=_final_processors(json_output, colors=tty and not json_output),
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
