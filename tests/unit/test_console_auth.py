"""The console's pure parts: signed sessions, CSRF tokens, cookie security, settings, links."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from aiohttp.test_utils import make_mocked_request

from aiops_agent.console.auth import Principal, TokenAuth, clean_name, csrf_matches, secure_cookies
from aiops_agent.console.controls import parse_duration
from aiops_agent.console.pages import _next
from aiops_agent.engine.runner import incident_link
from aiops_agent.settings import SettingsError, load_settings

SECRET = "s3cret-console-token-0123456789"


def test_a_session_reads_back_and_a_tampered_or_old_one_does_not() -> None:
    auth = TokenAuth(SECRET, session_seconds=3600)
    cookie = auth.new_session("alice")
    principal = auth.read_session(cookie)
    assert principal is not None and principal.identity == "alice (token sign-in)"
    body, mac = cookie.split(".")
    assert auth.read_session(body[:-2] + "xx." + mac) is None
    assert auth.read_session(body + "." + mac[:-2] + "AA") is None
    assert auth.read_session("garbage") is None
    assert auth.read_session(cookie, now=time.time() + 3601) is None
    # Another deployment's token signs sessions this one refuses (and rotating the token ends
    # every session).
    assert TokenAuth(SECRET + "x", session_seconds=3600).read_session(cookie) is None


def test_csrf_tokens_differ_per_session_and_compare_exactly() -> None:
    auth = TokenAuth(SECRET, session_seconds=3600)
    a = auth.read_session(auth.new_session("alice"))
    b = auth.read_session(auth.new_session("alice"))
    assert a is not None and b is not None and a.csrf != b.csrf
    assert csrf_matches(a, a.csrf)
    assert not csrf_matches(a, b.csrf)
    assert not csrf_matches(a, None) and not csrf_matches(a, "")
    assert not csrf_matches(Principal("x", "alb", csrf=""), "")


@pytest.mark.parametrize(
    ("host", "headers", "secure"),
    [
        ("127.0.0.1:8080", {}, False),
        ("localhost:8080", {}, False),
        ("[::1]:8080", {}, False),
        ("console.example.com", {}, True),
        ("10.0.1.5:8080", {}, True),
        ("127.0.0.1:8080", {"X-Forwarded-Proto": "https"}, True),
    ],
)
def test_cookies_are_secure_except_on_loopback_http(
    host: str, headers: dict[str, str], secure: bool
) -> None:
    request = make_mocked_request("GET", "/console/", headers={"Host": host, **headers})
    assert secure_cookies(request) is secure


def test_after_sign_in_only_a_console_path_is_followed() -> None:
    assert _next("/console/incidents/inc-1") == "/console/incidents/inc-1"
    bad_targets = ("https://evil.example/", "//evil.example/", "/metrics", None, "/console\\x")
    for bad in bad_targets:
        assert _next(bad) == "/console/incidents"


def test_names_are_one_bounded_printable_line() -> None:
    assert clean_name("  alice\n\x1b[31m  smith ") == "alice [31m smith"
    assert len(clean_name("a" * 500)) == 80


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"AIOPS_CONSOLE_AUTH": "token"}, "AIOPS_CONSOLE_TOKEN"),
        ({"AIOPS_CONSOLE_AUTH": "token", "AIOPS_CONSOLE_TOKEN": "short"}, "AIOPS_CONSOLE_TOKEN"),
        ({"AIOPS_CONSOLE_AUTH": "alb-oidc"}, "AIOPS_CONSOLE_ALB_ARN"),
        ({"AIOPS_CONSOLE_AUTH": "alb-oidc", "AIOPS_CONSOLE_ALB_ARN": "x"}, "AIOPS_CONSOLE_ALB_ARN"),
        ({"AIOPS_CONSOLE_AUTH": "maybe"}, "AIOPS_CONSOLE_AUTH"),
        ({"AIOPS_CONSOLE_URL": "console.example.com"}, "AIOPS_CONSOLE_URL"),
    ],
)
def test_console_settings_that_cannot_work_name_their_variable(
    env: dict[str, str], variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert variable in str(err.value) and "\n" not in str(err.value)
    assert "short" not in str(err.value)  # a token is never echoed


def test_default_console_is_off_and_the_token_is_not_in_the_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().console_auth == "off"
    monkeypatch.setenv("AIOPS_CONSOLE_AUTH", "token")
    monkeypatch.setenv("AIOPS_CONSOLE_TOKEN", SECRET)
    settings = load_settings()
    assert settings.console_auth == "token" and SECRET not in repr(settings)


def test_notification_links_point_at_the_incidents_page() -> None:
    want = "https://ops.example.com/console/incidents/inc-1"
    assert incident_link("https://ops.example.com", "inc-1") == want
    assert incident_link("https://ops.example.com/", "inc-1") == want
    assert incident_link("https://ops.example.com/console/", "inc-1") == want


def test_control_durations() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration(" 2h ") == timedelta(hours=2)
    assert parse_duration("30d") == timedelta(days=30)
    # The CLI's grammar: the same text means the same in both places.
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(days=14)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    for bad in ("", "2", "h", "0h", "31d", "5w", "-1h", "2x"):
        with pytest.raises(ValueError):
            parse_duration(bad)
