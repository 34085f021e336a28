//! The smart cut: copy the GOPs that lie wholly inside the clip, re-encode
//! only the partial GOPs at either end with the source's encoder settings,
//! and join the pieces (see the media module docs).

use super::*;

/// How a source's re-encoded pieces are encoded so their SPS/PPS are the
/// source's: x264 settings read back from its SEI, once per source.
pub(super) struct HeadEncoder {
    /// [`h264::Replay::Fast`] settings (tried first).
    fast: String,
    /// [`h264::Replay::Exact`] settings (when the fast ones do not match).
    exact: String,
    /// The source's SPS and PPS, sorted.
    src_sets: Vec<Vec<u8>>,
    /// Cleared once the fast settings produced other parameter sets.
    fast_matches: AtomicBool,
}

impl HeadEncoder {
    /// Reads the first access unit of `input` and its x264 settings; an
    /// error says why pieces of this source cannot be re-encoded to match.
    async fn read(input: &Path, probe: &SourceInfo, cancel: &Cancel) -> anyhow::Result<Self> {
        let first_au = access_unit(input, cancel).await?;
        let sei = h264::x264_options(&first_au)
            .context("not encoded by x264: parameter sets cannot be reproduced")?;
        let yuv444 = probe.pix_fmt.starts_with("yuv444") || probe.pix_fmt.starts_with("yuvj444");
        let params = |replay| {
            h264::x264_params_from_sei(&sei, probe.video_level, yuv444, replay)
                .context("x264 settings cannot be replayed (custom matrices, AVC-Intra, ...)")
        };
        let src_sets = h264::parameter_sets(&first_au);
        anyhow::ensure!(!src_sets.is_empty(), "no SPS/PPS found in the source");
        Ok(HeadEncoder {
            fast: params(h264::Replay::Fast)?,
            exact: params(h264::Replay::Exact)?,
            src_sets,
            fast_matches: AtomicBool::new(true),
        })
    }
}

/// One piece of a smart cut: a file in the work directory with the frames
/// `[from, to)`, re-encoded (`Some(frame count)`) or copied (`None`).
struct Piece {
    name: &'static str,
    from: i64,
    to: i64,
    encode: Option<u64>,
}

/// Runs the smart-cut plan; returns the output size. Any error (other than
/// cancellation) makes the caller fall back to a full re-encode. Per clip:
/// one ffmpeg run makes all pieces, one joins them and cuts the audio, one
/// ffprobe checks the frames; the first clip of a source with a re-encoded
/// head or tail also compares pictures at the joins (later ones reuse that
/// proof), and reads the source's encoder settings once.
pub(super) async fn smart_cut<F: FnMut(f64)>(
    source: &CutSource,
    output: &Path,
    clip: &Clip,
    plan: &Plan,
    cancel: &Cancel,
    progress: &mut CutProgress<F>,
) -> anyhow::Result<u64> {
    let (input, probe, scan) = (source.input.as_path(), &source.info, &source.scan);
    let work = TempPath::new(temp_sibling(output, "cut"));
    tokio::fs::create_dir_all(work.path()).await.context("creating work directory")?;
    let timescale = (scan.tb_num == 1).then(|| scan.tb_den.to_string());
    let dur = |a: i64, b: i64| scan.abs(b) - scan.abs(a);

    let copy_until = plan.tail.map_or(clip.end, |t| t.0);
    let mut pieces: Vec<Piece> = Vec::new();
    if plan.head_frames > 0 {
        pieces.push(Piece {
            name: "head.mp4",
            from: clip.start,
            to: plan.k1,
            encode: Some(plan.head_frames),
        });
    }
    pieces.push(Piece { name: "mid.mp4", from: plan.k1, to: copy_until, encode: None });
    if let Some((k_last, frames)) = plan.tail {
        pieces.push(Piece { name: "tail.mp4", from: k_last, to: clip.end, encode: Some(frames) });
    }

    // The source's x264 settings (read once), fast ones first.
    let encoder = if pieces.iter().any(|p| p.encode.is_some()) {
        let read = source
            .encoder
            .get_or_init(|| async {
                HeadEncoder::read(input, probe, cancel).await.map_err(|e| format!("{e:#}"))
            })
            .await;
        Some(read.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?)
    } else {
        None
    };
    let longest = pieces.iter().map(|p| dur(p.from, p.to)).fold(0.0, f64::max);
    loop {
        let fast = encoder.is_some_and(|e| e.fast_matches.load(Ordering::Relaxed));
        let params = encoder.map(|e| if fast { e.fast.as_str() } else { e.exact.as_str() });
        make_pieces(
            source,
            &pieces,
            plan,
            params,
            work.path(),
            timescale.as_deref(),
            cancel,
            |t| progress.stage(0.02, 0.6, t, longest),
        )
        .await?;
        let Some(encoder) = encoder else { break };
        let mut matches = true;
        for piece in pieces.iter().filter(|p| p.encode.is_some()) {
            let mp4 =
                tokio::fs::read(work.path().join(piece.name)).await.context("reading piece")?;
            let sets = h264::avcc_parameter_sets(&mp4).context("re-encoded piece has no avcC")?;
            matches &= sets == encoder.src_sets;
        }
        match (matches, fast) {
            (true, _) => break,
            (false, true) => {
                tracing::info!(input = %input.display(), "fast head settings change the SPS/PPS; using the source's own");
                encoder.fast_matches.store(false, Ordering::Relaxed);
            }
            (false, false) => anyhow::bail!("re-encoded SPS/PPS differ from the source's"),
        }
    }

    let list: String = std::iter::once("ffconcat version 1.0\n".to_string())
        .chain(
            pieces
                .iter()
                .map(|p| format!("file '{}'\nduration {}\n", p.name, secs(dur(p.from, p.to)))),
        )
        .collect();
    let list_path = work.path().join("list.ffconcat");
    tokio::fs::write(&list_path, list).await.context("writing concat list")?;

    // Join video and re-encode audio for exactly the clip span in one run.
    let tmp = TempPath::new(temp_sibling(output, "part"));
    let total = clip.duration(scan);
    let mut a = args!["-f", "concat", "-safe", "0", "-i", &list_path];
    if probe.has_audio {
        a.extend(args![
            "-seek_timestamp",
            "1",
            "-ss",
            us_str(scan.abs_us(clip.start)),
            "-t",
            secs(total),
            "-i",
            input,
        ]);
    }
    a.extend(args!["-map", "0:v:0", "-c:v", "copy"]);
    if probe.has_audio {
        a.extend(args!["-map", "1:a:0"]);
        a.extend(audio_args(probe, output));
    }
    a.extend(container_args(output, timescale.as_deref()));
    a.push(tmp.path().into());
    ffmpeg(a, cancel, false, |t| progress.stage(0.6, 0.85, t, total))
        .await
        .context("joining pieces")?;

    let proven = Proven {
        head: source.head_proven.load(Ordering::Relaxed),
        tail: source.tail_proven.load(Ordering::Relaxed),
    };
    let checked = verify(input, tmp.path(), probe, scan, clip, plan, proven, cancel)
        .await
        .context("verifying smart cut")?;
    if checked.head {
        source.head_proven.store(true, Ordering::Relaxed);
    }
    if checked.tail {
        source.tail_proven.store(true, Ordering::Relaxed);
    }
    progress.set(0.98);
    drop(work);
    finish(tmp, output).await
}

