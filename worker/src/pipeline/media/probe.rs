//! ffprobe wrappers: stream facts ([`SourceInfo`]) and video packet scans
//! (keyframes, frame timestamps) that the cutter plans with.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use shared::probe::parse_rate;

use super::run::{as_media_error, ffprobe};
use super::MediaError;

/// What the pipeline needs to know about a source file, from one ffprobe run
/// (plus a short packet sample to detect variable frame rate). Serializable so
/// it can be stored with the video record and passed back to [`super::cut_clip`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// ffprobe `format_name`, e.g. `"mov,mp4,m4a,3gp,3g2,mj2"`.
    pub container: String,
    /// Container duration in seconds.
    pub duration: f64,
    /// Container start time in seconds; module times are relative to it.
    pub start_time: f64,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Overall bit rate (bits/s), if known.
    pub bit_rate: Option<u64>,
    /// Index of the first video stream (the one that is used).
    pub video_stream_index: u32,
    /// Video codec, ffprobe name (`h264`, `hevc`, `vp9`, ...).
    pub video_codec: String,
    /// Video profile as ffprobe names it (`High`, `Main`, ...).
    pub video_profile: Option<String>,
    /// Video level as ffprobe reports it (H.264: 30 = 3.0).
    pub video_level: Option<i64>,
    /// Pixel format (`yuv420p`, ...).
    pub pix_fmt: String,
    /// Coded width in pixels (before rotation).
    pub width: u32,
    /// Coded height in pixels (before rotation).
    pub height: u32,
    /// Sample aspect ratio, e.g. `"1:1"`.
    pub sample_aspect_ratio: Option<String>,
    /// Display rotation in degrees from the display matrix (0, 90, 180, 270).
    pub rotation: i32,
    /// Average frame rate (frames / duration).
    pub avg_fps: f64,
    /// ffprobe `r_frame_rate`: the base rate all timestamps fit on.
    pub r_fps: f64,
    /// `avg_frame_rate` as the exact ffprobe fraction, e.g. `"30000/1001"`.
    pub avg_frame_rate: String,
    /// `r_frame_rate` as the exact ffprobe fraction.
    pub r_frame_rate: String,
    /// Video stream time base, e.g. `"1/12800"`.
    pub video_time_base: String,
    /// Video frame reordering depth (>0 means B-frames).
    pub has_b_frames: u32,
    /// Interlacing as ffprobe reports it (`progressive`, `tt`, ...), if known.
    pub field_order: Option<String>,
    /// Video bit rate (bits/s), if known.
    pub video_bit_rate: Option<u64>,
    /// Number of video frames from the container index, if known.
    pub video_frames: Option<u64>,
    /// Video stream duration in seconds, if known.
    pub video_duration: Option<f64>,
    /// Variable frame rate: average and base rates differ, or the first
    /// seconds of timestamps are irregular. VFR sources are always re-encoded.
    pub is_vfr: bool,
    /// Whether there is an audio stream.
    pub has_audio: bool,
    /// Audio codec (`aac`, `mp3`, `opus`, ...).
    pub audio_codec: Option<String>,
    /// Audio sample rate in Hz.
    pub audio_sample_rate: Option<u32>,
    /// Audio channel count.
    pub audio_channels: Option<u32>,
    /// Audio bit rate (bits/s), if known.
    pub audio_bit_rate: Option<u64>,
    /// Audio stream duration in seconds, if known.
    pub audio_duration: Option<f64>,
    /// Container `encoder` tag, if any (e.g. `Lavf59.27.100`).
    pub encoder_tag: Option<String>,
}

impl SourceInfo {
    /// Nominal duration of one frame in seconds (from the average frame rate,
    /// falling back to the base rate, then 1/30).
    pub fn frame_duration(&self) -> f64 {
        let fps = if self.avg_fps > 0.0 { self.avg_fps } else { self.r_fps };
        if fps > 0.0 {
            1.0 / fps
        } else {
            1.0 / 30.0
        }
    }
}

