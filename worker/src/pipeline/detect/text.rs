//! Text helpers: Traditional -> Simplified conversion, language codes,
//! character classes and normalization for lexicon matching.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Traditional -> Simplified single-character table from OpenCC.
const TS_CHARS: &str = include_str!("ts_chars.txt");

fn ts_table() -> &'static HashMap<char, char> {
    static TABLE: OnceLock<HashMap<char, char>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut m = HashMap::with_capacity(4200);
        for line in TS_CHARS.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut it = line.chars();
            if let (Some(t), Some(s), None) = (it.next(), it.next(), it.next()) {
                m.insert(t, s);
            }
        }
        m
    })
}

/// Returns `text` with Traditional Chinese characters replaced by their
/// Simplified forms (OpenCC's character table, first candidate), everything
/// else unchanged. Whisper base often writes Traditional for Mandarin
/// (姐妹們 -> 姐妹们), and lexicons and output are in Simplified.
pub fn to_simplified(text: &str) -> String {
    let table = ts_table();
    text.chars().map(|c| *table.get(&c).unwrap_or(&c)).collect()
}

/// Lowercase ISO-639-1-like code for a whisper language string
/// (`"zh-CN"` -> `"zh"`, `"Chinese"` -> `"zh"`, `"English"` -> `"en"`).
pub(crate) fn normalize_language(lang: &str) -> String {
    let l = lang.trim().to_ascii_lowercase();
    let base = l.split(['-', '_']).next().unwrap_or("").to_string();
    match base.as_str() {
        "chinese" | "mandarin" | "cmn" | "zho" | "chi" => "zh".into(),
        "english" | "eng" => "en".into(),
        _ => base,
    }
}

/// CJK ideographs (and the CJK symbols block is excluded).
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

pub(crate) fn has_cjk(text: &str) -> bool {
    text.chars().any(is_cjk)
}

/// Content size: CJK characters plus Latin/digit words.
pub(crate) fn content_units(text: &str) -> usize {
    let mut n = 0;
    let mut in_word = false;
    for c in text.chars() {
        if is_cjk(c) {
            n += 1;
            in_word = false;
        } else if c.is_alphanumeric() {
            if !in_word {
                n += 1;
            }
            in_word = true;
        } else if c != '\'' {
            in_word = false;
        }
    }
    n
}

/// Sentence-ending punctuation.
pub(crate) fn is_terminal(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '!' | '?' | '.' | ';' | '；' | '｡')
}

/// Clause punctuation where a long pause may end a sentence.
pub(crate) fn is_comma(c: char) -> bool {
    matches!(c, '，' | ',' | '、' | ':' | '：' | '～' | '~' | '…')
}

/// Closing quotes / brackets that may follow sentence punctuation.
pub(crate) fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | '”' | '’' | '」' | '』' | ')' | '）' | ']' | '】' | '》')
}

pub(crate) fn is_latin_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Text for display: simplified, quote brackets and `[...]` annotations
/// removed, ASCII punctuation after CJK turned full-width, spaces tidied.
pub(crate) fn clean_display(text: &str) -> String {
    let simp = to_simplified(text);
    // drop bracketed annotations like [Music] / [音乐] and corner quotes
    let mut out = String::with_capacity(simp.len());
    let mut depth = 0usize;
    for c in simp.chars() {
        match c {
            '[' | '【' => depth += 1,
            ']' | '】' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            '「' | '」' | '『' | '』' => {}
            _ => out.push(c),
        }
    }
    let chars: Vec<char> = out.chars().collect();
    let mut res = String::with_capacity(out.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev_cjk = i > 0 && is_cjk(chars[i - 1]);
        let next_is_digit = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        let mapped = if prev_cjk {
            match c {
                ',' => '，',
                '!' => '！',
                '?' => '？',
                ';' => '；',
                ':' if !next_is_digit => '：',
                '.' if !next_is_digit => '。',
                _ => c,
            }
        } else {
            c
        };
        // no spaces between CJK characters / full-width punctuation
        if mapped == ' ' {
            let prev = res.chars().last();
            let next = chars.get(i + 1).copied();
            let wide = |c: Option<char>| c.is_some_and(|c| is_cjk(c) || is_fullwidth_punct(c));
            if wide(prev) && wide(next) || prev == Some(' ') || prev.is_none() {
                continue;
            }
        }
        res.push(mapped);
    }
    res.trim().to_string()
}

