#!/usr/bin/env bash
# Benchmarks (numbers go to BENCHMARKS.md; never asserted in tests).
#
#   scripts/bench.sh [queue|backlog|push|enqueue|latency|pipeline|cut|brand|all]   (default: all)
#
# queue     our queue against BullMQ's official Rust crate (bench/peers), side
#           by side on the same Redis: 20000 no-op jobs each, 3 rounds, with a
#           throwaway and a fully durable MariaDB; the ratio per round, CPU
#           and MariaDB counters per 10,000 tasks (scripts/lib/bench-queue.sh).
# backlog   20000 no-op tasks through 1 scheduler + 1 worker x 64 with
#           lower-priority pending rows already waiting, once per size in
#           BACKLOGS (default "10000 1000000"): the drain rate per size.
# push      the scheduler alone (no worker) moving PUSH_N (default 200000)
#           pending rows into Redis, over each backlog of BACKLOGS: rows/s.
# enqueue   `enqueue noop --count ENQUEUE_N` (default 1000000) and `enqueue
#           backfill` over ENQUEUE_N stored videos: rows/s.
# latency   dispatch latency on an idle fleet: LATENCY_N (default 1000) single
#           `enqueue noop --count 1`, one after another; for each task the
#           time from its row's insert to its claim (task_status_history,
#           millisecond times), p50/p90/p99/max.
# pipeline  videos through a worker with default settings, against whisper
#           alone on the same audio (bench_whisper: same model and threads,
#           one full() over the whole 16 kHz audio), in one run: each video
#           alone (task time = claim -> completed), the fixtures at
#           concurrency 1, 2 and 4 (throughput), silent videos, peak RSS.
#           Videos: the speech fixtures, two generated 3-minute ones (Mandarin
#           360p; English phone-style 1080x1920 30 fps with music under the
#           voice) and silent ones (20 s, 20 min), cached in .local/bench.
#           MODEL=base-q8_0 measures the quantized model instead.
# cut       frame-exact smart cut against a full libx264 veryfast re-encode of
#           the same clip: x264 1080p and 360p, phone-style H.264, HEVC.
# brand     what each template kind costs per clip second, against the plain
#           smart cut (a 10 s clip of a fixture video).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/videoclip-target}"
what="${1:-all}"

scripts/services.sh up >/dev/null
cargo build --release --workspace --bins --locked 2>/dev/null
bin="$CARGO_TARGET_DIR/release"
set -a; . ./.env; set +a
sock=.local/services/mariadb/sock
sql() { mariadb --no-defaults -S "$sock" -uroot -N videoclip -e "$1"; }
now() { date +%s.%N; }
. scripts/lib/bench-queue.sh

# A fresh database for each run, so earlier runs do not count.
fresh_db() {
  mariadb --no-defaults -S "$sock" -uroot -e "DROP DATABASE IF EXISTS videoclip; CREATE DATABASE videoclip CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
  redis-cli -p "$(cat .local/services/redis/port)" FLUSHALL >/dev/null
  "$bin/enqueue" migrate >/dev/null
}

