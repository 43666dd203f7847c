//! The attack report: small (it travels in a 256 KB Step Functions state;
//! every list is bounded and [`MAX_REPORT_BYTES`] is enforced), and
//! mergeable across the shares of a fanned-out attack.

use crate::error::ErrorKind;
use crate::hist;
use crate::template::{describe_expect, Expect, SampleRequest};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Largest serialized report: past it, histograms, then samples, then
/// summary lines are dropped (and `trimmed` is set).
pub const MAX_REPORT_BYTES: usize = 64 * 1024;
/// Violation samples kept per request template.
pub const MAX_SAMPLES: usize = 3;
/// Distinct status codes listed per block; rarer ones go to `other_statuses`.
pub const MAX_STATUSES: usize = 24;
/// Summary lines in `violations`.
pub const MAX_SUMMARY_LINES: usize = 32;
/// Distinct transport error messages kept in `error_samples`.
pub const MAX_ERROR_SAMPLES: usize = 3;

/// Why an attack ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StopReason {
    /// Every stage ran to its end.
    Completed,
    /// Violations went over `stop.max_violations`.
    Violations {
        /// Violations counted when it stopped.
        count: u64,
        /// The threshold.
        max: u64,
    },
    /// 5xx responses went over `stop.max_5xx`.
    ServerErrors {
        /// 5xx responses counted when it stopped.
        count: u64,
        /// The threshold.
        max: u64,
    },
    /// Transport errors went over `stop.max_errors`.
    Errors {
        /// Errors counted when it stopped.
        count: u64,
        /// The threshold.
        max: u64,
    },
    /// The stop signal (abort alarms) fired.
    Aborted {
        /// What the stop signal said.
        reason: String,
    },
}

impl StopReason {
    /// Whether the attack ran all its stages.
    pub fn is_completed(&self) -> bool {
        matches!(self, StopReason::Completed)
    }

    fn severity(&self) -> u8 {
        match self {
            StopReason::Completed => 0,
            StopReason::Errors { .. } => 1,
            StopReason::Violations { .. } => 2,
            StopReason::ServerErrors { .. } => 3,
            StopReason::Aborted { .. } => 4,
        }
    }
}

/// Responses per status class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classes {
    /// 100–199.
    #[serde(rename = "1xx")]
    pub c1xx: u64,
    /// 200–299.
    #[serde(rename = "2xx")]
    pub c2xx: u64,
    /// 300–399.
    #[serde(rename = "3xx")]
    pub c3xx: u64,
    /// 400–499.
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    /// 500 and over.
    #[serde(rename = "5xx")]
    pub c5xx: u64,
}

impl Classes {
    fn add(&mut self, status: u16, n: u64) {
        match status {
            0..=199 => self.c1xx += n,
            200..=299 => self.c2xx += n,
            300..=399 => self.c3xx += n,
            400..=499 => self.c4xx += n,
            _ => self.c5xx += n,
        }
    }

    fn absorb(&mut self, o: &Classes) {
        self.c1xx += o.c1xx;
        self.c2xx += o.c2xx;
        self.c3xx += o.c3xx;
        self.c4xx += o.c4xx;
        self.c5xx += o.c5xx;
    }
}

/// Latency of completed responses (send to last body byte; errors and
/// time spent waiting for the rate limiter excluded), in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest response.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Set when merged without histograms: every figure is then the
    /// largest of the merged ones (an upper bound), not exact.
    #[serde(default, skip_serializing_if = "is_false")]
    pub approximate: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Microseconds as milliseconds (3 decimals: exact).
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: round3(h.mean() / 1000.0),
            approximate: false,
        }
    }
}

/// Counts for a stage, or for the whole attack.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests finished: `responses` + errors.
    pub requests: u64,
    /// Requests that got a complete response.
    pub responses: u64,
    /// Responses per status code (the 24 most frequent).
    #[serde(deserialize_with = "status_keys")]
    pub statuses: BTreeMap<u16, u64>,
    /// Responses whose status was not listed in `statuses`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_statuses: u64,
    /// Responses per class.
    pub classes: Classes,
    /// Transport errors per kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Responses that broke their request's `expect` (every 5xx does).
    pub violations: u64,
    /// Response latency.
    pub latency_ms: Latency,
    /// Requests per second achieved.
    pub rps: f64,
    /// How long it actually took, in seconds.
    pub duration_s: f64,
    /// The latency histogram (HdrHistogram V2, base64; µs, 2 significant
    /// digits), kept per stage so shares merge exactly; dropped when large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
}

