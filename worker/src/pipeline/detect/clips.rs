//! From labelled sentences to clips: merge, split, pad, enforce durations.

use super::text::{has_cjk, is_closer, is_comma, is_terminal};
use super::{DetectionConfig, ScoredSentence, SellingPoint, SellingPointType, ShortClipPolicy};

/// A clip under construction: a run of sentences `first..=last` and its times.
#[derive(Debug, Clone)]
struct Clip {
    kind: SellingPointType,
    first: usize,
    last: usize,
    start: f64,
    end: f64,
    /// The end was cut inside a sentence (overlong sentence): no end padding.
    trimmed: bool,
}

/// Builds the selling-point clips from labelled sentences (see the module doc).
pub(crate) fn build_clips(
    scored: &[ScoredSentence],
    media_duration: f64,
    cfg: &DetectionConfig,
) -> Vec<SellingPoint> {
    let last_end = scored.iter().map(|s| s.sentence.end).fold(0.0, f64::max);
    let media =
        if media_duration.is_finite() && media_duration > 0.0 { media_duration } else { last_end };
    let s = |i: usize| &scored[i].sentence;

    // 1. merge neighbouring sentences of the same type
    let mut groups: Vec<(SellingPointType, usize, usize)> = Vec::new();
    for (i, sc) in scored.iter().enumerate() {
        let Some(kind) = sc.label else { continue };
        if let Some(g) = groups.last_mut() {
            if g.0 == kind && s(i).start - s(g.2).end <= cfg.merge_gap_seconds {
                g.2 = i;
                continue;
            }
        }
        groups.push((kind, i, i));
    }

    // 2. split overlong groups at sentence boundaries, trim overlong sentences
    let mut clips: Vec<Clip> = Vec::new();
    for (kind, first, last) in groups {
        let labelled: Vec<usize> =
            (first..=last).filter(|&i| scored[i].label == Some(kind)).collect();
        let mut a = labelled[0];
        let mut b = a;
        for &j in &labelled[1..] {
            if s(j).end - s(a).start <= cfg.max_clip_seconds {
                b = j;
            } else {
                clips.push(make_clip(kind, a, b, scored, cfg));
                a = j;
                b = j;
            }
        }
        clips.push(make_clip(kind, a, b, scored, cfg));
    }

    // 3. extend into half of the surrounding pauses, capped, inside the media
    let mut padded: Vec<Clip> = Vec::new();
    for mut c in clips {
        let before = match c.first.checked_sub(1) {
            Some(p) => (c.start - s(p).end) / 2.0,
            None => c.start,
        };
        let after = if c.trimmed {
            0.0
        } else {
            match scored.get(c.last + 1) {
                Some(n) => (n.sentence.start - c.end) / 2.0,
                None => media - c.end,
            }
        };
        c.start -= before.clamp(0.0, cfg.max_pad_seconds);
        c.end += after.clamp(0.0, cfg.max_pad_seconds);
        c.start = c.start.max(0.0);
        c.end = c.end.min(media);
        if c.start >= media || c.end <= c.start {
            continue;
        }
        padded.push(c);
    }

    // 4. resolve overlaps left by odd timestamps
    for i in 1..padded.len() {
        if padded[i].start < padded[i - 1].end {
            let mid = (padded[i].start + padded[i - 1].end) / 2.0;
            padded[i - 1].end = mid.max(padded[i - 1].start);
            padded[i].start = mid.min(padded[i].end);
        }
    }

    // 5. too short clips: extend into free time or drop
    let mut kept: Vec<Clip> = Vec::new();
    for i in 0..padded.len() {
        let mut c = padded[i].clone();
        let dur = c.end - c.start;
        if dur + 1e-9 < cfg.min_clip_seconds {
            if cfg.short_clip_policy == ShortClipPolicy::Drop {
                continue;
            }
            let lo = kept.last().map(|k| k.end).unwrap_or(0.0);
            let hi = padded.get(i + 1).map(|n| n.start).unwrap_or(media);
            let need = cfg.min_clip_seconds - dur;
            let room_before = (c.start - lo).max(0.0);
            let room_after = (hi - c.end).max(0.0);
            let mut grow_before = (need / 2.0).min(room_before);
            let grow_after = (need - grow_before).min(room_after);
            grow_before = (need - grow_after).min(room_before);
            c.start -= grow_before;
            c.end += grow_after;
            if c.end - c.start + 1e-9 < cfg.min_clip_seconds {
                continue;
            }
        }
        if c.end - c.start > 0.0 {
            kept.push(c);
        }
    }

    kept.into_iter().map(|c| finish(c, scored, cfg)).collect()
}

