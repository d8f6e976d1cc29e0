# Sourced by the benchmark scripts: with BENCH_POSTGRES set to a PostgreSQL server URL (for
# example postgres://postgres@127.0.0.1:5432/test), a benchmark runs against a fresh schema
# there instead of the embedded SQLite database. Sets `db_args` (the --database flag, or
# nothing); `bench_postgres_cleanup` drops the schema.
db_args=()
bench_schema=""
if [[ -n "${BENCH_POSTGRES:-}" ]]; then
    bench_schema="keel_bench_$$"
    psql "$BENCH_POSTGRES" -qc "create schema $bench_schema" >&2
    separator='?'
    [[ "$BENCH_POSTGRES" == *\?* ]] && separator='&'
    db_args=(--database "${BENCH_POSTGRES}${separator}options=-csearch_path%3D${bench_schema}")
fi

bench_postgres_cleanup() {
    if [[ -n "$bench_schema" ]]; then
        psql "$BENCH_POSTGRES" -qc "drop schema $bench_schema cascade" >/dev/null 2>&1 || true
    fi
}

# The database's size: the data directory's, or the PostgreSQL schema's tables and indexes.
bench_database_size() {
    if [[ -n "$bench_schema" ]]; then
        psql "$BENCH_POSTGRES" -tAc "select pg_size_pretty(sum(pg_total_relation_size(c.oid))) \
            from pg_class c join pg_namespace n on n.oid = c.relnamespace \
            where n.nspname = '$bench_schema' and c.relkind = 'r'"
    else
        du -sh "$1" | awk '{print $1}'
    fi
}
