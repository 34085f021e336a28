//! Unit tests and the fixture F1 check.
//!
//! (Long on purpose: one scenario per test function.)

use serde::Deserialize;
use serde_json::json;

use super::clips::build_clips;
use super::score::term_matches;
use super::*;

/// Fixture transcripts, relative to the `worker` crate.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/transcripts");

fn tok(start: f64, end: f64, text: &str) -> Token {
    Token { start, end, text: text.to_string(), probability: 0.9 }
}

fn seg(tokens: Vec<Token>) -> TranscriptSegment {
    let text: String = tokens
        .iter()
        .filter(|t| !t.text.starts_with("[_") && !t.text.starts_with("<|"))
        .map(|t| t.text.as_str())
        .collect();
    TranscriptSegment {
        start: tokens.first().map(|t| t.start).unwrap_or(0.0),
        end: tokens.last().map(|t| t.end).unwrap_or(0.0),
        text,
        tokens,
    }
}

/// One token per character, `step` seconds each, starting at `t0`.
fn chars_tokens(t0: f64, step: f64, text: &str) -> Vec<Token> {
    text.chars()
        .enumerate()
        .map(|(i, c)| tok(t0 + i as f64 * step, t0 + (i + 1) as f64 * step, &c.to_string()))
        .collect()
}

fn transcript(lang: &str, segments: Vec<TranscriptSegment>) -> Transcript {
    Transcript { language: lang.to_string(), segments }
}

#[test]
fn to_simplified_converts_traditional() {
    assert_eq!(
        to_simplified("姐妹們,這個空氣炸鍋我回購了三次真的不彩雷"),
        "姐妹们,这个空气炸锅我回购了三次真的不彩雷"
    );
    assert_eq!(to_simplified("頭髮蓬鬆，第二瓶半價"), "头发蓬松，第二瓶半价");
    assert_eq!(to_simplified("Stop scrolling! 40% off"), "Stop scrolling! 40% off");
    assert_eq!(to_simplified("已经是简体"), "已经是简体");
}

#[test]
fn splits_at_punctuation_with_token_times_and_drops_special_tokens() {
    let mut tokens = vec![tok(0.0, 0.0, "[_BEG_]")];
    tokens.extend(chars_tokens(0.3, 0.2, "姐妹們"));
    tokens.push(tok(0.9, 1.0, "，"));
    tokens.extend(chars_tokens(1.0, 0.2, "這個鍋"));
    tokens.push(tok(1.6, 1.9, "。"));
    tokens.extend(chars_tokens(1.9, 0.2, "真的好用"));
    tokens.push(tok(2.7, 2.7, "！"));
    tokens.push(tok(2.8, 2.8, "<|endoftext|>"));
    tokens.push(tok(2.8, 2.8, "[_TT_140]"));
    let t = transcript("zh", vec![seg(tokens)]);
    let s = split_sentences(&t, &DetectionConfig::default());
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0].text, "姐妹们，这个锅。");
    assert!((s[0].start - 0.3).abs() < 1e-9 && (s[0].end - 1.6).abs() < 1e-9);
    assert_eq!(s[1].text, "真的好用！");
    assert!((s[1].start - 1.9).abs() < 1e-9 && (s[1].end - 2.7).abs() < 1e-9);
}

#[test]
fn splits_english_at_periods_but_not_inside_numbers() {
    let tokens = vec![
        tok(0.0, 0.3, " It"),
        tok(0.3, 0.6, " costs"),
        tok(0.6, 0.8, " $"),
        tok(0.8, 1.0, "19"),
        tok(1.0, 1.05, "."),
        tok(1.05, 1.3, "99"),
        tok(1.3, 1.35, "."),
        tok(1.5, 1.8, " Buy"),
        tok(1.8, 2.1, " now"),
        tok(2.1, 2.2, "!"),
    ];
    let s = split_sentences(&transcript("en", vec![seg(tokens)]), &DetectionConfig::default());
    let texts: Vec<&str> = s.iter().map(|x| x.text.as_str()).collect();
    assert_eq!(texts, vec!["It costs $19.99.", "Buy now!"]);
}

