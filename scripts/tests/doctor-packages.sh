#!/usr/bin/env bash
# Tests the package check of scripts/services.sh (scripts/lib/packages.sh)
# against a fake dpkg-query, apt-get, id and sudo on PATH, so nothing on this
# machine is queried, installed or changed:
#
#   scripts/tests/doctor-packages.sh
#
# - all packages installed: `services.sh missing` prints nothing;
# - each package in turn reported not installed (in each of the ways dpkg
#   says so): it prints exactly that package.  libclang-dev is the case of the
#   issue: on Debian 12 /usr/lib/x86_64-linux-gnu/libclang-cpp.so.14 exists
#   without it, and only dpkg's answer may count;
# - "hold ok installed" counts as installed; two missing come in list order;
# - `services.sh install` as a user without sudo prints the one apt-get
#   command and exits 1; as root it apt-get installs exactly the missing
#   packages and fails if dpkg still does not have them afterwards.
#
# Prints one line per check; exits 1 if any failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
services="$root/scripts/services.sh"
# PACKAGES, the one list.
. "$root/scripts/lib/packages.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# --- fakes ---------------------------------------------------------------------
# $FAKE_DPKG_DB holds "PKG STATUS..." lines for the packages that are not
# plainly installed; STATUS "absent" means dpkg has never heard of PKG.  Any
# package not listed is "install ok installed".  Calls other than
# `dpkg-query -W -f='${Status}' PKG` fail loudly, so a changed query shows up.
mkdir "$tmp/bin"
cat >"$tmp/bin/dpkg-query" <<'SH'
#!/bin/sh
if [ "$#" -ne 3 ] || [ "$1" != -W ] || [ "$2" != '-f=${Status}' ]; then
  echo "fake dpkg-query: unexpected arguments: $*" >&2
  exit 2
fi
status=$(awk -v p="$3" '$1 == p { $1 = ""; sub(/^ /, ""); print; exit }' "$FAKE_DPKG_DB")
case "$status" in
  "") printf '%s' "install ok installed" ;;
  absent) echo "dpkg-query: no packages found matching $3" >&2; exit 1 ;;
  *) printf '%s' "$status" ;;
esac
SH
# apt-get: logs its environment's DEBIAN_FRONTEND and arguments; `install`
# marks its packages installed unless FAKE_APT_BROKEN is set.
cat >"$tmp/bin/apt-get" <<'SH'
#!/bin/sh
echo "DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-} apt-get $*" >>"$FAKE_APT_LOG"
if [ "$1" = install ] && [ -z "${FAKE_APT_BROKEN:-}" ]; then
  for p in "$@"; do
    case "$p" in -*|install) ;; *)
      awk -v p="$p" '$1 != p' "$FAKE_DPKG_DB" >"$FAKE_DPKG_DB.new"
      mv "$FAKE_DPKG_DB.new" "$FAKE_DPKG_DB" ;;
    esac
  done
fi
exit 0
SH
# id -u answers $FAKE_UID; everything else is the real id.
cat >"$tmp/bin/id" <<'SH'
#!/bin/sh
if [ "$1" = -u ]; then echo "$FAKE_UID"; else exec /usr/bin/id "$@"; fi
SH
# sudo: no passwordless sudo here.
printf '#!/bin/sh\nexit 1\n' >"$tmp/bin/sudo"
chmod +x "$tmp/bin/"*

unset DEBIAN_FRONTEND
export PATH="$tmp/bin:$PATH" FAKE_DPKG_DB="$tmp/dpkg-db" FAKE_APT_LOG="$tmp/apt.log" FAKE_UID=1000

# expect_missing LABEL EXPECTED: `services.sh missing` must print EXPECTED
# (packages joined by spaces; empty for none) and exit 0.
expect_missing() {
  local label=$1 want=$2 got rc=0
  got=$("$services" missing 2>"$tmp/err" | xargs) || rc=$?
  if [ "$rc" -eq 0 ] && [ "$got" = "$want" ]; then
    pass "$label -> missing: ${got:-(none)}"
  else
    fail "$label -> want '${want}', got '${got}' (exit $rc; stderr: $(tr '\n' ' ' <"$tmp/err"))"
  fi
}

# --- services.sh missing -------------------------------------------------------
echo "packages: ${PACKAGES[*]}"
: >"$FAKE_DPKG_DB"
expect_missing "all installed" ""