/// Probes `input` with ffprobe. Fails with [`MediaError::NoVideoStream`] when
/// there is no video stream, since every pipeline step needs one.
pub async fn source_info(input: &Path) -> anyhow::Result<SourceInfo> {
    let json = shared::probe::probe_json(input).await.map_err(as_media_error);
    let json = json.with_context(|| format!("probing {}", input.display()))?;
    let format = json.format.clone().unwrap_or_default();
    let video = json.video().ok_or_else(|| MediaError::NoVideoStream(input.to_path_buf()))?;
    let audio = json.audio();

    let avg_frame_rate = video.avg_frame_rate.clone().unwrap_or_default();
    let r_frame_rate = video.r_frame_rate.clone().unwrap_or_default();
    let avg_fps = parse_rate(&avg_frame_rate).unwrap_or(0.0);
    let r_fps = parse_rate(&r_frame_rate).unwrap_or(0.0);
    let size_bytes = match format.size {
        Some(s) => s as u64,
        None => tokio::fs::metadata(input).await.map(|m| m.len()).unwrap_or(0),
    };
    let whole = |v: Option<f64>| v.map(|v| v as u64);

    let mut info = SourceInfo {
        container: format.format_name.clone().unwrap_or_default(),
        duration: format.duration.or(video.duration).unwrap_or(0.0),
        start_time: format.start_time.unwrap_or(0.0),
        size_bytes,
        bit_rate: whole(format.bit_rate),
        video_stream_index: video.index.unwrap_or(0.0) as u32,
        video_codec: video.codec_name.clone().unwrap_or_default(),
        video_profile: video.profile.clone(),
        video_level: video.level.map(|l| l as i64),
        pix_fmt: video.pix_fmt.clone().unwrap_or_default(),
        width: video.width.unwrap_or(0.0) as u32,
        height: video.height.unwrap_or(0.0) as u32,
        sample_aspect_ratio: video.sample_aspect_ratio.clone(),
        rotation: video.rotation(),
        avg_fps,
        r_fps,
        avg_frame_rate,
        r_frame_rate,
        video_time_base: video.time_base.clone().unwrap_or_default(),
        has_b_frames: video.has_b_frames.unwrap_or(0.0) as u32,
        field_order: video.field_order.clone(),
        video_bit_rate: whole(video.bit_rate),
        video_frames: whole(video.nb_frames),
        video_duration: video.duration,
        is_vfr: false,
        has_audio: audio.is_some(),
        audio_codec: audio.and_then(|a| a.codec_name.clone()),
        audio_sample_rate: audio.and_then(|a| a.sample_rate).map(|v| v as u32),
        audio_channels: audio.and_then(|a| a.channels).map(|v| v as u32),
        audio_bit_rate: audio.and_then(|a| whole(a.bit_rate)),
        audio_duration: audio.and_then(|a| a.duration),
        encoder_tag: format.tags.encoder.clone(),
    };

    // Rates disagree by more than 0.5 %: frames are not on one regular grid.
    let rates_differ = avg_fps > 0.0 && r_fps > 0.0 && ((avg_fps - r_fps).abs() / r_fps) > 0.005;
    info.is_vfr = rates_differ
        || match scan_packets(input, Some("%+10")).await {
            Ok(scan) => scan.irregular_timing(),
            Err(e) => {
                tracing::warn!(error = %e, "packet sample for VFR detection failed");
                false
            }
        };
    Ok(info)
}

/// Keyframe facts of the first video stream, from a full packet scan (demux
/// only, no decoding: roughly a second per hour of 1080p).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyframeInfo {
    /// Keyframe presentation times in seconds (file timeline), ascending.
    pub keyframes: Vec<f64>,
    /// Number of video packets (frames).
    pub frame_count: u64,
    /// Longest distance between consecutive keyframes, in seconds.
    pub max_gop: f64,
    /// Frames are reordered (B-frames): stream-copying cannot end mid-GOP exactly.
    pub reordered: bool,
    /// Some frame after a keyframe (in decode order) is shown before it, so
    /// copying cannot start at that keyframe cleanly (open GOP).
    pub open_gop: bool,
}

/// Keyframe times of the first video stream in seconds on the file timeline
/// (for MP4 the packet pts), ascending. Used to show where cuts are cheap and
/// to plan smart cuts.
pub async fn keyframes(input: &Path) -> anyhow::Result<Vec<f64>> {
    Ok(keyframe_info(input).await?.keyframes)
}

/// Keyframes plus GOP structure facts of the first video stream; see
/// [`KeyframeInfo`].
pub async fn keyframe_info(input: &Path) -> anyhow::Result<KeyframeInfo> {
    let scan = scan_packets(input, None).await?;
    let keys: Vec<f64> = scan.keyframe_pts().iter().map(|&p| scan.rel(p)).collect();
    let max_gop = keys.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    Ok(KeyframeInfo {
        max_gop,
        frame_count: scan.packets.len() as u64,
        reordered: scan.reordered(),
        open_gop: scan.open_gop_at_any(),
        keyframes: keys,
    })
}

/// One video packet, times in stream time-base units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pkt {
    pub pts: i64,
    pub key: bool,
}

/// Video packets in decode order with the stream time base.
#[derive(Debug, Clone)]
pub(crate) struct PacketScan {
    pub tb_num: i64,
    pub tb_den: i64,
    /// Container start time in microseconds (the module's timeline origin).
    pub start_us: i64,
    pub packets: Vec<Pkt>,
}