/// Makes every piece in one ffmpeg run (one seeking input per piece);
/// re-encoded pieces use the x264 `params`.
#[allow(clippy::too_many_arguments)]
async fn make_pieces(
    source: &CutSource,
    pieces: &[Piece],
    plan: &Plan,
    params: Option<&str>,
    dir: &Path,
    timescale: Option<&str>,
    cancel: &Cancel,
    on_time: impl FnMut(f64),
) -> anyhow::Result<()> {
    let (input, probe, scan) = (source.input.as_path(), &source.info, &source.scan);
    // x264's own default (1.5 threads per core plus lookahead threads) costs
    // more to start than a partial GOP takes to encode: one per core (the
    // threads shape no parameter set).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let params = params.map(|p| format!("{p}:threads={cores}"));
    let mut a = Vec::new();
    // Each input is bounded (`-t`, a second past its piece): ffmpeg reads
    // an input until every output of the run is done, so an unbounded one
    // would be decoded to the end of the source (measured: 14 s instead of
    // 0.5 s for a clip early in a 3-minute 1080x1920 video).
    for piece in pieces {
        let (from, span) = (scan.abs_us(piece.from), scan.abs(piece.to) - scan.abs(piece.from));
        a.extend(args!["-seek_timestamp", "1", "-ss", us_str(from), "-t", secs(span + 1.0)]);
        a.extend(args!["-i", input]);
    }
    for (i, piece) in pieces.iter().enumerate() {
        a.extend(args!["-map", format!("{i}:v:0"), "-an", "-sn", "-dn"]);
        match (piece.encode, &params) {
            (Some(n), Some(params)) => a.extend(args![
                "-frames:v",
                n.to_string(),
                "-c:v",
                "libx264",
                "-x264-params",
                params,
                "-pix_fmt",
                &probe.pix_fmt,
                "-fps_mode",
                "passthrough",
            ]),
            _ => a.extend(args!["-c:v", "copy", "-frames:v", plan.mid_packets.to_string()]),
        }
        if let Some(ts) = timescale {
            a.extend(args!["-video_track_timescale", ts]);
        }
        a.push(dir.join(piece.name).into());
    }
    ffmpeg(a, cancel, false, on_time).await.context("making pieces")?;
    Ok(())
}

/// Annex B bytes of the first video access unit, with the parameter sets
/// from the container inserted (`h264_mp4toannexb`).
pub(super) async fn access_unit(path: &Path, cancel: &Cancel) -> anyhow::Result<Vec<u8>> {
    let a = args![
        "-i",
        path,
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-bsf:v",
        "h264_mp4toannexb",
        "-frames:v",
        "1",
        "-f",
        "h264",
        "pipe:1",
    ];
    ffmpeg(a, cancel, true, |_| {}).await.context("reading an access unit")
}
