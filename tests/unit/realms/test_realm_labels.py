"""The realm labels (realms.md §2) are distinct from each other and from every other label."""

from __future__ import annotations

from strongroom.crypto import labels as engine
from strongroom.realms import labels
from strongroom.vault import labels as vault


def test_realm_labels_are_distinct_and_versioned() -> None:
    ours = list(labels.ALL_LABELS)
    assert len(set(ours)) == len(ours)
    assert all(lb.startswith(b"strongroom/v4/realms/") for lb in ours)
    assert not set(ours) & (set(vault.ALL_LABELS) | set(engine.ALL_LABELS))