fn is_fullwidth_punct(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x303F | 0xFF00..=0xFF65)
}

/// Normalization shared by lexicon terms and sentences: simplified,
/// lowercase, full-width ASCII to ASCII, curly quotes to `'`, hyphens and
/// runs of whitespace to one space.
pub(crate) fn normalize_for_match(text: &str) -> Vec<char> {
    let simp = to_simplified(text);
    let mut out: Vec<char> = Vec::with_capacity(simp.len() + 2);
    for c in simp.chars() {
        let c = match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        };
        let c = match c {
            '’' | '‘' | '`' | '´' => '\'',
            '-' | '‐' | '–' | '—' | '_' | '\t' | '\n' | '\r' => ' ',
            '¥' => '￥',
            _ => c,
        };
        for l in c.to_lowercase() {
            if l == ' ' && (out.last() == Some(&' ') || out.is_empty()) {
                continue;
            }
            out.push(l);
        }
    }
    while out.last() == Some(&' ') {
        out.pop();
    }
    out
}

/// Characters of Chinese numerals.
pub(crate) fn is_cn_numeral(c: char) -> bool {
    matches!(
        c,
        '零' | '〇'
            | '一'
            | '二'
            | '两'
            | '三'
            | '四'
            | '五'
            | '六'
            | '七'
            | '八'
            | '九'
            | '十'
            | '百'
            | '千'
            | '万'
            | '亿'
            | '壹'
            | '贰'
            | '叁'
            | '肆'
            | '伍'
            | '陆'
            | '柒'
            | '捌'
            | '玖'
            | '拾'
            | '佰'
            | '仟'
    )
}

const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fourty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "million",
    "half",
    "a",
];

/// Possible end positions of a number starting at `p` in `text`, longest
/// first. Numbers are ASCII digit runs (with inner `.`/`,` between digits),
/// runs of Chinese numerals (with `点` between them), or English number words
/// joined by spaces / "and" (a leading "a"/"half" alone is not a number).
pub(crate) fn number_ends(text: &[char], p: usize) -> Vec<usize> {
    let n = text.len();
    if p >= n {
        return Vec::new();
    }
    let c = text[p];
    if c.is_ascii_digit() {
        if p > 0 && text[p - 1].is_ascii_digit() {
            return Vec::new();
        }
        let mut e = p;
        while e < n {
            let inner_sep =
                matches!(text[e], '.' | ',') && e > p && e + 1 < n && text[e + 1].is_ascii_digit();
            if !(text[e].is_ascii_digit() || inner_sep) {
                break;
            }
            e += 1;
        }
        return vec![e];
    }
    if is_cn_numeral(c) {
        let mut e = p;
        while e < n
            && (is_cn_numeral(text[e])
                || (text[e] == '点' && e > p && e + 1 < n && is_cn_numeral(text[e + 1])))
        {
            e += 1;
        }
        return (p + 1..=e).rev().collect();
    }
    if c.is_ascii_alphabetic() {
        if p > 0 && text[p - 1].is_alphanumeric() {
            return Vec::new();
        }
        let mut ends = Vec::new();
        let mut pos = p;
        let mut real = false; // at least one word other than "a"/"half"
        loop {
            // read a word
            let mut e = pos;
            while e < n && text[e].is_ascii_alphabetic() {
                e += 1;
            }
            if e == pos {
                break;
            }
            let w: String = text[pos..e].iter().collect();
            if w == "and" && real {
                // "one hundred and five": only continue if a number word follows
                if e < n && text[e] == ' ' {
                    pos = e + 1;
                    continue;
                }
                break;
            }
            if !NUMBER_WORDS.contains(&w.as_str()) {
                break;
            }
            if w != "a" && w != "half" {
                real = true;
            }
            if real {
                ends.push(e);
            }
            if e < n && text[e] == ' ' {
                pos = e + 1;
            } else {
                break;
            }
        }
        ends.reverse();
        return ends;
    }
    Vec::new()
}