#[test]
fn splits_at_long_pauses_and_glues_short_fragments() {
    let cfg = DetectionConfig::default();
    // two clauses without punctuation, 1.0 s apart
    let mut tokens = chars_tokens(0.0, 0.2, "这个锅真的好用");
    tokens.extend(chars_tokens(2.4, 0.2, "今晚下单直降八十元"));
    let s = split_sentences(&transcript("zh", vec![seg(tokens)]), &cfg);
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[0].text, "这个锅真的好用");
    assert!((s[1].start - 2.4).abs() < 1e-9);
    // a 2-character fragment after a pause is glued back
    let mut tokens = chars_tokens(0.0, 0.2, "这个锅真的好用");
    tokens.extend(chars_tokens(2.4, 0.2, "对吧"));
    let s = split_sentences(&transcript("zh", vec![seg(tokens)]), &cfg);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].text, "这个锅真的好用对吧");
    // a comma followed by a long-enough pause splits, a short one does not
    let mut tokens = chars_tokens(0.0, 0.2, "鞋面是透气网布");
    tokens.push(tok(1.4, 1.4, "，"));
    tokens.extend(chars_tokens(1.9, 0.2, "跑起来很轻松"));
    assert_eq!(split_sentences(&transcript("zh", vec![seg(tokens)]), &cfg).len(), 2);
    let mut tokens = chars_tokens(0.0, 0.2, "鞋面是透气网布");
    tokens.push(tok(1.4, 1.4, "，"));
    tokens.extend(chars_tokens(1.5, 0.2, "跑起来很轻松"));
    assert_eq!(split_sentences(&transcript("zh", vec![seg(tokens)]), &cfg).len(), 1);
}

#[test]
fn segment_boundaries_split_and_overlong_sentences_are_cut() {
    let cfg = DetectionConfig::default();
    let t = transcript(
        "zh",
        vec![
            seg(chars_tokens(0.0, 0.2, "第一句话没有标点")),
            seg(chars_tokens(1.7, 0.2, "第二句话也没有")),
        ],
    );
    assert_eq!(split_sentences(&t, &cfg).len(), 2);
    // 20 s of speech without punctuation, largest pause in the middle
    let mut tokens = chars_tokens(0.0, 0.5, "一二三四五六七八九十一二三四五六七八");
    tokens.extend(chars_tokens(9.5, 0.5, "甲乙丙丁戊己庚辛壬癸甲乙丙丁戊己庚辛壬癸"));
    let cfg2 = DetectionConfig { pause_split_seconds: 5.0, ..DetectionConfig::default() };
    let s = split_sentences(&transcript("zh", vec![seg(tokens)]), &cfg2);
    assert_eq!(s.len(), 2, "{s:?}");
    assert!((s[1].start - 9.5).abs() < 1e-9);
}

#[test]
fn lossy_token_text_is_repaired_from_segment_text() {
    // "锅" split over two byte-level tokens, each decoded to U+FFFD
    let tokens = vec![
        tok(0.0, 0.2, "空"),
        tok(0.2, 0.4, "气"),
        tok(0.4, 0.6, "炸"),
        tok(0.6, 0.7, "\u{FFFD}"),
        tok(0.7, 0.8, "\u{FFFD}"),
        tok(0.8, 1.0, "好"),
        tok(1.0, 1.2, "用"),
        tok(1.2, 1.3, "。"),
    ];
    let mut s = seg(tokens);
    s.text = "空气炸锅好用。".into();
    let out = split_sentences(&transcript("zh", vec![s]), &DetectionConfig::default());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].text, "空气炸锅好用。");
}

#[test]
fn segments_without_tokens_get_interpolated_times() {
    let t = transcript(
        "en",
        vec![TranscriptSegment {
            start: 10.0,
            end: 14.0,
            text: " Stop scrolling! This blender is forty percent off today.".into(),
            tokens: vec![],
        }],
    );
    let s = split_sentences(&t, &DetectionConfig::default());
    assert_eq!(s.len(), 2, "{s:?}");
    assert!((s[0].start - 10.0).abs() < 1e-9);
    assert!(s[0].end < s[1].start + 1e-9 && s[1].end <= 14.0 + 1e-9);
}

