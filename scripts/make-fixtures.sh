#!/usr/bin/env bash
# Builds small labelled speech videos for pipeline tests into fixtures/videos/.
#
#   zh-<product>.mp4   Mandarin product pitch: the 5 synthesized sentences of
#                      media/zh-product-speech/<product>-N.wav (labels.json),
#                      0.5 s lead-in, 0.6 s pauses, 0.5 s tail
#   en-water-bottle.mp4, en-desk-lamp.mp4
#                      English pitches spoken by espeak-ng, same layout
#   en-jfk.mp4         media/jfk-11s.wav over a test pattern
#   zh-en-real.mp4     media/zh-en-speech-10s.mp4 (real recording, Mandarin
#                      then English) scaled to 640x360
#   silent.mp4         test pattern with a silent audio track
#
# Every video: 640x360, H.264 + AAC (44.1 kHz mono), 25 fps, a keyframe
# exactly every 2 s, +faststart. Next to each: <name>.labels.json
#   {"language": "zh"|"en", "sentences": [{"type", "start", "end", "text"}]}
# with times (seconds) from the real WAV sample counts and offsets. Types:
# hook | material | effect | promotion | none. For en-jfk and zh-en-real the
# speech spans come from ffmpeg's silencedetect; zh-en-real's text is not
# transcribed ("text": "" and a "note" says so).
#
# Deterministic (fixed inputs, bit-exact flags, sox -R) and idempotent: a
# stamp of the inputs, tool versions and this script skips work when nothing
# changed; FORCE=1 rebuilds. Needs ffmpeg/ffprobe, sox, espeak-ng, awk.
# MEDIA_DIR overrides the input directory (default /work/shared/media).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEDIA=${MEDIA_DIR:-/work/shared/media}
OUT=$ROOT/fixtures/videos
ZH=$MEDIA/zh-product-speech

for tool in ffmpeg ffprobe sox espeak-ng awk sha256sum; do
  command -v "$tool" >/dev/null || { echo "make-fixtures: $tool is required" >&2; exit 1; }
done
for f in "$ZH/labels.json" "$MEDIA/jfk-11s.wav" "$MEDIA/zh-en-speech-10s.mp4"; do
  [[ -f $f ]] || { echo "make-fixtures: missing $f" >&2; exit 1; }
done

NAMES=(zh-airfryer zh-sneakers zh-shampoo zh-earbuds en-water-bottle en-desk-lamp en-jfk zh-en-real silent)

