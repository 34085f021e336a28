#!/usr/bin/env bash
# A throwaway S3-compatible server (moto) for trying and testing s3:// storage.
#
#   scripts/s3-server.sh up       install moto if missing, start it on a free
#                                 port, print its endpoint URL on stdout
#                                 (already running: print the same URL)
#   scripts/s3-server.sh down     stop it
#   scripts/s3-server.sh status   running or not, and the endpoint
#   scripts/s3-server.sh bucket NAME  create bucket NAME on it (if missing)
#   scripts/s3-server.sh install  only install; print the moto_server path
#
# moto (PyPI `moto[server]`) goes into a private venv under .cache/moto-venv
# (about 2 minutes the first time); the server's pid file, port and log are in
# .local/s3/. Both directories are git-ignored; nothing system-wide changes.
# The server keeps everything in memory: `down` forgets every bucket.
#
# Use it with:  STORAGE_URL=s3://BUCKET/PREFIX S3_ENDPOINT=<printed URL>
#               AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
# (moto accepts any key; create the bucket first with `bucket NAME`).
#
# Environment: PYTHON (default python3, >= 3.9), MOTO_VERSION (pip spec,
# default ">=5.1,<6").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.cache/moto-venv"
dir="$root/.local/s3"
moto="$venv/bin/moto_server"

log() { echo "s3-server: $*" >&2; }
die() { log "error: $*"; exit 1; }

installed() { [ -x "$moto" ] && "$venv/bin/python" -c 'import moto.server, flask' 2>/dev/null; }

install() {
  installed && return 0
  mkdir -p "$root/.cache"
  # Serialise concurrent installs (tests running in parallel).
  exec 8>"$root/.cache/moto-venv.lock"
  flock 8
  if ! installed; then
    local start
    start=$(date +%s)
    log "installing moto[server] into $venv (first time only, about 2 minutes)"
    "${PYTHON:-python3}" -c 'import sys; assert sys.version_info >= (3, 9), sys.version' || die "need Python >= 3.9"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --disable-pip-version-check -q "moto[server]${MOTO_VERSION:->=5.1,<6}" >&2 ||
      die "pip install moto[server] failed"
    installed || die "moto_server missing after install"
    log "installed $("$venv/bin/python" -c 'import moto; print("moto", moto.__version__)') in $(($(date +%s) - start))s"
  fi
  flock -u 8
}

running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

endpoint() { echo "http://127.0.0.1:$(cat "$dir/port")"; }

# True once the server answers HTTP on its port.
answers() {
  "$venv/bin/python" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)
except urllib.error.HTTPError:
    pass
EOF
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

up() {
  install
  mkdir -p "$dir"
  exec 9>"$dir/lock"
  flock 9
  if running && answers "$(endpoint)"; then
    endpoint
    return 0
  fi
  local port pid
  port=$(free_port)
  echo "$port" >"$dir/port"
  # The server must not inherit the lock descriptors (it would hold the lock).
  nohup "$moto" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 </dev/null 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$dir/pid"
  for _ in $(seq 1 200); do
    if answers "$(endpoint)"; then
      log "moto running (pid $pid, log $dir/moto.log)"
      endpoint
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$dir/moto.log" >&2 || true
  kill "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
  die "moto_server did not start"
}

down() {
  if running; then
    local pid
    pid=$(cat "$dir/pid")
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    log "moto stopped"
  else
    log "moto was not running"
  fi
  rm -f "$dir/pid"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    if running; then echo "moto: running at $(endpoint) (pid $(cat "$dir/pid"))"; else echo "moto: stopped"; fi
    ;;
  bucket)
    [ $# -eq 2 ] || die "usage: scripts/s3-server.sh bucket NAME"
    running || die "moto is not running (scripts/s3-server.sh up)"
    "$venv/bin/python" - "$(endpoint)" "$2" <<'EOF'
import sys, boto3
endpoint, name = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
if name not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=name)
print("s3://" + name)
EOF
    ;;
  install)
    install
    echo "$moto"
    ;;
  *)
    sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