#[test]
fn lexicon_terms_support_numbers_gaps_and_word_boundaries() {
    assert!(term_matches("满#...减#", "满200再减30", 6));
    assert!(term_matches("#元", "今晚直降八十元", 6));
    assert!(term_matches("前#名", "前一百名加送耳机套", 6));
    assert!(term_matches("#% off", "It is 40% off today", 24));
    assert!(term_matches("# percent off", "it is forty five percent off", 24));
    assert!(term_matches("$#", "down to $89 now", 24));
    assert!(term_matches("crush*", "It crushes ice", 24));
    assert!(term_matches("buy one...get one", "Buy one, get one free!", 24));
    assert!(!term_matches("sale", "our salesman", 24));
    assert!(!term_matches("#元", "一定要", 6));
    assert!(term_matches("半价", "第二瓶半價", 6), "matching sees simplified text");
}

#[test]
fn lexicon_scorer_labels_typical_sentences() {
    let cfg = DetectionConfig::default();
    let scorer = LexiconScorer::new(&cfg);
    let label = |text: &str, pos: usize, lang: &str| {
        let s =
            Sentence { start: pos as f64 * 5.0, end: pos as f64 * 5.0 + 3.0, text: text.into() };
        let mut v = scorer.score(&s, pos, 10, lang);
        v.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
        (v[0].1 >= cfg.thresholds.get(v[0].0)).then_some(v[0].0)
    };
    use SellingPointType::*;
    assert_eq!(label("姐妹们，这个空气炸锅我回购了三次", 0, "zh"), Some(Hook));
    assert_eq!(label("面料是新疆长绒棉，亲肤透气", 3, "zh"), Some(Material));
    assert_eq!(label("穿一整天都不累脚", 4, "zh"), Some(Effect));
    assert_eq!(label("今天下单立减五十元还包邮", 6, "zh"), Some(Promotion));
    assert_eq!(label("我平时下班回家基本都用它做饭。", 5, "zh"), None);
    assert_eq!(label("Stop scrolling, you need this!", 0, "en"), Some(Hook));
    assert_eq!(label("The case is made of aluminum alloy.", 3, "en"), Some(Material));
    assert_eq!(label("The battery lasts all day.", 4, "en"), Some(Effect));
    assert_eq!(label("Use code SAVE for 20% off, link in bio.", 6, "en"), Some(Promotion));
    assert_eq!(label("Thanks for watching, see you next time.", 8, "en"), None);
    // unknown language falls back by script
    assert_eq!(label("限时秒杀，只要九十九元", 6, "auto"), Some(Promotion));
}

fn scored(
    start: f64,
    end: f64,
    text: &str,
    label: Option<SellingPointType>,
    s: f64,
) -> ScoredSentence {
    let mut scores = SellingPointType::ALL.map(|k| (k, 0.0));
    if let Some(k) = label {
        for x in scores.iter_mut() {
            if x.0 == k {
                x.1 = s;
            }
        }
    }
    ScoredSentence { sentence: Sentence { start, end, text: text.into() }, scores, label }
}

#[test]
fn clips_merge_same_type_neighbours_and_pad_into_pauses() {
    use SellingPointType::*;
    let cfg = DetectionConfig::default();
    let sents = vec![
        scored(0.5, 3.0, "Stop scrolling!", Some(Hook), 0.8),
        scored(3.6, 6.0, "Made of steel.", Some(Material), 0.7),
        scored(10.0, 12.0, "Forty percent off.", Some(Promotion), 0.9),
        scored(12.5, 14.0, "Link below.", Some(Promotion), 0.7),
        scored(14.2, 16.0, "Bye now.", None, 0.0),
    ];
    let clips = build_clips(&sents, 16.5, &cfg);
    assert_eq!(clips.len(), 3, "{clips:?}");
    // hook: starts inside the leading pause (cap 0.4), ends at half the 0.6 s pause
    assert!((clips[0].start - 0.1).abs() < 1e-6, "{:?}", clips[0]);
    assert!((clips[0].end - 3.3).abs() < 1e-6);
    assert!((clips[1].start - 3.3).abs() < 1e-6 && (clips[1].end - 6.4).abs() < 1e-6);
    // promotion: two sentences merged, ends at half the 0.2 s pause before "Bye"
    assert_eq!(clips[2].kind, Promotion);
    assert!((clips[2].start - 9.6).abs() < 1e-6 && (clips[2].end - 14.1).abs() < 1e-6);
    assert_eq!(clips[2].description, "Forty percent off. Link below.");
    assert!((clips[2].confidence - 0.8).abs() < 1e-9);
    for w in clips.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
    // a gap above merge_gap_seconds keeps them apart
    let sents = vec![
        scored(1.0, 3.0, "Forty percent off.", Some(Promotion), 0.9),
        scored(6.0, 8.0, "Link below.", Some(Promotion), 0.7),
    ];
    assert_eq!(build_clips(&sents, 9.0, &cfg).len(), 2);
    // padding never leaves the media
    let sents = vec![scored(0.1, 2.9, "Stop scrolling!", Some(Hook), 0.8)];
    let c = build_clips(&sents, 3.0, &cfg);
    assert_eq!((c[0].start, c[0].end), (0.0, 3.0));
}