stamp() {
  {
    sha256sum "${BASH_SOURCE[0]}" "$ZH"/*.json "$ZH"/*.wav "$MEDIA/jfk-11s.wav" "$MEDIA/zh-en-speech-10s.mp4" | awk '{print $1}'
    ffmpeg -version | head -1
    sox --version
    espeak-ng --version
  } | sha256sum | awk '{print $1}'
}
STAMP=$(stamp)
if [[ ${FORCE:-0} != 1 && -f $OUT/.stamp && $(cat "$OUT/.stamp") == "$STAMP" ]]; then
  missing=0
  for n in "${NAMES[@]}"; do
    [[ -s $OUT/$n.mp4 && -s $OUT/$n.labels.json ]] || missing=1
  done
  if [[ $missing == 0 ]]; then
    echo "fixtures/videos is up to date"
    exit 0
  fi
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/out"

RATE=16000
LEAD=0.5
PAUSE=0.6
TAIL=0.5
# Bit-exact output: no encoder version strings or creation times in the files.
EXACT=(-fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 -movflags +faststart)
VIDEO=(-c:v libx264 -preset medium -crf 28 -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p -r 25)
AUDIO=(-c:a aac -b:a 64k -ar 44100 -ac 1)

# Duration of a WAV in seconds (from its sample count).
wav_dur() { sox --i -D "$1"; }

silence() { sox -R -n -r $RATE -c 1 -b 16 "$2" trim 0 "$1"; }

# 16 kHz mono 16-bit copy of a WAV (no dither, repeatable).
norm16k() { sox -R -D "$1" -b 16 "$2" channels 1 rate $RATE; }

json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# Video of audio file $1 over a test pattern, lasting exactly the audio.
video_over_pattern() {
  local audio=$1 out=$2 dur
  dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$audio")
  ffmpeg -v error -y -f lavfi -i "testsrc=size=640x360:rate=25" -i "$audio" -map 0:v -map 1:a -t "$dur" \
    "${VIDEO[@]}" "${AUDIO[@]}" "${EXACT[@]}" "$out"
}

# make_pitch NAME LANG TYPE1 TEXT1 WAV1 ... : joins the WAVs with pauses,
# writes NAME.mp4 and NAME.labels.json.
make_pitch() {
  local name=$1 lang=$2
  shift 2
  local dir=$WORK/$name
  mkdir -p "$dir"
  silence $LEAD "$dir/lead.wav"
  silence $PAUSE "$dir/pause.wav"
  silence $TAIL "$dir/tail.wav"
  local parts=("$dir/lead.wav") t=$LEAD i=0 json="" first=1
  while (($#)); do
    local type=$1 text=$2 wav=$3
    shift 3
    norm16k "$wav" "$dir/s$i.wav"
    local d start end
    d=$(wav_dur "$dir/s$i.wav")
    start=$t
    end=$(awk -v a="$t" -v b="$d" 'BEGIN{printf "%.4f", a+b}')
    [[ $first == 1 ]] || { parts+=("$dir/pause.wav"); json+=","; }
    first=0
    parts+=("$dir/s$i.wav")
    json+=$'\n'"    {\"type\": \"$type\", \"start\": $(awk -v a="$start" 'BEGIN{printf "%.4f", a}'), \"end\": $end, \"text\": $(json_str "$text")}"
    t=$(awk -v a="$end" -v p="$PAUSE" 'BEGIN{printf "%.4f", a+p}')
    i=$((i + 1))
  done
  parts+=("$dir/tail.wav")
  sox -R "${parts[@]}" "$dir/speech.wav"
  video_over_pattern "$dir/speech.wav" "$WORK/out/$name.mp4"
  printf '{\n  "language": "%s",\n  "sentences": [%s\n  ]\n}\n' "$lang" "$json" >"$WORK/out/$name.labels.json"
  echo "made $name ($(wav_dur "$dir/speech.wav") s)"
}

# Speech spans of an audio/video file from silencedetect, one "start end" per line.
speech_spans() {
  local file=$1 noise=$2 dur
  dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$file")
  ffmpeg -hide_banner -nostats -i "$file" -map 0:a:0 -af "silencedetect=n=${noise}dB:d=0.3" -f null - 2>&1 |
    awk -v dur="$dur" '
      /silence_start:/ { s = $NF + 0; if (s > 0.05 && on) { printf "%.4f %.4f\n", st, s; on = 0 } }
      /silence_end:/   { split($0, a, "silence_end: "); split(a[2], b, " "); st = b[1] + 0; on = 1 }
      BEGIN { st = 0; on = 1 }
      END { if (on && dur - st > 0.3) printf "%.4f %.4f\n", st, dur }'
}

# --- (a) Mandarin product pitches from labels.json --------------------------
# labels.json lists per product five ["type", "text"] pairs, one per line, in
# the order of <product>-0.wav .. <product>-4.wav.
for product in airfryer sneakers shampoo earbuds; do
  args=()
  i=0
  while IFS=$'\t' read -r type text; do
    args+=("$type" "$text" "$ZH/$product-$i.wav")
    i=$((i + 1))
  done < <(awk -v p="\"$product\":" '
      index($0, p) { on = 1; next }
      on && /^[[:space:]]*\]/ { on = 0 }
      on && match($0, /\["[a-z]+", *"/) {
        line = $0
        sub(/^[[:space:]]*\["/, "", line); type = line; sub(/".*/, "", type)
        sub(/^[a-z]+", *"/, "", line); sub(/"\],?[[:space:]]*$/, "", line)
        print type "\t" line
      }' "$ZH/labels.json")
  ((i == 5)) || { echo "make-fixtures: expected 5 sentences for $product, got $i" >&2; exit 1; }
  make_pitch "zh-$product" zh "${args[@]}"
done

# --- (b) English pitches by espeak-ng -----------------------------------------
# espeak-ng pads its output with silence; trim it so labels hug the speech.
say() {
  espeak-ng -v en-us -s 150 -w "$2.tmp.wav" "$1"
  sox -R "$2.tmp.wav" "$2" silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse
}
english_pitch() {
  local name=$1
  shift
  local args=() n=0
  while (($#)); do
    say "$2" "$WORK/$name-$n.raw.wav"
    args+=("$1" "$2" "$WORK/$name-$n.raw.wav")
    shift 2
    n=$((n + 1))
  done
  make_pitch "$name" en "${args[@]}"
}
english_pitch en-water-bottle \
  hook "Still buying plastic water bottles every single day? Stop right there." \
  material "This bottle is made of food grade stainless steel, with a double wall vacuum layer and a leak proof lid." \
  effect "It keeps your water ice cold for twenty four hours, and your coffee hot for twelve." \
  none "I take it with me to the gym every morning." \
  promotion "Order today and get thirty percent off, plus a free cleaning brush while stocks last."
english_pitch en-desk-lamp \
  none "Hi everyone, welcome back to my desk setup channel." \
  hook "Do your eyes feel tired after a long night of work? This lamp fixes that." \
  material "The arm is made of aluminum alloy, and the heavy steel base has a soft silicone pad." \
  effect "The light never flickers, and five color temperatures make reading easy on your eyes." \
  promotion "Use the code lamp twenty at checkout to save twenty percent, this week only."

# --- (c) Real speech -----------------------------------------------------------
jfk=$WORK/jfk.wav
norm16k "$MEDIA/jfk-11s.wav" "$jfk"
video_over_pattern "$jfk" "$WORK/out/en-jfk.mp4"
read -r js je < <(speech_spans "$jfk" -30 | awk 'NR==1{s=$1} {e=$2} END{print s, e}')
printf '{\n  "language": "en",\n  "sentences": [\n    {"type": "none", "start": %s, "end": %s, "text": %s}\n  ]\n}\n' \
  "$js" "$je" "$(json_str "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.")" \
  >"$WORK/out/en-jfk.labels.json"
echo "made en-jfk"

ffmpeg -v error -y -i "$MEDIA/zh-en-speech-10s.mp4" -map 0:v:0 -map 0:a:0 -vf "scale=640:-2:flags=bicubic" \
  "${VIDEO[@]}" "${AUDIO[@]}" "${EXACT[@]}" "$WORK/out/zh-en-real.mp4"
{
  printf '{\n  "language": "zh",\n  "note": "real recording, Mandarin then English; spans from silencedetect (-35 dB), text not transcribed",\n  "sentences": ['
  speech_spans "$WORK/out/zh-en-real.mp4" -35 | awk '{printf "%s\n    {\"type\": \"none\", \"start\": %s, \"end\": %s, \"text\": \"\"}", (NR>1 ? "," : ""), $1, $2}'
  printf '\n  ]\n}\n'
} >"$WORK/out/zh-en-real.labels.json"
echo "made zh-en-real"

# --- Silent video ---------------------------------------------------------------
silence 6 "$WORK/silent.wav"
video_over_pattern "$WORK/silent.wav" "$WORK/out/silent.mp4"
printf '{\n  "language": "en",\n  "note": "no speech: test pattern with a silent audio track",\n  "sentences": []\n}\n' >"$WORK/out/silent.labels.json"
echo "made silent"

# --- Install ----------------------------------------------------------------------
mkdir -p "$OUT"
rm -f "$OUT"/*.mp4 "$OUT"/*.labels.json "$OUT/.stamp"
mv "$WORK/out/"* "$OUT/"
echo "$STAMP" >"$OUT/.stamp"
du -ch "$OUT"/*.mp4 | tail -1 | awk '{print "fixtures/videos: " $1 " of video"}'
