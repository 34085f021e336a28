#!/usr/bin/env bash
# Tests scripts/lib/target-budget.sh on a throwaway target dir:
#
#   scripts/tests/target-budget.sh
#
# - a debug/ within the budget is kept, release/ is never touched;
# - a debug/ over the budget is removed;
# - too little free disk: exit 1 with a line naming the free space.
#
# Prints one line per check; exits 1 if any failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
budget="$root/scripts/lib/target-budget.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

mkdir -p "$tmp/t/debug/deps" "$tmp/t/release"
head -c 2M /dev/zero > "$tmp/t/debug/deps/big"
touch "$tmp/t/release/keep"

if TARGET_BUDGET_GB=1 MIN_FREE_GB=0 "$budget" "$tmp/t" 2>/dev/null && [ -f "$tmp/t/debug/deps/big" ]; then
  pass "debug/ within the budget is kept"
else
  fail "debug/ within the budget was removed or the script failed"
fi

if TARGET_BUDGET_GB=0 MIN_FREE_GB=0 "$budget" "$tmp/t" 2>"$tmp/err" && [ ! -e "$tmp/t/debug" ] && [ -f "$tmp/t/release/keep" ]; then
  pass "debug/ over the budget is removed, release/ kept"
else
  fail "debug/ over the budget: $(cat "$tmp/err")"
fi

if TARGET_BUDGET_GB=1 MIN_FREE_GB=100000000 "$budget" "$tmp/t" 2>"$tmp/err"; then
  fail "a disk without room was accepted"
elif grep -q "GB free on the disk of $tmp/t" "$tmp/err"; then
  pass "too little free disk is refused: $(cat "$tmp/err")"
else
  fail "too little free disk: unexpected message: $(cat "$tmp/err")"
fi

[ "$failures" = 0 ] || exit 1
