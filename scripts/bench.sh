#!/usr/bin/env bash
# Benchmarks (numbers go to BENCHMARKS.md; never asserted in tests).
#
#   scripts/bench.sh [queue|backlog|latency|pipeline|cut|brand|all]   (default: all)
#
# queue     20000 no-op tasks, 1 scheduler, 2 workers x 64: tasks/s end to end,
#           MySQL bookkeeping included (claim, result row, completion).
# backlog   the same 20000 tasks with BACKLOG (default 200000) lower-priority
#           pending rows already in the table.
# latency   dispatch latency on an idle fleet: LATENCY_N (default 1000) single
#           `enqueue noop --count 1`, one after another; for each task the
#           time from its row's insert to its claim (task_status_history,
#           millisecond times), p50/p90/p99/max.
# pipeline  the fixture videos through a worker: each step's share of the
#           task, and the task's time over whisper's alone.
# cut       a frame-exact smart cut against a full re-encode of a 1080p clip.
# brand     what each template kind costs per clip second, against the plain
#           smart cut (a 10 s clip of a fixture video).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/videoclip-target}"
what="${1:-all}"
BACKLOG="${BACKLOG:-200000}"

scripts/services.sh up >/dev/null
cargo build --release --workspace --bins --locked 2>/dev/null
bin="$CARGO_TARGET_DIR/release"
set -a; . ./.env; set +a
sock=.local/services/mariadb/sock
sql() { mariadb --no-defaults -S "$sock" -uroot -N videoclip -e "$1"; }
now() { date +%s.%N; }

# A fresh database for each run, so earlier runs do not count.
fresh_db() {
  mariadb --no-defaults -S "$sock" -uroot -e "DROP DATABASE IF EXISTS videoclip; CREATE DATABASE videoclip CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  redis-cli -p "$(cat .local/services/redis/port)" FLUSHALL >/dev/null
  "$bin/enqueue" migrate >/dev/null
}

run_fleet() {
  local start end
  start=$(now)
  "$bin/scheduler" --exit-when-idle 2>/dev/null &
  "$bin/worker" --exit-when-idle --concurrency 64 2>/dev/null &
  "$bin/worker" --exit-when-idle --concurrency 64 2>/dev/null &
  wait
  end=$(now)
  python3 -c "print(f'{$1} tasks in {$end - $start:.2f} s: {$1 / ($end - $start):.0f} tasks/s')"
}

if [ "$what" = queue ] || [ "$what" = all ]; then
  echo "== queue: 20000 no-op tasks, 1 scheduler, 2 workers x 64"
  fresh_db
  "$bin/enqueue" noop --count 20000 >/dev/null
  run_fleet 20000
fi

if [ "$what" = backlog ] || [ "$what" = all ]; then
  echo "== backlog: 20000 no-op tasks (priority 5) over $BACKLOG pending rows (priority 10)"
  fresh_db
  "$bin/enqueue" noop --count 1 --priority 10 >/dev/null
  start=$(now)
  # Copy the one row until the backlog is there (fast server-side inserts).
  sql "INSERT INTO processing_tasks (task_id, user_id, video_id, task_type, config, priority, max_retries)
       SELECT UUID(), user_id, video_id, task_type, config, priority, max_retries
       FROM processing_tasks, (SELECT seq FROM seq_1_to_$BACKLOG) s LIMIT $BACKLOG"
  end=$(now)
  python3 -c "print(f'backlog of {$BACKLOG} rows inserted in {$end - $start:.1f} s')"
  "$bin/enqueue" noop --count 20000 --priority 5 >/dev/null
  # Measure until the 20000 priority-5 tasks are done, then stop the fleet.
  start=$(now)
  "$bin/scheduler" 2>/dev/null & s=$!
  "$bin/worker" --concurrency 64 2>/dev/null & w1=$!
  "$bin/worker" --concurrency 64 2>/dev/null & w2=$!
  while [ "$(sql "SELECT COUNT(*) FROM processing_tasks WHERE priority = 5 AND status = 2")" -lt 20000 ]; do sleep 0.2; done
  end=$(now)
  kill $s $w1 $w2; wait
  python3 -c "print(f'20000 tasks in {$end - $start:.2f} s: {20000 / ($end - $start):.0f} tasks/s with the backlog waiting')"
