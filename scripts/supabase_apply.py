#!/usr/bin/env python3
"""Apply the Supabase schema to a plain PostgreSQL database.

Used by the local stack and the tests; real Supabase gets the same migrations
from the Supabase CLI (`supabase db push`). Every step is idempotent, so
running it again is a no-op:

1. install the pg_net stand-in (supabase/local/pg_net) into the server's
   extension directory, unless the server already offers a pg_net;
2. create the database if it does not exist;
3. run supabase/local/bootstrap.sql (auth, vault, roles, publication);
4. run each supabase/migrations/<version>_<name>.sql that is not recorded in
   supabase_migrations.schema_migrations (the Supabase CLI's own history
   table), in filename order, each in one transaction with its record;
5. run supabase/seed.sql.

Usage:
    scripts/supabase_apply.py [DATABASE] [--bootstrap-only] [--no-seed] [--up-to VERSION]

DATABASE is a connection URL or key=value string, or a bare database name on
the default server. Default: $SUPABASE_APPLY_DATABASE_URL, else the local
stack's database (LOCAL_DATABASE_URL of local-stack.env). The connecting role must be a
superuser (the bootstrap creates roles and the extension), and installing the
extension files needs write access to the server's share directory (root on a
local server).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

log = logging.getLogger("supabase_apply")

REPO_ROOT = Path(__file__).resolve().parent.parent
SUPABASE_DIR = REPO_ROOT / "supabase"
MIGRATIONS_DIR = SUPABASE_DIR / "migrations"
BOOTSTRAP_SQL = SUPABASE_DIR / "local" / "bootstrap.sql"
SEED_SQL = SUPABASE_DIR / "seed.sql"
PG_NET_DIR = SUPABASE_DIR / "local" / "pg_net"

LOCAL_STACK_ENV = REPO_ROOT / "local-stack.env"

# Text in our pg_net.control that a real pg_net never has: it tells the
# installer which control file it may overwrite.
STAND_IN_MARKER = "event-substrate local stand-in"

# Same naming rule as the Supabase CLI: <digits>_<name>.sql
MIGRATION_FILE = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.sql$")

# Serialises concurrent applies to the same database.
APPLY_LOCK_KEY = "event-substrate supabase_apply"


def local_stack_value(key: str) -> str:
    """A value of local-stack.env (the one definition of the local stack's addresses); the
    environment wins, since ./taskw and the stack scripts export the same names."""
    if os.environ.get(key):
        return os.environ[key]
    for line in LOCAL_STACK_ENV.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#") and name.strip() == key:
            return value.strip()
    raise KeyError(f"{key} is not defined in {LOCAL_STACK_ENV}")


def local_database_url() -> str:
    """The local stack's database URL."""
    return local_stack_value("LOCAL_DATABASE_URL")


class ApplyError(Exception):
    """A problem the operator has to fix; reported without a traceback."""


def target_conninfo(target: str | None) -> str:
    """Turn the command-line target into a libpq connection string."""
    target = target or os.environ.get("SUPABASE_APPLY_DATABASE_URL") or local_database_url()
    if "://" in target or "=" in target:
        params = conninfo_to_dict(target)
    else:
        params = {**conninfo_to_dict(local_database_url()), "dbname": target}
    if not params.get("dbname"):
        raise ApplyError(f"no database name in {target!r}")
    return make_conninfo(**params)


def database_name(conninfo: str) -> str:
    return str(conninfo_to_dict(conninfo)["dbname"])


def maintenance_conninfo(conninfo: str) -> str:
    """The same server and credentials, but the always-present postgres database."""
    return make_conninfo(conninfo, dbname="postgres")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[str, str, Path]]:
    """(version, name, path) for every migration, in the order they apply."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            log.warning("skipping %s: file name must look like <timestamp>_<name>.sql", path.name)
            continue
        found.append((match["version"], match["name"], path))
    return found


def _log_notice(diag: psycopg.errors.Diagnostic) -> None:
    # "trigger does not exist, skipping" and friends are expected on a fresh
    # database; only warnings deserve attention.
    level = logging.WARNING if diag.severity in ("WARNING", "ERROR") else logging.DEBUG
    log.log(level, "server %s: %s", diag.severity, diag.message_primary)


def connect(conninfo: str) -> psycopg.Connection:
    conn = psycopg.connect(conninfo, autocommit=True)
    conn.add_notice_handler(_log_notice)
    return conn


def _is_stand_in(control: Path) -> bool:
    try:
        return STAND_IN_MARKER in control.read_text()
    except OSError:
        return False


def ensure_pg_net_extension(admin: psycopg.Connection) -> None:
    """Make `create extension pg_net` possible on the server.

    A real pg_net (Supabase images) is left alone. Otherwise our SQL-only
    stand-in is copied into the server's extension directory, replacing an
    older copy of itself. Each file is written to a temporary name and renamed,
    so a concurrent apply never sees half a file.
    """
    available = admin.execute(
        "select 1 from pg_available_extensions where name = 'pg_net'"
    ).fetchone()
    sharedir_row = admin.execute(
        "select setting from pg_config where name = 'SHAREDIR'"
    ).fetchone()
    if sharedir_row is None:
        raise ApplyError("cannot read SHAREDIR from pg_config (is the role a superuser?)")
    ext_dir = Path(sharedir_row[0]) / "extension"
    control = ext_dir / "pg_net.control"

    if available and not _is_stand_in(control):
        log.info("pg_net is provided by the server; not installing the stand-in")
        return

    sources = sorted(PG_NET_DIR.glob("pg_net*"))
    stale = [src for src in sources if not _same_content(src, ext_dir / src.name)]
    if not stale:
        log.debug("pg_net stand-in already installed in %s", ext_dir)
        return
    if not ext_dir.is_dir():
        raise ApplyError(
            f"the server has no pg_net and its extension directory {ext_dir} is not on this "
            f"machine; copy {PG_NET_DIR}/pg_net* there (or use a server image with pg_net)"
        )
    for src in stale:
        try:
            fd, tmp = tempfile.mkstemp(dir=ext_dir, prefix=f".{src.name}.")
            with os.fdopen(fd, "wb") as out:
                out.write(src.read_bytes())
            os.chmod(tmp, 0o644)
            os.replace(tmp, ext_dir / src.name)
        except PermissionError as exc:
            raise ApplyError(
                f"cannot write {ext_dir}: {exc}; run as root or copy {PG_NET_DIR}/pg_net* there"
            ) from exc
        log.info("installed %s into %s", src.name, ext_dir)


def _same_content(src: Path, dst: Path) -> bool:
    try:
        return dst.read_bytes() == src.read_bytes()
    except OSError:
        return False


def ensure_database(admin: psycopg.Connection, dbname: str) -> None:
    if admin.execute("select 1 from pg_database where datname = %s", [dbname]).fetchone():
        return
    try:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
        log.info("created database %s", dbname)
    except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
        log.debug("database %s was created concurrently", dbname)


def run_sql_file(conn: psycopg.Connection, path: Path) -> None:
    """Run a whole file in one transaction (simple query protocol: no parameters)."""
    with conn.transaction():
        conn.execute(path.read_text())


def ensure_history_table(conn: psycopg.Connection) -> None:
    # The Supabase CLI's layout, so that `supabase migration list` / `db push`
    # against this database agree with us about what has been applied.
    conn.execute(
        """
        create schema if not exists supabase_migrations;
        create table if not exists supabase_migrations.schema_migrations (
          version text not null primary key
        );
        alter table supabase_migrations.schema_migrations
          add column if not exists statements text[],
          add column if not exists name text;
        """
    )


def apply_migrations(conn: psycopg.Connection, up_to: str | None = None) -> list[str]:
    ensure_history_table(conn)
    applied = {
        row[0]
        for row in conn.execute("select version from supabase_migrations.schema_migrations")
    }
    files = migration_files()
    unknown = applied - {version for version, _, _ in files}
    if unknown:
        log.warning("database has migrations that are not in %s: %s", MIGRATIONS_DIR, sorted(unknown))

    newly_applied = []
    for version, name, path in files:
        if up_to is not None and version > up_to:
            break
        if version in applied:
            log.debug("migration %s_%s already applied", version, name)
            continue
        text = path.read_text()
        with conn.transaction():
            conn.execute(text)
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements)"
                " values (%s, %s, %s)",
                [version, name, [text]],
            )
        log.info("applied migration %s_%s", version, name)
        newly_applied.append(version)
    return newly_applied


def apply(
    target: str | None = None,
    *,
    migrations: bool = True,
    seed: bool = True,
    up_to: str | None = None,
) -> list[str]:
    """Apply extension, database, bootstrap, migrations and seed; return the
    versions applied by this run (empty when everything was already there)."""
    conninfo = target_conninfo(target)
    dbname = database_name(conninfo)

    with connect(maintenance_conninfo(conninfo)) as admin:
        ensure_pg_net_extension(admin)
        ensure_database(admin, dbname)

    with connect(conninfo) as conn:
        # session-level lock, released when the connection closes
        conn.execute("select pg_advisory_lock(hashtext(%s))", [APPLY_LOCK_KEY])
        run_sql_file(conn, BOOTSTRAP_SQL)
        log.info("bootstrap applied to %s", dbname)
        if not migrations:
            return []
        newly_applied = apply_migrations(conn, up_to)
        if not newly_applied:
            log.info("no new migrations for %s", dbname)
        if seed:
            run_sql_file(conn, SEED_SQL)
            log.info("seed applied to %s", dbname)
        return newly_applied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Apply bootstrap, migrations and seed to a plain PostgreSQL database."
    )
    parser.add_argument(
        "database",
        nargs="?",
        help="connection URL or database name (default: $SUPABASE_APPLY_DATABASE_URL or "
        "LOCAL_DATABASE_URL of local-stack.env)",
    )
    parser.add_argument(
        "--bootstrap-only",
        action="store_true",
        help="stop after the bootstrap (e.g. to let the Supabase CLI push the migrations)",
    )
    parser.add_argument("--no-seed", action="store_true", help="do not run supabase/seed.sql")
    parser.add_argument(
        "--up-to", metavar="VERSION", help="apply migrations up to and including this version"
    )
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("SUPABASE_APPLY_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        apply(
            args.database,
            migrations=not args.bootstrap_only,
            seed=not args.no_seed,
            up_to=args.up_to,
        )
    except ApplyError as exc:
        log.error("%s", exc)
        return 1
    except psycopg.Error as exc:
        log.error("database error: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
