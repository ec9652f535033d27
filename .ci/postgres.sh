#!/usr/bin/env bash
# Start a local PostgreSQL for the registry tests and print its SQLAlchemy URL.
# Used by .ci/run; safe to run again (idempotent). Needs root (apt-get, pg_ctlcluster).
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -n | tail -1)
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qAtc \"select 1 from pg_roles where rolname='shipml'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"create role shipml login password 'shipml' createdb\"" >/dev/null
su postgres -c "psql -qAtc \"select 1 from pg_database where datname='shipml_test'\"" | grep -q 1 ||
  su postgres -c "createdb -O shipml shipml_test"
echo "postgresql+psycopg://shipml:shipml@127.0.0.1:5432/shipml_test"
