//! Selling-point detection on whisper transcripts.
//!
//! Product videos (mostly Mandarin e-commerce pitches, some English) are
//! transcribed by whisper; this module turns that transcript into clips of
//! four kinds of selling point: the opening **hook**, the **material** /
//! ingredients, the **effect** / results, and the **promotion** (price,
//! coupon, call to buy). It is pure: plain inputs, plain outputs, no I/O.
//!
//! # Approach
//! 1. **Sentences** ([`split_sentences`]): whisper segments are cut into
//!    sentences at sentence punctuation (`。！？!?.;；`), at commas followed by
//!    a long pause, and at pauses between tokens longer than
//!    [`DetectionConfig::pause_split_seconds`]. Token timestamps give the
//!    times; special tokens (`[_BEG_]`, `<|...|>`) are dropped and tokens whose
//!    text was decoded lossily (U+FFFD from a character split across tokens)
//!    are repaired from the segment text. Fragments that are too short are
//!    glued back and overlong sentences are cut at their largest pause.
//!    Chinese is converted to Simplified ([`to_simplified`], an embedded
//!    OpenCC character table) because whisper base often writes Traditional.
//! 2. **Scores** ([`Scorer`], default [`LexiconScorer`]): each sentence gets a
//!    score in `[0, 1]` per type from weighted lexicon terms (data in
//!    [`DetectionConfig::lexicons`], defaults in `shared/src/detection/lexicons.json`). Terms may
//!    contain `#` (any number: digits, Chinese numerals, English number
//!    words) and `...` (a short gap), so `满#...减#`, `#元`, `#% off` and
//!    `buy one...get one` generalize over prices and discounts. Hooks also get
//!    points for `?`/`!` and a bonus for opening positions; "neutral" terms
//!    (greetings, "subscribe", whisper's stock hallucinations) subtract.
//!    The raw sum is squashed with `1 - exp(-raw)`.
//! 3. **Labels**: a sentence takes the best-scoring type when that score
//!    reaches the type's threshold.
//! 4. **Clips** ([`detect`]): neighbouring sentences of the same type are
//!    merged when the gap is short, overlong clips are split at sentence
//!    boundaries, clip edges are extended into half of the surrounding pause
//!    (capped, never past a neighbour or outside the media), too short clips
//!    are extended or dropped, and each clip gets a confidence, a title and the
//!    transcript text as description.
//! 5. **Evaluation** ([`evaluate`]): a true selling point counts as found when a
//!    predicted clip of the same type overlaps it with temporal IoU >= 0.3.
//!
//! The [`Scorer`] trait is the seam for replacing the lexicon with a learned
//! model later: everything else (splitting, merging, padding) stays.

mod clips;
mod eval;
mod score;
mod split;
#[cfg(test)]
mod tests;
mod text;

use serde::{Deserialize, Serialize};

pub use eval::{evaluate, evaluate_with_iou, temporal_iou, EvalCounts, DEFAULT_EVAL_IOU};
pub use score::LexiconScorer;
pub use shared::detection::{
    DetectionConfig, Lexicon, SellingPointType, ShortClipPolicy, TypeValues,
};
pub use split::{split_sentences, timed_words, TimedWord};
pub use text::to_simplified;

/// One whisper token with its time span in seconds. Its text may be a lossily
/// decoded piece of a character (U+FFFD) or a special token such as `[_BEG_]`;
/// [`split_sentences`] copes with both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// Start time in seconds from the start of the media.
    pub start: f64,
    /// End time in seconds from the start of the media.
    pub end: f64,
    /// Token text as whisper produced it (English tokens carry their leading space).
    pub text: String,
    /// Whisper's probability for the token (unused by the lexicon scorer).
    #[serde(default = "one")]
    pub probability: f32,
}

fn one() -> f32 {
    1.0
}

/// One whisper segment: its time span, its text and (optionally) its tokens.
/// Without tokens, times inside the segment are interpolated by text length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptSegment {
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds.
    pub end: f64,
    /// Segment text.
    pub text: String,
    /// Tokens with timestamps (whisper `token_timestamps`); may be empty.
    #[serde(default)]
    pub tokens: Vec<Token>,
}

/// A whisper transcript: the language code whisper used (`"zh"`, `"en"`, ...)
/// and its segments in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// Language code (`"zh"`, `"en"`, `"zh-CN"`, ...); picks the lexicon.
    pub language: String,
    /// Segments in time order.
    pub segments: Vec<TranscriptSegment>,
}

/// A sentence cut from the transcript: its speech span (first word start to
/// last word end, seconds) and its text (Chinese in Simplified characters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentence {
    /// Start of the first word, seconds.
    pub start: f64,
    /// End of the last word, seconds.
    pub end: f64,
    /// Sentence text, simplified, trimmed.
    pub text: String,
}

/// A sentence with its score per type (in [`SellingPointType::ALL`] order,
/// each in `[0, 1]`) and the label it was given (`None`: no selling point).
/// Kept in the output so a reviewer or a later model can see why a clip exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredSentence {
    /// The sentence.
    pub sentence: Sentence,
    /// Score per type, in [`SellingPointType::ALL`] order.
    pub scores: [(SellingPointType, f64); 4],
    /// Best type whose score reached its threshold, if any.
    pub label: Option<SellingPointType>,
}