fn make_clip(
    kind: SellingPointType,
    a: usize,
    b: usize,
    scored: &[ScoredSentence],
    cfg: &DetectionConfig,
) -> Clip {
    let start = scored[a].sentence.start;
    let mut end = scored[b].sentence.end;
    let mut trimmed = false;
    if end - start > cfg.max_clip_seconds {
        end = start + cfg.max_clip_seconds;
        trimmed = true;
    }
    Clip { kind, first: a, last: b, start, end, trimmed }
}

fn finish(c: Clip, scored: &[ScoredSentence], cfg: &DetectionConfig) -> SellingPoint {
    let members = &scored[c.first..=c.last];
    let labelled: Vec<f64> =
        members.iter().filter(|m| m.label == Some(c.kind)).map(|m| m.score(c.kind)).collect();
    let confidence = if labelled.is_empty() {
        0.0
    } else {
        labelled.iter().sum::<f64>() / labelled.len() as f64
    };
    let texts: Vec<&str> = members.iter().map(|m| m.sentence.text.as_str()).collect();
    let cjk = texts.iter().any(|t| has_cjk(t));
    let description = if cjk { texts.concat() } else { texts.join(" ") };
    let lead = members
        .iter()
        .find(|m| m.label == Some(c.kind))
        .map(|m| m.sentence.text.as_str())
        .unwrap_or("");
    let title = make_title(c.kind, lead, cjk, cfg);
    SellingPoint {
        kind: c.kind,
        start: round_ms(c.start),
        end: round_ms(c.end),
        confidence: confidence.clamp(0.0, 1.0),
        title,
        description,
    }
}

fn round_ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

/// `<type label>｜<first words>` (zh) or `<Type>: <first words>` (en), cut to
/// the configured length with an ellipsis.
pub(crate) fn make_title(
    kind: SellingPointType,
    lead: &str,
    cjk: bool,
    cfg: &DetectionConfig,
) -> String {
    // keep ? and ! (they carry the hook), drop other trailing punctuation
    let soft_end = |c: char| {
        (is_terminal(c) && !matches!(c, '?' | '？' | '!' | '！')) || is_comma(c) || is_closer(c)
    };
    let snippet = lead.trim().trim_end_matches(soft_end).trim();
    let (label, sep, max) = if cjk {
        (kind.display_label(true), "｜", cfg.title_max_chars_cjk)
    } else {
        (kind.display_label(false), ": ", cfg.title_max_chars_latin)
    };
    let head = format!("{label}{sep}");
    let full = format!("{head}{snippet}");
    if snippet.is_empty() {
        return label.to_string();
    }
    if full.chars().count() <= max {
        return full;
    }
    let budget = max.saturating_sub(head.chars().count() + 1);
    let mut cut: String = snippet.chars().take(budget).collect();
    if !cjk {
        // end on a word boundary when one is near
        if let Some(sp) = cut.rfind(' ') {
            if sp > cut.len() / 2 {
                cut.truncate(sp);
            }
        }
    }
    let cut = cut.trim_end_matches(|c: char| c.is_whitespace() || is_comma(c) || is_terminal(c));
    format!("{head}{cut}…")
}
