//! Cutting whisper segments into timed sentences.

use super::text::{clean_display, content_units, is_cjk, is_closer, is_comma, is_terminal};
use super::{DetectionConfig, Sentence, Transcript, TranscriptSegment};

/// A cleaned token: text with times, and whether it carries words (not only
/// punctuation / spaces).
#[derive(Debug, Clone)]
struct Unit {
    text: String,
    start: f64,
    end: f64,
    word: bool,
    /// Last unit of its whisper segment.
    seg_last: bool,
    /// The segment's text ends with sentence punctuation.
    seg_terminal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Break {
    /// A hard end: punctuation, segment end, start/end of the transcript.
    Hard,
    /// A pause (or comma + pause) inside a run of speech; may be undone.
    Soft,
}

/// True for whisper control tokens: `[_BEG_]`, `[_TT_123]`, `<|en|>`, ...
fn is_special(text: &str) -> bool {
    let t = text.trim();
    (t.starts_with("[_") && t.ends_with(']')) || (t.starts_with("<|") && t.ends_with("|>"))
}

fn has_word(text: &str) -> bool {
    text.chars().any(|c| c.is_alphanumeric() || is_cjk(c))
}

/// Puts the characters of `seg_text` back into tokens whose text holds
/// U+FFFD (a character split across tokens and decoded lossily).
fn repair_lossy(tokens: &mut [(String, f64, f64)], seg_text: &str) {
    const BAD: char = '\u{FFFD}';
    if !tokens.iter().any(|t| t.0.contains(BAD)) {
        return;
    }
    let seg: Vec<char> = seg_text.chars().collect();
    if seg.is_empty() || seg.contains(&BAD) {
        for t in tokens.iter_mut() {
            t.0 = t.0.replace(BAD, "");
        }
        return;
    }
    let mut out: Vec<String> = vec![String::new(); tokens.len()];
    let mut i = 0usize; // position in seg
    let mut pending: Vec<usize> = Vec::new(); // tokens with unresolved U+FFFD
    for (k, tok) in tokens.iter().enumerate() {
        for c in tok.0.chars() {
            if c == BAD {
                if pending.last() != Some(&k) {
                    pending.push(k);
                }
                continue;
            }
            let found = (i..seg.len().min(i + 8)).find(|&j| seg[j] == c);
            match found {
                Some(j) => {
                    let owner = pending.first().copied().unwrap_or(k);
                    for &sc in &seg[i..j] {
                        out[owner].push(sc);
                    }
                    out[k].push(c);
                    i = j + 1;
                    pending.clear();
                }
                None => out[k].push(c),
            }
        }
    }
    if let Some(&owner) = pending.first() {
        for &sc in &seg[i.min(seg.len())..] {
            if !sc.is_whitespace() || !out[owner].is_empty() {
                out[owner].push(sc);
            }
        }
    }
    for (t, o) in tokens.iter_mut().zip(out) {
        t.0 = o;
    }
}

/// Units of one segment, from its tokens, or interpolated from its text when
/// it has no usable tokens.
fn segment_units(seg: &TranscriptSegment) -> Vec<Unit> {
    let mut toks: Vec<(String, f64, f64)> = seg
        .tokens
        .iter()
        .filter(|t| !is_special(&t.text))
        .map(|t| (t.text.clone(), t.start, t.end))
        .collect();
    repair_lossy(&mut toks, &seg.text);
    toks.retain(|t| !t.0.is_empty());
    let timed = toks.iter().filter(|t| t.1.is_finite() && t.2.is_finite()).count();
    let all_zero = toks.iter().all(|t| t.1 == 0.0 && t.2 == 0.0) && seg.end > 0.0;
    if toks.is_empty() || timed < toks.len() || all_zero {
        toks = interpolate(seg);
    }
    let seg_terminal =
        seg.text.trim_end().trim_end_matches(is_closer).chars().last().is_some_and(is_terminal);
    let n = toks.len();
    toks.into_iter()
        .enumerate()
        .map(|(i, (text, start, end))| Unit {
            word: has_word(&text),
            text,
            start,
            end,
            seg_last: i + 1 == n,
            seg_terminal,
        })
        .collect()
}

/// Pieces of the segment text (CJK characters, Latin words with their
/// leading space, punctuation) with times spread by length.
fn interpolate(seg: &TranscriptSegment) -> Vec<(String, f64, f64)> {
    let mut pieces: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in seg.text.chars() {
        if is_cjk(c) || (!c.is_alphanumeric() && !c.is_whitespace() && c != '\'') {
            if !cur.is_empty() {
                pieces.push(std::mem::take(&mut cur));
            }
            pieces.push(c.to_string());
        } else if c.is_whitespace() {
            if !cur.trim().is_empty() {
                pieces.push(std::mem::take(&mut cur));
            }
            cur = " ".into();
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() {
        pieces.push(cur);
    }
    let weight =
        |p: &String| if has_word(p) { p.trim().chars().count().max(1) as f64 } else { 0.0 };
    let total: f64 = pieces.iter().map(weight).sum();
    let dur = (seg.end - seg.start).max(0.0);
    let mut t = seg.start;
    pieces
        .into_iter()
        .map(|p| {
            let d = if total > 0.0 { dur * weight(&p) / total } else { 0.0 };
            let r = (p, t, t + d);
            t += d;
            r
        })
        .collect()
}

/// One timed piece of a transcript as a person reads it: a CJK character,
/// a Latin word with its leading space, or punctuation; times in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedWord {
    /// Text as shown (Chinese in Simplified characters).
    pub text: String,
    pub start: f64,
    pub end: f64,
    /// Carries letters or characters (not only punctuation).
    pub is_word: bool,
}

/// The transcript's pieces in time order, with whisper's control tokens
/// dropped, split characters repaired, times made monotonic and segments
/// without token times interpolated: the same units sentences are cut
/// from, for subtitles and captions.
pub fn timed_words(t: &Transcript) -> Vec<TimedWord> {
    let mut last_start = f64::NEG_INFINITY;
    let mut words = Vec::new();
    for u in t.segments.iter().flat_map(segment_units) {
        let start = u.start.max(last_start);
        last_start = start;
        let text = super::text::to_simplified(&u.text);
        words.push(TimedWord { text, start, end: u.end.max(start), is_word: u.word });
    }
    words
}

/// Last character of a unit ignoring trailing spaces and closing quotes.
fn last_mark(text: &str) -> Option<char> {
    text.trim_end().trim_end_matches(is_closer).chars().last()
}

fn first_char(text: &str) -> Option<char> {
    text.chars().next()
}

/// Returns the transcript cut into sentences, in time order, with Chinese in
/// Simplified characters.
///
/// A sentence ends at sentence punctuation (`。！？!?.;；`; a `.` between
/// digits or inside a word does not count), at the end of a whisper segment
/// (unless the next one continues in lowercase), after a comma followed by a
/// pause of at least `comma_pause_split_seconds`, and at any pause between
/// words of at least `pause_split_seconds`. Pause-made pieces with fewer than
/// `min_sentence_units` CJK characters / words are glued back; sentences
/// longer than `max_sentence_seconds` are cut at their largest pause. Times
/// come from the tokens (first word start, last word end); segments without
/// tokens get times interpolated by text length.
pub fn split_sentences(t: &Transcript, cfg: &DetectionConfig) -> Vec<Sentence> {
    let mut units: Vec<Unit> = t.segments.iter().flat_map(segment_units).collect();
    // keep times monotonic and well-formed
    let mut last_start = f64::NEG_INFINITY;
    for u in units.iter_mut() {
        if u.start < last_start {
            u.start = last_start;
        }
        if u.end < u.start {
            u.end = u.start;
        }
        last_start = u.start;
    }
    let n = units.len();
    if n == 0 {
        return Vec::new();
    }
    // previous word end / next word start around each boundary
    let mut prev_word_end = vec![None; n];
    let mut acc = None;
    for i in 0..n {
        if units[i].word {
            acc = Some(units[i].end);
        }
        prev_word_end[i] = acc;
    }
    let mut next_word_start = vec![None; n];
    let mut acc = None;
    for i in (0..n).rev() {
        if units[i].word {
            acc = Some(units[i].start);
        }
        next_word_start[i] = acc;
    }
    let gap_after = |i: usize| -> f64 {
        match (prev_word_end[i], next_word_start.get(i + 1).copied().flatten()) {
            (Some(a), Some(b)) => (b - a).max(0.0),
            _ => 0.0,
        }
    };

    // boundary kind after each unit
    let mut breaks: Vec<Option<Break>> = vec![None; n];
    for i in 0..n - 1 {
        let u = &units[i];
        let next = &units[i + 1];
        let mark = last_mark(&u.text);
        let gap = gap_after(i);
        let terminal = match mark {
            Some('.') => {
                // "19.99", "e.g": no break when the next token glues on
                !first_char(&next.text).is_some_and(|c| c.is_ascii_alphanumeric())
            }
            Some(c) => is_terminal(c),
            None => false,
        };
        if terminal {
            breaks[i] = Some(Break::Hard);
            continue;
        }
        if u.seg_last {
            let continues = !u.seg_terminal
                && next.text.starts_with(' ')
                && next.text.trim_start().starts_with(|c: char| c.is_ascii_lowercase())
                && gap < cfg.pause_split_seconds;
            if !continues {
                breaks[i] = Some(Break::Hard);
                continue;
            }
        }
        if gap >= cfg.pause_split_seconds
            || (mark.is_some_and(is_comma) && gap >= cfg.comma_pause_split_seconds)
        {
            breaks[i] = Some(Break::Soft);
        }
    }

    // pieces: (first unit, last unit, kind of break before, kind of break after)
    let mut pieces: Vec<(usize, usize, Break, Break)> = Vec::new();
    let mut a = 0;
    let mut before = Break::Hard;
    breaks[n - 1] = Some(Break::Hard);
    for (i, &after) in breaks.iter().enumerate() {
        if let Some(k) = after {
            pieces.push((a, i, before, k));
            a = i + 1;
            before = k;
        }
    }
    let piece_units = |p: &(usize, usize, Break, Break)| -> usize {
        let text: String = units[p.0..=p.1].iter().map(|u| u.text.as_str()).collect();
        content_units(&text)
    };
    // glue too-short pieces across soft boundaries
    let mut idx = 0;
    while idx < pieces.len() {
        if piece_units(&pieces[idx]) >= cfg.min_sentence_units {
            idx += 1;
            continue;
        }
        let left_soft = pieces[idx].2 == Break::Soft && idx > 0;
        let right_soft = pieces[idx].3 == Break::Soft && idx + 1 < pieces.len();
        let go_left = match (left_soft, right_soft) {
            (true, true) => gap_after(pieces[idx - 1].1) <= gap_after(pieces[idx].1),
            (l, _) => l,
        };
        if go_left {
            let cur = pieces.remove(idx);
            let prev = &mut pieces[idx - 1];
            prev.1 = cur.1;
            prev.3 = cur.3;
            idx -= 1; // the grown piece is checked again
        } else if right_soft {
            let next = pieces.remove(idx + 1);
            let cur = &mut pieces[idx];
            cur.1 = next.1;
            cur.3 = next.3;
        } else {
            idx += 1;
        }
    }

    // cut overlong pieces at their largest pause
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut stack: Vec<(usize, usize)> = pieces.iter().rev().map(|p| (p.0, p.1)).collect();
    while let Some((a, b)) = stack.pop() {
        let span = span_of(&units[a..=b]);
        let too_long = span.is_some_and(|(s, e)| e - s > cfg.max_sentence_seconds);
        let mut best: Option<(f64, usize)> = None;
        if too_long {
            for i in a..b {
                let left: String = units[a..=i].iter().map(|u| u.text.as_str()).collect();
                let right: String = units[i + 1..=b].iter().map(|u| u.text.as_str()).collect();
                if content_units(&left) < cfg.min_sentence_units
                    || content_units(&right) < cfg.min_sentence_units
                {
                    continue;
                }
                let bonus = if last_mark(&units[i].text).is_some_and(is_comma) { 0.5 } else { 0.0 };
                let score = gap_after(i) + bonus;
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, i));
                }
            }
        }
        match best {
            Some((_, i)) => {
                stack.push((i + 1, b));
                stack.push((a, i));
            }
            None => ranges.push((a, b)),
        }
    }

    ranges
        .into_iter()
        .filter_map(|(a, b)| {
            let (start, end) = span_of(&units[a..=b])?;
            if !start.is_finite() || !end.is_finite() {
                return None;
            }
            let raw: String = units[a..=b].iter().map(|u| u.text.as_str()).collect();
            let text = clean_display(&raw);
            if !has_word(&text) {
                return None;
            }
            Some(Sentence { start, end, text })
        })
        .collect()
}

/// First word start and last word end of some units.
fn span_of(units: &[Unit]) -> Option<(f64, f64)> {
    let words: Vec<&Unit> = units.iter().filter(|u| u.word).collect();
    let start = words.first()?.start;
    let end = words.iter().map(|u| u.end).fold(start, f64::max);
    Some((start, end))
}