impl Stats {
    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other`'s counts. `concurrent`: the two ran side by side (the
    /// duration is the longer one) rather than one after the other (the
    /// durations add up). Latency is exact when both have histograms.
    fn absorb(&mut self, other: &Stats, concurrent: bool) {
        let mine = self.histogram.as_deref().and_then(hist::decode);
        let theirs = other.histogram.as_deref().and_then(hist::decode);
        let merged = match (mine, theirs) {
            (Some(mut a), Some(b)) => a.add(&b).ok().map(|_| a),
            (Some(a), None) if other.responses == 0 => Some(a),
            (None, Some(b)) if self.responses == 0 => Some(b),
            (None, None) if self.responses == 0 && other.responses == 0 => Some(hist::new()),
            _ => None,
        };
        self.latency_ms = match &merged {
            Some(h) => Latency::of(h),
            None => {
                let (a, b) = (self.latency_ms, other.latency_ms);
                let total = self.responses + other.responses;
                Latency {
                    p50: a.p50.max(b.p50),
                    p90: a.p90.max(b.p90),
                    p99: a.p99.max(b.p99),
                    max: a.max.max(b.max),
                    mean: if total == 0 {
                        0.0
                    } else {
                        round3(
                            (a.mean * self.responses as f64 + b.mean * other.responses as f64)
                                / total as f64,
                        )
                    },
                    approximate: true,
                }
            }
        };
        self.histogram = merged.as_ref().and_then(hist::encode);

        self.requests += other.requests;
        self.responses += other.responses;
        let mut statuses = std::mem::take(&mut self.statuses);
        for (status, n) in &other.statuses {
            *statuses.entry(*status).or_default() += n;
        }
        self.other_statuses += other.other_statuses;
        self.statuses = bound_statuses(statuses, &mut self.other_statuses);
        self.classes.absorb(&other.classes);
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_default() += n;
        }
        self.violations += other.violations;
        self.duration_s = if concurrent {
            self.duration_s.max(other.duration_s)
        } else {
            round3(self.duration_s + other.duration_s)
        };
        self.rps = rate(self.requests, self.duration_s);
    }
}

fn rate(requests: u64, duration_s: f64) -> f64 {
    if duration_s > 0.0 {
        (requests as f64 / duration_s * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Status-code keys read back from JSON text. serde_json parses integer
/// keys itself, except inside a `#[serde(flatten)]` struct (a stage's
/// stats), which hands them over as strings: a report that went through
/// a Step Functions state (a share's) must read back.
fn status_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<u16, u64>, D::Error> {
    let raw: BTreeMap<String, u64> = serde::Deserialize::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            k.parse::<u16>()
                .map(|k| (k, v))
                .map_err(|_| serde::de::Error::custom(format!("not a status code: {k:?}")))
        })
        .collect()
}

/// Keeps the [`MAX_STATUSES`] most frequent codes; the rest are added to
/// `other`.
fn bound_statuses(statuses: BTreeMap<u16, u64>, other: &mut u64) -> BTreeMap<u16, u64> {
    if statuses.len() <= MAX_STATUSES {
        return statuses;
    }
    let mut by_count: Vec<(u16, u64)> = statuses.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    *other += by_count[MAX_STATUSES..].iter().map(|(_, n)| n).sum::<u64>();
    by_count.truncate(MAX_STATUSES);
    by_count.into_iter().collect()
}

/// One stage's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// Index of the stage in the attack (0-based).
    pub stage: u32,
    /// Users that ran it (summed over shares).
    pub users: u32,
    /// Its planned duration, in seconds.
    pub planned_s: f64,
    /// Its counts.
    #[serde(flatten)]
    pub stats: Stats,
}

/// The response part of a violation sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleResponse {
    /// The status.
    pub status: u16,
    /// The body, cut to 256 bytes (lossy UTF-8).
    pub body: String,
}

/// One violation, as sent and as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViolationSample {
    /// What was sent.
    pub request: SampleRequest,
    /// What came back.
    pub response: SampleResponse,
    /// What would have been correct.
    pub expected: Vec<Expect>,
}

