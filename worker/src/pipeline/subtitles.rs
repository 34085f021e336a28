//! Subtitles for one clip from the transcript's word timings: cues in SRT and
//! WebVTT, timed to the clip (0 = the clip's first frame).
//!
//! A cue is a run of words that a viewer reads at once. It ends at sentence
//! punctuation, at a pause of [`CueRules::pause_seconds`] or more, before it
//! would grow past [`CueRules::max_chars`] characters (fewer for Chinese,
//! whose characters are wider and denser) or [`CueRules::max_seconds`].
//! Each cue starts when its first word starts and ends when its last word
//! ends, so the times are the recogniser's, not interpolated; only words
//! whose middle lies inside the clip are kept, and times are clamped to it.

use super::detect::TimedWord;

/// When a cue ends; [`CueRules::default`] suits phone-screen short videos.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CueRules {
    /// Most characters per cue for Latin text.
    pub max_chars: usize,
    /// Most characters per cue for CJK text.
    pub max_cjk_chars: usize,
    /// Longest a cue stays on screen.
    pub max_seconds: f64,
    /// A silence this long between words starts a new cue.
    pub pause_seconds: f64,
}

impl Default for CueRules {
    fn default() -> Self {
        Self { max_chars: 42, max_cjk_chars: 16, max_seconds: 6.0, pause_seconds: 0.6 }
    }
}

/// One subtitle: shown from `start` to `end` (seconds from the clip start).
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// Returns the cues of the clip `[clip_start, clip_end]` (seconds on the
/// source's timeline) from the transcript's words, in time order.
pub fn clip_cues(
    words: &[TimedWord],
    clip_start: f64,
    clip_end: f64,
    rules: &CueRules,
) -> Vec<Cue> {
    let inside = words.iter().filter(|w| {
        let mid = (w.start + w.end) / 2.0;
        mid >= clip_start && mid <= clip_end
    });
    let mut cues = Vec::new();
    let mut current: Vec<&TimedWord> = Vec::new();
    for word in inside {
        if !current.is_empty() && starts_new_cue(&current, word, rules) {
            cues.extend(make_cue(&current, clip_start, clip_end));
            current.clear();
        }
        // Punctuation does not open a cue.
        if current.is_empty() && !word.is_word {
            continue;
        }
        current.push(word);
        if ends_sentence(&word.text) {
            cues.extend(make_cue(&current, clip_start, clip_end));
            current.clear();
        }
    }
    cues.extend(make_cue(&current, clip_start, clip_end));
    cues
}

/// True if `next` should begin a new cue after the words in `current`.
fn starts_new_cue(current: &[&TimedWord], next: &TimedWord, rules: &CueRules) -> bool {
    if !next.is_word {
        return false; // punctuation stays with the word before it
    }
    let last_word_end = current.iter().rev().find(|w| w.is_word).map_or(next.start, |w| w.end);
    if next.start - last_word_end >= rules.pause_seconds {
        return true;
    }
    let text: String = current.iter().map(|w| w.text.as_str()).collect();
    let cjk = text.chars().any(is_cjk);
    let limit = if cjk { rules.max_cjk_chars } else { rules.max_chars };
    let grown = text.trim().chars().count() + next.text.trim_end().chars().count();
    grown > limit || next.end - current[0].start > rules.max_seconds
}

/// Sentence punctuation at the end of a piece (`。！？!?.;；`).
fn ends_sentence(text: &str) -> bool {
    text.trim_end().chars().last().is_some_and(|c| "。！？!?.;；…".contains(c))
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

/// The cue for `words`, or `None` if they hold no word or fall outside.
fn make_cue(words: &[&TimedWord], clip_start: f64, clip_end: f64) -> Option<Cue> {
    let first = words.iter().find(|w| w.is_word)?;
    let last = words.iter().rev().find(|w| w.is_word)?;
    let length = clip_end - clip_start;
    let start = (first.start - clip_start).clamp(0.0, length);
    let end = (last.end - clip_start).clamp(0.0, length);
    let text: String = words.iter().map(|w| w.text.as_str()).collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (end > start && !text.is_empty()).then_some(Cue { start, end, text })
}

/// The cues as an SRT file (`HH:MM:SS,mmm`, numbered from 1).
pub fn to_srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        let (a, b) = (clock(cue.start, ','), clock(cue.end, ','));
        out.push_str(&format!("{}\n{a} --> {b}\n{}\n\n", i + 1, cue.text));
    }
    out
}

