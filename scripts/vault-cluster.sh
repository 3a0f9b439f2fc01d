#!/usr/bin/env bash
# The vault's replicated database rehearsed on this machine (docs/vault-operations.md):
# 3 etcd members, 3 Patroni/PostgreSQL 15 nodes in strict synchronous mode, 3 vault
# nodes, all on loopback.
#
#   scripts/vault-cluster.sh up        # start (created on first use); prints the status
#   scripts/vault-cluster.sh status    # processes, Patroni roles, etcd health (JSON)
#   scripts/vault-cluster.sh down      # stop everything; the data stays
#   scripts/vault-cluster.sh destroy --yes   # stop and delete the directory
#
# --dir DIR (or STRONGROOM_CLUSTER_DIR) chooses the directory, /tmp/strongroom-vault-cluster
# by default.  Needs the Debian packages patroni, etcd-server, postgresql-15
# (scripts/setup-system.sh installs them) and the project's venv (make setup).
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || py=python3
exec "$py" -m tests.support.vault_cluster "$@"