/// One request template's figures, over all stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateReport {
    /// The request's name.
    pub name: String,
    /// Its template.
    pub template: String,
    /// Its method.
    pub method: String,
    /// Its path (with the target's base path).
    pub path: String,
    /// Accepted statuses.
    pub expected: Vec<Expect>,
    /// Requests finished (responses + errors).
    pub requests: u64,
    /// Responses per status code.
    #[serde(deserialize_with = "status_keys")]
    pub statuses: BTreeMap<u16, u64>,
    /// Responses whose status was not listed in `statuses`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_statuses: u64,
    /// Transport errors.
    pub errors: u64,
    /// Responses that broke `expected`.
    pub violations: u64,
    /// Up to [`MAX_SAMPLES`] violations, the first ones seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<ViolationSample>,
}

impl TemplateReport {
    /// `(status, count)` of the responses that broke `expected`.
    fn violating_statuses(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        let mut accepted = crate::template::StatusSet::default();
        if let Ok(set) = crate::template::StatusSet::from_expect("expected", &self.expected) {
            accepted = set;
        }
        self.statuses
            .iter()
            .filter(move |(s, _)| **s >= 500 || !accepted.contains(**s))
            .map(|(s, n)| (*s, *n))
    }
}

/// The outcome of an attack (or of several merged shares).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackReport {
    /// The target URL.
    pub target: String,
    /// Why it ended.
    pub stop_reason: StopReason,
    /// Wall time of the stages, in seconds.
    pub duration_s: f64,
    /// How many reports were merged into this one (1 for a single run).
    pub shares: u32,
    /// Every stage together (no histogram: merge the stages').
    pub totals: Stats,
    /// Per stage, in order.
    pub stages: Vec<StageReport>,
    /// Per request template.
    pub requests: Vec<TemplateReport>,
    /// One line per broken expectation, e.g.
    /// `invalid-token: expected 401 or 403, saw 500 ×812`.
    pub violations: Vec<String>,
    /// A few distinct transport error messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
    /// Set when something was dropped to keep under [`MAX_REPORT_BYTES`].
    #[serde(default, skip_serializing_if = "is_false")]
    pub trimmed: bool,
}

impl AttackReport {
    /// Total violations.
    pub fn violation_count(&self) -> u64 {
        self.totals.violations
    }

    /// Total 5xx responses.
    pub fn server_errors(&self) -> u64 {
        self.totals.classes.c5xx
    }

    /// Total transport errors.
    pub fn error_count(&self) -> u64 {
        self.totals.error_count()
    }

    /// Recomputes totals and summary lines from the stages and templates,
    /// then enforces the size bound.
    pub(crate) fn finish(&mut self) {
        let mut totals = Stats::default();
        for (i, stage) in self.stages.iter().enumerate() {
            if i == 0 {
                totals = stage.stats.clone();
            } else {
                totals.absorb(&stage.stats, false);
            }
        }
        totals.histogram = None;
        self.duration_s = totals.duration_s;
        self.totals = totals;

        let mut lines = Vec::new();
        let mut more = 0usize;
        for t in &self.requests {
            for (status, n) in t.violating_statuses() {
                if lines.len() < MAX_SUMMARY_LINES {
                    lines.push(format!(
                        "{}: expected {}, saw {status} ×{n}",
                        t.name,
                        describe_expect(&t.expected)
                    ));
                } else {
                    more += 1;
                }
            }
            if t.other_statuses > 0 {
                more += 1;
            }
        }
        if more > 0 {
            lines.push(format!("… and {more} more"));
        }
        self.violations = lines;
        self.enforce_budget();
    }

    fn size(&self) -> usize {
        serde_json::to_vec(self)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }

    /// Drops, in this order, until the report fits [`MAX_REPORT_BYTES`]:
    /// stage histograms, samples beyond the first per template, all
    /// samples, error samples, summary lines beyond 8.
    fn enforce_budget(&mut self) {
        if self.size() <= MAX_REPORT_BYTES {
            return;
        }
        self.trimmed = true;
        for stage in &mut self.stages {
            stage.stats.histogram = None;
        }
        for keep in [1, 0] {
            if self.size() <= MAX_REPORT_BYTES {
                return;
            }
            for t in &mut self.requests {
                t.samples.truncate(keep);
            }
        }
        if self.size() <= MAX_REPORT_BYTES {
            return;
        }
        self.error_samples.clear();
        self.violations.truncate(8);
    }
}

