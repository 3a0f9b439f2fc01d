"""Shamir sharing and Lagrange combination over ristretto255 (docs/spec/realms.md §3-§4).

The combination is checked against a separate straight-line computation with
Python integers modulo the group order, from the spec's formulas only.
"""

from __future__ import annotations

import itertools
import os

import pytest

from strongroom.opaque import _group, oprf
from strongroom.realms import shamir

L = 2**252 + 27742317777372353535851937790883648493  # the ristretto255 group order


def _int(scalar: bytes) -> int:
    return int.from_bytes(scalar, "little")


@pytest.mark.parametrize(("n", "k"), [(1, 1), (3, 2), (3, 3), (5, 3), (16, 9)])
def test_any_k_shares_give_the_secret_and_fewer_do_not(n: int, k: int) -> None:
    secret = _group.random_scalar(os.urandom)
    shares = shamir.split(secret, n, k, os.urandom)
    assert sorted(shares) == list(range(1, n + 1))
    for subset in itertools.islice(itertools.combinations(shares, k), 20):
        assert shamir.combine_scalars({i: shares[i] for i in subset}) == secret
    if k > 1:  # k - 1 shares interpolate a different (degree k - 2) polynomial
        some = list(shares)[: k - 1]
        assert shamir.combine_scalars({i: shares[i] for i in some}) != secret


def test_lagrange_matches_a_straight_line_computation() -> None:
    indices = [1, 3, 4]
    got = shamir.lagrange_at_zero(indices)
    for i in indices:
        num = den = 1
        for j in indices:
            if j != i:
                num, den = num * j % L, den * (j - i) % L
        assert _int(got[i]) == num * pow(den, -1, L) % L


def test_split_is_a_polynomial_with_the_secret_at_zero() -> None:
    """Recompute f(i) from the shares' own Lagrange form: f(x) = sum l_j(x) f(j)."""
    secret = _group.random_scalar(os.urandom)
    shares = shamir.split(secret, 5, 3, os.urandom)
    pts = {i: _int(shares[i]) for i in (1, 2, 3)}

    def f(x: int) -> int:
        total = 0
        for i, yi in pts.items():
            li = 1
            for j in pts:
                if j != i:
                    li = li * (x - j) * pow(i - j, -1, L) % L
            total = (total + li * yi) % L
        return total

    assert f(0) == _int(secret)
    assert f(4) == _int(shares[4]) and f(5) == _int(shares[5])


def test_evaluations_combine_to_the_key_times_the_element() -> None:
    """k realms' evaluations s_i*M combine to s*M; nobody held s."""
    s = _group.random_scalar(os.urandom)
    shares = shamir.split(s, 3, 2, os.urandom)
    m = oprf.hash_to_group(b"a blinded password")
    want = _group.scalar_mult(s, m)
    for pair in itertools.combinations((1, 2, 3), 2):
        got = shamir.combine_elements({i: _group.scalar_mult(shares[i], m) for i in pair})
        assert got == want
    wrong = {1: _group.scalar_mult(shares[1], m), 2: _group.scalar_mult(shares[3], m)}
    assert shamir.combine_elements(wrong) != want  # a share at the wrong index


@pytest.mark.parametrize(("n", "k"), [(0, 1), (17, 9), (4, 2), (3, 1), (3, 4)])
def test_thresholds_must_be_a_strict_majority(n: int, k: int) -> None:
    with pytest.raises(ValueError):
        shamir.split(_group.random_scalar(os.urandom), n, k, os.urandom)


def test_bad_indices_are_refused() -> None:
    for indices in ([1, 1], [0, 2], [17]):
        with pytest.raises(ValueError):
            shamir.lagrange_at_zero(indices)
