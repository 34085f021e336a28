//! Scoring predictions against labelled selling points.

use serde::{Deserialize, Serialize};

use super::{SellingPoint, SellingPointType};

/// Temporal IoU a prediction needs with a true selling point to count as
/// finding it.
pub const DEFAULT_EVAL_IOU: f64 = 0.3;

/// Counts of a comparison between predicted and true selling points. Add them
/// up over videos with `+=` and read precision, recall and F1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalCounts {
    /// True selling points found by a prediction of the same type.
    pub tp: usize,
    /// Predictions that found no true selling point.
    pub fp: usize,
    /// True selling points no prediction found.
    pub fn_: usize,
}

impl EvalCounts {
    /// Returns `tp / (tp + fp)`: the share of predicted clips that are right
    /// (1 when nothing was predicted).
    pub fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }

    /// Returns `tp / (tp + fn)`: the share of true selling points found
    /// (1 when there were none).
    pub fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }

    /// Returns the harmonic mean of precision and recall (0 when both are 0).
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

impl std::ops::AddAssign for EvalCounts {
    fn add_assign(&mut self, o: EvalCounts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
    }
}

impl std::ops::Add for EvalCounts {
    type Output = EvalCounts;
    fn add(mut self, o: EvalCounts) -> EvalCounts {
        self += o;
        self
    }
}

/// Returns the temporal intersection over union of two `(start, end)` spans
/// (0 when they do not overlap or are empty).
pub fn temporal_iou(a: (f64, f64), b: (f64, f64)) -> f64 {
    let inter = (a.1.min(b.1) - a.0.max(b.0)).max(0.0);
    let union = (a.1 - a.0).max(0.0) + (b.1 - b.0).max(0.0) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Compares predictions with true selling points `(type, start, end)` at
/// IoU >= [`DEFAULT_EVAL_IOU`]; see [`evaluate_with_iou`].
pub fn evaluate(predicted: &[SellingPoint], truth: &[(SellingPointType, f64, f64)]) -> EvalCounts {
    evaluate_with_iou(predicted, truth, DEFAULT_EVAL_IOU)
}

/// Returns the counts of a one-to-one matching between predictions and true
/// selling points: pairs of the same type with IoU >= `min_iou` are matched
/// greedily from the highest IoU down. Matched truths are true positives,
/// unmatched truths false negatives, unmatched predictions false positives.
pub fn evaluate_with_iou(
    predicted: &[SellingPoint],
    truth: &[(SellingPointType, f64, f64)],
    min_iou: f64,
) -> EvalCounts {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (pi, p) in predicted.iter().enumerate() {
        for (ti, t) in truth.iter().enumerate() {
            if p.kind != t.0 {
                continue;
            }
            let iou = temporal_iou((p.start, p.end), (t.1, t.2));
            if iou >= min_iou && iou > 0.0 {
                pairs.push((iou, pi, ti));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut p_used = vec![false; predicted.len()];
    let mut t_used = vec![false; truth.len()];
    let mut tp = 0;
    for (_, pi, ti) in pairs {
        if !p_used[pi] && !t_used[ti] {
            p_used[pi] = true;
            t_used[ti] = true;
            tp += 1;
        }
    }
    EvalCounts { tp, fp: predicted.len() - tp, fn_: truth.len() - tp }
}
