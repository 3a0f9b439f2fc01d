"""Threshold realms (``docs/spec/realms.md``): a password backup shared over ``n``
independent vaults, any ``k`` of which recover the key.

* :mod:`.shamir` — Shamir sharing over ristretto255 scalars, Lagrange at 0;
* :mod:`.client` — the protocol: register, recover (DLEQ-checked evaluations,
  a wrong realm named and left out), delete, status, the threshold head;
* :mod:`.locator` — the version-3 ``ext/vault.json`` naming the realm set;
* :mod:`.flows` — the journey over a repository (used by ``strongroom.password``);
* :mod:`.labels` — every label.

The realm side is :mod:`strongroom.vault.realm`; the DLEQ proofs are
:mod:`strongroom.opaque.dleq`.
"""