impl PacketScan {
    /// Seconds on the stream's absolute timeline.
    pub fn abs(&self, pts: i64) -> f64 {
        pts as f64 * self.tb_num as f64 / self.tb_den as f64
    }
    /// Seconds on the module timeline (relative to the container start).
    pub fn rel(&self, pts: i64) -> f64 {
        self.abs(pts) - self.start_us as f64 / 1e6
    }
    /// Absolute time rounded to the nearest microsecond, which maps back to
    /// exactly `pts` when ffmpeg rescales it (for time bases coarser than 2 µs).
    pub fn abs_us(&self, pts: i64) -> i64 {
        let n = pts as i128 * self.tb_num as i128 * 1_000_000;
        let d = self.tb_den as i128;
        (if n >= 0 { (n + d / 2) / d } else { (n - d / 2) / d }) as i64
    }
    /// Seconds (abs) to stream ticks, rounded to nearest.
    pub fn to_ticks(&self, secs: f64) -> i64 {
        (secs * self.tb_den as f64 / self.tb_num as f64).round() as i64
    }
    /// Distinct presentation timestamps, ascending.
    pub fn frames_sorted(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.packets.iter().map(|p| p.pts).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
    pub fn keyframe_pts(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.packets.iter().filter(|p| p.key).map(|p| p.pts).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
    /// Typical frame duration in ticks (median of sorted pts deltas).
    pub fn frame_ticks(&self) -> Option<i64> {
        let f = self.frames_sorted();
        let mut d: Vec<i64> = f.windows(2).map(|w| w[1] - w[0]).filter(|&d| d > 0).collect();
        if d.is_empty() {
            return None;
        }
        d.sort_unstable();
        Some(d[d.len() / 2])
    }
    /// Frame spacing varies by more than half a frame.
    pub fn irregular_timing(&self) -> bool {
        let f = self.frames_sorted();
        let d: Vec<i64> = f.windows(2).map(|w| w[1] - w[0]).collect();
        let (Some(&min), Some(&max)) = (d.iter().min(), d.iter().max()) else {
            return false;
        };
        min <= 0 || (max - min) * 2 > min
    }
    /// Any packet shown before an earlier-decoded one.
    pub fn reordered(&self) -> bool {
        self.packets.windows(2).any(|w| w[1].pts < w[0].pts)
    }
    /// After the keyframe at decode index `i`, a packet of its GOP is shown
    /// before it (leading pictures referencing the previous GOP).
    pub fn open_gop_at(&self, i: usize) -> bool {
        let k = self.packets[i].pts;
        self.packets[i + 1..].iter().take_while(|p| !p.key).any(|p| p.pts < k)
    }
    pub fn open_gop_at_any(&self) -> bool {
        (0..self.packets.len()).any(|i| self.packets[i].key && self.open_gop_at(i))
    }
}

/// Scans the first video stream's packets (demux only). `interval` is an
/// ffprobe `-read_intervals` spec in absolute seconds (e.g. `"12.5%20"`).
pub(crate) async fn scan_packets(
    input: &Path,
    interval: Option<&str>,
) -> anyhow::Result<PacketScan> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "-select_streams".into(),
        "v:0".into(),
        "-show_entries".into(),
        "format=start_time:stream=time_base:packet=pts,dts,flags".into(),
        "-of".into(),
        "csv=nk=0".into(),
    ];
    if let Some(iv) = interval {
        args.push("-read_intervals".into());
        args.push(iv.into());
    }
    args.push(input.as_os_str().to_owned());
    let out =
        ffprobe(args).await.with_context(|| format!("scanning packets of {}", input.display()))?;

    let mut scan = PacketScan { tb_num: 0, tb_den: 0, start_us: 0, packets: Vec::new() };
    for line in out.lines() {
        let mut fields = line.split(',');
        let section = fields.next().unwrap_or("");
        let kv = |name: &str| -> Option<String> {
            line.split(',').skip(1).find_map(|f| {
                f.strip_prefix(name).and_then(|r| r.strip_prefix('=')).map(str::to_string)
            })
        };
        match section {
            "packet" => {
                let pts = kv("pts").and_then(|v| v.parse::<i64>().ok());
                let dts = kv("dts").and_then(|v| v.parse::<i64>().ok());
                let Some(pts) = pts.or(dts) else { continue };
                let key = kv("flags").is_some_and(|f| f.contains('K'));
                scan.packets.push(Pkt { pts, key });
            }
            "stream" => {
                if let Some((n, d)) = kv("time_base").as_deref().and_then(|tb| tb.split_once('/')) {
                    scan.tb_num = n.parse().unwrap_or(0);
                    scan.tb_den = d.parse().unwrap_or(0);
                }
            }
            "format" => {
                let st = kv("start_time").and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                scan.start_us = (st * 1e6).round() as i64;
            }
            _ => {}
        }
    }
    if scan.tb_num <= 0 || scan.tb_den <= 0 {
        return Err(MediaError::NoVideoStream(input.to_path_buf()).into());
    }
    Ok(scan)
}
