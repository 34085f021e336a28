# The queue benchmark of scripts/bench.sh (sourced from there): our queue
# against BullMQ's official Rust crate (bench/peers, a copy of the peer
# program), side by side in one run, on the same Redis, for each MariaDB
# durability setting, ROUNDS times each.
#
#   QUEUE_N       no-op jobs per side and round (default 20000)
#   ROUNDS        rounds per durability setting (default 3)
#   WORKERS       our worker processes (default 1)
#   CONCURRENCY   our concurrency per worker (default 64); BullMQ runs one
#                 worker at WORKERS x CONCURRENCY, the same total
#   DURABILITY    "fast durable" (default), or one of them
#   AFTER_MIGRATE_SQL  for experiments: SQL run on our database right after
#                 `enqueue migrate` (e.g. dropping an index); unset normally
#
# A round of ours: a fresh database, `enqueue noop --count N`, then one
# scheduler and the workers with --exit-when-idle; the time runs from just
# before they start (the database clock) to the last task's completion (its
# history row), like BullMQ's own figure, which runs from just before its
# worker is built to its last job. Every task's bookkeeping is checked: N
# completed rows, N result rows, 3 history rows per task.

# A MariaDB for the benchmark only, in .local/bench/mariadb-$1 on its own
# port, with the durability of $1:
#   fast     innodb_flush_log_at_trx_commit=2, no binlog (what
#            scripts/services.sh runs for tests and the demo)
#   durable  innodb_flush_log_at_trx_commit=1, binlog on, sync_binlog=1
# Prints the port; the server's pid is in .local/bench/mariadb-$1/pid.
bench_mariadb_start() {
  local mode=$1 dir port flags
  dir="$PWD/.local/bench/mariadb-$mode"
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$dir/data" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1
  fi
  case $mode in
    fast) flags="--skip-log-bin --innodb-flush-log-at-trx-commit=2" ;;
    durable) flags="--log-bin=$dir/data/binlog --server-id=1 --sync-binlog=1 --innodb-flush-log-at-trx-commit=1" ;;
    *) echo "unknown durability $mode" >&2; return 2 ;;
  esac
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  # shellcheck disable=SC2086
  "$(command -v mariadbd || echo /usr/sbin/mariadbd)" --no-defaults --user="$(id -un)" \
    --datadir="$dir/data" --socket="$dir/sock" --port="$port" --bind-address=127.0.0.1 \
    --pid-file="$dir/pid" --log-error="$dir/err.log" $flags \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=256M --max-connections=500 >/dev/null 2>&1 &
  for _ in $(seq 1 200); do
    mariadb-admin --no-defaults -S "$dir/sock" -uroot ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  mariadb-admin --no-defaults -S "$dir/sock" -uroot ping >/dev/null 2>&1 ||
    { echo "the benchmark MariaDB ($mode) did not start; see $dir/err.log" >&2; return 1; }
  echo "$port"
}

bench_mariadb_stop() {
  local dir="$PWD/.local/bench/mariadb-$1"
  mariadb-admin --no-defaults -S "$dir/sock" -uroot shutdown >/dev/null 2>&1 || true
}

# CPU seconds (user + system) process $1 has used so far.
cpu_seconds() {
  python3 -c 'import os,sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK"))' "$1"
}

# The MariaDB counters the benchmark reports, as "name value" lines.
db_counters() {
  bsql "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_commit', 'Handler_read_key', 'Handler_read_next', 'Handler_update', 'Handler_write', 'Handler_delete', 'Innodb_rows_read', 'Innodb_rows_updated', 'Innodb_rows_inserted', 'Innodb_data_fsyncs', 'Innodb_os_log_fsyncs', 'Innodb_buffer_pool_write_requests', 'Binlog_commits')"
}

# Runs a command, printing its CPU seconds (children included) to fd 3.
with_cpu() {
  python3 -c '
import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{r.ru_utime + r.ru_stime:.3f}\n")
sys.exit(rc)' "$@"
}

peer_bin() {
  local target="$CARGO_TARGET_DIR/peers"
  (cd bench/peers && CARGO_TARGET_DIR="$target" cargo build --release --locked -q 2>&1 | tail -3) >&2
  echo "$target/release/bullmq-noop"
}

