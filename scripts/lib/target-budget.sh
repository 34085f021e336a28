#!/usr/bin/env bash
# Keeps a shared cargo target dir within a disk budget.
#
# Usage: target-budget.sh TARGET_DIR
#   TARGET_BUDGET_GB (default 25): when TARGET_DIR/debug is larger, it is
#     removed (the next build is cold; release builds for benchmarks stay).
#   MIN_FREE_GB (default 10): after that, the disk holding TARGET_DIR must
#     have this much free space, or the script exits 1 naming the numbers.
set -euo pipefail
target="${1:?usage: target-budget.sh TARGET_DIR}"
budget_gb="${TARGET_BUDGET_GB:-25}"
min_free_gb="${MIN_FREE_GB:-10}"
mkdir -p "$target"

if [ -d "$target/debug" ]; then
  used_kb=$(du -sk "$target/debug" | cut -f1)
  if [ "$used_kb" -gt $((budget_gb * 1024 * 1024)) ]; then
    echo "target-budget: $target/debug holds $((used_kb / 1024 / 1024)) GB (> ${budget_gb} GB); removing it (cold build next)" >&2
    rm -rf "$target/debug"
  fi
fi

free_kb=$(df -Pk "$target" | awk 'NR == 2 { print $4 }')
if [ "$free_kb" -lt $((min_free_gb * 1024 * 1024)) ]; then
  echo "target-budget: only $((free_kb / 1024 / 1024)) GB free on the disk of $target (need ${min_free_gb} GB for a build and the test databases)" >&2
  exit 1
fi