# The ways dpkg reports a package as not (fully) installed, taken in turn.
states=("absent" "unknown ok not-installed" "deinstall ok config-files" "install ok half-configured")
i=0
for pkg in "${PACKAGES[@]}"; do
  state=${states[$((i % ${#states[@]}))]}
  i=$((i + 1))
  echo "$pkg $state" >"$FAKE_DPKG_DB"
  expect_missing "only $pkg not installed ($state)" "$pkg"
done
if [ -e /usr/lib/x86_64-linux-gnu/libclang-cpp.so.14 ]; then
  echo "note: /usr/lib/x86_64-linux-gnu/libclang-cpp.so.14 exists here, and libclang-dev was still reported missing above"
fi

: >"$FAKE_DPKG_DB"
for pkg in "${PACKAGES[@]}"; do echo "$pkg hold ok installed" >>"$FAKE_DPKG_DB"; done
expect_missing "all installed, all held" ""

printf '%s\n' "sox absent" "cmake unknown ok not-installed" >"$FAKE_DPKG_DB"
expect_missing "cmake and sox not installed" "cmake sox"

# --- services.sh install -------------------------------------------------------
# A user without passwordless sudo: the exact command on one line, exit 1, no
# apt-get.
echo "cmake absent" >"$FAKE_DPKG_DB"
: >"$FAKE_APT_LOG"
rc=0
"$services" install >"$tmp/out" 2>"$tmp/err" || rc=$?
want="services: missing packages; run: sudo apt-get update && sudo apt-get install -y cmake"
if [ "$rc" -eq 1 ] && [ "$(cat "$tmp/err")" = "$want" ] && [ ! -s "$tmp/out" ] && [ ! -s "$FAKE_APT_LOG" ]; then
  pass "install without sudo -> exit 1: $want"
else
  fail "install without sudo -> exit $rc, stderr '$(cat "$tmp/err")', apt-get calls '$(cat "$FAKE_APT_LOG")'"
fi

# Root: apt-get update, then install exactly the missing ones, non-interactively.
printf '%s\n' "libclang-dev absent" "espeak-ng unknown ok not-installed" >"$FAKE_DPKG_DB"
: >"$FAKE_APT_LOG"
rc=0
FAKE_UID=0 "$services" install >"$tmp/out" 2>"$tmp/err" || rc=$?
want_log="DEBIAN_FRONTEND= apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev espeak-ng"
if [ "$rc" -eq 0 ] && [ "$(cat "$FAKE_APT_LOG")" = "$want_log" ] && [ ! -s "$FAKE_DPKG_DB" ]; then
  pass "install as root -> apt-get install -y -qq libclang-dev espeak-ng"
else
  fail "install as root -> exit $rc, apt-get calls '$(cat "$FAKE_APT_LOG")', stderr '$(cat "$tmp/err")'"
fi

# Root, everything installed: no apt-get at all.
: >"$FAKE_APT_LOG"
rc=0
FAKE_UID=0 "$services" install >"$tmp/out" 2>"$tmp/err" || rc=$?
if [ "$rc" -eq 0 ] && [ ! -s "$FAKE_APT_LOG" ]; then
  pass "install as root, nothing missing -> no apt-get"
else
  fail "install as root, nothing missing -> exit $rc, apt-get calls '$(cat "$FAKE_APT_LOG")'"
fi

# Root, apt-get "succeeds" but dpkg still lacks the package: fail, naming it.
echo "ffmpeg absent" >"$FAKE_DPKG_DB"
: >"$FAKE_APT_LOG"
rc=0
FAKE_UID=0 FAKE_APT_BROKEN=1 "$services" install >"$tmp/out" 2>"$tmp/err" || rc=$?
if [ "$rc" -eq 1 ] && grep -qx "services: still not installed after apt-get: ffmpeg" "$tmp/err"; then
  pass "install as root, apt-get installs nothing -> exit 1, still not installed: ffmpeg"
else
  fail "install as root, apt-get installs nothing -> exit $rc, stderr '$(cat "$tmp/err")'"
fi

if [ "$failures" -ne 0 ]; then
  echo "doctor-packages: $failures check(s) failed"
  exit 1
fi
echo "doctor-packages: all checks passed"
