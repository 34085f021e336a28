//! Branding a cut clip with a shop's templates: a watermark overlaid and
//! captions burned in (one encode of the clip), an intro before and an outro
//! after (joined without a second encode).
//!
//! Everything is made to one [`Canvas`], the clip's frame size, frame rate
//! and audio rate, with one set of encoder settings, so the pieces join by
//! stream copy: an intro or outro is normalised to the canvas once
//! ([`normalize_bumper`]; the caller keeps the result per canvas and
//! reuses it for every clip), the clip body is encoded once
//! ([`render_body`]), and [`join`] copies the video of all three and
//! re-encodes only the audio (cheap), each piece's audio padded or trimmed
//! to its video so the seams stay in sync and play without a gap.

use std::ffi::OsString;
use std::path::Path;

use anyhow::Context;
use shared::templates::style::{
    parse_colour, CaptionPosition, CaptionStyle, Corner, WatermarkStyle,
};

use super::run::{args, ffmpeg, secs, temp_sibling, TempPath};
use super::{Cancel, MediaError, SourceInfo};

/// The output format every piece of a branded clip is made to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    /// Frame rate as an ffmpeg rational, e.g. `30000/1001`.
    pub frame_rate: String,
    pub sample_rate: u32,
}

impl Canvas {
    /// The canvas of a clip: its displayed size (rotation applied, even
    /// dimensions for 4:2:0), its frame rate, its audio rate (44.1 kHz if it
    /// has none).
    pub fn of(clip: &SourceInfo) -> Self {
        let (w, h) = match clip.rotation {
            90 | 270 => (clip.height, clip.width),
            _ => (clip.width, clip.height),
        };
        let rate = if clip.r_fps > 0.0 { &clip.r_frame_rate } else { &clip.avg_frame_rate };
        Self {
            width: w.max(2) & !1,
            height: h.max(2) & !1,
            frame_rate: if rate.is_empty() { "30".into() } else { rate.clone() },
            sample_rate: clip.audio_sample_rate.unwrap_or(44_100),
        }
    }

    /// A short name for file names: `720x1280-30000_1001-44100`.
    pub fn tag(&self) -> String {
        let rate = self.frame_rate.replace('/', "_");
        format!("{}x{}-{rate}-{}", self.width, self.height, self.sample_rate)
    }

    /// Scale into the canvas keeping the aspect, pad the rest black.
    fn fit_filter(&self) -> String {
        let (w, h, r) = (self.width, self.height, &self.frame_rate);
        format!(
            "scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps={r}"
        )
    }

    /// The encoder settings every piece shares (so their streams join by copy).
    fn encoder_args(&self) -> Vec<OsString> {
        let sr = self.sample_rate.to_string();
        args![
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-profile:v",
            "high",
            "-pix_fmt",
            "yuv420p",
            "-video_track_timescale",
            "90000",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ar",
            &sr,
            "-ac",
            "2",
            "-movflags",
            "+faststart",
        ]
    }
}

/// A watermark to overlay: its file (image or video) and style.
pub struct Watermark<'a> {
    pub file: &'a Path,
    /// Its own size in pixels (from its probe).
    pub width: u32,
    pub height: u32,
    /// Still image (looped) rather than a video (repeated).
    pub is_image: bool,
    pub style: &'a WatermarkStyle,
}

/// Captions to burn in: an SRT file timed to the clip, and the style.
pub struct Captions<'a> {
    pub srt: &'a Path,
    pub style: &'a CaptionStyle,
}

/// Normalises an intro or outro to `canvas`: scaled and padded to its
/// frame, its frame rate, audio resampled to its rate in stereo, padded or
/// trimmed to the video's length (`duration`, seconds).
pub async fn normalize_bumper(
    input: &Path,
    duration: f64,
    output: &Path,
    canvas: &Canvas,
    cancel: &Cancel,
) -> anyhow::Result<()> {
    let mut a = args!["-i", input, "-map", "0:v:0", "-map", "0:a:0", "-vf", canvas.fit_filter()];
    a.extend(args!["-af", audio_filter(canvas, duration), "-t", secs(duration)]);
    encode(a, output, canvas, cancel).await.context("normalising an intro or outro")
}

