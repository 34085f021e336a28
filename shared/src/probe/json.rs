//! ffprobe's JSON output (`-show_format -show_streams -of json`) as types.
//!
//! ffprobe prints some numbers as JSON numbers (`width`, `index`) and others
//! as strings (`duration`, `bit_rate`, `sample_rate`), and writes `"N/A"` or
//! leaves a field out when it does not know. The types here take both forms
//! and turn "unknown" into `None`, so callers never see a placeholder.

use serde::{Deserialize, Deserializer};

/// The whole document: every stream, and the container.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProbeJson {
    #[serde(default)]
    pub streams: Vec<ProbeStream>,
    pub format: Option<ProbeFormat>,
}

impl ProbeJson {
    /// The first real video stream: cover art (an attached picture, which
    /// ffprobe also lists as video) does not count.
    pub fn video(&self) -> Option<&ProbeStream> {
        self.streams.iter().find(|s| s.codec_type.as_deref() == Some("video") && !s.is_cover_art())
    }

    /// The first audio stream, if any.
    pub fn audio(&self) -> Option<&ProbeStream> {
        self.streams.iter().find(|s| s.codec_type.as_deref() == Some("audio"))
    }
}

/// One stream; the fields ffprobe prints for both video and audio.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProbeStream {
    #[serde(deserialize_with = "number")]
    pub index: Option<f64>,
    #[serde(deserialize_with = "text")]
    pub codec_type: Option<String>,
    #[serde(deserialize_with = "text")]
    pub codec_name: Option<String>,
    #[serde(deserialize_with = "text")]
    pub profile: Option<String>,
    #[serde(deserialize_with = "number")]
    pub level: Option<f64>,
    #[serde(deserialize_with = "text")]
    pub pix_fmt: Option<String>,
    #[serde(deserialize_with = "number")]
    pub width: Option<f64>,
    #[serde(deserialize_with = "number")]
    pub height: Option<f64>,
    #[serde(deserialize_with = "text")]
    pub sample_aspect_ratio: Option<String>,
    #[serde(deserialize_with = "text")]
    pub avg_frame_rate: Option<String>,
    #[serde(deserialize_with = "text")]
    pub r_frame_rate: Option<String>,
    #[serde(deserialize_with = "text")]
    pub time_base: Option<String>,
    #[serde(deserialize_with = "number")]
    pub has_b_frames: Option<f64>,
    #[serde(deserialize_with = "text")]
    pub field_order: Option<String>,
    #[serde(deserialize_with = "number")]
    pub bit_rate: Option<f64>,
    #[serde(deserialize_with = "number")]
    pub nb_frames: Option<f64>,
    #[serde(deserialize_with = "number")]
    pub duration: Option<f64>,
    #[serde(deserialize_with = "number")]
    pub sample_rate: Option<f64>,
    #[serde(deserialize_with = "number")]
    pub channels: Option<f64>,
    pub disposition: Disposition,
    pub side_data_list: Vec<SideData>,
    pub tags: Tags,
}

impl ProbeStream {
    /// An attached picture (album art, an MP4 cover), not a video track.
    pub fn is_cover_art(&self) -> bool {
        self.disposition.attached_pic == Some(1.0)
    }

    /// Display rotation in degrees, 0..360: from the display matrix, else
    /// the old `rotate` tag.
    pub fn rotation(&self) -> i32 {
        let from_matrix = self.side_data_list.iter().find_map(|sd| sd.rotation);
        let r = from_matrix.or(self.tags.rotate).unwrap_or(0.0).round() as i32;
        r.rem_euclid(360)
    }
}

/// The container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProbeFormat {
    #[serde(deserialize_with = "text")]
    pub format_name: Option<String>,
    #[serde(deserialize_with = "number")]
    pub duration: Option<f64>,
    #[serde(deserialize_with = "number")]
    pub start_time: Option<f64>,
    #[serde(deserialize_with = "number")]
    pub size: Option<f64>,
    #[serde(deserialize_with = "number")]
    pub bit_rate: Option<f64>,
    pub tags: Tags,
}

/// Stream flags; only the one that tells cover art apart.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Disposition {
    #[serde(deserialize_with = "number")]
    pub attached_pic: Option<f64>,
}

/// A side-data entry; the display matrix carries `rotation`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SideData {
    #[serde(deserialize_with = "number")]
    pub rotation: Option<f64>,
}

/// The tags this project reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Tags {
    #[serde(deserialize_with = "number")]
    pub rotate: Option<f64>,
    #[serde(deserialize_with = "text")]
    pub encoder: Option<String>,
}

/// Parses an ffprobe rational like `30000/1001` (or a plain number); `None`
/// for `0/0` and other non-positive rates.
pub fn parse_rate(text: &str) -> Option<f64> {
    let rate = match text.split_once('/') {
        Some((num, den)) => {
            let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
            (den != 0.0).then(|| num / den)?
        }
        None => text.parse().ok()?,
    };
    (rate > 0.0 && rate.is_finite()).then_some(rate)
}

/// A number that ffprobe printed as a JSON number or as a string; `None` for
/// "N/A" and anything else that is not a number.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A string, with ffprobe's placeholders for "unknown" turned into `None`.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !matches!(s.as_str(), "" | "N/A" | "unknown") => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_strings_numbers_and_placeholders() {
        let json = r#"{
          "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1280,
             "height": 720, "avg_frame_rate": "30000/1001", "r_frame_rate": "0/0",
             "duration": "12.5", "bit_rate": "N/A", "disposition": {"attached_pic": 0},
             "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]},
            {"index": 1, "codec_type": "video", "disposition": {"attached_pic": 1}},
            {"index": 2, "codec_type": "audio", "sample_rate": "44100", "channels": 2,
             "profile": "unknown"}
          ],
          "format": {"format_name": "mov,mp4", "duration": "12.6", "size": "1000",
                     "tags": {"encoder": "Lavf60"}}
        }"#;
        let parsed: ProbeJson = serde_json::from_str(json).unwrap();
        let video = parsed.video().unwrap();
        assert_eq!(video.index, Some(0.0));
        assert_eq!(video.width, Some(1280.0));
        assert_eq!(video.duration, Some(12.5));
        assert_eq!(video.bit_rate, None);
        assert_eq!(video.rotation(), 270);
        assert_eq!(video.avg_frame_rate.as_deref().and_then(parse_rate), Some(30000.0 / 1001.0));
        assert_eq!(video.r_frame_rate.as_deref().and_then(parse_rate), None);
        let audio = parsed.audio().unwrap();
        assert_eq!(audio.index, Some(2.0));
        assert_eq!(audio.sample_rate, Some(44100.0));
        assert_eq!(audio.profile, None);
        let format = parsed.format.unwrap();
        assert_eq!(format.size, Some(1000.0));
        assert_eq!(format.tags.encoder.as_deref(), Some("Lavf60"));
    }

    #[test]
    fn only_cover_art_is_no_video() {
        let json = r#"{"streams": [{"codec_type": "video", "disposition": {"attached_pic": 1}},
                                   {"codec_type": "audio"}]}"#;
        let parsed: ProbeJson = serde_json::from_str(json).unwrap();
        assert!(parsed.video().is_none());
        assert!(parsed.audio().is_some());
    }
}
