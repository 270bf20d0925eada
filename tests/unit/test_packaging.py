"""The production install carries the agent only: the AWS emulator (moto) is an extra.

`pip install .` (and the Dockerfile, which installs the wheel without extras) must not pull moto:
the installed distribution's metadata and pyproject.toml list moto only under the `demo` extra
(which `test` includes). Without moto, `aiops-agent demo` says in one line how to get it.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from aiops_agent.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = {"moto", "flask", "werkzeug", "docker"}


def _extras(requirement: Requirement) -> set[str]:
    """The extras under which a Requires-Dist line applies (empty: always installed)."""
    marker = str(requirement.marker or "")
    return {
        extra
        for extra in ("demo", "test", "bench")
        if f'extra == "{extra}"' in marker or f"extra == '{extra}'" in marker
    }


def _pyproject_requirements() -> list[Requirement]:
    """What setuptools writes into the wheel's Requires-Dist, read from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = [Requirement(line) for line in project["dependencies"]]
    for extra, lines in project["optional-dependencies"].items():
        out += [Requirement(f'{line}; extra == "{extra}"') for line in lines]
    return out


def _check(requirements: list[Requirement]) -> None:
    runtime = {r.name.lower() for r in requirements if not _extras(r)}
    assert "aiobotocore" in runtime  # the parse found the runtime requirements at all
    assert not runtime & EMULATOR, f"emulator packages at runtime: {runtime & EMULATOR}"
    moto = [r for r in requirements if r.name.lower() == "moto"]
    assert moto and all(_extras(r) == {"demo"} for r in moto), [str(r) for r in moto]
    assert "server" in moto[0].extras
    tests = [r for r in requirements if "test" in _extras(r)]
    assert any(r.name == "aiops-agent" and "demo" in r.extras for r in tests), [
        str(r) for r in tests
    ]


def test_the_installed_wheel_metadata_requires_moto_only_with_the_demo_extra() -> None:
    """Requires-Dist as pip installed it (the same METADATA the Dockerfile's wheel carries)."""
    _check([Requirement(line) for line in metadata.requires("aiops-agent") or []])


def test_pyproject_requires_moto_only_with_the_demo_extra() -> None:
    """The source of that metadata, so a stale install cannot hide a change to pyproject.toml."""
    _check(_pyproject_requirements())


def test_the_demo_without_moto_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `import moto` now fails as if absent; so does every submodule another test imported
    # (find_spec answers a module already in sys.modules without asking its parent).
    for name in [n for n in sys.modules if n == "moto" or n.startswith("moto.")] + ["moto"]:
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["demo"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert 'pip install "aiops-agent[demo]"' in err


def test_the_dockerfile_installs_the_wheel_without_extras() -> None:
    """The image gets the wheel's runtime requirements only: no extra, no emulator."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip " in line]
    assert any("aiops_agent-*.whl" in line for line in installs), installs
    assert not [line for line in installs if "[" in line or "moto" in line.lower()], installs
