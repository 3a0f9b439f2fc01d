"""Shamir sharing over the ristretto255 scalar field, and Lagrange combination at 0.

``docs/spec/realms.md`` §3-§4: the OPRF key ``s`` is shared as ``s_i = f(i)``
for a random polynomial ``f`` of degree ``k - 1`` with ``f(0) = s``; any ``k``
shares give ``s = sum(lambda_i * s_i)``, and, because evaluation is linear,
any ``k`` evaluations ``Z_i = s_i * M`` give ``s * M = sum(lambda_i * Z_i)``
without anyone holding ``s``.  All arithmetic is libsodium's
(``crypto_core_ristretto255_scalar_*``, through :mod:`strongroom.opaque._group`).
Indices are 1..16 (a realm's position in the realm list); 0 is the secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..opaque import _group

MAX_REALMS = 16


def scalar_of(n: int) -> bytes:
    """The scalar ``n`` (0 <= n < 2^64), little-endian as RFC 9496 encodes scalars."""
    if not 0 <= n < 2**64:
        raise ValueError("index out of range")
    return n.to_bytes(_group.SCALAR_SIZE, "little")


def _check(n: int, k: int) -> None:
    if not 1 <= n <= MAX_REALMS:
        raise ValueError(f"between 1 and {MAX_REALMS} realms")
    if not n // 2 < k <= n:
        raise ValueError("the threshold must be a strict majority of the realms (n/2 < k <= n)")


def split(secret: bytes, n: int, k: int, rng: Callable[[int], bytes]) -> dict[int, bytes]:
    """``{i: f(i)}`` for ``i = 1..n``, ``f`` random of degree ``k - 1`` with ``f(0) = secret``."""
    _check(n, k)
    coefficients = [secret] + [_group.random_scalar(rng) for _ in range(k - 1)]
    shares = {}
    for i in range(1, n + 1):
        x, acc = scalar_of(i), bytes(_group.SCALAR_SIZE)
        for a in reversed(coefficients):  # Horner: ((a_{k-1} x + a_{k-2}) x + ...) x + a_0
            acc = _group.scalar_add(_group.scalar_mul(acc, x), a)
        shares[i] = acc
    return shares


def lagrange_at_zero(indices: Sequence[int]) -> dict[int, bytes]:
    """``lambda_i = prod_{j != i} j / (j - i)`` for the chosen indices (distinct, 1..16)."""
    if len(set(indices)) != len(indices) or not all(1 <= i <= MAX_REALMS for i in indices):
        raise ValueError("indices must be distinct, from 1 to 16")
    out = {}
    for i in indices:
        num = den = scalar_of(1)
        for j in indices:
            if j != i:
                num = _group.scalar_mul(num, scalar_of(j))
                den = _group.scalar_mul(den, _group.scalar_sub(scalar_of(j), scalar_of(i)))
        out[i] = _group.scalar_mul(num, _group.scalar_invert(den))
    return out


def combine_scalars(shares: Mapping[int, bytes]) -> bytes:
    """``f(0)`` from ``k`` shares ``{i: f(i)}``."""
    lam = lagrange_at_zero(list(shares))
    acc = bytes(_group.SCALAR_SIZE)
    for i, share in shares.items():
        acc = _group.scalar_add(acc, _group.scalar_mul(lam[i], share))
    return acc


def combine_elements(evaluations: Mapping[int, bytes]) -> bytes:
    """``s * M`` from ``k`` evaluations ``{i: s_i * M}`` (realms.md §4 step 4)."""
    lam = lagrange_at_zero(list(evaluations))
    acc: bytes | None = None
    for i, z in evaluations.items():
        term = _group.scalar_mult(lam[i], z)
        acc = term if acc is None else _group.element_add(acc, term)
    if acc is None:
        raise ValueError("no evaluations to combine")
    return acc


__all__ = ["MAX_REALMS", "combine_elements", "combine_scalars", "lagrange_at_zero", "scalar_of",
           "split"]
