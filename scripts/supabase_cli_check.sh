#!/usr/bin/env bash
# CI check: the real Supabase CLI applies supabase/migrations + seed.sql
# unchanged, and the result is the same schema scripts/supabase_apply.py
# builds.
#
#  1. two fresh databases on the local server, both with the bootstrap only;
#  2. `supabase db push --include-seed` into the first (the CLI's path for the
#     same files the local apply uses; a real deployment pushes without the
#     seed, README "Deploy"), scripts/supabase_apply.py into the second;
#  3. a second push must find nothing to do, and supabase_apply.py on the
#     CLI's database must apply no migration (both use the CLI's
#     supabase_migrations.schema_migrations history);
#  4. pg_dump --schema-only of both databases must be identical (apart from
#     the CLI's own bookkeeping schema).
#
# Environment:
#   PGHOST / PGPORT / PGUSER  server (default: the local stack's, local-stack.env; superuser, no password)
#   PYTHON                    interpreter with psycopg (default .venv/bin/python, else python3)
#   SUPABASE_CLI              command for the CLI (default: npx --yes supabase@3.1.0)
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

# shellcheck source=../local-stack.env
source local-stack.env
host=${PGHOST:-$LOCAL_STACK_HOST}
port=${PGPORT:-$LOCAL_POSTGRES_PORT}
user=${PGUSER:-postgres}
export PGHOST=$host PGPORT=$port PGUSER=$user

if [[ -n ${PYTHON:-} ]]; then
  python=$PYTHON
elif [[ -x .venv/bin/python ]]; then
  python=.venv/bin/python
else
  python=python3
fi

read -r -a supabase_cli <<<"${SUPABASE_CLI:-npx --yes supabase@3.1.0}"

suffix=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
cli_db="sb_cli_check_${suffix}"
apply_db="sb_apply_check_${suffix}"
workdir=$(mktemp -d)

cleanup() {
  for db in "$cli_db" "$apply_db"; do
    psql -X -q -d postgres -c "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
  done
  rm -rf "$workdir"
}
trap cleanup EXIT

db_url() {
  printf 'postgresql://%s@%s:%s/%s' "$user" "$host" "$port" "$1"
}

dump_schema() {
  # \restrict lines carry a random key per dump; the CLI's history schema
  # differs on purpose (it also tracks seed files)
  pg_dump --schema-only --exclude-schema=supabase_migrations "$1" |
    grep -v -E '^\\(un)?restrict '
}

echo "== bootstrap only: $cli_db, $apply_db"
"$python" scripts/supabase_apply.py "$(db_url "$cli_db")" --bootstrap-only
"$python" scripts/supabase_apply.py "$(db_url "$apply_db")" --bootstrap-only

echo "== supabase db push into $cli_db"
"${supabase_cli[@]}" --version
"${supabase_cli[@]}" db push --remote="$(db_url "$cli_db")" --include-seed --yes

echo "== second push must be a no-op"
"${supabase_cli[@]}" db push --remote="$(db_url "$cli_db")" --include-seed --yes |
  tee "$workdir/second-push.txt"
grep -q 'up to date' "$workdir/second-push.txt"

echo "== migration history recorded by the CLI"
expected=$(find supabase/migrations -maxdepth 1 -name '*.sql' -printf '%f\n' | sed -E 's/_.*//' | sort)
recorded=$(psql -X -A -t -d "$cli_db" -c 'select version from supabase_migrations.schema_migrations order by version')
if [[ "$expected" != "$recorded" ]]; then
  echo "history mismatch: expected" "$expected" "got" "$recorded" >&2
  exit 1
fi

echo "== supabase_apply.py on the CLI's database must apply no migration"
"$python" scripts/supabase_apply.py "$(db_url "$cli_db")" 2>&1 | tee "$workdir/apply-on-cli.txt"
if grep -q 'applied migration' "$workdir/apply-on-cli.txt"; then
  echo "supabase_apply.py re-applied migrations the CLI had applied" >&2
  exit 1
fi

echo "== supabase_apply.py into $apply_db, then compare schemas"
"$python" scripts/supabase_apply.py "$(db_url "$apply_db")"
dump_schema "$cli_db" >"$workdir/cli.sql"
dump_schema "$apply_db" >"$workdir/apply.sql"
diff -u "$workdir/cli.sql" "$workdir/apply.sql"

secrets=$(psql -X -A -t -d "$cli_db" -c "select count(*) from vault.secrets where name = 'webhook_secret'")
if [[ "$secrets" != 1 ]]; then
  echo "expected one webhook_secret after seeding twice, found $secrets" >&2
  exit 1
fi

echo "OK: the Supabase CLI and supabase_apply.py produce the same schema"
