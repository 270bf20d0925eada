"""Every payload in tests/fixtures/events has its origin and licence in SOURCES, and a verdict."""

from __future__ import annotations

import json
import re

from tests.conftest import EVENTS_DIR

SOURCE = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{7,40}:\S")
"""owner/repo@commit:path"""


def test_every_event_fixture_names_its_source_and_licence() -> None:
    payloads = {p.name for p in EVENTS_DIR.glob("*.json") if p.name != "expected.json"}
    rows = [
        line.split("\t")
        for line in (EVENTS_DIR / "SOURCES").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all(len(row) == 3 and all(cell.strip() for cell in row) for row in rows), rows
    assert {row[0] for row in rows} == payloads
    for name, source, _licence in rows:
        assert SOURCE.match(source) or source.startswith("aiops-agent ("), (name, source)
    expected = json.loads((EVENTS_DIR / "expected.json").read_text())
    assert set(expected) == {name.removesuffix(".json") for name in payloads}
