#!/usr/bin/env bash
# The demo: services, migrations, a user, a batch of tasks, then one
# scheduler and two workers until everything is done, and what they did.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/videoclip-target}"

scripts/services.sh up
cargo build --release --workspace --bins --locked
bin="$CARGO_TARGET_DIR/release"
set -a; . ./.env; set +a

"$bin/enqueue" migrate
"$bin/enqueue" user add demo --email demo@example.com 2>/dev/null || true

echo "== enqueue 2000 no-op tasks (500 of them high priority)"
"$bin/enqueue" noop --count 1500 --priority 6
"$bin/enqueue" noop --count 500 --priority 1
"$bin/enqueue" queues

echo "== one scheduler and two workers until idle"
start=$(date +%s.%N)
"$bin/scheduler" --exit-when-idle --log-format text 2>.local/demo-scheduler.log &
"$bin/worker" --exit-when-idle --concurrency 32 2>.local/demo-worker1.log &
"$bin/worker" --exit-when-idle --concurrency 32 2>.local/demo-worker2.log &
wait
end=$(date +%s.%N)
echo "done in $(python3 -c "print(round($end - $start, 2))") s (logs in .local/demo-*.log)"
"$bin/enqueue" queues
