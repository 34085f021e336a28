#!/usr/bin/env bash
# Throwaway MariaDB and Redis for the demo and the tests.
#
#   scripts/services.sh up       install what is missing, start both servers
#                                on free ports under .local/services/, write .env
#   scripts/services.sh up --redis sentinel
#                                the same with Redis behind Sentinel: a master,
#                                a replica and three sentinels (scripts/lib/
#                                redis-sentinel.sh); .env gets its
#                                redis-sentinel:// URL
#   scripts/services.sh up --redis cluster
#                                the same with a Redis Cluster of three masters
#                                (scripts/lib/redis-cluster.sh)
#   scripts/services.sh up --db replica
#                                MariaDB with a replica (binlog, GTID;
#                                scripts/lib/mariadb-replica.sh); .env gets
#                                DATABASE_REPLICA_URL (both options combine)
#   scripts/services.sh install  only install what is missing (as root or with
#                                passwordless sudo; otherwise print the command
#                                and exit 1)
#   scripts/services.sh missing  print the missing packages, one a line
#                                (nothing if all are installed); installs nothing
#   scripts/services.sh down     stop them (data stays until `rm -rf .local`)
#   scripts/services.sh status
#
# The package list and the dpkg check are in scripts/lib/packages.sh;
# scripts/doctor.sh then checks that the installed tools actually work.
#
# Nothing here touches system-wide services: the servers run as children of
# this machine's user, with their data, sockets, logs and pid files in the
# project's git-ignored .local/ directory.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.local/services"
db_dir="$dir/mariadb"
redis_dir="$dir/redis"
storage_dir="$root/.local/storage"

log() { echo "services: $*" >&2; }

# PACKAGES, package_installed and missing_packages.
. "$root/scripts/lib/packages.sh"
# start_redis_sentinel, sentinel_url, stop_redis_sentinel, sentinel_status.
. "$root/scripts/lib/redis-sentinel.sh"
# start_redis_cluster, cluster_url, stop_redis_cluster, cluster_status.
. "$root/scripts/lib/redis-cluster.sh"
# start_mariadb_replica, replica_url, stop_mariadb_replica, replica_status.
. "$root/scripts/lib/mariadb-replica.sh"

# Install the missing packages of PACKAGES with apt-get, as root or through
# passwordless sudo; otherwise print the one command that would, and fail.
install_packages() {
  local missing sudo=()
  mapfile -t missing < <(missing_packages)
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo)
    else
      log "missing packages; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
      exit 1
    fi
  fi
  log "installing: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq >&2
  # env, not a prefix assignment: sudo would drop DEBIAN_FRONTEND.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  # Ask dpkg again rather than trusting apt-get's exit status alone.
  mapfile -t missing < <(missing_packages)
  if [ "${#missing[@]}" -ne 0 ]; then
    log "still not installed after apt-get: ${missing[*]}"
    exit 1
  fi
}

# A TCP port nobody listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

mariadbd_bin() { command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd; }

db_running() { [ -f "$db_dir/pid" ] && kill -0 "$(cat "$db_dir/pid")" 2>/dev/null; }
redis_running() { [ -f "$redis_dir/pid" ] && kill -0 "$(cat "$redis_dir/pid")" 2>/dev/null; }

# Starts the MariaDB server; with $1 = binlog, with the binary log on (what a
# replica reads), restarting a running server that has it off.
start_mariadb() {
  local binlog=(--skip-log-bin)
  [ "${1:-}" = binlog ] && binlog=(--log-bin=primary-bin --server-id=1 --binlog-format=ROW)
  mkdir -p "$db_dir"
  if db_running; then
    [ "${1:-}" != binlog ] && return 0
    [ "$(mariadb --no-defaults --socket="$db_dir/sock" -uroot -N -e 'SELECT @@log_bin')" = 1 ] && return 0
    log "restarting MariaDB with the binary log on (for the replica)"
    mariadb-admin --no-defaults --socket="$db_dir/sock" -uroot shutdown
  fi
  if [ ! -d "$db_dir/data/mysql" ]; then
    log "initialising MariaDB in $db_dir/data"
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$db_dir/data" \
      --auth-root-authentication-method=normal --skip-test-db >"$db_dir/install.log" 2>&1
  fi
  local port
  port=$(cat "$db_dir/port" 2>/dev/null || free_port)
  echo "$port" >"$db_dir/port"
  "$(mariadbd_bin)" --no-defaults --user="$(id -un)" --datadir="$db_dir/data" \
    --socket="$db_dir/sock" --port="$port" --bind-address=127.0.0.1 \
    --pid-file="$db_dir/pid" --log-error="$db_dir/err.log" "${binlog[@]}" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=2 \
    --max-connections=500 >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    mariadb-admin --no-defaults --socket="$db_dir/sock" -uroot ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb-admin --no-defaults --socket="$db_dir/sock" -uroot ping >/dev/null 2>&1 \
    || { log "MariaDB did not start; see $db_dir/err.log"; exit 1; }
  mariadb --no-defaults --socket="$db_dir/sock" -uroot \
    -e "CREATE DATABASE IF NOT EXISTS videoclip CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  log "MariaDB on 127.0.0.1:$port"
}

