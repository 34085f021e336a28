//! The smart cut: copy the GOPs that lie wholly inside the clip, re-encode
//! only the partial GOPs at either end with the source's encoder settings,
//! and join the pieces (see the media module docs).

use super::*;

/// Runs the smart-cut plan; returns the output size. Any error (other than
/// cancellation) makes the caller fall back to a full re-encode. Five short
/// process runs: read the source's parameter sets, make all pieces in one
/// ffmpeg run, join + audio, and two verification runs.
#[allow(clippy::too_many_arguments)]
pub(super) async fn smart_cut<F: FnMut(f64)>(
    input: &Path,
    output: &Path,
    probe: &SourceInfo,
    scan: &PacketScan,
    clip: &Clip,
    plan: &Plan,
    cancel: &Cancel,
    progress: &mut CutProgress<F>,
) -> anyhow::Result<u64> {
    let work = TempPath::new(temp_sibling(output, "cut"));
    tokio::fs::create_dir_all(work.path()).await.context("creating work directory")?;
    let timescale = (scan.tb_num == 1).then(|| scan.tb_den.to_string());
    let dur = |a: i64, b: i64| scan.abs(b) - scan.abs(a);

    // Replay the source's x264 settings so re-encoded pieces get the same SPS/PPS.
    let mut encode: Option<(String, Vec<Vec<u8>>)> = None;
    if plan.head_frames > 0 || plan.tail.is_some() {
        let first_au = access_unit(input, cancel).await?;
        let sei = h264::x264_options(&first_au)
            .context("not encoded by x264: parameter sets cannot be reproduced")?;
        let yuv444 = probe.pix_fmt.starts_with("yuv444") || probe.pix_fmt.starts_with("yuvj444");
        let params = h264::x264_params_from_sei(&sei, probe.video_level, yuv444)
            .context("x264 settings cannot be replayed (custom matrices, AVC-Intra, ...)")?;
        let src_sets = h264::parameter_sets(&first_au);
        anyhow::ensure!(!src_sets.is_empty(), "no SPS/PPS found in the source");
        encode = Some((params, src_sets));
    }

    // All pieces in one ffmpeg run: one seeking input per piece.
    let copy_until = plan.tail.map_or(clip.end, |t| t.0);
    let mut pieces: Vec<(&str, i64, i64, Option<u64>)> = Vec::new(); // name, from, to, frames to encode
    if plan.head_frames > 0 {
        pieces.push(("head.mp4", clip.start, plan.k1, Some(plan.head_frames)));
    }
    pieces.push(("mid.mp4", plan.k1, copy_until, None));
    if let Some((k_last, frames)) = plan.tail {
        pieces.push(("tail.mp4", k_last, clip.end, Some(frames)));
    }
    let mut a = Vec::new();
    for (_, from, _, _) in &pieces {
        a.extend(args!["-seek_timestamp", "1", "-ss", us_str(scan.abs_us(*from)), "-i", input]);
    }
    for (i, (name, _, _, frames)) in pieces.iter().enumerate() {
        a.extend(args!["-map", format!("{i}:v:0"), "-an", "-sn", "-dn"]);
        match (frames, &encode) {
            (Some(n), Some((params, _))) => a.extend(args![
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
        if let Some(ts) = &timescale {
            a.extend(args!["-video_track_timescale", ts]);
        }
        a.push(work.path().join(name).into());
    }
    let longest = pieces.iter().map(|(_, f, t, _)| dur(*f, *t)).fold(0.0, f64::max);
    ffmpeg(a, cancel, false, |t| progress.stage(0.02, 0.6, t, longest))
        .await
        .context("making pieces")?;

    if let Some((_, src_sets)) = &encode {
        for (name, _, _, frames) in &pieces {
            if frames.is_some() {
                let mp4 = tokio::fs::read(work.path().join(name)).await.context("reading piece")?;
                let sets =
                    h264::avcc_parameter_sets(&mp4).context("re-encoded piece has no avcC")?;
                anyhow::ensure!(&sets == src_sets, "re-encoded SPS/PPS differ from the source's");
            }
        }
    }

    let list: String = std::iter::once("ffconcat version 1.0\n".to_string())
        .chain(
            pieces
                .iter()
                .map(|(n, f, t, _)| format!("file '{n}'\nduration {}\n", secs(dur(*f, *t)))),
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

    verify(input, tmp.path(), probe, scan, clip, plan, cancel)
        .await
        .context("verifying smart cut")?;
    progress.set(0.98);
    drop(work);
    finish(tmp, output).await
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
