//! Just enough H.264 bitstream handling for smart cuts: split Annex B access
//! units into NAL units, pick out parameter sets, and turn x264's settings SEI
//! back into `-x264-params` so re-encoded pieces get identical SPS/PPS.

/// NAL units of an Annex B byte stream (start codes removed).
pub(crate) fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (n, &s) in starts.iter().enumerate() {
        let mut e = starts.get(n + 1).map_or(data.len(), |&next| next - 3);
        // A 4-byte start code leaves a zero before the 3-byte one; trailing zeros are not payload.
        while e > s && data[e - 1] == 0 {
            e -= 1;
        }
        if e > s {
            out.push(&data[s..e]);
        }
    }
    out
}

/// SPS (type 7) and PPS (type 8) NAL units of the first access unit, sorted,
/// so two streams can be compared for byte-identical parameter sets.
pub(crate) fn parameter_sets(annexb: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = nal_units(annexb)
        .into_iter()
        .filter(|n| matches!(n[0] & 0x1f, 7 | 8))
        .map(<[u8]>::to_vec)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// SPS and PPS from the `avcC` box of an MP4/MOV file (the last one in the
/// file, i.e. in the `moov` written at the end), sorted like [`parameter_sets`].
pub(crate) fn avcc_parameter_sets(mp4: &[u8]) -> Option<Vec<Vec<u8>>> {
    let pos = mp4.windows(4).rposition(|w| w == b"avcC")?;
    let size = u32::from_be_bytes(mp4.get(pos - 4..pos)?.try_into().ok()?) as usize;
    let b = mp4.get(pos + 4..pos - 4 + size)?;
    let mut i = 5;
    let mut out = Vec::new();
    for mask in [0x1f, 0xff] {
        let count = (*b.get(i)? & mask) as usize;
        i += 1;
        for _ in 0..count {
            let len = u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize;
            out.push(b.get(i + 2..i + 2 + len)?.to_vec());
            i += 2 + len;
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// The options string of x264's "user data unregistered" SEI
/// (`"cabac=1 ref=3 deblock=1:0:0 ..."`), if the stream was made by x264.
pub(crate) fn x264_options(annexb: &[u8]) -> Option<String> {
    let pos = find(annexb, b"x264 - core")?;
    let rest = &annexb[pos..];
    let opt = find(rest, b"options: ")? + "options: ".len();
    let end = rest[opt..].iter().position(|&b| b == 0 || b == 0x80).map_or(rest.len(), |e| opt + e);
    String::from_utf8(rest[opt..end].to_vec()).ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How a re-encoded piece is encoded: with all of the source's settings, or
/// with only those that shape the SPS/PPS and the fastest analysis for the
/// rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Every setting the SEI names (same SPS/PPS, about the same quality per bit).
    Exact,
    /// The settings that decide the SPS/PPS bytes (profile, level, entropy
    /// coder, references, B-frames, weighted prediction, 8x8 transform, GOP
    /// length, rate control and chroma QP offset), with motion search,
    /// sub-pixel refinement, trellis, psy and lookahead at their cheapest:
    /// about 3x faster for the one partial GOP a smart cut re-encodes.
    Fast,
}

/// x264 settings that only steer the encoder's search, never the SPS/PPS:
/// left out by [`Replay::Fast`], which sets them cheaply instead.
const SEARCH_ONLY: [&str; 16] = [
    "me",
    "subme",
    "psy",
    "psy_rd",
    "trellis",
    "mixed_ref",
    "me_range",
    "chroma_me",
    "fast_pskip",
    "decimate",
    "b_adapt",
    "rc_lookahead",
    "mbtree",
    "scenecut",
    "deadzone",
    "nr",
];

/// What [`Replay::Fast`] sets instead of [`SEARCH_ONLY`].
const FAST_SEARCH: &str =
    "me=dia:subme=1:trellis=0:psy=0:mixed-refs=0:b-adapt=0:mbtree=0:rc-lookahead=0:scenecut=0:partitions=none";

/// Translates x264's SEI options into an ffmpeg `-x264-params` value that
/// reproduces the same SPS/PPS (with [`Replay::Exact`] also close to the
/// same quality). `level_idc` is the source's level (ffprobe `level`),
/// `yuv444` whether the source is 4:4:4. Returns `None` for settings that
/// cannot be replayed (custom quant matrices, AVC-Intra, ...).
pub(crate) fn x264_params_from_sei(
    options: &str,
    level_idc: Option<i64>,
    yuv444: bool,
    replay: Replay,
) -> Option<String> {
    let kv: Vec<(&str, &str)> =
        options.split_whitespace().filter_map(|t| t.split_once('=')).collect();
    let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let num = |k: &str| get(k).and_then(|v| v.parse::<f64>().ok());

    let mut out: Vec<String> = Vec::new();
    let mut push = |k: &str, v: &str| out.push(format!("{k}={v}"));

    const DIRECT: [&str; 4] = ["none", "spatial", "temporal", "auto"];
    let fast = replay == Replay::Fast;
    for &(k, v) in &kv {
        if fast && SEARCH_ONLY.contains(&k) {
            continue;
        }
        match k {
            "cabac" | "ref" | "me" | "subme" | "psy" | "trellis" | "8x8dct" | "nr" | "bframes"
            | "weightb" | "weightp" | "keyint" | "scenecut" | "mbtree" | "qcomp" | "qpmin"
            | "qpmax" | "qpstep" | "ratetol" | "cplxblur" | "qblur" | "stitchable" | "filler" => {
                push(k, v)
            }
            "mixed_ref" => push("mixed-refs", v),
            "me_range" => push("merange", v),
            "chroma_me" => push("chroma-me", v),
            "fast_pskip" => push("fast-pskip", v),
            "decimate" => push("dct-decimate", v),
            "sliced_threads" => push("sliced-threads", v),
            "slices" => push("slices", v),
            "bluray_compat" => push("bluray-compat", v),
            "constrained_intra" => push("constrained-intra", v),
            "b_pyramid" => push("b-pyramid", v),
            "b_adapt" => push("b-adapt", v),
            "b_bias" => push("b-bias", v),
            "open_gop" => push("open-gop", v),
            "keyint_min" => push("min-keyint", v),
            "intra_refresh" => push("intra-refresh", v),
            "rc_lookahead" => push("rc-lookahead", v),
            "ip_ratio" => push("ipratio", v),
            "pb_ratio" => push("pbratio", v),
            "vbv_maxrate" => push("vbv-maxrate", v),
            "vbv_bufsize" => push("vbv-bufsize", v),
            "nal_hrd" => push("nal-hrd", v),
            "crf_max" => push("crf-max", v),
            "slice_max_size" => push("slice-max-size", v),
            "slice_max_mbs" => push("slice-max-mbs", v),
            "slice_min_mbs" => push("slice-min-mbs", v),
            "direct" => push("direct", DIRECT.get(v.parse::<usize>().ok()?)?),
            "psy_rd" => push("psy-rd", &v.replace(':', ",")),
            "deadzone" => {
                let (inter, intra) = v.split_once(',')?;
                push("deadzone-inter", inter);
                push("deadzone-intra", intra);
            }
            "deblock" => {
                let mut p = v.split(':');
                let on = p.next()?;
                if on == "0" {
                    push("no-deblock", "1");
                } else {
                    push("deblock", &format!("{},{}", p.next()?, p.next()?));
                }
            }
            "aq" => {
                let (mode, strength) = v.split_once(':').unwrap_or((v, "1.00"));
                push("aq-mode", mode);
                if mode != "0" {
                    push("aq-strength", strength);
                }
            }
            "interlaced" => match v {
                "0" => {}
                "tff" => push("tff", "1"),
                "bff" => push("bff", "1"),
                "fake" => push("fake-interlaced", "1"),
                _ => return None,
            },
            "cqm" => match v {
                "0" => {}
                "1" => push("cqm", "jvt"),
                _ => return None,
            },
            "avcintra_class" | "crop_rect" | "frame_packing" | "pulldown" => return None,
            "chroma_qp_offset" => {
                // x264 adjusts the offset it was given for psy-rd, psy-trellis
                // and 4:4:4; undo that so the final value comes out the same.
                let fin: i64 = v.parse().ok()?;
                // Without psy (as in `Replay::Fast`) x264 keeps it as given.
                let psy = !fast && get("psy") == Some("1");
                let subme = num("subme").unwrap_or(7.0);
                let trellis = num("trellis").unwrap_or(1.0);
                let (rd, rd_trellis) = get("psy_rd")
                    .and_then(|s| s.split_once(':'))
                    .and_then(|(a, b)| Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?)))
                    .unwrap_or((1.0, 0.0));
                let mut base = fin;
                if psy && yuv444 {
                    base -= 6;
                }
                if psy && subme >= 6.0 && rd > 0.0 {
                    base += if rd < 0.25 { 1 } else { 2 };
                }
                if psy && trellis > 0.0 && rd_trellis > 0.0 {
                    base += if rd_trellis < 0.25 { 1 } else { 2 };
                }
                push("chroma-qp-offset", &base.to_string());
            }
            _ => {}
        }
    }
    match get("rc")? {
        "crf" => push("crf", get("crf")?),
        "cqp" => push("qp", get("qp")?),
        "abr" | "cbr" | "2pass" => push("bitrate", get("bitrate")?),
        _ => return None,
    }
    if let Some(level) = level_idc.filter(|l| *l > 0) {
        push("level", &level.to_string());
    }
    if fast {
        out.push(FAST_SEARCH.to_string());
    }
    Some(out.join(":"))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn splits_nal_units_and_finds_parameter_sets() {
        let data = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9, 9, 0];
        let nals = nal_units(&data);
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9, 9][..]]);
        assert_eq!(parameter_sets(&data), vec![vec![0x67, 1, 2], vec![0x68, 3]]);
    }

    #[test]
    fn maps_default_x264_options() {
        let sei = "cabac=1 ref=3 deblock=1:0:0 analyse=0x3:0x113 me=hex subme=7 psy=1 psy_rd=1.00:0.00 \
                   mixed_ref=1 me_range=16 chroma_me=1 trellis=1 8x8dct=1 cqm=0 deadzone=21,11 fast_pskip=1 \
                   chroma_qp_offset=-2 threads=3 lookahead_threads=1 sliced_threads=0 nr=0 decimate=1 \
                   interlaced=0 bluray_compat=0 constrained_intra=0 bframes=3 b_pyramid=2 b_adapt=1 b_bias=0 \
                   direct=1 weightb=1 open_gop=0 weightp=2 keyint=50 keyint_min=5 scenecut=40 \
                   intra_refresh=0 rc_lookahead=40 rc=crf mbtree=1 crf=23.0 qcomp=0.60 qpmin=0 qpmax=69 \
                   qpstep=4 ip_ratio=1.40 aq=1:1.00";
        let p = x264_params_from_sei(sei, Some(30), false, Replay::Exact).unwrap();
        for want in [
            "deblock=0,0",
            "chroma-qp-offset=0",
            "direct=spatial",
            "crf=23.0",
            "level=30",
            "psy-rd=1.00,0.00",
        ] {
            assert!(p.split(':').any(|kv| kv == want), "{want} missing in {p}");
        }
        let none = x264_params_from_sei(&sei.replace("cqm=0", "cqm=2"), None, false, Replay::Exact);
        assert!(none.is_none());

        // Fast: the SPS/PPS-shaping settings stay, the search is cheapest,
        // and the chroma QP offset is the final one (no psy to undo).
        let f = x264_params_from_sei(sei, Some(30), false, Replay::Fast).unwrap();
        for want in [
            "cabac=1",
            "ref=3",
            "bframes=3",
            "weightp=2",
            "8x8dct=1",
            "keyint=50",
            "crf=23.0",
            "chroma-qp-offset=-2",
            "subme=1",
            "psy=0",
            "me=dia",
        ] {
            assert!(f.split(':').any(|kv| kv == want), "{want} missing in {f}");
        }
        assert!(!f.split(':').any(|kv| kv == "subme=7" || kv == "psy-rd=1.00,0.00"), "{f}");
    }
}