/// Encodes the clip body onto `canvas` with the watermark and captions, if
/// any (the one encode a branded clip costs). `duration` is the clip's.
pub async fn render_body(
    clip: &Path,
    duration: f64,
    output: &Path,
    canvas: &Canvas,
    watermark: Option<&Watermark<'_>>,
    captions: Option<&Captions<'_>>,
    cancel: &Cancel,
) -> anyhow::Result<()> {
    let mut a = args!["-i", clip];
    let mut graph = format!("[0:v]{},format=yuv420p", canvas.fit_filter());
    if let Some(captions) = captions {
        graph.push_str(&format!(",{}", subtitles_filter(captions, canvas)?));
    }
    graph.push_str("[base]");
    if let Some(mark) = watermark {
        let (w, h) = watermark_size(mark, canvas)?;
        if mark.is_image {
            a.extend(args!["-loop", "1"]);
        } else {
            a.extend(args!["-stream_loop", "-1"]);
        }
        a.extend(args!["-i", mark.file]);
        let (x, y) = position(mark.style.position, mark.style.margin);
        let opacity = mark.style.opacity;
        graph.push_str(&format!(
            ";[1:v]scale={w}:{h},format=rgba,colorchannelmixer=aa={opacity:.3}[mark];\
             [base][mark]overlay={x}:{y}:shortest=1:format=auto,format=yuv420p[out]"
        ));
    } else {
        graph.push_str(";[base]null[out]");
    }
    a.extend(args!["-filter_complex", graph, "-map", "[out]", "-map", "0:a:0"]);
    a.extend(args!["-af", audio_filter(canvas, duration), "-t", secs(duration)]);
    encode(a, output, canvas, cancel).await.context("encoding the branded clip")
}

/// Joins pieces made by [`normalize_bumper`] and [`render_body`] (same
/// canvas) into `output`: video by stream copy, audio decoded and encoded
/// once across the seams. Returns the output's size in bytes.
pub async fn join(
    pieces: &[&Path],
    output: &Path,
    canvas: &Canvas,
    cancel: &Cancel,
) -> anyhow::Result<u64> {
    let list = temp_sibling(output, "join-list");
    let list = TempPath::new(list.with_extension("txt"));
    let mut text = String::from("ffconcat version 1.0\n");
    for piece in pieces {
        let abs = std::fs::canonicalize(piece)
            .with_context(|| format!("{} is missing", piece.display()))?;
        // ffconcat quoting: a single quote is written '\''.
        text.push_str(&format!("file '{}'\n", abs.display().to_string().replace('\'', "'\\''")));
    }
    tokio::fs::write(list.path(), text).await.context("writing the join list")?;
    let mut a = args!["-f", "concat", "-safe", "0", "-i", list.path()];
    for piece in pieces {
        a.extend(args!["-i", piece]);
    }
    // Each piece's decoded audio is cut to its video's length: AAC pads its
    // last frame, and those few ms per seam would add up past the video.
    let mut graph = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        let probed = shared::probe::probe_json(piece).await?;
        let length = probed.video().and_then(|v| v.duration).context("a piece without video")?;
        let n = i + 1;
        graph.push_str(&format!("[{n}:a]atrim=0:{},asetpts=PTS-STARTPTS[a{n}];", secs(length)));
    }
    let inputs: String = (1..=pieces.len()).map(|i| format!("[a{i}]")).collect();
    graph.push_str(&format!("{inputs}concat=n={}:v=0:a=1[a]", pieces.len()));
    let sr = canvas.sample_rate.to_string();
    a.extend(args!["-filter_complex", graph, "-map", "0:v:0", "-map", "[a]", "-c:v", "copy"]);
    a.extend(args!["-c:a", "aac", "-b:a", "128k", "-ar", &sr, "-ac", "2"]);
    a.extend(args!["-movflags", "+faststart", "-video_track_timescale", "90000"]);
    let tmp = TempPath::new(temp_sibling(output, "join"));
    a.push(tmp.path().into());
    ffmpeg(a, cancel, false, |_| {}).await.context("joining intro, clip and outro")?;
    let size = tokio::fs::metadata(tmp.path()).await.context("joined clip was not written")?.len();
    tokio::fs::rename(tmp.path(), output).await.context("moving the joined clip into place")?;
    tmp.keep();
    Ok(size)
}

