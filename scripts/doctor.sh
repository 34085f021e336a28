#!/usr/bin/env bash
# Checks that every prerequisite of the build, the tests and the demo works,
# by using it (not by looking for files):
#
#   scripts/doctor.sh
#
# Prints one line per item, "ok: <item>" or
# "MISSING: <item> (<why>) — install package <pkg>", and exits 0 if all are
# ok, 1 otherwise.  scripts/services.sh installs the packages; this script
# names what is still broken before a long cargo build fails on it.  It
# installs nothing and starts no servers; its scratch files go to a temporary
# directory that is removed again.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

ok() { echo "ok: $1"; }

# missing ITEM WHY PKG
missing() {
  echo "MISSING: $1 ($2) — install package $3"
  failed=1
}

# check ITEM PKG CMD [ARG...]: run CMD (at most 120 s, output kept aside) and
# report ITEM ok if it succeeds; otherwise MISSING, with the reason in one line.
check() {
  local item=$1 pkg=$2 rc=0
  shift 2
  timeout 120 "$@" >"$tmp/out" 2>&1 </dev/null || rc=$?
  if [ "$rc" -eq 0 ]; then
    ok "$item"
  elif [ "$rc" -eq 127 ] && ! command -v "$1" >/dev/null 2>&1; then
    missing "$item" "$1: command not found" "$pkg"
  elif [ "$rc" -eq 124 ]; then
    missing "$item" "\`$*\` timed out" "$pkg"
  else
    # The last non-empty line of the output says most; squash it to one line.
    local why
    why=$(grep -v '^[[:space:]]*$' "$tmp/out" | tail -n 1 | cut -c 1-160 || true)
    missing "$item" "\`$1\` exit $rc${why:+: $why}" "$pkg"
  fi
}

# --- python3 (scripts, the model converter's venv, moto) -------------------
check "python3 >= 3.9" python3 \
  python3 -c 'import sys; assert sys.version_info >= (3, 9), sys.version'
# Debian's python3 has the venv module but not ensurepip without python3-venv,
# so `python3 -m venv --help` passes where creating a venv fails: create one.
check "python3 venv with pip" python3-venv \
  sh -c '"$1" -m venv "$2" && "$2/bin/python" -m pip --version' sh python3 "$tmp/venv"

# --- compilers and cmake (whisper-rs-sys builds whisper.cpp) ---------------
printf '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n' >"$tmp/hi.c"
check "C compiler (cc)" gcc \
  sh -c '"${CC:-cc}" -o "$1/hi-c" "$1/hi.c" && "$1/hi-c"' sh "$tmp"
printf '#include <vector>\nint main() { std::vector<int> v{1}; return v[0] - 1; }\n' >"$tmp/hi.cpp"
check "C++ compiler (c++)" g++ \
  sh -c '"${CXX:-c++}" -o "$1/hi-cpp" "$1/hi.cpp" && "$1/hi-cpp"' sh "$tmp"
check "cmake" cmake cmake --version
# rustfmt and clippy are rustup components, not Debian packages.
check "cargo fmt" "the rustup component rustfmt (rustup component add rustfmt)" cargo fmt --version
check "cargo clippy" "the rustup component clippy (rustup component add clippy)" cargo clippy --version

# --- libclang for bindgen ---------------------------------------------------
# Finds libclang the way clang-sys does (bindgen's default "runtime" feature:
# LIBCLANG_PATH alone if set; else `llvm-config --prefix`/{bin,lib,lib64},
# LD_LIBRARY_PATH, LIBRARY_PATH, then /usr/local/llvm*/lib*, /usr/local/lib*,
# /usr/lib* and their subdirectories; names libclang.so, libclang-*.so,
# libclang.so.*, libclang-*.so.*, never libclang-cpp.*; highest version
# wins), dlopens that one file, asks it for its version and parses a file
# including the headers whisper.h includes: clang's own stddef.h and
# stdbool.h come with libclang-dev (libclang-common-*-dev), not with libclang1.
cat >"$tmp/libclang.py" <<'PY'
import ctypes, glob, os, subprocess, sys

