//! What a template's `config` JSON may say, typed and checked: where and how
//! a watermark sits on the frame, and how burned-in captions look. Intros
//! and outros take no options. Unknown keys and bad values are refused with
//! the reason, at `template add` (and so never reach a worker).

use serde::{Deserialize, Serialize};

/// Where a watermark sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Corner {
    TopLeft,
    TopRight,
    BottomLeft,
    #[default]
    BottomRight,
    Center,
}

/// A watermark template's `config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatermarkStyle {
    pub position: Corner,
    /// Distance from the frame's edges, in pixels of the clip.
    pub margin: u32,
    /// The watermark's width as a fraction of the clip's width (its aspect
    /// kept); `None`: its own size, which must then fit the frame.
    pub scale: Option<f64>,
    /// 0 (invisible) to 1 (opaque).
    pub opacity: f64,
}

impl Default for WatermarkStyle {
    fn default() -> Self {
        Self { position: Corner::BottomRight, margin: 16, scale: None, opacity: 0.8 }
    }
}

/// Where captions sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CaptionPosition {
    #[default]
    Bottom,
    Middle,
    Top,
}

/// A captions template's `config`: how the transcript is burned in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptionStyle {
    /// A fontconfig family; the default covers Chinese and Latin text.
    pub font: String,
    /// Text height in pixels of the clip.
    pub size: u32,
    /// Text colour, `#RRGGBB`.
    pub colour: String,
    /// Outline colour, `#RRGGBB`.
    pub outline_colour: String,
    /// Outline width in pixels (0: none).
    pub outline: f64,
    pub position: CaptionPosition,
    /// Distance from the top or bottom edge, in pixels.
    pub margin: u32,
    /// Longest line; CJK lines hold half as many characters.
    pub max_chars_per_line: usize,
}

impl Default for CaptionStyle {
    fn default() -> Self {
        Self {
            font: "Noto Sans CJK SC".into(),
            size: 28,
            colour: "#FFFFFF".into(),
            outline_colour: "#000000".into(),
            outline: 2.0,
            position: CaptionPosition::Bottom,
            margin: 32,
            max_chars_per_line: 32,
        }
    }
}

/// Parses a `#RRGGBB` colour into (r, g, b); the reason if it is not one.
pub fn parse_colour(text: &str) -> Result<(u8, u8, u8), String> {
    let hex = text.strip_prefix('#').filter(|h| h.len() == 6 && h.is_ascii());
    let channel = |h: &str, i: usize| u8::from_str_radix(&h[i..i + 2], 16).ok();
    match hex.and_then(|h| Some((channel(h, 0)?, channel(h, 2)?, channel(h, 4)?))) {
        Some(rgb) => Ok(rgb),
        None => Err(format!("{text:?} is not a colour like #FFCC00")),
    }
}

impl WatermarkStyle {
    /// Parses and checks a watermark `config` (absent: the defaults).
    pub fn from_config(config: Option<&serde_json::Value>) -> Result<Self, String> {
        let style: Self = parse(config)?;
        if !(0.0..=1.0).contains(&style.opacity) {
            return Err(format!("opacity must be between 0 and 1, not {}", style.opacity));
        }
        if let Some(scale) = style.scale {
            if !(scale > 0.0 && scale <= 1.0) {
                return Err(format!("scale must be above 0 and at most 1, not {scale}"));
            }
        }
        if style.margin > 2000 {
            return Err(format!("margin must be at most 2000 pixels, not {}", style.margin));
        }
        Ok(style)
    }
}

impl CaptionStyle {
    /// Parses and checks a captions `config` (absent: the defaults).
    pub fn from_config(config: Option<&serde_json::Value>) -> Result<Self, String> {
        let style: Self = parse(config)?;
        parse_colour(&style.colour).map_err(|e| format!("colour: {e}"))?;
        parse_colour(&style.outline_colour).map_err(|e| format!("outline_colour: {e}"))?;
        if !(8..=200).contains(&style.size) {
            return Err(format!("size must be 8 to 200 pixels, not {}", style.size));
        }
        if !(0.0..=20.0).contains(&style.outline) {
            return Err(format!("outline must be 0 to 20 pixels, not {}", style.outline));
        }
        if !(4..=200).contains(&style.max_chars_per_line) {
            let n = style.max_chars_per_line;
            return Err(format!("max_chars_per_line must be 4 to 200, not {n}"));
        }
        if style.font.trim().is_empty() || style.font.contains(['\'', ',', ':', '\\']) {
            return Err(format!("font {:?} is not a font family name", style.font));
        }
        Ok(style)
    }
}

/// Deserializes a config object (absent or null: the defaults).
fn parse<T: for<'de> Deserialize<'de> + Default>(
    config: Option<&serde_json::Value>,
) -> Result<T, String> {
    match config {
        None | Some(serde_json::Value::Null) => Ok(T::default()),
        Some(value) => serde_json::from_value(value.clone()).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn watermark_config_is_checked() {
        let style = WatermarkStyle::from_config(Some(
            &json!({"position": "top-left", "scale": 0.2, "opacity": 0.5}),
        ))
        .unwrap();
        assert_eq!((style.position, style.scale, style.margin), (Corner::TopLeft, Some(0.2), 16));
        assert!(WatermarkStyle::from_config(Some(&json!({"opacity": 1.5}))).is_err());
        assert!(WatermarkStyle::from_config(Some(&json!({"scale": 2}))).is_err());
        let err = WatermarkStyle::from_config(Some(&json!({"postion": "top-left"}))).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        assert!(WatermarkStyle::from_config(Some(&json!({"position": "left"}))).is_err());
    }

    #[test]
    fn caption_config_is_checked() {
        assert_eq!(CaptionStyle::from_config(None).unwrap(), CaptionStyle::default());
        let style = CaptionStyle::from_config(Some(&json!({"size": 40, "colour": "#ffcc00"})));
        assert_eq!(style.unwrap().size, 40);
        let err = CaptionStyle::from_config(Some(&json!({"colour": "yellow"}))).unwrap_err();
        assert!(err.contains("colour"), "{err}");
        assert!(CaptionStyle::from_config(Some(&json!({"size": 2}))).is_err());
        assert!(CaptionStyle::from_config(Some(&json!({"font": "a'b"}))).is_err());
        assert_eq!(parse_colour("#0A0b0C"), Ok((10, 11, 12)));
    }
}
