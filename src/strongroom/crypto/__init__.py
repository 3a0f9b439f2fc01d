"""Hazmat: keys, labels and AEAD sealing.  No I/O; used by :mod:`strongroom.repo`."""
