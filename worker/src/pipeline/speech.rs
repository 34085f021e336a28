//! Voice activity: which parts of a 16 kHz recording may hold speech, so
//! whisper is only run over those ("silence costs nothing").
//!
//! Whisper costs the same per second whether anyone speaks or not, and on
//! silence it invents stock phrases ("Thank you for watching."). An energy
//! pass over the samples is a few milliseconds per minute of audio; it finds
//! the stretches that are *not quiet*, pads and merges them, and
//! [`SpeechAudio`] joins those stretches into one buffer for a single whisper
//! call and maps whisper's times back to the recording's timeline.
//!
//! The pass is deliberately conservative: it only drops audio that is quiet
//! (below -50 dBFS, or more than 35 dB under the recording's loud parts).
//! Music, noise and speech all count as "not quiet", so speech under music is
//! never dropped; a pause is only dropped when it is longer than
//! [`VoiceActivity::min_gap`], so short pauses between words stay in.
//! whisper.cpp's own VAD needs a Silero model that no registry reachable here
//! ships, so this pass is energy-based.

/// Samples per second of the audio this module reads (whisper's rate).
pub const RATE: usize = 16_000;

/// The settings of the energy pass (the defaults are what the worker uses).
#[derive(Debug, Clone, Copy)]
pub struct VoiceActivity {
    /// Frame length in seconds over which loudness is measured.
    pub frame: f64,
    /// A frame is loud when its RMS is above this (dBFS) ...
    pub floor_dbfs: f64,
    /// ... and above the recording's 95th-percentile loudness minus this (dB).
    pub below_loudest_db: f64,
    /// Quiet stretches shorter than this (seconds) stay inside the speech.
    pub min_gap: f64,
    /// Real audio kept on each side of a loud stretch (seconds).
    pub padding: f64,
    /// Loud stretches shorter than this in total (seconds) are clicks, not speech.
    pub min_speech: f64,
    /// When speech covers more than this share of the recording, the whole
    /// recording is transcribed as it is (nothing worth dropping).
    pub keep_whole_above: f64,
}

impl Default for VoiceActivity {
    fn default() -> Self {
        VoiceActivity {
            frame: 0.02,
            floor_dbfs: -50.0,
            below_loudest_db: 35.0,
            min_gap: 1.0,
            padding: 0.3,
            min_speech: 0.15,
            keep_whole_above: 0.9,
        }
    }
}

/// A stretch of the recording, in samples: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl VoiceActivity {
    /// The stretches of `samples` that may hold speech, padded, merged and in
    /// order; empty when the whole recording is quiet.
    pub fn speech_spans(&self, samples: &[f32]) -> Vec<Span> {
        let frame = ((self.frame * RATE as f64) as usize).max(1);
        let levels: Vec<f64> = samples
            .chunks(frame)
            .map(|c| {
                let power =
                    c.iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / c.len() as f64;
                10.0 * power.max(1e-12).log10()
            })
            .collect();
        if levels.is_empty() {
            return Vec::new();
        }
        let mut sorted = levels.clone();
        sorted.sort_by(f64::total_cmp);
        let loudest = sorted[(sorted.len() - 1) * 95 / 100];
        let threshold = self.floor_dbfs.max(loudest - self.below_loudest_db);

        // Loud frames -> stretches, merging across short quiet gaps.
        let min_gap = (self.min_gap / self.frame).ceil() as usize;
        let mut stretches: Vec<(usize, usize, usize)> = Vec::new(); // first, last+1 frame, loud frames
        for (i, _) in levels.iter().enumerate().filter(|(_, &l)| l > threshold) {
            match stretches.last_mut() {
                Some((_, end, loud)) if i - *end < min_gap => {
                    *end = i + 1;
                    *loud += 1;
                }
                _ => stretches.push((i, i + 1, 1)),
            }
        }
        let min_loud = (self.min_speech / self.frame).ceil() as usize;
        let pad = (self.padding * RATE as f64) as usize;
        let mut spans: Vec<Span> = Vec::new();
        for (first, end, _) in stretches.into_iter().filter(|s| s.2 >= min_loud) {
            let span = Span {
                start: (first * frame).saturating_sub(pad),
                end: (end * frame + pad).min(samples.len()),
            };
            match spans.last_mut() {
                Some(last) if span.start <= last.end => last.end = span.end,
                _ => spans.push(span),
            }
        }
        spans
    }
}

/// The audio whisper is given: the speech spans of a recording joined end to
/// end, and the map from its times back to the recording's.
#[derive(Debug, Clone)]
pub struct SpeechAudio {
    /// The joined samples.
    pub samples: Vec<f32>,
    /// `(offset in samples, span of the recording)` for each joined piece.
    pieces: Vec<(usize, Span)>,
    /// Length of the recording in samples.
    total: usize,
}

impl SpeechAudio {
    /// Keeps only the speech of `samples` (see [`VoiceActivity::speech_spans`]).
    /// The recording is kept whole when nearly all of it is speech; the
    /// result is empty when none of it is.
    pub fn select(samples: Vec<f32>, vad: &VoiceActivity) -> SpeechAudio {
        let total = samples.len();
        let spans = vad.speech_spans(&samples);
        let speech: usize = spans.iter().map(|s| s.end - s.start).sum();
        if total > 0 && speech as f64 > vad.keep_whole_above * total as f64 {
            return SpeechAudio::whole(samples);
        }
        let mut joined = Vec::with_capacity(speech);
        let mut pieces = Vec::with_capacity(spans.len());
        for span in spans {
            pieces.push((joined.len(), span));
            joined.extend_from_slice(&samples[span.start..span.end]);
        }
        SpeechAudio { samples: joined, pieces, total }
    }

