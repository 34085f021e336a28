# A MariaDB replica for scripts/services.sh (`up --db replica`): a second
# server under .local/services/mariadb-replica/, seeded with a dump of the
# primary's videoclip database taken with its GTID position, then
# replicating from the primary (MASTER_USE_GTID=slave_pos). The same
# replication set-up as the tests' enqueue-cli/tests/support/replica.rs.
# Needs: $dir, $db_dir, log, free_port, mariadbd_bin, pid_alive,
# remembered_port.

replica_dir() { echo "$dir/mariadb-replica"; }

start_mariadb_replica() {
  local d port
  d=$(replica_dir)
  mkdir -p "$d"
  pid_alive "$d/pid" && return 0
  local fresh=0
  if [ ! -d "$d/data/mysql" ]; then
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$d/data" \
      --auth-root-authentication-method=normal --skip-test-db >"$d/install.log" 2>&1
    fresh=1
  fi
  port=$(remembered_port "$d/port")
  "$(mariadbd_bin)" --no-defaults --user="$(id -un)" --datadir="$d/data" \
    --socket="$d/sock" --port="$port" --bind-address=127.0.0.1 \
    --pid-file="$d/pid" --log-error="$d/err.log" --server-id=2 --relay-log=replica-relay \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=2 \
    --max-connections=500 >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    mariadb-admin --no-defaults --socket="$d/sock" -uroot ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb-admin --no-defaults --socket="$d/sock" -uroot ping >/dev/null 2>&1 \
    || { log "the MariaDB replica did not start; see $d/err.log"; exit 1; }
  if [ "$fresh" = 1 ]; then
    # The dump sets gtid_slave_pos to the primary's position at the dump.
    mariadb-dump --no-defaults --socket="$db_dir/sock" -uroot --single-transaction \
      --gtid --master-data=1 --databases videoclip \
      | mariadb --no-defaults --socket="$d/sock" -uroot
    mariadb --no-defaults --socket="$d/sock" -uroot -e "CHANGE MASTER TO \
      MASTER_HOST='127.0.0.1', MASTER_PORT=$(cat "$db_dir/port"), MASTER_USER='root', \
      MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE"
  fi
  local running=0
  for _ in $(seq 1 100); do
    if mariadb --no-defaults --socket="$d/sock" -uroot -e 'SHOW SLAVE STATUS\G' \
      | grep -q 'Slave_SQL_Running: Yes'; then running=1; break; fi
    sleep 0.1
  done
  [ "$running" = 1 ] || { log "replication did not start; see SHOW SLAVE STATUS on $d/sock"; exit 1; }
  log "MariaDB replica on 127.0.0.1:$port, replicating from :$(cat "$db_dir/port")"
}

replica_url() { echo "mysql://root@127.0.0.1:$(cat "$(replica_dir)/port")/videoclip"; }

stop_mariadb_replica() {
  local d
  d=$(replica_dir)
  pid_alive "$d/pid" || return 0
  mariadb-admin --no-defaults --socket="$d/sock" -uroot shutdown 2>/dev/null || kill "$(cat "$d/pid")"
  log "MariaDB replica stopped"
}

replica_status() {
  local d
  d=$(replica_dir)
  [ -d "$d" ] || return 0
  if pid_alive "$d/pid"; then
    echo "mariadb-replica: running on $(cat "$d/port"), $(mariadb --no-defaults --socket="$d/sock" \
      -uroot -e 'SHOW SLAVE STATUS\G' | grep -E 'Seconds_Behind_Master' | tr -d ' ')"
  else
    echo "mariadb-replica: stopped"
  fi
}
