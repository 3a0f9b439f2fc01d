"""Threshold realms (docs/spec/realms.md, a design draft): the client-side building blocks.

Only the pieces that the design fixes and that can be checked on their own are
here so far: Shamir sharing of a ristretto255 scalar and the Lagrange
combination of shares and of evaluated elements (:mod:`.shamir`); the DLEQ
proofs are :mod:`strongroom.opaque.dleq`.  No realm protocol uses them yet.
"""