    /// All of `samples`, unchanged (times map to themselves).
    pub fn whole(samples: Vec<f32>) -> SpeechAudio {
        let total = samples.len();
        let pieces = if total > 0 { vec![(0, Span { start: 0, end: total })] } else { Vec::new() };
        SpeechAudio { samples, pieces, total }
    }

    /// True when no part of the recording may hold speech.
    pub fn is_silent(&self) -> bool {
        self.samples.is_empty()
    }

    /// Seconds of the recording that whisper will not see.
    pub fn skipped_seconds(&self) -> f64 {
        (self.total - self.samples.len()) as f64 / RATE as f64
    }

    /// Maps a time of the joined audio (seconds) to the recording's timeline.
    /// A time past a piece's end (whisper's timestamps can overshoot) stays
    /// at that piece's end.
    pub fn to_recording(&self, t: f64) -> f64 {
        let at = (t.max(0.0) * RATE as f64).round() as usize;
        let i = self.pieces.partition_point(|(offset, _)| *offset <= at).saturating_sub(1);
        match self.pieces.get(i) {
            Some((offset, span)) => {
                let into = at.saturating_sub(*offset).min(span.end - span.start);
                (span.start + into) as f64 / RATE as f64
            }
            None => t,
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn tone(seconds: f64, amplitude: f32) -> Vec<f32> {
        (0..(seconds * RATE as f64) as usize)
            .map(|i| amplitude * (i as f32 * 440.0 * std::f32::consts::TAU / RATE as f32).sin())
            .collect()
    }

    fn quiet(seconds: f64) -> Vec<f32> {
        // Faint noise at about -70 dBFS, like a real "silent" recording.
        let mut x: u32 = 7;
        (0..(seconds * RATE as f64) as usize)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((x >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.001
            })
            .collect()
    }

    #[test]
    fn quiet_recordings_have_no_speech() {
        let vad = VoiceActivity::default();
        assert!(vad.speech_spans(&quiet(5.0)).is_empty());
        assert!(vad.speech_spans(&vec![0.0; RATE * 3]).is_empty());
        assert!(SpeechAudio::select(quiet(20.0), &vad).is_silent());
        assert!(SpeechAudio::select(Vec::new(), &vad).is_silent());
        // A click is not speech.
        let mut clicky = quiet(4.0);
        clicky[RATE..RATE + 400].iter_mut().for_each(|s| *s = 0.5);
        assert!(vad.speech_spans(&clicky).is_empty());
    }

    #[test]
    fn long_silences_are_dropped_and_times_map_back() {
        let vad = VoiceActivity::default();
        // 10 s quiet, 2 s loud, 0.5 s quiet, 1 s loud, 10 s quiet.
        let mut s = quiet(10.0);
        s.extend(tone(2.0, 0.3));
        s.extend(quiet(0.5));
        s.extend(tone(1.0, 0.3));
        s.extend(quiet(10.0));
        let spans = vad.speech_spans(&s);
        assert_eq!(spans.len(), 1, "a 0.5 s pause stays inside: {spans:?}");
        let (a, b) = (spans[0].start as f64 / 16e3, spans[0].end as f64 / 16e3);
        assert!((a - 9.7).abs() < 0.03 && (b - 13.8).abs() < 0.03, "{a}..{b}");

        let audio = SpeechAudio::select(s, &vad);
        assert!((audio.samples.len() as f64 / 16e3 - 4.1).abs() < 0.05);
        assert!((audio.skipped_seconds() - 19.4).abs() < 0.05);
        assert!((audio.to_recording(0.0) - 9.7).abs() < 0.03);
        assert!((audio.to_recording(1.3) - 11.0).abs() < 0.03);
        // Past the end stays at the end.
        assert!((audio.to_recording(60.0) - 13.8).abs() < 0.03);
    }

    #[test]
    fn separate_speech_keeps_each_piece_in_place() {
        let vad = VoiceActivity::default();
        let mut s = quiet(3.0);
        s.extend(tone(1.0, 0.2));
        s.extend(quiet(5.0));
        s.extend(tone(1.0, 0.2));
        s.extend(quiet(3.0));
        let audio = SpeechAudio::select(s, &vad);
        // Two pieces of 1.6 s: 2.7..4.3 and 8.7..10.3.
        assert!((audio.samples.len() as f64 / 16e3 - 3.2).abs() < 0.05);
        assert!((audio.to_recording(0.3) - 3.0).abs() < 0.03);
        assert!((audio.to_recording(1.9) - 9.0).abs() < 0.03);
    }

    #[test]
    fn mostly_speech_is_kept_whole_and_music_counts_as_sound() {
        let vad = VoiceActivity::default();
        // Music-like bed at -30 dBFS under louder "speech": nothing is quiet.
        let mut s = tone(6.0, 0.04);
        s.extend(tone(4.0, 0.3));
        s.extend(tone(6.0, 0.04));
        let audio = SpeechAudio::select(s.clone(), &vad);
        assert_eq!(audio.samples.len(), s.len());
        assert_eq!(audio.to_recording(7.25), 7.25);
    }
}
