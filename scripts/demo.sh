#!/usr/bin/env bash
# The demo, on a fresh machine: services, whisper model, build, migrations,
# the fixture videos enqueued, one scheduler and one worker until idle, then
# the selling-point clips they cut; a burst of no-op tasks through the same
# queue to show its speed; and last the HTTP API and dashboard, left running
# with the demo's tasks in it (the script prints its URL and a login token).
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
# Download links on file:// storage are signed with this key (a throwaway
# one for the demo unless you set your own).
export DOWNLOAD_SIGNING_KEY="${DOWNLOAD_SIGNING_KEY:-$(openssl rand -hex 32)}"

"$bin/enqueue" migrate
"$bin/enqueue" user add demo --email demo@example.com >/dev/null 2>&1 || true

echo "== the demo shop's templates: an intro card, a watermark, captions"
tpl=.local/demo-templates
mkdir -p "$tpl"
ffmpeg -v error -y -f lavfi -i "color=0x1E3A8A:s=640x360:r=25:d=1.5" \
  -f lavfi -i "sine=f=523:r=44100:d=1.5" \
  -vf "drawtext=font='Noto Sans CJK SC':text='DEMO SHOP 演示店':fontsize=44:fontcolor=white:x=(w-tw)/2:y=(h-th)/2" \
  -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$tpl/intro.mp4"
ffmpeg -v error -y -f lavfi -i "color=0xF59E0B:s=120x40" \
  -vf "drawtext=font='Noto Sans CJK SC':text='DEMO':fontsize=28:fontcolor=black:x=(w-tw)/2:y=(h-th)/2" \
  -frames:v 1 "$tpl/watermark.png"
template_id() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$1"; }
intro=$(template_id "$("$bin/enqueue" template add "$tpl/intro.mp4" --type intro --name "Demo intro" --user demo --json)")
mark=$(template_id "$("$bin/enqueue" template add "$tpl/watermark.png" --type watermark --name "Demo logo" --user demo \
  --config '{"position": "top-right", "margin": 16, "scale": 0.18, "opacity": 0.9}' --json)")
subs=$(template_id "$("$bin/enqueue" template add --type captions --name "Demo captions" --user demo \
  --config '{"size": 26, "colour": "#FFFFFF", "outline": 2, "position": "bottom"}' --json)")
echo "intro $intro, watermark $mark, captions $subs"

echo "== enqueue the fixture videos (zh-airfryer with the templates)"
tasks=()
for f in zh-airfryer zh-shampoo zh-sneakers en-water-bottle en-desk-lamp; do
  case "$f" in zh-*) lang=zh ;; *) lang=en ;; esac
  templates=""
  if [ "$f" = zh-airfryer ]; then
    templates=",\"templates\":{\"intro\":$intro,\"watermark\":$mark,\"captions\":$subs}"
  fi
  line=$("$bin/enqueue" video "fixtures/videos/$f.mp4" --user demo --priority 2 --config "{\"language\":\"$lang\"$templates}" --json)
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
echo "== templated clips of task ${tasks[0]} (intro + clip with watermark and captions)"
"$bin/enqueue" segments "${tasks[0]}" --json | python3 -c '
import json, sys
for line in sys.stdin:
    s = json.loads(line)
    print(s["segment_id"], s["selling_point_type"], s["file_path"].rsplit(".", 1)[0] + ".templated.mp4")
'
echo
echo "== a download package of the templated clips (zip, link valid 24 h)"
"$bin/scheduler" 2>>.local/demo-scheduler.log &
sched=$!
"$bin/worker" 2>>.local/demo-worker.log &
work=$!
package=$("$bin/enqueue" download --task "${tasks[0]}" --templated --wait --json | tail -n 1)
link=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["download_url"])' "$package")
echo "link: $link"
"$bin/enqueue" fetch-download "$link" -o .local/demo-package.zip >/dev/null
python3 -c 'import sys, zipfile; [print(f"  {i.file_size:>9}  {i.filename}") for i in zipfile.ZipFile(sys.argv[1]).infolist()]' .local/demo-package.zip
kill -TERM "$sched" "$work"
wait
echo
echo "(clips, subtitles, templated clips and thumbnails are under ${STORAGE_URL#file://})"

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

echo
echo "== the dashboard and the HTTP API (left running; logs in .local/demo-api.log)"
if [ -f .local/demo-api.pid ]; then kill "$(cat .local/demo-api.pid)" 2>/dev/null || true; fi
"$bin/enqueue" user add operator --email operator@example.com >/dev/null 2>&1 || true
token=$("$bin/enqueue" token create operator --operator --name demo-dashboard --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
listen="${API_LISTEN:-127.0.0.1:8080}"
nohup "$bin/api" --listen "$listen" >.local/demo-api.log 2>&1 &
echo $! >.local/demo-api.pid
# Ready when /readyz says so (database and Redis reachable), within 30 s.
python3 - "$listen" <<'PY'
import sys, time, urllib.request
deadline = time.time() + 30
while True:
    try:
        if urllib.request.urlopen(f"http://{sys.argv[1]}/readyz", timeout=2).status == 200:
            break
    except Exception:
        pass
    if time.time() > deadline:
        sys.exit(f"the api did not become ready on {sys.argv[1]}: see .local/demo-api.log")
    time.sleep(0.1)
PY
echo "dashboard: http://$listen/  (log in with the operator token below; the demo's tasks are under Tasks)"
echo "API:       http://$listen/api/v1/openapi.json  (curl -H 'Authorization: Bearer TOKEN' http://$listen/api/v1/tasks)"
echo "operator token (shown once): $token"
echo "stop it:   kill \$(cat .local/demo-api.pid)"
