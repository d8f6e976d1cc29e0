#!/usr/bin/env bash
# Makes sure PostgreSQL answers at 127.0.0.1:${KEEL_CI_PGPORT:-5432} (user postgres, trust authentication) with a
# database `test`, for the PostgreSQL tests. Starts a throwaway cluster in
# ${KEEL_CI_PGDATA:-/tmp/keel-ci-pgdata} when nothing answers, installing Debian's `postgresql`
# when it is missing. Exit status 0: PostgreSQL answers; 1: it could not be started.
set -uo pipefail
port=${KEEL_CI_PGPORT:-5432}

answers() {
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1
}

if ! command -v psql >/dev/null || ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    if ! answers; then
        (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql) >&2 ||
            exit 1
    fi
fi
if ! answers; then
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    dir=${KEEL_CI_PGDATA:-/tmp/keel-ci-pgdata}
    # initdb and the server refuse to run as root: run them as the package's postgres user.
    as_postgres=()
    if [ "$(id -u)" = 0 ]; then as_postgres=(runuser -u postgres --); fi
    mkdir -p "$dir" && { [ "$(id -u)" != 0 ] || chown postgres: "$dir"; }
    if [ ! -f "$dir/PG_VERSION" ]; then
        "${as_postgres[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust \
            --encoding=UTF8 --locale=C.UTF-8 >&2 || exit 1
    fi
    "${as_postgres[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -c max_connections=300 -k /tmp" start >&2 ||
        exit 1
    answers || exit 1
fi
if ! psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'test'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'create database test' >/dev/null || exit 1
fi