#[test]
fn clips_respect_max_and_min_durations() {
    use SellingPointType::*;
    let cfg = DetectionConfig::default(); // max 30 s, min 1.5 s
    let sents = vec![
        scored(0.0, 12.0, "a", Some(Effect), 0.6),
        scored(12.5, 24.0, "b", Some(Effect), 0.6),
        scored(24.5, 36.0, "c", Some(Effect), 0.6),
    ];
    let c = build_clips(&sents, 40.0, &cfg);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c.iter().all(|x| x.end - x.start <= 30.0 + 2.0 * cfg.max_pad_seconds));
    assert!((c[0].end - 24.25).abs() < 1e-6 && (c[1].start - 24.25).abs() < 1e-6);
    // one overlong sentence is trimmed to max_clip_seconds
    let c = build_clips(&[scored(2.0, 50.0, "long", Some(Effect), 0.6)], 60.0, &cfg);
    assert_eq!(c.len(), 1);
    assert!((c[0].end - c[0].start - 30.4).abs() < 1e-6, "{c:?}"); // 0.4 s lead-in pad
                                                                   // too short: extended symmetrically into free time
    let sents = vec![
        scored(0.0, 2.0, "x", None, 0.0),
        scored(5.0, 5.4, "short", Some(Hook), 0.7),
        scored(9.0, 10.0, "y", None, 0.0),
    ];
    let c = build_clips(&sents, 10.0, &cfg);
    assert_eq!(c.len(), 1);
    assert!((c[0].end - c[0].start - 1.5).abs() < 1e-6, "{c:?}");
    // ... or dropped by policy
    let drop =
        DetectionConfig { short_clip_policy: ShortClipPolicy::Drop, ..DetectionConfig::default() };
    assert!(build_clips(&sents, 10.0, &drop).is_empty());
    // ... or dropped when there is no room
    let c = build_clips(&[scored(0.0, 0.3, "short", Some(Hook), 0.7)], 0.5, &cfg);
    assert!(c.is_empty(), "{c:?}");
}

#[test]
fn titles_are_short_and_labelled() {
    let cfg = DetectionConfig::default();
    let zh = clips::make_title(
        SellingPointType::Promotion,
        "今晚下单直降八十元，再送一本食谱，数量有限，先到先得，赶紧去小黄车抢购吧。",
        true,
        &cfg,
    );
    assert!(zh.starts_with("优惠促销｜今晚下单"), "{zh}");
    assert!(zh.chars().count() <= 30, "{zh}");
    let en = clips::make_title(
        SellingPointType::Hook,
        "Stop scrolling! This blender changed my mornings forever and you will love it too.",
        false,
        &cfg,
    );
    assert!(en.starts_with("Hook: Stop scrolling!"), "{en}");
    assert!(en.chars().count() <= 60 && en.ends_with('…'), "{en}");
}