# Generated long videos for the pipeline bench (made once, then reused).
bench_videos() {
  local d=.local/bench/pipeline f=fixtures/videos
  mkdir -p "$d"
  if [ ! -f "$d/long-zh-360p.mp4" ]; then
    ffmpeg -v error -y $(for i in 1 2; do for v in zh-airfryer zh-earbuds zh-shampoo zh-sneakers; do printf -- '-i %s ' "$f/$v.mp4"; done; done) \
      -filter_complex "$(for i in $(seq 0 7); do printf '[%d:v][%d:a]' "$i" "$i"; done)concat=n=8:v=1:a=1[v][a]" \
      -map '[v]' -map '[a]' -c:v libx264 -preset veryfast -g 50 -c:a aac -ar 44100 "$d/tmp.mp4" && mv "$d/tmp.mp4" "$d/long-zh-360p.mp4"
  fi
  if [ ! -f "$d/phone-en-1080x1920.mp4" ]; then
    # Three passes over the English fixtures, upscaled into a portrait
    # frame at 30 fps, a soft chord (music) mixed under the voice.
    ffmpeg -v error -y $(for i in 1 2 3; do for v in en-desk-lamp en-water-bottle en-jfk; do printf -- '-i %s ' "$f/$v.mp4"; done; done) \
      -f lavfi -i "aevalsrc=0.05*sin(2*PI*220*t)+0.04*sin(2*PI*277*t)+0.04*sin(2*PI*330*t)*(0.6+0.4*sin(2*PI*2*t)):s=44100" \
      -filter_complex "$(for i in $(seq 0 8); do printf '[%d:v][%d:a]' "$i" "$i"; done)concat=n=9:v=1:a=1[cv][ca];[cv]scale=1080:-2,pad=1080:1920:0:(oh-ih)/2,fps=30[v];[ca][9:a]amix=inputs=2:duration=first:normalize=0[a]" \
      -map '[v]' -map '[a]' -c:v libx264 -preset veryfast -profile:v high -g 60 -c:a aac -b:a 128k "$d/tmp.mp4" && mv "$d/tmp.mp4" "$d/phone-en-1080x1920.mp4"
  fi
  for secs in 20 1200; do
    [ -f "$d/silent-${secs}s.mp4" ] && continue
    ffmpeg -v error -y -f lavfi -i "color=c=0x202830:s=640x360:r=25" -f lavfi -i "anoisesrc=a=0.0005:c=pink:r=44100" \
      -t "$secs" -c:v libx264 -preset ultrafast -g 50 -c:a aac "$d/tmp.mp4" && mv "$d/tmp.mp4" "$d/silent-${secs}s.mp4"
  done
}

