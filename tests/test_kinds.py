"""The kind tables are complete and everything derives from them: every device kind and alert
kind has its entry, every event a kind may send has a wire name, and the one vocabulary
labels every value the product shows (docs/architecture.md, "One table per kind")."""

from __future__ import annotations

import pytest

from queue_engine import wire
from queue_engine.core import vocabulary
from queue_engine.core.alerts import ALERT_KINDS, AlertKind, AlertState, Audience
from queue_engine.core.events import Outcome, PauseReason
from queue_engine.core.kinds import DEVICE_KINDS, DeviceKind, OnlineHours
from queue_engine.core.model import Staffing, TicketStatus


def test_every_device_kind_has_its_entry_and_its_events_have_wire_names():
    assert set(DEVICE_KINDS) == set(DeviceKind)
    for kind, rule in DEVICE_KINDS.items():
        assert rule.label, kind
        unnamed = [event.__name__ for event in rule.events if event not in wire.EVENT_TYPES]
        assert unnamed == [], f"{kind}: events without a wire name: {unnamed}"


def test_every_alert_kind_has_its_entry():
    assert set(ALERT_KINDS) == set(AlertKind)
    assert all(rule.label for rule in ALERT_KINDS.values())


@pytest.mark.parametrize(
    ("table", "values"),
    [
        ("alert_kind", AlertKind),
        ("alert_state", AlertState),
        ("audience", Audience),
        ("device_kind", DeviceKind),
        ("online_hours", OnlineHours),
        ("outcome", Outcome),
        ("pause_reason", PauseReason),
        ("staffing", Staffing),
        ("ticket_status", TicketStatus),
    ],
)
def test_the_vocabulary_labels_every_value(table, values):
    labels = vocabulary.as_json()[table]
    assert sorted(v.value for v in values if v.value not in labels) == []
    assert all(isinstance(label, str) and label for label in labels.values())


def test_the_vocabulary_has_one_label_per_meaning_in_each_table():
    """Two values worded alike would read as one on a console (设备被关闭 / 监察设备被关闭 once
    meant the same alert)."""
    for name, labels in vocabulary.as_json().items():
        if name == "vacancy":  # 空岗 categories: the staffing labels of three of its values
            continue
        words = list(labels.values())
        assert len(words) == len(set(words)), f"{name}: {words}"