NAMES = ["libclang.so", "libclang-*.so", "libclang.so.*", "libclang-*.so.*"]
DIRS = ["/usr/local/llvm*/lib*", "/usr/local/lib*/*/*", "/usr/local/lib*/*",
        "/usr/local/lib*", "/usr/lib*/*/*", "/usr/lib*/*", "/usr/lib*"]

def in_dir(d):
    found = []
    for name in NAMES:
        for p in sorted(glob.glob(os.path.join(glob.escape(d), name))):
            if "-cpp." not in os.path.basename(p) and os.path.isfile(p):
                found.append(p)
    return found

def candidates():
    env = os.environ.get("LIBCLANG_PATH")
    if env:
        # A file counts only if its name is one clang-sys accepts.
        if os.path.isfile(env):
            name = os.path.basename(env)
            return [p for p in in_dir(os.path.dirname(env) or ".")
                    if os.path.basename(p) == name]
        return in_dir(env)
    found = []
    try:
        out = subprocess.run([os.environ.get("LLVM_CONFIG_PATH", "llvm-config"), "--prefix"],
                             capture_output=True, text=True, check=True).stdout
        prefix = out.splitlines()[0]
        for sub in ("bin", "lib", "lib64"):
            found += in_dir(os.path.join(prefix, sub))
    except (OSError, subprocess.CalledProcessError, IndexError):
        pass
    for var in ("LD_LIBRARY_PATH", "LIBRARY_PATH"):
        for d in os.environ.get(var, "").split(os.pathsep):
            if d:
                found += in_dir(d)
    for pattern in DIRS:
        for d in sorted(glob.glob(pattern)):
            if os.path.isdir(d):
                found += in_dir(d)
    return found

def elf64(path):
    with open(path, "rb") as f:
        head = f.read(5)
    return head[:4] == b"\x7fELF" and head[4] == 2

def version(path):
    # clang-sys's parse_version, digit for digit.
    f = os.path.basename(path)
    if f.startswith("libclang.so."):
        v = f[len("libclang.so."):]
    elif f.startswith("libclang-"):
        v = f[9:len(f) - 3]
    else:
        return []
    return [int(s) if s.isdigit() else 0 for s in v.split(".")]

class CXString(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("flags", ctypes.c_uint)]

def main(probe):
    libs = [p for p in candidates() if elf64(p)]
    if not libs:
        return "no libclang.so found where clang-sys looks (libclang-cpp does not count)"
    path = max(libs, key=version)  # first of the highest version, as clang-sys
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        return "dlopen %s: %s" % (path, e)
    try:
        lib.clang_getClangVersion
    except AttributeError:
        return "%s has no clang_getClangVersion: not libclang's C API" % path
    lib.clang_getClangVersion.restype = CXString
    lib.clang_getCString.argtypes = [CXString]
    lib.clang_getCString.restype = ctypes.c_char_p
    lib.clang_disposeString.argtypes = [CXString]
    lib.clang_createIndex.restype = ctypes.c_void_p
    lib.clang_parseTranslationUnit.restype = ctypes.c_void_p
    lib.clang_parseTranslationUnit.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int,
        ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    lib.clang_getNumDiagnostics.argtypes = [ctypes.c_void_p]
    lib.clang_getDiagnostic.restype = ctypes.c_void_p
    lib.clang_getDiagnostic.argtypes = [ctypes.c_void_p, ctypes.c_uint]
    lib.clang_getDiagnosticSeverity.argtypes = [ctypes.c_void_p]
    lib.clang_getDiagnosticSpelling.restype = CXString
    lib.clang_getDiagnosticSpelling.argtypes = [ctypes.c_void_p]

    s = lib.clang_getClangVersion()
    ver = lib.clang_getCString(s).decode()
    lib.clang_disposeString(s)

    index = lib.clang_createIndex(0, 0)
    tu = lib.clang_parseTranslationUnit(index, probe.encode(), None, 0, None, 0, 0)
    if not tu:
        return "%s (%s) could not parse a C file" % (path, ver)
    for i in range(lib.clang_getNumDiagnostics(tu)):
        d = lib.clang_getDiagnostic(tu, i)
        if lib.clang_getDiagnosticSeverity(d) >= 3:  # CXDiagnostic_Error
            s = lib.clang_getDiagnosticSpelling(d)
            msg = lib.clang_getCString(s).decode()
            lib.clang_disposeString(s)
            return "%s (%s): %s" % (path, ver, msg)
    print("%s, %s" % (path, ver))
    return None