start_redis() {
  mkdir -p "$redis_dir"
  if redis_running; then return 0; fi
  local port
  port=$(cat "$redis_dir/port" 2>/dev/null || free_port)
  echo "$port" >"$redis_dir/port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$redis_dir" --save "" \
    --appendonly no --daemonize yes --pidfile "$redis_dir/pid" --logfile "$redis_dir/log"
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  log "Redis on 127.0.0.1:$port"
}

# Writes .env; $1 is the REDIS_URL, $2 the DATABASE_REPLICA_URL (or empty).
write_env() {
  mkdir -p "$storage_dir"
  cat >"$root/.env" <<ENV
# Written by scripts/services.sh: throwaway servers under .local/services.
DATABASE_URL=mysql://root@127.0.0.1:$(cat "$db_dir/port")/videoclip
${2:+DATABASE_REPLICA_URL=$2
}REDIS_URL=$1
STORAGE_URL=file://$storage_dir
ENV
  log "wrote $root/.env"
}

stop_all() {
  if db_running; then
    mariadb-admin --no-defaults --socket="$db_dir/sock" -uroot shutdown 2>/dev/null \
      || kill "$(cat "$db_dir/pid")"
    log "MariaDB stopped"
  fi
  if redis_running; then
    kill "$(cat "$redis_dir/pid")"
    log "Redis stopped"
  fi
  stop_redis_sentinel
  stop_redis_cluster
  stop_mariadb_replica
}

# `up [--redis single|sentinel|cluster] [--db single|replica]`.
up() {
  local redis=single db=single replica_url="" redis_url
  while [ $# -gt 0 ]; do
    case "$1" in
      --redis) redis="${2:-}"; shift 2 || { echo "--redis needs a value" >&2; exit 2; } ;;
      --db) db="${2:-}"; shift 2 || { echo "--db needs a value" >&2; exit 2; } ;;
      *) echo "unknown option for up: $1" >&2; exit 2 ;;
    esac
  done
  case "$redis" in single | sentinel | cluster) ;; *)
    echo "--redis is single, sentinel or cluster, not '$redis'" >&2; exit 2 ;;
  esac
  case "$db" in single | replica) ;; *)
    echo "--db is single or replica, not '$db'" >&2; exit 2 ;;
  esac
  install_packages
  case "$db" in
    single) start_mariadb ;;
    replica) start_mariadb binlog; start_mariadb_replica; replica_url=$(replica_url) ;;
  esac
  case "$redis" in
    single) start_redis; redis_url="redis://127.0.0.1:$(cat "$redis_dir/port")/0" ;;
    sentinel) start_redis_sentinel; redis_url=$(sentinel_url) ;;
    cluster) start_redis_cluster; redis_url=$(cluster_url) ;;
  esac
  write_env "$redis_url" "$replica_url"
}

case "${1:-up}" in
  up) if [ $# -gt 0 ]; then shift; fi; up "$@" ;;
  install) install_packages ;;
  missing) missing_packages ;;
  down) stop_all ;;
  status)
    db_running && echo "mariadb: running on $(cat "$db_dir/port")" || echo "mariadb: stopped"
    redis_running && echo "redis: running on $(cat "$redis_dir/port")" || echo "redis: stopped"
    sentinel_status
    cluster_status
    replica_status ;;
  *) echo "usage: $0 up [--redis single|sentinel|cluster] [--db single|replica]|install|missing|down|status" >&2; exit 2 ;;
esac
