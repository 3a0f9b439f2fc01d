"""Network attacker: the vault's bearer token must not cross a network in clear text."""

from __future__ import annotations

import pytest

from strongroom.client.vault_client import VaultClient
from strongroom.errors import StrongroomError


@pytest.mark.xfail(strict=True, reason="DEFECT-6: the vault client sends the account's bearer "
                   "token over plain http:// to any host (a network attacker can then spend "
                   "the guesses and destroy the record)")
def test_plain_http_to_a_remote_vault_is_refused() -> None:
    with pytest.raises(StrongroomError):
        VaultClient("http://vault.example.org:8443", "alice", "secret-token").close()


def test_plain_http_to_loopback_stays_allowed() -> None:
    """Tests and a vault on the same machine use http://127.0.0.1 (no network crossed)."""
    VaultClient("http://127.0.0.1:8443", "alice", "secret-token").close()
