"""Strongroom benchmarks: a realistic chat dataset and a harness against restic and borg.

* ``python -m bench.dataset DIR`` generates (or ``--grow``s) the dataset.
* ``python -m bench.run`` runs the comparison (``make bench``).
* ``python -m bench.profile`` profiles Strongroom's own backup through the library API.
"""
