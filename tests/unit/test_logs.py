"""Logging configuration: JSON lines with bound context, level filtering, stdlib routing."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from aiops_agent.obs.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_bound_contextvars() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    structlog.contextvars.bind_contextvars(incident_id="inc-1", event_id="ev-1")
    structlog.get_logger("aiops_agent.engine").info("step.completed", action="ec2.start", n=2)
    structlog.contextvars.unbind_contextvars("incident_id")
    structlog.get_logger("aiops_agent.engine").info("next")
    first, second = _lines(out)
    assert first["event"] == "step.completed"
    assert first["incident_id"] == "inc-1"
    assert first["event_id"] == "ev-1"
    assert first["action"] == "ec2.start"
    assert first["n"] == 2
    assert first["level"] == "info"
    assert first["logger"] == "aiops_agent.engine"
    timestamp = str(first["timestamp"])
    assert timestamp.endswith("Z")
    assert "T" in timestamp
    assert "incident_id" not in second
    assert second["event_id"] == "ev-1"


def test_level_filtering() -> None:
    out = io.StringIO()
    configure_logging("WARNING", "json", stream=out)
    log = structlog.get_logger("aiops_agent.test")
    log.debug("dropped.debug")
    log.info("dropped.info")
    log.warning("kept.warning")
    log.error("kept.error")
    assert [line["event"] for line in _lines(out)] == ["kept.warning", "kept.error"]


def test_debug_level_shows_debug() -> None:
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)
    structlog.get_logger("aiops_agent.test").debug("shown")
    assert [line["event"] for line in _lines(out)] == ["shown"]


def test_stdlib_loggers_share_the_format_and_noisy_ones_are_at_warning() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    structlog.contextvars.bind_contextvars(incident_id="inc-9")
    logging.getLogger("botocore.endpoint").info("noise %s", "dropped")
    logging.getLogger("botocore.endpoint").warning("retrying %s", "DescribeInstances")
    logging.getLogger("some.lib").debug("lib debug")
    lines = _lines(out)
    assert [line["event"] for line in lines] == ["retrying DescribeInstances", "lib debug"]
    assert lines[0]["logger"] == "botocore.endpoint"
    assert lines[0]["level"] == "warning"
    assert lines[0]["incident_id"] == "inc-9"


def test_exception_is_formatted_into_the_json_line() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger("aiops_agent.test").exception("step.failed")
    (line,) = _lines(out)
    assert line["event"] == "step.failed"
    assert "RuntimeError: boom" in str(line["exception"])


def test_safe_to_call_twice_and_switches_stream() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "json", stream=first)
    log = structlog.get_logger("aiops_agent.test")
    log.info("one")
    configure_logging("INFO", "json", stream=second)
    log.info("two")
    assert [line["event"] for line in _lines(first)] == ["one"]
    assert [line["event"] for line in _lines(second)] == ["two"]
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_aiops_agent_handler", False)]
    assert len(ours) == 1


def test_auto_is_json_off_a_terminal_and_console_on_one() -> None:
    pipe = io.StringIO()
    configure_logging("INFO", "auto", stream=pipe)
    structlog.get_logger("t").info("piped", k="v")
    assert _lines(pipe)[0]["event"] == "piped"

    tty = FakeTty()
    configure_logging("INFO", "auto", stream=tty)
    structlog.get_logger("t").info("on.terminal", k="v")
    text = tty.getvalue()
    assert "on.terminal" in text
    assert "k" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_console_forced_on_a_pipe_has_no_colour_codes() -> None:
    out = io.StringIO()
    configure_logging("INFO", "console", stream=out)
    structlog.get_logger("t").info("plain", k="v")
    assert "plain" in out.getvalue()
    assert "\x1b[" not in out.getvalue()


def test_bad_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging("LOUD", "json", stream=io.StringIO())
