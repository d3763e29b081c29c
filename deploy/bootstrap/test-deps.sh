#!/usr/bin/env bash
# What `make test` needs beyond Python: a running PostgreSQL with a test database, and Go with
# golang.org/x/mod (the independent verifier of our checkpoints and proofs). Installs from
# Debian's packages when missing; starts PostgreSQL when it is down. Safe to run repeatedly.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v pg_ctlcluster >/dev/null && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v go >/dev/null || need+=(golang-go)
[ -d /usr/share/gocode/src/golang.org/x/mod/sumdb ] || need+=(golang-golang-x-mod-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} from Debian's packages" >&2
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# PostgreSQL: start the first cluster if it is down, then make the test role and database.
read -r ver cluster < <(pg_lsclusters --no-header | awk 'NR==1 {print $1, $2}')
if [ -z "${ver:-}" ]; then
  ver=$(ls /usr/lib/postgresql | sort -n | tail -1); cluster=main
  pg_createcluster "$ver" "$cluster" >/dev/null
fi
if ! pg_lsclusters --no-header | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c' | grep -q online; then
  pg_ctlcluster "$ver" "$cluster" start
fi
for _ in $(seq 1 30); do
  su postgres -c "psql -qAtc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qAt" <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shuyu_test') THEN
    CREATE ROLE shuyu_test LOGIN PASSWORD 'shuyu_test' CREATEDB;
  END IF;
END $$;
SQL
su postgres -c "psql -qAtc \"SELECT 1 FROM pg_database WHERE datname='shuyu_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O shuyu_test shuyu_test"
echo "test dependencies ready: PostgreSQL $ver/$cluster, $(go version)" >&2