/// The cues as a WebVTT file (`HH:MM:SS.mmm`).
pub fn to_webvtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues {
        let (a, b) = (clock(cue.start, '.'), clock(cue.end, '.'));
        // "-->" inside a cue's text would end its timing line.
        out.push_str(&format!("{a} --> {b}\n{}\n\n", cue.text.replace("-->", "->")));
    }
    out
}

/// Seconds as `HH:MM:SS` + `separator` + milliseconds.
fn clock(seconds: f64, separator: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    format!("{h:02}:{m:02}:{s:02}{separator}{:03}", ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str, start: f64, end: f64) -> TimedWord {
        let is_word = text.chars().any(|c| c.is_alphanumeric());
        TimedWord { text: text.into(), start, end, is_word }
    }

    #[test]
    fn cues_break_at_punctuation_and_pauses_and_keep_word_times() {
        let words = [
            w(" Stop", 10.0, 10.3),
            w(" scrolling", 10.3, 10.8),
            w(".", 10.8, 10.8),
            w(" This", 11.0, 11.2),
            w(" bottle", 11.2, 11.6),
            // a pause of 0.9 s
            w(" keeps", 12.5, 12.8),
            w(" cold", 12.8, 13.1),
        ];
        let cues = clip_cues(&words, 10.0, 14.0, &CueRules::default());
        let ms = |t: f64| (t * 1000.0).round() as i64;
        let got: Vec<(i64, i64, &str)> =
            cues.iter().map(|c| (ms(c.start), ms(c.end), c.text.as_str())).collect();
        assert_eq!(
            got,
            [(0, 800, "Stop scrolling."), (1000, 1600, "This bottle"), (2500, 3100, "keeps cold")]
        );
    }

    #[test]
    fn chinese_cues_are_short_and_only_words_inside_the_clip_count() {
        let text = "这款空气炸锅不用油也能炸出金黄酥脆的薯条真的太方便了";
        let words: Vec<TimedWord> = text
            .chars()
            .enumerate()
            .map(|(i, c)| w(&c.to_string(), 5.0 + i as f64 * 0.2, 5.2 + i as f64 * 0.2))
            .collect();
        // The clip starts just before the second character's middle (so the
        // first is left out and the second, begun before the clip, is
        // clamped to 0) and ends inside the text.
        let cues = clip_cues(&words, 5.25, 9.0, &CueRules::default());
        assert!(cues.len() >= 2, "{cues:?}");
        assert!(cues.iter().all(|c| c.text.chars().count() <= 16), "{cues:?}");
        let all: String = cues.iter().map(|c| c.text.as_str()).collect();
        assert!(all.starts_with("款空"), "the first characters are outside: {all}");
        assert_eq!(cues[0].start, 0.0, "{:?}", cues[0]);
        assert!((cues[0].end - (5.2 + 16.0 * 0.2 - 5.25)).abs() < 1e-9, "{:?}", cues[0]);
        assert!((cues[1].start - (5.0 + 17.0 * 0.2 - 5.25)).abs() < 1e-9, "{:?}", cues[1]);
        assert!(cues.last().unwrap().end <= 3.75 + 1e-9);
    }

    #[test]
    fn srt_and_webvtt_formats() {
        let cues = [
            Cue { start: 0.0, end: 1.25, text: "Hello".into() },
            Cue { start: 3661.5, end: 3662.0, text: "a --> b".into() },
        ];
        assert_eq!(
            to_srt(&cues),
            "1\n00:00:00,000 --> 00:00:01,250\nHello\n\n2\n01:01:01,500 --> 01:01:02,000\na --> b\n\n"
        );
        assert_eq!(
            to_webvtt(&cues),
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nHello\n\n01:01:01.500 --> 01:01:02.000\na -> b\n\n"
        );
    }
}