/// Merges the reports of the shares of one attack (see
/// [`crate::plan_shares`]): stages with the same index ran side by side
/// and are added up (users and counts summed, duration the longest);
/// templates are matched by name. Counts are exact. Latency is exact when
/// every merged stage kept its histogram; otherwise that stage's
/// percentiles, max and the totals' are the largest of the merged figures
/// (an upper bound) and marked `approximate`. The stop reason is the most
/// severe one (aborted > 5xx > violations > errors > completed).
///
/// Returns `None` for an empty list.
pub fn merge(reports: Vec<AttackReport>) -> Option<AttackReport> {
    let mut reports = reports.into_iter();
    let mut merged = reports.next()?;
    for report in reports {
        if report.stop_reason.severity() > merged.stop_reason.severity() {
            merged.stop_reason = report.stop_reason.clone();
        }
        merged.shares += report.shares;
        merged.trimmed |= report.trimmed;
        for stage in report.stages {
            match merged.stages.iter_mut().find(|s| s.stage == stage.stage) {
                Some(mine) => {
                    mine.users += stage.users;
                    mine.planned_s = mine.planned_s.max(stage.planned_s);
                    mine.stats.absorb(&stage.stats, true);
                }
                None => merged.stages.push(stage),
            }
        }
        for t in report.requests {
            match merged.requests.iter_mut().find(|m| m.name == t.name) {
                Some(mine) => {
                    mine.requests += t.requests;
                    let mut statuses = std::mem::take(&mut mine.statuses);
                    for (status, n) in &t.statuses {
                        *statuses.entry(*status).or_default() += n;
                    }
                    mine.other_statuses += t.other_statuses;
                    mine.statuses = bound_statuses(statuses, &mut mine.other_statuses);
                    mine.errors += t.errors;
                    mine.violations += t.violations;
                    let room = MAX_SAMPLES.saturating_sub(mine.samples.len());
                    mine.samples.extend(t.samples.into_iter().take(room));
                }
                None => merged.requests.push(t),
            }
        }
        for e in report.error_samples {
            if merged.error_samples.len() < MAX_ERROR_SAMPLES && !merged.error_samples.contains(&e)
            {
                merged.error_samples.push(e);
            }
        }
    }
    merged.stages.sort_by_key(|s| s.stage);
    merged.finish();
    Some(merged)
}

/// What the users of a stage (or of a template) recorded.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    /// `(status, count)`: few distinct statuses, so a linear scan.
    pub statuses: Vec<(u16, u64)>,
    pub errors: [u64; ErrorKind::ALL.len()],
    pub violations: u64,
    pub latency: Histogram<u64>,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            statuses: Vec::with_capacity(4),
            errors: [0; ErrorKind::ALL.len()],
            violations: 0,
            latency: hist::new(),
        }
    }

    pub fn response(&mut self, status: u16, micros: u64, violation: bool) {
        match self.statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.statuses.push((status, 1)),
        }
        self.violations += u64::from(violation);
        self.latency.saturating_record(micros.max(1));
    }

    pub fn error(&mut self, kind: ErrorKind) {
        self.errors[kind.index()] += 1;
    }

    pub fn absorb(&mut self, other: &Tally) {
        for &(status, n) in &other.statuses {
            match self.statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, m)) => *m += n,
                None => self.statuses.push((status, n)),
            }
        }
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        self.violations += other.violations;
        // Same bounds on both sides: addition cannot fail.
        let _ = self.latency.add(&other.latency);
    }

    pub fn responses(&self) -> u64 {
        self.statuses.iter().map(|(_, n)| n).sum()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn status_map(&self, other: &mut u64) -> BTreeMap<u16, u64> {
        bound_statuses(self.statuses.iter().copied().collect(), other)
    }

    pub fn stats(&self, duration: Duration) -> Stats {
        let mut classes = Classes::default();
        for &(status, n) in &self.statuses {
            classes.add(status, n);
        }
        let mut other_statuses = 0;
        let statuses = self.status_map(&mut other_statuses);
        let requests = self.responses() + self.error_count();
        let duration_s = round3(duration.as_secs_f64());
        Stats {
            requests,
            responses: self.responses(),
            statuses,
            other_statuses,
            classes,
            errors: ErrorKind::ALL
                .iter()
                .filter(|k| self.errors[k.index()] > 0)
                .map(|k| (*k, self.errors[k.index()]))
                .collect(),
            violations: self.violations,
            latency_ms: Latency::of(&self.latency),
            rps: rate(requests, duration_s),
            duration_s,
            histogram: hist::encode(&self.latency),
        }
    }
}