# LANG=PATH for every speech fixture (language from its labels).
fixture_videos() {
  for labels in fixtures/videos/*.labels.json; do
    local v="${labels%.labels.json}.mp4" lang
    [ "$(basename "$v")" = silent.mp4 ] && continue
    lang=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["language"])' "$labels")
    echo "$lang=$v"
  done
}

# Seconds each completed task took from its claim to its completion, as
# "task_id seconds" lines.
task_seconds() {
  sql "SELECT t.task_id, TIMESTAMPDIFF(MICROSECOND, c.changed_at, d.changed_at) / 1e6
       FROM processing_tasks t
       JOIN task_status_history c ON c.task_id = t.id AND c.to_status = 1 AND c.attempt = 1
       JOIN task_status_history d ON d.task_id = t.id AND d.to_status = 2"
}

# Enqueues LANG=PATH as user bench; prints the task id.
enqueue_one() {
  "$bin/enqueue" video "${1#*=}" --user bench --config "{\"language\":\"${1%%=*}\"}" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["task_id"])'
}

# Waits until no task is pending or processing.
wait_idle() {
  while [ "$(sql "SELECT COUNT(*) FROM processing_tasks WHERE status IN (0, 1)")" -gt 0 ]; do sleep 0.2; done
}

# Peak resident memory (MB) of process $1 until it exits, written to $2.
watch_rss() {
  local peak=0 hwm
  while kill -0 "$1" 2>/dev/null; do
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
    [ "${hwm:-0}" -gt "$peak" ] && peak=$hwm
    sleep 0.2
  done
  echo $((peak / 1024)) >"$2"
}

pipeline_bench() {
  local model_name="${MODEL:-base}" model out=.local/bench/pipeline
  echo "== pipeline: model $model_name, worker with default settings, $(nproc) cores"
  model="$(scripts/fetch-model.sh "$model_name")"
  bench_videos
  local speech=($(fixture_videos) "zh=$out/long-zh-360p.mp4" "en=$out/phone-en-1080x1920.mp4")
  local silent=("en=fixtures/videos/silent.mp4" "en=$out/silent-20s.mp4" "en=$out/silent-1200s.mp4")
  echo "-- whisper alone (bench_whisper)"
  WHISPER_MODEL="$model" "$bin/bench_whisper" "${speech[@]}" "${silent[@]}" | tee "$out/whisper.jsonl" |
    python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    print("  %s: %.1f s audio, whisper %.2f s" % (r["video"], r["audio_seconds"], r["whisper_seconds"]))'

  echo "-- each video alone (enqueued after the previous one finished)"
  fresh_db
  "$bin/enqueue" user add bench --email bench@example.com >/dev/null
  "$bin/scheduler" 2>/dev/null & local s=$!
  WHISPER_MODEL="$model" "$bin/worker" 2>/dev/null & local w=$!
  watch_rss $w "$out/rss-alone" & local r=$!
  : >"$out/alone.txt"
  for v in "${speech[@]}" "${silent[@]}"; do
    echo "$(enqueue_one "$v") ${v#*=}" >>"$out/alone.txt"
    wait_idle
  done
  task_seconds >"$out/alone-seconds.txt"
  sql "SELECT t.task_id, JSON_EXTRACT(r.result_data, '$.timings_seconds') FROM processing_results r JOIN processing_tasks t ON t.id = r.task_id WHERE r.result_type = 'analysis'" >"$out/alone-steps.txt"
  kill $s $w; wait $s $w $r 2>/dev/null || true
  python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
whisper = {}
for l in open(f"{out}/whisper.jsonl"):
    r = json.loads(l); whisper[r["video"]] = r
video = dict(l.split() for l in open(f"{out}/alone.txt"))
took = {t: float(s) for t, s in (l.split() for l in open(f"{out}/alone-seconds.txt"))}
steps = {}
for l in open(f"{out}/alone-steps.txt"):
    t, j = l.split("\t"); steps[t] = json.loads(j)
print("| video | audio | whisper alone | task | task / whisper | steps (s) |")
print("|---|---|---|---|---|---|")
groups = {"fixtures": [0, 0], "long": [0, 0]}
for t, v in video.items():
    w = whisper[v]; task = took.get(t, float("nan"))
    silent = "silent" in v
    ratio = "" if silent else f"{task / w['whisper_seconds']:.2f}x"
    st = "  ".join(f"{k} {x:.2f}" for k, x in steps.get(t, {}).items())
    print(f"| {v.split('/')[-1]} | {w['audio_seconds']:.1f} s | {w['whisper_seconds']:.2f} s | {task:.2f} s | {ratio} | {st} |")
    if not silent:
        g = groups["long" if ".local/" in v else "fixtures"]
        g[0] += task; g[1] += w["whisper_seconds"]
for name, (task, w) in groups.items():
    if w:
        print(f"| **{name}** | | {w:.2f} s | {task:.2f} s | **{task / w:.2f}x** | |")
PY
  echo "  worker peak resident memory: $(cat "$out/rss-alone") MB"

  echo "-- throughput: the speech fixtures all enqueued at once"
  local fixtures=($(fixture_videos))
  for c in 1 2 4; do
    fresh_db
    "$bin/enqueue" user add bench --email bench@example.com >/dev/null
    for v in "${fixtures[@]}"; do enqueue_one "$v" >/dev/null; done
    local start end
    start=$(now)
    "$bin/scheduler" --exit-when-idle 2>/dev/null & s=$!
    WHISPER_MODEL="$model" "$bin/worker" --exit-when-idle --concurrency $c 2>/dev/null & w=$!
    watch_rss $w "$out/rss-c$c" & r=$!
    wait $s $w $r
    end=$(now)
    python3 - "$out" "$c" "$start" "$end" "$(cat "$out/rss-c$c")" "${#fixtures[@]}" "$(sql "SELECT COUNT(*) FROM processing_tasks WHERE status = 2")" <<'PY'
import json, sys
out, c, start, end, rss, n, done = sys.argv[1:]
fixtures = [json.loads(l) for l in open(f"{out}/whisper.jsonl") if "fixtures/" in l and "silent" not in l]
whisper = sum(r["whisper_seconds"] for r in fixtures)
wall = float(end) - float(start)
print(f"  concurrency {c}: {done}/{n} videos in {wall:.2f} s (whisper alone, one after another: {whisper:.2f} s) = {wall / whisper:.2f}x; peak RSS {rss} MB")
PY
  done
}

if [ "$what" = queue ] || [ "$what" = all ]; then
  queue_bench
fi

# Fills the fresh database with $1 pending no-op rows of priority $2 (one
# server-side INSERT ... SELECT: fast, and not what is being measured).
pending_rows() {
  "$bin/enqueue" noop --count 1 --priority "$2" >/dev/null
  [ "$1" -gt 1 ] || return 0
  sql "INSERT INTO processing_tasks (task_id, user_id, video_id, task_type, config, priority, max_retries)
       SELECT UUID(), user_id, video_id, task_type, config, priority, max_retries
       FROM processing_tasks, (SELECT seq FROM seq_1_to_$(($1 - 1))) s LIMIT $(($1 - 1))"
}

if [ "$what" = backlog ] || [ "$what" = all ]; then
  for backlog in ${BACKLOGS:-10000 1000000}; do
    echo "== backlog: 20000 no-op tasks (priority 5) over $backlog pending rows (priority 10)"
    fresh_db
    start=$(now)
    pending_rows "$backlog" 10
    end=$(now)
    python3 -c "print(f'  backlog of {$backlog} rows inserted in {$end - $start:.1f} s')"
    "$bin/enqueue" noop --count 20000 --priority 5 >/dev/null
    # Measure until the 20000 priority-5 tasks are done, then stop the fleet.
    t0=$(sql "SELECT NOW(3)")
    "$bin/scheduler" 2>/dev/null & s=$!
    "$bin/worker" --concurrency 64 2>/dev/null & w1=$!
    while [ "$(sql "SELECT COUNT(*) FROM processing_tasks WHERE priority = 5 AND status = 2")" -lt 20000 ]; do sleep 0.2; done
    kill $s $w1; wait
    took=$(sql "SELECT TIMESTAMPDIFF(MICROSECOND, '$t0', MAX(completed_at)) / 1e6 FROM processing_tasks WHERE priority = 5")
    python3 -c "print(f'  20000 tasks in {$took:.2f} s: {20000 / $took:.0f} tasks/s with {$backlog} rows waiting')"
  done
fi

if [ "$what" = push ] || [ "$what" = all ]; then
  n="${PUSH_N:-200000}"
  for backlog in ${BACKLOGS:-10000 1000000}; do
    [ "$backlog" -ge "$n" ] || backlog=$n
    echo "== push: one scheduler, no worker, moves $n of $backlog pending rows into Redis"
    fresh_db
    pending_rows "$backlog" 5
    t0=$(sql "SELECT NOW(3)")
    SCHEDULER_MIN_QUEUED=$n "$bin/scheduler" 2>/dev/null & s=$!
    while [ "$(sql "SELECT COUNT(*) FROM processing_tasks WHERE status = 0 AND queued_at IS NOT NULL")" -lt "$n" ]; do sleep 0.2; done
    kill $s; wait
    took=$(sql "SELECT TIMESTAMPDIFF(MICROSECOND, '$t0', MAX(queued_at)) / 1e6 FROM processing_tasks")
    depth=$(redis-cli -p "$(cat .local/services/redis/port)" LLEN queue:video_processing)
    python3 -c "print(f'  {$n} rows queued in {$took:.2f} s: {$n / $took:.0f} rows/s into Redis (list depth {$depth})')"
  done
fi

if [ "$what" = enqueue ] || [ "$what" = all ]; then
  n="${ENQUEUE_N:-1000000}"
  echo "== enqueue: \`enqueue noop --count $n\` and \`enqueue backfill\` over $n stored videos"
  fresh_db
  start=$(now)
  "$bin/enqueue" noop --count "$n" >/dev/null
  end=$(now)
  python3 -c "print(f'  noop: {$n} rows in {$end - $start:.1f} s: {$n / ($end - $start):.0f} rows/s')"
  fresh_db
  "$bin/enqueue" user add bench --email bench@example.com >/dev/null
  user=$(sql "SELECT id FROM users WHERE username = 'bench'")
  "$bin/enqueue" quota set bench --monthly-videos $((2 * n)) >/dev/null
  sql "INSERT INTO videos (user_id, filename, original_filename, file_path, file_size, status)
       SELECT $user, CONCAT('v', seq, '.mp4'), CONCAT('v', seq, '.mp4'), CONCAT('uploads/v', seq, '.mp4'), 1000, 1 FROM seq_1_to_$n"
  start=$(now)
  "$bin/enqueue" backfill --user bench >/dev/null 2>&1
  end=$(now)
  made=$(sql "SELECT COUNT(*) FROM processing_tasks")
  python3 -c "print(f'  backfill: {$made} tasks for {$n} videos in {$end - $start:.1f} s: {$made / ($end - $start):.0f} rows/s')"
fi

if [ "$what" = latency ] || [ "$what" = all ]; then
  n="${LATENCY_N:-1000}"
  echo "== latency: $n single enqueues on an idle fleet (1 scheduler, 1 worker x 4)"
  fresh_db
  "$bin/scheduler" 2>/dev/null & s=$!
  "$bin/worker" --concurrency 4 2>/dev/null & w=$!
  # One warm-up task, not counted: the fleet is up and connected before
  # the measured enqueues begin.
  "$bin/enqueue" noop --count 1 >/dev/null
  while [ "$(sql "SELECT COUNT(*) FROM processing_tasks WHERE status = 2")" -lt 1 ]; do sleep 0.1; done
  warmup=$(sql "SELECT MAX(id) FROM processing_tasks")
  for _ in $(seq "$n"); do "$bin/enqueue" noop --count 1 >/dev/null; done
  while [ "$(sql "SELECT COUNT(*) FROM processing_tasks WHERE status = 2")" -lt $((n + 1)) ]; do sleep 0.2; done
  kill $s $w; wait
  # Per task: insert -> claim, and its two legs: insert -> queued_at (the
  # scheduler's push) and queued_at -> claim (the worker's pop and claim).
  sql "SELECT TIMESTAMPDIFF(MICROSECOND, c.changed_at, p.changed_at) / 1000,
              TIMESTAMPDIFF(MICROSECOND, c.changed_at, t.queued_at) / 1000,
              TIMESTAMPDIFF(MICROSECOND, t.queued_at, p.changed_at) / 1000, t.id
       FROM task_status_history c JOIN task_status_history p
         ON p.task_id = c.task_id AND p.to_status = 1 AND p.attempt = 1
       JOIN processing_tasks t ON t.id = c.task_id
       WHERE c.from_status IS NULL AND c.task_id > $warmup" |
    python3 -c '
import sys
lines = [l.split() for l in sys.stdin if l.strip()]
rows = [tuple(float(x) for x in l) for l in lines if "NULL" not in l]
if len(rows) < len(lines):
    print(f"  {len(lines) - len(rows)} tasks claimed without queued_at (not counted)")
def pct(col):
    ms = sorted(r[col] for r in rows)
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
    return f"p50 {pick(0.5):.1f} ms, p90 {pick(0.9):.1f} ms, p99 {pick(0.99):.1f} ms, max {ms[-1]:.1f} ms"
print(f"  {len(rows)} tasks: insert -> claim {pct(0)}")
print(f"    insert -> queued (scheduler) {pct(1)}")
print(f"    queued -> claim (worker) {pct(2)}")
slow = sorted(rows, key=lambda r: -r[0])[: max(1, len(rows) // 100)]
print("    slowest 1%: " + ", ".join(f"#{int(r[3])} {r[0]:.0f}={r[1]:.0f}+{r[2]:.0f}" for r in sorted(slow, key=lambda r: r[3])))'
fi

if [ "$what" = pipeline ] || [ "$what" = all ]; then
  pipeline_bench
fi

if [ "$what" = cut ] || [ "$what" = all ]; then
  echo "== cut: smart cut vs full libx264 veryfast re-encode (bench_cut, median of 3)"
  "$bin/bench_cut"
fi

if [ "$what" = brand ] || [ "$what" = all ]; then
  echo "== brand: template costs per clip second (zh-airfryer 2-12 s)"
  "$bin/bench_brand" fixtures/videos/zh-airfryer.mp4 2 12
fi
