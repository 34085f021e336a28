#!/usr/bin/env bash
# The demo, on a fresh machine: services, whisper model, build, migrations,
# the fixture videos enqueued, one scheduler and one worker until idle, then
# the selling-point clips they cut; and a burst of no-op tasks through the
# same queue to show its speed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/videoclip-target}"

# Packages first (a fresh machine gets them installed), then check that every
# tool works, so a broken one is named before the long build; then the servers.
scripts/services.sh install
scripts/doctor.sh
scripts/services.sh up
WHISPER_MODEL="$(scripts/fetch-model.sh base)"
export WHISPER_MODEL
[ -f fixtures/videos/zh-airfryer.mp4 ] || scripts/make-fixtures.sh
cargo build --release --workspace --bins --locked
bin="$CARGO_TARGET_DIR/release"
set -a; . ./.env; set +a
mkdir -p .local

"$bin/enqueue" migrate
"$bin/enqueue" user add demo --email demo@example.com >/dev/null 2>&1 || true

echo "== enqueue the fixture videos"
tasks=()
for f in zh-airfryer zh-shampoo zh-sneakers en-water-bottle en-desk-lamp; do
  case "$f" in zh-*) lang=zh ;; *) lang=en ;; esac
  line=$("$bin/enqueue" video "fixtures/videos/$f.mp4" --user demo --priority 2 --config "{\"language\":\"$lang\"}" --json)
  id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["task_id"])' "$line")
  echo "$f -> task $id"
  tasks+=("$id")
done

echo "== one scheduler and one worker until idle (logs in .local/demo-*.log)"
start=$(date +%s.%N)
"$bin/scheduler" --exit-when-idle 2>.local/demo-scheduler.log &
"$bin/worker" --exit-when-idle --concurrency 2 2>.local/demo-worker.log &
wait
end=$(date +%s.%N)
echo "done in $(python3 -c "print(round($end - $start, 1))") s"
"$bin/enqueue" status "${tasks[@]}"
for id in "${tasks[@]}"; do
  echo
  echo "== segments of task $id"
  "$bin/enqueue" segments "$id"
done
echo
echo "(clips and thumbnails are under ${STORAGE_URL#file://})"

echo
echo "== 20000 no-op tasks through the same queue: 1 scheduler, 2 workers x 64"
"$bin/enqueue" noop --count 20000 >/dev/null
start=$(date +%s.%N)
"$bin/scheduler" --exit-when-idle 2>>.local/demo-scheduler.log &
"$bin/worker" --exit-when-idle --concurrency 64 2>>.local/demo-worker.log &
"$bin/worker" --exit-when-idle --concurrency 64 2>>.local/demo-worker.log &
wait
end=$(date +%s.%N)
python3 -c "print(f'20000 tasks in {$end - $start:.2f} s: {20000/($end - $start):.0f} tasks/s end to end')"
"$bin/enqueue" queues