queue_bench() {
  local n="${QUEUE_N:-20000}" rounds="${ROUNDS:-3}" workers="${WORKERS:-1}" conc="${CONCURRENCY:-64}"
  local total=$((workers * conc)) peer out=.local/bench/queue redis_port
  peer=$(peer_bin)
  mkdir -p "$out"
  redis_port=$(cat .local/services/redis/port)
  export PEER_REDIS_URL="redis://127.0.0.1:$redis_port/1"
  echo "== queue: $n no-op jobs per side, ours 1 scheduler + $workers worker(s) x $conc, BullMQ 1 worker x $total; $(nproc) cores, same Redis"
  for mode in ${DURABILITY:-fast durable}; do
    local port db_pid
    port=$(bench_mariadb_start "$mode")
    db_pid=$(cat ".local/bench/mariadb-$mode/pid")
    bsock=".local/bench/mariadb-$mode/sock"
    echo "-- MariaDB $mode ($(bsql_root "SELECT CONCAT('innodb_flush_log_at_trx_commit=', @@innodb_flush_log_at_trx_commit, ', log_bin=', @@log_bin, ', sync_binlog=', @@sync_binlog)"))"
    : >"$out/$mode.txt"
    for round in $(seq "$rounds"); do
      # Ours.
      bsql_root "DROP DATABASE IF EXISTS videoclip; CREATE DATABASE videoclip CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
      redis-cli -p "$redis_port" -n 0 FLUSHDB >/dev/null
      DATABASE_URL="mysql://root@127.0.0.1:$port/videoclip" "$bin/enqueue" migrate >/dev/null
      [ -z "${AFTER_MIGRATE_SQL:-}" ] || bsql "$AFTER_MIGRATE_SQL"
      DATABASE_URL="mysql://root@127.0.0.1:$port/videoclip" "$bin/enqueue" noop --count "$n" >/dev/null
      db_counters >"$out/counters-before"
      local db_cpu0 redis_cpu0 t0 pids=()
      db_cpu0=$(cpu_seconds "$db_pid")
      redis_cpu0=$(cpu_seconds "$(cat .local/services/redis/pid)")
      t0=$(bsql "SELECT NOW(3)")
      DATABASE_URL="mysql://root@127.0.0.1:$port/videoclip" with_cpu "$out/cpu-scheduler" \
        "$bin/scheduler" --exit-when-idle 2>/dev/null & pids+=($!)
      for w in $(seq "$workers"); do
        DATABASE_URL="mysql://root@127.0.0.1:$port/videoclip" with_cpu "$out/cpu-worker-$w" \
          "$bin/worker" --exit-when-idle --concurrency "$conc" 2>/dev/null & pids+=($!)
      done
      wait "${pids[@]}"
      db_counters >"$out/counters-after"
      local db_cpu redis_cpu
      db_cpu=$(python3 -c "print($(cpu_seconds "$db_pid") - $db_cpu0)")
      redis_cpu=$(python3 -c "print($(cpu_seconds "$(cat .local/services/redis/pid)") - $redis_cpu0)")
      local ours
      ours=$(bsql "SELECT TIMESTAMPDIFF(MICROSECOND, '$t0', MAX(changed_at)) / 1e6 FROM task_status_history WHERE to_status = 2")
      local check
      check=$(bsql "SELECT CONCAT((SELECT COUNT(*) FROM processing_tasks WHERE status = 2), ' ',
                                  (SELECT COUNT(*) FROM processing_results), ' ',
                                  (SELECT COUNT(*) FROM task_status_history))")
      read -r done results history <<<"$check"
      if [ "$done" != "$n" ] || [ "$results" != "$n" ] || [ "$history" != "$((3 * n))" ]; then
        echo "ours: bookkeeping incomplete: $done completed, $results results, $history history rows (want $n, $n, $((3 * n)))" >&2
        bench_mariadb_stop "$mode"
        return 1
      fi
      # BullMQ, same Redis (database 1), same total concurrency.
      redis-cli -p "$redis_port" -n 1 FLUSHDB >/dev/null
      "$peer" enqueue --count "$n" >/dev/null
      local bull
      bull=$("$peer" work --concurrency "$total" --exit-after-idle-ms 1000)
      python3 - "$n" "$ours" "$bull" "$round" "$out" "$db_cpu" "$redis_cpu" "$workers" >>"$out/$mode.txt" <<'PY'
import sys
n, ours, bull, rnd, out, db_cpu, redis_cpu, workers = sys.argv[1:]
n = int(n); ours = float(ours)
fields = dict(t.split("=", 1) for t in bull.split() if "=" in t)
bull_rate = float(fields["rate"].removesuffix("/s"))
lost, dup = fields["lost"], fields["dup"]
cpu = lambda f: float(open(f"{out}/{f}").read())
sched = cpu("cpu-scheduler"); work = sum(cpu(f"cpu-worker-{w}") for w in range(1, int(workers) + 1))
before = dict(l.split() for l in open(f"{out}/counters-before"))
after = dict(l.split() for l in open(f"{out}/counters-after"))
per10k = {k: (int(after[k]) - int(before[k])) * 10000 / n for k in after}
print(f"round {rnd}: ours {n / ours:.0f} tasks/s ({ours:.2f} s), BullMQ {bull_rate:.0f} jobs/s (lost {lost}, dup {dup}), ratio {n / ours / bull_rate:.2f}"
      f" | CPU s per 10k: worker {work * 10000 / n:.2f}, scheduler {sched * 10000 / n:.2f}, MariaDB {float(db_cpu) * 10000 / n:.2f}, Redis {float(redis_cpu) * 10000 / n:.2f}"
      f" | per 10k: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(per10k.items())))
PY
      tail -1 "$out/$mode.txt"
    done
    python3 - "$out/$mode.txt" "$mode" <<'PY'
import re, statistics, sys
rows = [l for l in open(sys.argv[1]) if l.startswith("round")]
ours = [float(re.search(r"ours (\d+)", l).group(1)) for l in rows]
bull = [float(re.search(r"BullMQ (\d+)", l).group(1)) for l in rows]
ratio = [float(re.search(r"ratio ([\d.]+)", l).group(1)) for l in rows]
print(f"  {sys.argv[2]}: median ours {statistics.median(ours):.0f} tasks/s, BullMQ {statistics.median(bull):.0f} jobs/s, ratio per round {' '.join(f'{r:.2f}' for r in ratio)}, median {statistics.median(ratio):.2f}")
PY
    bench_mariadb_stop "$mode"
  done
}

# SQL on the benchmark's MariaDB ($bsock), database videoclip / none.
bsql() { mariadb --no-defaults -S "$bsock" -uroot -N videoclip -e "$1"; }
bsql_root() { mariadb --no-defaults -S "$bsock" -uroot -N -e "$1"; }