fi

if [ "$what" = latency ] || [ "$what" = all ]; then
  n="${LATENCY_N:-1000}"
  echo "== latency: $n single enqueues on an idle fleet (1 scheduler, 1 worker x 4)"
  fresh_db
  "$bin/scheduler" 2>/dev/null & s=$!
  "$bin/worker" --concurrency 4 2>/dev/null & w=$!
  for _ in $(seq "$n"); do "$bin/enqueue" noop --count 1 >/dev/null; done
  while [ "$(sql "SELECT COUNT(*) FROM processing_tasks WHERE status = 2")" -lt "$n" ]; do sleep 0.2; done
  kill $s $w; wait
  sql "SELECT TIMESTAMPDIFF(MICROSECOND, c.changed_at, p.changed_at) / 1000
       FROM task_status_history c JOIN task_status_history p
         ON p.task_id = c.task_id AND p.to_status = 1 AND p.attempt = 1
       WHERE c.from_status IS NULL" |
    python3 -c '
import sys
ms = sorted(float(l) for l in sys.stdin if l.strip())
pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print(f"  {len(ms)} tasks: insert -> claim p50 {pick(0.5):.1f} ms, p90 {pick(0.9):.1f} ms, p99 {pick(0.99):.1f} ms, max {ms[-1]:.1f} ms")'
fi

if [ "$what" = pipeline ] || [ "$what" = all ]; then
  echo "== pipeline: fixture videos, one worker, one task at a time, base model"
  fresh_db
  model="$(scripts/fetch-model.sh base)"
  "$bin/enqueue" user add bench --email bench@example.com >/dev/null
  for f in zh-airfryer zh-shampoo en-water-bottle; do
    case "$f" in zh-*) lang=zh ;; *) lang=en ;; esac
    "$bin/enqueue" video "fixtures/videos/$f.mp4" --user bench --config "{\"language\":\"$lang\"}" >/dev/null
  done
  "$bin/scheduler" --exit-when-idle 2>/dev/null &
  WHISPER_MODEL="$model" "$bin/worker" --exit-when-idle --concurrency 1 2>/dev/null & worker=$!
  peak=0
  while kill -0 $worker 2>/dev/null; do
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$worker/status 2>/dev/null || echo 0)
    [ "${hwm:-0}" -gt "$peak" ] && peak=$hwm
    sleep 0.2
  done
  wait
  echo "  worker peak resident memory: $((peak / 1024)) MB"
  sql "SELECT JSON_EXTRACT(result_data, '$.timings_seconds') FROM processing_results WHERE result_type = 'analysis'" |
    python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
for r in rows:
    total = sum(r.values())
    ratio = total / r["transcribe"]
    print("  " + "  ".join(f"{k} {v:.2f}s" for k, v in r.items()) + f"  | task {total:.2f}s = {ratio:.2f}x whisper")
total = sum(sum(r.values()) for r in rows); whisper = sum(r["transcribe"] for r in rows)
print(f"all: task time {total:.2f}s, whisper {whisper:.2f}s: {total / whisper:.2f}x whisper alone")'
fi

if [ "$what" = cut ] || [ "$what" = all ]; then
  echo "== cut: smart cut vs full re-encode (1080p, from the media tests)"
  cargo test --release --locked -p worker smart_cut_1080p_timing -- --nocapture 2>&1 | grep -iE "smart|re-?encode" | grep -v "^test " || true
fi

if [ "$what" = brand ] || [ "$what" = all ]; then
  echo "== brand: template costs per clip second (zh-airfryer 2-12 s)"
  "$bin/bench_brand" fixtures/videos/zh-airfryer.mp4 2 12
fi