why = main(sys.argv[1])
if why:
    print(why)
    sys.exit(1)
PY
printf '#include <stddef.h>\n#include <stdint.h>\n#include <stdbool.h>\nsize_t n; int32_t i; bool b;\n' >"$tmp/probe.c"
if ! command -v python3 >/dev/null 2>&1; then
  missing "libclang loadable" "cannot check without python3" "libclang-dev"
elif out=$(timeout 120 python3 "$tmp/libclang.py" "$tmp/probe.c" 2>&1); then
  ok "libclang loadable ($out)"
else
  missing "libclang loadable" "$(echo "$out" | tail -n 1)" "libclang-dev"
fi

# --- ffmpeg (probe, cut, re-encode; the fixtures) ----------------------------
check "ffmpeg" ffmpeg ffmpeg -hide_banner -version
check "ffprobe" ffmpeg ffprobe -hide_banner -version
# One frame (or a tenth of a second) through each encoder worker/src uses.
for enc in libx264 libx265 libvpx-vp9; do
  check "ffmpeg encodes with $enc" ffmpeg \
    ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i testsrc=size=64x64:rate=1 \
    -frames:v 1 -c:v "$enc" -f null -
done
check "ffmpeg encodes with aac" ffmpeg \
  ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i sine=frequency=440:sample_rate=44100 \
  -t 0.1 -c:a aac -f null -

# --- MariaDB and Redis (scripts/services.sh runs them) -----------------------
# mariadbd lives in /usr/sbin, which is not on every user's PATH.
mariadbd=$(command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd)
check "mariadbd" mariadb-server "$mariadbd" --version
# Initialise a data directory the way scripts/services.sh does (a few seconds;
# --help would exit 1 even when it works).
check "mariadb-install-db" mariadb-server \
  mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$tmp/mariadb" \
  --auth-root-authentication-method=normal --skip-test-db
check "mariadb client" mariadb-client mariadb --version
check "mariadb-admin" mariadb-client mariadb-admin --version
check "redis-server" redis-server redis-server --version
check "redis-cli" redis-tools redis-cli --version

# --- espeak-ng and sox (scripts/make-fixtures.sh) ----------------------------
check "espeak-ng speaks" espeak-ng espeak-ng -v en-us -w "$tmp/hi.wav" "hello"
check "sox" sox sox -R -n -r 16000 -c 1 -b 16 "$tmp/silence.wav" trim 0 0.1

# --- captions: a CJK font that libass finds, burned in by ffmpeg -------------
check "CJK font (Noto Sans CJK SC)" fonts-noto-cjk \
  sh -c 'fc-match -f "%{family}" "Noto Sans CJK SC" | grep -q "Noto Sans CJK"'
printf '1\n00:00:00,000 --> 00:00:01,000\n好\n' >"$tmp/cjk.srt"
check "ffmpeg burns captions (libass)" ffmpeg \
  ffmpeg -v error -f lavfi -i color=black:s=64x64:d=0.2 \
  -vf "subtitles=$tmp/cjk.srt:force_style=FontName=Noto Sans CJK SC" -frames:v 1 -f null -

# --- openssl (enqueue-cli/tests/tls.rs makes a throwaway CA with it) ---------
check "openssl makes a key" openssl openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/key.pem"

# --- chromium (the dashboard's browser tests drive it through chromedriver) --
printf '<!doctype html><title>ok</title><p id="x">rendered</p>' >"$tmp/page.html"
check "chromium renders a page headless" chromium \
  sh -c 'chromium --headless=new --no-sandbox --disable-gpu --dump-dom "file://$1" 2>/dev/null | grep -q rendered' _ "$tmp/page.html"
check "chromedriver" chromium-driver chromedriver --version

# --- systemd-analyze (enqueue-cli/tests/deploy.rs verifies deploy/*.service) --
printf '[Service]\nExecStart=/bin/true\n' >"$tmp/ok.service"
check "systemd-analyze verifies a unit" systemd systemd-analyze verify --man=no "$tmp/ok.service"

exit "$failed"
