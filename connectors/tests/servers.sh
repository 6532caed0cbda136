#!/usr/bin/env bash
# Starts a private PostgreSQL, MariaDB or S3 server (moto) on loopback, for the connectors' tests
# and benchmarks: data in DIR (a fresh directory), listening on PORT, stopped and DIR removed
# when process WATCH_PID exits. Prints the server's URL once it answers, then returns.
#
#   servers.sh postgres|mariadb|moto DIR PORT WATCH_PID
#
# PostgreSQL and MariaDB get a user `sluice` with password `sluice` (password authentication
# over TCP, so a wrong password is refused as it would be in production).
# SLUICE_DB_FAST=1 turns off fsync (tests; benchmarks keep the servers' defaults).
set -euo pipefail
kind=$1 dir=$2 port=$3 watch=$4
mkdir -p "$dir"
log="$dir/server.log"

# Waits up to 60 s for "$@" to succeed.
await() {
  local deadline=$((SECONDS + 60))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "$kind did not start within 60 s; its log ($log):" >&2
      tail -30 "$log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
}

# Stops the server (pid $1) when $watch exits, then removes its directory.
watchdog() {
  local pid=$1
  setsid bash -c "while kill -0 $watch 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 1; done
    kill $pid 2>/dev/null; for _ in \$(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
    kill -9 $pid 2>/dev/null; rm -rf '$dir'" </dev/null >/dev/null 2>&1 &
}

# PostgreSQL refuses to run as root: as root, its commands run as user `postgres` (setpriv execs,
# so the server's pid is the one the watchdog stops).
as_postgres=()
[ "$(id -u)" = 0 ] && as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups --)

case "$kind" in
postgres)
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$bin/initdb" ] || bin=$(dirname "$(command -v initdb)")
  if [ "$(id -u)" = 0 ]; then
    # The server's user must reach DIR (temporary directories are private to their owner).
    chown -R postgres "$dir"
    chmod o+x "$(dirname "$dir")"
  fi
  echo sluice >"$dir/pw"
  "${as_postgres[@]}" "$bin/initdb" -D "$dir/data" -U sluice --pwfile="$dir/pw" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$log" 2>&1
  fast=()
  [ "${SLUICE_DB_FAST:-0}" = 1 ] && fast=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
  "${as_postgres[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" -c listen_addresses=127.0.0.1 \
    -c max_connections=200 "${fast[@]}" >>"$log" 2>&1 </dev/null &
  pid=$!
  watchdog $pid
  await "$bin/pg_isready" -h 127.0.0.1 -p "$port" -U sluice
  echo "postgresql://sluice:sluice@127.0.0.1:$port/postgres"
  ;;
mariadb)
  server=$(command -v mariadbd || echo /usr/sbin/mariadbd)
  mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
    --auth-root-authentication-method=socket --skip-test-db >"$log" 2>&1
  fast=()
  [ "${SLUICE_DB_FAST:-0}" = 1 ] && fast=(--innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0)
  "$server" --no-defaults --datadir="$dir/data" --port="$port" --bind-address=127.0.0.1 \
    --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" --user="$(id -un)" --skip-log-bin \
    --innodb-buffer-pool-size=256M "${fast[@]}" >>"$log" 2>&1 </dev/null &
  pid=$!
  watchdog $pid
  await mariadb-admin --no-defaults -S "$dir/mysqld.sock" -u root ping
  mariadb --no-defaults -S "$dir/mysqld.sock" -u root -e \
    "CREATE USER 'sluice'@'%' IDENTIFIED BY 'sluice'; GRANT ALL ON *.* TO 'sluice'@'%' WITH GRANT OPTION; CREATE DATABASE sluice;"
  echo "mysql://sluice:sluice@127.0.0.1:$port/sluice"
  ;;
moto)
  command -v moto_server >/dev/null || { echo "moto_server is missing: pip install 'moto[server]'" >&2; exit 1; }
  (cd "$dir" && exec moto_server -H 127.0.0.1 -p "$port") >"$log" 2>&1 </dev/null &
  pid=$!
  watchdog $pid
  await curl -sf "http://127.0.0.1:$port/moto-api/"
  echo "http://127.0.0.1:$port"
  ;;
*)
  echo "unknown server $kind (postgres, mariadb or moto)" >&2
  exit 2
  ;;
esac
