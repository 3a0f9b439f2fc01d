"""The repository engine: chunking, packs, indexes, snapshots, commit, check, prune.

No network code here: everything goes through a :class:`strongroom.storage.base.Backend`.
The byte formats are specified in ``docs/spec/backup-format.md``.
"""
