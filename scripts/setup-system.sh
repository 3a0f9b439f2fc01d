#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use: SoftHSM2 (PKCS#11
# token), PostgreSQL 15 (vault record store), Patroni and etcd (the vault's replicated
# database, tests/reliability/test_failover.py), restic, borg and GNU time (benchmarks).
# Idempotent; does nothing when everything is already there.
set -euo pipefail
need=()
command -v softhsm2-util >/dev/null || need+=(softhsm2)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v patroni >/dev/null || need+=(patroni)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
command -v sqlite3 >/dev/null || need+=(sqlite3)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "strongroom setup: please install: ${need[*]} (sudo apt-get install ${need[*]})" >&2
  exit 0
fi
echo "strongroom setup: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
