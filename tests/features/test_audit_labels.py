"""Every action code the features write into the audit trail has its Chinese label (the archive's 操作日志.csv)."""

from __future__ import annotations

import re
from pathlib import Path

from domain.audit_labels import AUDIT_ACTIONS, AUDIT_ENTITIES, action_label, entity_label

ROOT = Path(__file__).resolve().parents[2]
WRITERS = ("handlers", "domain")  # the features and the services they share write audit rows
# action="deliverable.submit", HANDOVER_ACTION = "project.handover", "a.b" if … else "a.c"
_CODES = re.compile(r'(?:action=|[A-Z_]+ = |if approved else |action=f?)"([a-z_]+\.[a-z_]+)"')


def written_codes() -> set[str]:
    codes: set[str] = set()
    for path in (p for package in WRITERS for p in (ROOT / package).glob("*.py")):
        codes |= set(_CODES.findall(path.read_text(encoding="utf-8")))
    return codes


def test_every_written_action_has_a_label() -> None:
    codes = written_codes()
    assert {"deliverable.submit", "project.handover", "project.initiation_rejected", "approval.decided"} <= codes
    assert sorted(codes - AUDIT_ACTIONS.keys()) == []
    assert all(re.search(r"[\u4e00-\u9fff]", label) for label in AUDIT_ACTIONS.values())


def test_every_entity_has_a_label() -> None:
    entities = set()
    for path in (p for package in WRITERS for p in (ROOT / package).glob("*.py")):
        entities |= set(re.findall(r'entity="([a-z_]+)"', path.read_text(encoding="utf-8")))
    assert entities and sorted(entities - AUDIT_ENTITIES.keys()) == []


def test_labels() -> None:
    assert action_label("deliverable.submit") == "提交交付物" and action_label("new.code") == "new.code"
    assert entity_label("deliverable") == "交付物" and entity_label(None) == ""