#[test]
fn overrides_merge_deeply_and_reject_unknown_keys() {
    let base = DetectionConfig::default();
    let user = json!({"selling_points": {"thresholds": {"hook": 0.6},
        "lexicons": {"zh": {"promotion": {"秒拍": 1.0, "冲": null}}}}, "clip_format": "mp4"});
    let task = json!({"min_clip_seconds": 2.5, "short_clip_policy": "drop"});
    let cfg = base.with_overrides(&user).unwrap().with_overrides(&task).unwrap();
    assert_eq!(cfg.thresholds.hook, 0.6);
    assert_eq!(cfg.thresholds.promotion, base.thresholds.promotion);
    assert_eq!(cfg.min_clip_seconds, 2.5);
    assert_eq!(cfg.short_clip_policy, ShortClipPolicy::Drop);
    assert_eq!(cfg.lexicons["zh"].promotion.get("秒拍"), Some(&1.0));
    assert!(!cfg.lexicons["zh"].promotion.contains_key("冲"));
    assert_eq!(cfg.lexicons["zh"].promotion.len(), base.lexicons["zh"].promotion.len());
    // a new language
    let cfg = base
        .with_overrides(&json!({"lexicons": {"es": {"promotion": {"descuento": 1.0}}}}))
        .unwrap();
    assert_eq!(cfg.lexicons["es"].promotion.len(), 1);
    // null changes nothing
    assert_eq!(base.with_overrides(&serde_json::Value::Null).unwrap(), base);
    // unknown keys are named
    let err = base.with_overrides(&json!({"min_clip_secs": 2})).unwrap_err();
    assert!(format!("{err:#}").contains("min_clip_secs"), "{err:#}");
    let err = base
        .with_overrides(&json!({"selling_points": {"thresholds": {"hooks": 0.5}}}))
        .unwrap_err();
    assert!(format!("{err:#}").contains("selling_points.thresholds.hooks"), "{err:#}");
    let err = base.with_overrides(&json!({"lexicons": {"zh": {"promo": {"x": 1.0}}}})).unwrap_err();
    assert!(format!("{err:#}").contains("lexicons.zh.promo"), "{err:#}");
    let err = base.with_overrides(&json!({"lexicons": {"fr": {"promo": {"x": 1.0}}}})).unwrap_err();
    assert!(format!("{err:#}").contains("promo"), "{err:#}");
    // wrong types and bad values
    assert!(base.with_overrides(&json!({"min_clip_seconds": "long"})).is_err());
    assert!(base.with_overrides(&json!({"thresholds": 0.5})).is_err());
    assert!(base.with_overrides(&json!({"min_clip_seconds": 40})).is_err());
    assert!(base.with_overrides(&json!({"thresholds": {"effect": 1.5}})).is_err());
    assert!(base.with_overrides(&json!([1, 2])).is_err());
}

#[test]
fn default_config_round_trips_and_is_valid() {
    let cfg = DetectionConfig::default();
    cfg.validate().unwrap();
    let v = serde_json::to_value(&cfg).unwrap();
    let back: DetectionConfig = serde_json::from_value(v).unwrap();
    assert_eq!(back, cfg);
    for lang in ["zh", "en"] {
        let lex = &cfg.lexicons[lang];
        for kind in SellingPointType::ALL {
            assert!(lex.terms(kind).len() >= 40, "{lang} {kind}: too few terms");
        }
    }
    assert_eq!(serde_json::to_value(SellingPointType::Promotion).unwrap(), json!("promotion"));
}

