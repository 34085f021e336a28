//! The lexicon scorer: weighted term matching with number and gap patterns.

use std::collections::BTreeMap;

use super::text::{has_cjk, is_latin_alnum, normalize_for_match, number_ends};
use super::{DetectionConfig, Lexicon, Scorer, SellingPointType, Sentence};

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(Vec<char>),
    Num,
    Gap,
}

/// One compiled lexicon term.
#[derive(Debug, Clone)]
struct Term {
    pieces: Vec<Piece>,
    weight: f64,
    /// Must start / end on a Latin word boundary.
    bound_start: bool,
    bound_end: bool,
}

impl Term {
    fn compile(term: &str, weight: f64) -> Option<Term> {
        let mut norm = normalize_for_match(term);
        let open_end = norm.last() == Some(&'*');
        if open_end {
            norm.pop();
            while norm.last() == Some(&' ') {
                norm.pop();
            }
        }
        let mut pieces: Vec<Piece> = Vec::new();
        let mut lit: Vec<char> = Vec::new();
        let mut i = 0;
        let flush = |lit: &mut Vec<char>, pieces: &mut Vec<Piece>| {
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(lit)));
            }
        };
        while i < norm.len() {
            let c = norm[i];
            if c == '#' {
                flush(&mut lit, &mut pieces);
                pieces.push(Piece::Num);
                i += 1;
            } else if c == '…'
                || (c == '.' && norm.get(i + 1) == Some(&'.') && norm.get(i + 2) == Some(&'.'))
            {
                // a gap swallows the spaces around it
                while lit.last() == Some(&' ') {
                    lit.pop();
                }
                flush(&mut lit, &mut pieces);
                pieces.push(Piece::Gap);
                i += if c == '…' { 1 } else { 3 };
                while norm.get(i) == Some(&' ') {
                    i += 1;
                }
            } else {
                lit.push(c);
                i += 1;
            }
        }
        flush(&mut lit, &mut pieces);
        if pieces.is_empty() || pieces.iter().all(|p| *p == Piece::Gap) {
            return None;
        }
        let bound_start = match pieces.first() {
            Some(Piece::Lit(l)) => l.first().is_some_and(|c| is_latin_alnum(*c)),
            _ => false,
        };
        let bound_end = !open_end
            && match pieces.last() {
                Some(Piece::Lit(l)) => l.last().is_some_and(|c| is_latin_alnum(*c)),
                _ => false,
            };
        Some(Term { pieces, weight, bound_start, bound_end })
    }

    fn matches(&self, text: &[char], gap_max: usize) -> bool {
        (0..text.len()).any(|p| {
            if self.bound_start && p > 0 && is_latin_alnum(text[p - 1]) {
                return false;
            }
            self.match_at(text, 0, p, gap_max)
        })
    }

    fn match_at(&self, text: &[char], k: usize, p: usize, gap_max: usize) -> bool {
        if k == self.pieces.len() {
            if self.bound_end && p < text.len() && is_latin_alnum(text[p]) {
                return false;
            }
            return true;
        }
        match &self.pieces[k] {
            Piece::Lit(l) => {
                p + l.len() <= text.len()
                    && text[p..p + l.len()] == l[..]
                    && self.match_at(text, k + 1, p + l.len(), gap_max)
            }
            Piece::Num => {
                number_ends(text, p).into_iter().any(|e| self.match_at(text, k + 1, e, gap_max))
            }
            Piece::Gap => (0..=gap_max)
                .take_while(|g| p + g <= text.len())
                .any(|g| self.match_at(text, k + 1, p + g, gap_max)),
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledLexicon {
    types: [Vec<Term>; 4],
    neutral: Vec<Term>,
    gap_max: usize,
}

fn compile_map(map: &BTreeMap<String, f64>) -> Vec<Term> {
    map.iter()
        .filter(|(_, w)| w.is_finite() && **w != 0.0)
        .filter_map(|(t, w)| Term::compile(t, *w))
        .collect()
}

impl CompiledLexicon {
    fn new(lex: &Lexicon) -> Self {
        CompiledLexicon {
            types: SellingPointType::ALL.map(|k| compile_map(lex.terms(k))),
            neutral: compile_map(&lex.neutral),
            gap_max: lex.gap_max_chars,
        }
    }
}

fn is_cjk_language(lang: &str) -> bool {
    matches!(lang, "zh" | "yue" | "ja" | "wuu")
}

/// Scores sentences with the weighted lexicons of a [`DetectionConfig`].
///
/// Per type, the weights of all matching terms are added (each term once),
/// hook gets points for `?` / `!` and an opening-position bonus (and is
/// damped later in the video), matching neutral terms are subtracted, and the
/// sum `r >= 0` becomes the score `1 - exp(-r)` in `[0, 1)`.
/// The lexicon is the transcript language's when the sentence's script fits
/// it, else `zh` for sentences with CJK characters and `en` for the rest.
#[derive(Debug, Clone)]
pub struct LexiconScorer {
    lexicons: BTreeMap<String, CompiledLexicon>,
    question_weight: f64,
    exclamation_weight: f64,
    hook_position_bonus: f64,
    hook_early_sentences: usize,
    hook_window_seconds: f64,
    hook_late_factor: f64,
}

impl LexiconScorer {
    /// Returns a scorer with the config's lexicons compiled (terms with zero
    /// or non-finite weight are skipped) and its hook settings.
    pub fn new(cfg: &DetectionConfig) -> Self {
        LexiconScorer {
            lexicons: cfg
                .lexicons
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), CompiledLexicon::new(v)))
                .collect(),
            question_weight: cfg.question_weight,
            exclamation_weight: cfg.exclamation_weight,
            hook_position_bonus: cfg.hook_position_bonus,
            hook_early_sentences: cfg.hook_early_sentences,
            hook_window_seconds: cfg.hook_window_seconds,
            hook_late_factor: cfg.hook_late_factor,
        }
    }

    fn lexicon_for(&self, language: &str, text: &str) -> Option<&CompiledLexicon> {
        let cjk = has_cjk(text);
        if let Some(l) = self.lexicons.get(language) {
            if cjk == is_cjk_language(language) {
                return Some(l);
            }
        }
        self.lexicons.get(if cjk { "zh" } else { "en" })
    }

    /// Returns the raw (unsquashed) evidence per type, for tests and tuning.
    fn raw(&self, sentence: &Sentence, position: usize, language: &str) -> [f64; 4] {
        let text = normalize_for_match(&sentence.text);
        let Some(lex) = self.lexicon_for(language, &sentence.text) else {
            return [0.0; 4];
        };
        let mut raw = [0.0f64; 4];
        for (i, terms) in lex.types.iter().enumerate() {
            raw[i] = terms.iter().filter(|t| t.matches(&text, lex.gap_max)).map(|t| t.weight).sum();
        }
        let hook = SellingPointType::Hook.index();
        if text.contains(&'?') {
            raw[hook] += self.question_weight;
        }
        if text.contains(&'!') {
            raw[hook] += self.exclamation_weight;
        }
        let early =
            position < self.hook_early_sentences && sentence.start < self.hook_window_seconds;
        if early {
            let frac = 1.0 - position as f64 / self.hook_early_sentences as f64;
            raw[hook] += self.hook_position_bonus * frac;
        } else {
            raw[hook] *= self.hook_late_factor;
        }
        let neutral: f64 =
            lex.neutral.iter().filter(|t| t.matches(&text, lex.gap_max)).map(|t| t.weight).sum();
        for r in raw.iter_mut() {
            *r = (*r - neutral).max(0.0);
        }
        raw
    }
}

impl Scorer for LexiconScorer {
    fn score(
        &self,
        sentence: &Sentence,
        position: usize,
        _total: usize,
        language: &str,
    ) -> Vec<(SellingPointType, f64)> {
        let raw = self.raw(sentence, position, language);
        SellingPointType::ALL.iter().map(|k| (*k, 1.0 - (-raw[k.index()]).exp())).collect()
    }
}

#[cfg(test)]
pub(crate) fn term_matches(term: &str, text: &str, gap_max: usize) -> bool {
    Term::compile(term, 1.0)
        .map(|t| t.matches(&normalize_for_match(text), gap_max))
        .unwrap_or(false)
}
