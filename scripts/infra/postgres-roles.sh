#!/usr/bin/env bash
# Sets the login passwords of the services' least-privilege Postgres roles (api_gateway,
# message_consumer, media_service; migration 20261201000300_service_roles.sql creates them
# without one) and of the Flink jobs' flink_writer (20261201000100_flink_writer_role.sql). Idempotent: run it again to change or re-apply a password. compose's
# postgres-roles-init runs it; the local production profile and a deployment can too.
#
#   DATABASE_URL=postgres://postgres@host:port/db PGPASSWORD=<owner password> \
#   API_GATEWAY_DB_PASSWORD=... MESSAGE_CONSUMER_DB_PASSWORD=... MEDIA_SERVICE_DB_PASSWORD=... \
#   FLINK_WRITER_DB_PASSWORD=... \
#     bash scripts/infra/postgres-roles.sh
#
# DATABASE_URL (default: LOCAL_DATABASE_URL, which ./taskw exports) names a role that may
# alter these roles (the owner, postgres). A role whose variable is unset or empty is left as
# it is; a role the migrations have not created yet is an error. The password never appears on
# a command line: psql reads it from the environment (\getenv, psql 15 or later).
set -euo pipefail

url="${DATABASE_URL:-${LOCAL_DATABASE_URL:-}}"
if [[ -z "$url" ]]; then
    echo "postgres-roles: set DATABASE_URL (or LOCAL_DATABASE_URL)" >&2
    exit 2
fi

declare -A password_variables=(
    [api_gateway]=API_GATEWAY_DB_PASSWORD
    [message_consumer]=MESSAGE_CONSUMER_DB_PASSWORD
    [media_service]=MEDIA_SERVICE_DB_PASSWORD
    [flink_writer]=FLINK_WRITER_DB_PASSWORD
)

for role in api_gateway message_consumer media_service flink_writer; do
    variable="${password_variables[$role]}"
    if [[ -z "${!variable:-}" ]]; then
        echo "postgres-roles: $variable is not set; $role keeps its password"
        continue
    fi
    psql -X -q -v ON_ERROR_STOP=1 -v role="$role" -d "$url" <<SQL
\getenv password $variable
alter role :"role" with login password :'password';
SQL
    echo "postgres-roles: $role can log in with \$$variable"
done