/// Encodes with the canvas's settings to a temporary file, then moves it to `output`.
async fn encode(
    mut a: Vec<OsString>,
    output: &Path,
    canvas: &Canvas,
    cancel: &Cancel,
) -> anyhow::Result<()> {
    a.extend(canvas.encoder_args());
    let tmp = TempPath::new(temp_sibling(output, "brand"));
    a.push(tmp.path().into());
    ffmpeg(a, cancel, false, |_| {}).await?;
    tokio::fs::rename(tmp.path(), output).await.context("moving an encoded piece into place")?;
    tmp.keep();
    Ok(())
}

/// Audio resampled to the canvas, stereo, exactly `duration` long (padded
/// with silence or trimmed), so a join keeps audio and video in step.
fn audio_filter(canvas: &Canvas, duration: f64) -> String {
    let sr = canvas.sample_rate;
    format!("aresample={sr},aformat=channel_layouts=stereo,apad,atrim=0:{}", secs(duration))
}

/// The watermark's size on the canvas: its `scale` of the canvas width, else
/// its own size, which must fit the frame (else bad media, with the sizes).
fn watermark_size(mark: &Watermark<'_>, canvas: &Canvas) -> anyhow::Result<(u32, u32)> {
    let margin = mark.style.margin * 2;
    let (w, h) = match mark.style.scale {
        Some(scale) => {
            let w = ((canvas.width as f64 * scale).round() as u32).max(2) & !1;
            let h = ((w as f64 * mark.height as f64 / mark.width.max(1) as f64).round() as u32)
                .max(2)
                & !1;
            (w, h)
        }
        None => (mark.width, mark.height),
    };
    if w + margin > canvas.width || h + margin > canvas.height {
        return Err(MediaError::InvalidRequest(format!(
            "the watermark ({w}x{h} with a {}px margin) is larger than the {}x{} frame",
            mark.style.margin, canvas.width, canvas.height
        ))
        .into());
    }
    Ok((w, h))
}

/// overlay's x and y expressions for a corner and margin.
fn position(corner: Corner, margin: u32) -> (String, String) {
    let m = margin;
    let (x, y) = match corner {
        Corner::TopLeft => (format!("{m}"), format!("{m}")),
        Corner::TopRight => (format!("W-w-{m}"), format!("{m}")),
        Corner::BottomLeft => (format!("{m}"), format!("H-h-{m}")),
        Corner::BottomRight => (format!("W-w-{m}"), format!("H-h-{m}")),
        Corner::Center => ("(W-w)/2".into(), "(H-h)/2".into()),
    };
    (x, y)
}

/// The `subtitles` filter for the captions: libass renders the SRT with the
/// style. Sizes are given to libass in pixels of the clip (`original_size`
/// is the canvas, so its script resolution is the frame).
fn subtitles_filter(captions: &Captions<'_>, canvas: &Canvas) -> anyhow::Result<String> {
    let style = captions.style;
    let ass_colour = |c: &str| {
        let (r, g, b) = parse_colour(c).unwrap_or((255, 255, 255));
        format!("&H00{b:02X}{g:02X}{r:02X}")
    };
    // SRT is rendered at libass' default script height of 288 lines: scale
    // pixel sizes of the clip to it.
    let per_px = 288.0 / canvas.height.max(1) as f64;
    let alignment = match style.position {
        CaptionPosition::Bottom => 2,
        CaptionPosition::Middle => 5,
        CaptionPosition::Top => 8,
    };
    let force = format!(
        "FontName={},FontSize={:.1},PrimaryColour={},OutlineColour={},BorderStyle=1,Outline={:.2},Shadow=0,Alignment={alignment},MarginV={}",
        style.font,
        style.size as f64 * per_px,
        ass_colour(&style.colour),
        ass_colour(&style.outline_colour),
        style.outline * per_px,
        (style.margin as f64 * per_px).round() as u32,
    );
    let path = captions.srt.display().to_string();
    // Scratch paths are plain; anything the filter syntax would read as
    // syntax is refused rather than escaped through its two levels.
    if path.contains(['\'', '\\', ':', ',', ';', '[', ']', '=']) {
        return Err(MediaError::InvalidRequest(format!("caption file path {path:?}")).into());
    }
    Ok(format!("subtitles=filename='{path}':force_style='{force}'"))
}

#[cfg(test)]
#[path = "brand_tests.rs"]
mod tests;