#[test]
fn evaluate_counts_matches_by_type_and_iou() {
    use SellingPointType::*;
    let sp = |kind, start, end| SellingPoint {
        kind,
        start,
        end,
        confidence: 0.5,
        title: String::new(),
        description: String::new(),
    };
    let pred = vec![sp(Hook, 0.0, 3.0), sp(Material, 4.0, 8.0), sp(Effect, 20.0, 22.0)];
    let truth = vec![(Hook, 0.5, 3.5), (Material, 7.5, 12.0), (Promotion, 20.0, 22.0)];
    let c = evaluate(&pred, &truth);
    assert_eq!(c, EvalCounts { tp: 1, fp: 2, fn_: 2 });
    assert!((c.precision() - 1.0 / 3.0).abs() < 1e-9);
    assert!((c.f1() - 1.0 / 3.0).abs() < 1e-9);
    assert!((temporal_iou((0.0, 2.0), (1.0, 3.0)) - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(evaluate(&[], &[]).f1(), 1.0);
}

#[test]
fn detect_end_to_end_with_custom_scorer() {
    // a scorer that labels by a leading tag proves the Scorer seam works
    struct TagScorer;
    impl Scorer for TagScorer {
        fn score(&self, s: &Sentence, _: usize, _: usize, _: &str) -> Vec<(SellingPointType, f64)> {
            let kind = match s.text.chars().next() {
                Some('H') => SellingPointType::Hook,
                Some('P') => SellingPointType::Promotion,
                _ => return vec![],
            };
            vec![(kind, 0.9)]
        }
    }
    let t = transcript(
        "en",
        vec![
            seg(vec![tok(0.2, 0.6, " Hey"), tok(0.6, 1.5, " there"), tok(1.5, 1.6, ".")]),
            seg(vec![tok(2.5, 3.0, " nothing"), tok(3.0, 4.0, " here"), tok(4.0, 4.1, ".")]),
            seg(vec![tok(5.0, 5.5, " Price"), tok(5.5, 6.5, " drop"), tok(6.5, 6.6, ".")]),
        ],
    );
    let d = detect(&t, 7.0, &DetectionConfig::default(), &TagScorer);
    assert_eq!(d.sentences.len(), 3);
    assert_eq!(d.sentences[1].label, None);
    let kinds: Vec<_> = d.selling_points.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, vec![SellingPointType::Hook, SellingPointType::Promotion]);
    assert!(d.selling_points.iter().all(|p| (0.0..=1.0).contains(&p.confidence)));
    assert_eq!(d.selling_points[1].title, "Promotion: Price drop");
    // nothing in, nothing out
    let empty = detect(&transcript("auto", vec![]), 0.0, &DetectionConfig::default(), &TagScorer);
    assert!(empty.sentences.is_empty() && empty.selling_points.is_empty());
}

#[derive(Deserialize)]
struct Fixture {
    transcript: Transcript,
    labels: Vec<(String, f64, f64, String)>,
    #[serde(default)]
    media_duration: Option<f64>,
    #[serde(default)]
    held_out: bool,
}

/// Runs the default detector on every fixture; returns (name, held_out, counts).
fn fixture_results() -> Vec<(String, bool, EvalCounts)> {
    let cfg = DetectionConfig::default();
    let scorer = LexiconScorer::new(&cfg);
    let mut paths: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap_or_else(|e| panic!("reading {FIXTURES}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let f: Fixture = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let truth: Vec<(SellingPointType, f64, f64)> = f
            .labels
            .iter()
            .filter_map(|(k, s, e, _)| SellingPointType::parse(k).map(|k| (k, *s, *e)))
            .collect();
        let media =
            f.media_duration.unwrap_or_else(|| f.labels.iter().map(|l| l.2).fold(0.0, f64::max));
        let d = detect(&f.transcript, media, &cfg, &scorer);
        let c = evaluate(&d.selling_points, &truth);
        // DETECT_VERBOSE=train shows details of tuning fixtures, =all of every fixture
        let verbose = std::env::var("DETECT_VERBOSE").unwrap_or_default();
        let show = verbose == "all" || (verbose == "train" && !f.held_out);
        out.push((name.clone(), f.held_out, c));
        println!(
            "{name:<22} held_out={:<5} tp={} fp={} fn={} f1={:.3}",
            f.held_out,
            c.tp,
            c.fp,
            c.fn_,
            c.f1()
        );
        if !show {
            continue;
        }
        for s in &d.sentences {
            println!(
                "    [{:6.2}-{:6.2}] {:<10} {:?} {}",
                s.sentence.start,
                s.sentence.end,
                s.label.map(|l| l.as_str()).unwrap_or("-"),
                s.scores.map(|x| (x.1 * 100.0).round() / 100.0).map(|x| x),
                s.sentence.text
            );
        }
        for p in &d.selling_points {
            println!(
                "    => {:<9} {:6.2}-{:6.2} c={:.2} {}",
                p.kind.as_str(),
                p.start,
                p.end,
                p.confidence,
                p.title
            );
        }
    }
    out
}

#[test]
fn fixtures_reach_f1_target() {
    let results = fixture_results();
    assert!(results.len() >= 6, "expected the fixture transcripts in {FIXTURES}");
    let mut all = EvalCounts::default();
    let mut held = EvalCounts::default();
    for (_, h, c) in &results {
        all += *c;
        if *h {
            held += *c;
        }
    }
    println!(
        "ALL: tp={} fp={} fn={} P={:.3} R={:.3} F1={:.3}",
        all.tp,
        all.fp,
        all.fn_,
        all.precision(),
        all.recall(),
        all.f1()
    );
    println!(
        "HELD-OUT: tp={} fp={} fn={} P={:.3} R={:.3} F1={:.3}",
        held.tp,
        held.fp,
        held.fn_,
        held.precision(),
        held.recall(),
        held.f1()
    );
    assert!(all.f1() >= 0.8, "fixture F1 {:.3} < 0.8", all.f1());
    // The held-out transcripts (never used to tune the lexicons) have their
    // own floor: 0.947 measured; the README documents >= 0.85.
    assert!(held.f1() >= 0.85, "held-out F1 {:.3} < 0.85", held.f1());
}