impl ScoredSentence {
    /// Returns this sentence's score for `kind` (0 when absent).
    pub fn score(&self, kind: SellingPointType) -> f64 {
        self.scores.iter().find(|(k, _)| *k == kind).map(|(_, s)| *s).unwrap_or(0.0)
    }
}

/// One detected selling point: a clip `[start, end]` (seconds, inside the
/// media) of one type with a confidence in `[0, 1]`, a short title and the
/// clip's transcript text as description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SellingPoint {
    /// Kind of selling point.
    pub kind: SellingPointType,
    /// Clip start, seconds.
    pub start: f64,
    /// Clip end, seconds.
    pub end: f64,
    /// Confidence in `[0, 1]` (mean score of the labelled sentences in the clip).
    pub confidence: f64,
    /// Short human-readable summary: type label plus the first words.
    pub title: String,
    /// Transcript text of the clip (simplified Chinese or English).
    pub description: String,
}

/// Result of [`detect`]: every sentence with its scores and label, and the
/// selling-point clips built from them, in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// All sentences with their scores and labels.
    pub sentences: Vec<ScoredSentence>,
    /// Selling-point clips in time order, never overlapping.
    pub selling_points: Vec<SellingPoint>,
}

/// Scores one sentence for each selling-point type.
///
/// Implemented by [`LexiconScorer`]; a learned model can implement it later
/// and be passed to [`detect`] unchanged.
pub trait Scorer {
    /// Returns a score in `[0, 1]` per type (missing types count as 0) for the
    /// sentence at index `position` of `total` sentences; `language` is the
    /// transcript's normalized language code (`"zh"`, `"en"`, ...).
    fn score(
        &self,
        sentence: &Sentence,
        position: usize,
        total: usize,
        language: &str,
    ) -> Vec<(SellingPointType, f64)>;
}

/// Finds the selling points of a transcript.
///
/// Returns every sentence with its scores and label and the clips built from
/// them (see the module doc for the steps). `media_duration` bounds the clips;
/// when it is not positive the end of the last sentence is used instead.
pub fn detect(
    t: &Transcript,
    media_duration: f64,
    cfg: &DetectionConfig,
    scorer: &dyn Scorer,
) -> Detection {
    let language = text::normalize_language(&t.language);
    let sentences = split_sentences(t, cfg);
    let total = sentences.len();
    let scored: Vec<ScoredSentence> = sentences
        .into_iter()
        .enumerate()
        .map(|(i, sentence)| {
            let raw = scorer.score(&sentence, i, total, &language);
            let mut scores = SellingPointType::ALL.map(|k| (k, 0.0));
            for (k, s) in raw {
                let s = if s.is_finite() { s.clamp(0.0, 1.0) } else { 0.0 };
                scores[k.index()].1 = s;
            }
            let label = pick_label(&scores, cfg);
            ScoredSentence { sentence, scores, label }
        })
        .collect();
    let scored = extend_labels(scored, cfg);
    let selling_points = clips::build_clips(&scored, media_duration, cfg);
    Detection { sentences: scored, selling_points }
}

/// Gives an unlabelled sentence the label of a directly neighbouring sentence
/// (gap within `merge_gap_seconds`) when its own score for that type reaches
/// `continuation_threshold`: selling points often run over several sentences
/// and only the first one carries the keywords.
fn extend_labels(mut scored: Vec<ScoredSentence>, cfg: &DetectionConfig) -> Vec<ScoredSentence> {
    let original: Vec<Option<SellingPointType>> = scored.iter().map(|s| s.label).collect();
    for i in 0..scored.len() {
        if original[i].is_some() {
            continue;
        }
        let mut best: Option<(SellingPointType, f64)> = None;
        let neighbours = [i.checked_sub(1), Some(i + 1).filter(|&j| j < scored.len())];
        for j in neighbours.into_iter().flatten() {
            let Some(kind) = original[j] else { continue };
            let (a, b) = if j < i { (j, i) } else { (i, j) };
            let gap = scored[b].sentence.start - scored[a].sentence.end;
            let s = scored[i].score(kind);
            if gap <= cfg.merge_gap_seconds
                && s >= cfg.continuation_threshold
                && best.is_none_or(|(_, bs)| s > bs)
            {
                best = Some((kind, s));
            }
        }
        if let Some((kind, _)) = best {
            scored[i].label = Some(kind);
        }
    }
    scored
}

/// Best type whose score reaches its threshold and beats the runner-up by the
/// configured margin.
fn pick_label(
    scores: &[(SellingPointType, f64); 4],
    cfg: &DetectionConfig,
) -> Option<SellingPointType> {
    let mut order: Vec<(SellingPointType, f64)> = scores.to_vec();
    order.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    let (best, s) = order[0];
    let runner_up = order[1].1;
    if s >= cfg.thresholds.get(best) && s - runner_up >= cfg.min_margin {
        Some(best)
    } else {
        None
    }
}
