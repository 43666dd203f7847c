//! A journal as one self-contained HTML page (`turbulence report`, and the
//! journal function's report in the journal bucket) — inline
//! CSS, inline SVG charts, a few lines of inline script, no external URL
//! (the page's Content-Security-Policy forbids loading anything).
//!
//! Everything taken from the journal is untrusted text: it goes through
//! [`esc`] before it reaches the page, and none of it is put in a script.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Seconds since the epoch of an RFC 3339 time, as journals and Step
/// Functions histories write them.
pub fn parse_time(s: &str) -> Option<f64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
}

/// The page's only script: hovering a timeline bar highlights its row in
/// the activities table. Its hash is in [`CSP`]; change both together (the
/// browser test fails on a mismatch: Chromium logs the refused script).
const SCRIPT: &str = "document.querySelectorAll('[data-row]').forEach(function(el){var row=document.getElementById(el.getAttribute('data-row'));if(!row){return;}el.addEventListener('mouseenter',function(){row.classList.add('hl');});el.addEventListener('mouseleave',function(){row.classList.remove('hl');});});";

/// Nothing is fetched; only the inline style and the script above run.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-fwPlqFfAq0cU4gJGjs+LNlSkoarek3gmIYm+YaGPym0='";

/// Longest output shown in a table cell before "more".
const CELL_CHARS: usize = 160;
/// Longest output shown when expanded.
const EXPANDED_CHARS: usize = 20_000;
/// Longest raw journal embedded at the end of the page.
const RAW_CHARS: usize = 512 * 1024;

const CSS: &str = r#"
:root{--ok:#2e9d5b;--bad:#d64545;--warn:#e08a1e;--muted:#6b7280;--bg:#f4f5f7;--card:#fff;--ink:#1f2933;--line:#e3e6ea}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;background:var(--bg);color:var(--ink)}
header.top{background:#1f2933;color:#f9fafb;padding:20px 0 18px}
header.top .wrap,main{max-width:1240px;margin:0 auto;padding:0 24px}
.brand{font-size:12px;letter-spacing:.08em;text-transform:uppercase;color:#9ca3af}
h1{font-size:24px;margin:6px 0 4px}
h2{font-size:18px;margin:0 0 12px}
h3{font-size:15px;margin:18px 0 8px}
.desc{color:#d1d5db;margin:0 0 10px;max-width:900px}
.badges{display:flex;gap:8px;flex-wrap:wrap;margin:8px 0}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.b-name{text-transform:none;letter-spacing:0}
.b-ok{background:#dcf3e5;color:#17663a}.b-bad{background:#fde2e2;color:#a32020}.b-warn{background:#fdebd3;color:#8a4b00}.b-muted{background:#e5e7eb;color:#374151}
.facts{display:flex;gap:24px;flex-wrap:wrap;font-size:13px;color:#d1d5db;margin-top:6px}
.facts b{color:#f9fafb;font-weight:600}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:16px 0}
dl.kv{display:grid;grid-template-columns:200px 1fr;gap:6px 16px;margin:0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;min-width:0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:11px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.hl td{background:#fff4c2}
td.out{min-width:300px;max-width:440px}
td.nowrap{white-space:nowrap}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
td code{word-break:break-word}
pre{white-space:pre-wrap;word-break:break-word;background:#f3f4f6;padding:8px;border-radius:6px;margin:4px 0;max-height:360px;overflow:auto}
.exc{color:#a32020}
.muted{color:var(--muted)}
.svgbox{overflow-x:auto}
svg{display:block;max-width:100%;height:auto}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#374151}
svg .label{font-size:12px;fill:#1f2933}
svg .grid{stroke:#e5e7eb}
svg a:hover rect{stroke:#1f2933;stroke-width:1.5}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;margin:6px 0 0}
.legend span{display:inline-flex;align-items:center}
.legend i{width:12px;height:12px;border-radius:2px;display:inline-block;margin-right:5px}
.kpis{display:flex;gap:10px;flex-wrap:wrap;margin:8px 0 12px}
.kpi{border:1px solid var(--line);border-radius:8px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.kpi.bad b{color:#a32020}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
figure{margin:0}figcaption{font-size:12px;color:var(--muted);margin-top:4px}
ul.violations li{color:#a32020}
.samples{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:12px}
.sample{border:1px solid var(--line);border-radius:8px;padding:10px}
details summary{cursor:pointer;color:#1d4f91}
footer{color:var(--muted);font-size:12px;margin:24px 0 40px}
.verdict{border-left:6px solid var(--muted)}
.verdict h2{font-size:20px;margin:0 0 6px}
.verdict p{margin:4px 0}
.v-ok{border-left-color:var(--ok)}.v-bad{border-left-color:var(--bad)}.v-warn{border-left-color:var(--warn)}
.tablebox{overflow-x:auto}
svg.timeline{min-width:880px}
.tol{font-size:12px}
@media (max-width:900px){
header.top .wrap,main{padding:0 12px}
section{padding:12px}
dl.kv{grid-template-columns:1fr}
dl.kv dt{margin-top:6px}
td.out{min-width:0;max-width:none}
.charts,.samples{grid-template-columns:1fr}
th,td{padding:4px 5px}
}
"#;

const GREEN: &str = "#2e9d5b";
const RED: &str = "#d64545";
const ORANGE: &str = "#e08a1e";
const GRAY: &str = "#9aa5b1";

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, with an ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A finite number at `key`, or 0.
fn num(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .filter(|x| x.is_finite())
        .unwrap_or(0.0)
}

/// `1,400`.
fn count(x: f64) -> String {
    let n = x.max(0.0).round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with as many decimals as make sense.
fn ms(x: f64) -> String {
    if x < 1.0 {
        format!("{x:.3}")
    } else if x < 10.0 {
        format!("{x:.2}")
    } else if x < 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

fn seconds(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2} s")
    } else if x < 120.0 {
        format!("{x:.1} s")
    } else {
        let m = (x / 60.0).floor();
        format!("{m:.0} min {:.0} s", x - m * 60.0)
    }
}

/// A step of 1, 2 or 5 × 10^k giving about `ticks` ticks up to `max`.
fn nice_step(max: f64, ticks: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / ticks;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let f = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * mag
}

/// Tick label: no trailing zeros.
fn tick(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// One activity of the journal, wherever it is.
struct Entry<'a> {
    id: String,
    section: &'static str,
    name: String,
    kind: String,
    provider: String,
    status: String,
    tolerance: Option<&'a Value>,
    tolerance_met: Option<bool>,
    start: Option<f64>,
    end: Option<f64>,
    duration: Option<f64>,
    output: &'a Value,
    exception: Option<String>,
    detail: Option<&'a Value>,
    attack: Option<&'a Value>,
}

impl Entry<'_> {
    /// `ok`, `missed` (tolerance not met), `failed` or `unknown`.
    fn verdict(&self) -> &'static str {
        match (self.status.as_str(), self.tolerance_met) {
            ("failed", _) => "failed",
            (_, Some(false)) => "missed",
            ("succeeded", _) => "ok",
            _ => "unknown",
        }
    }

    fn color(&self) -> &'static str {
        match self.verdict() {
            "failed" => RED,
            "missed" => ORANGE,
            "ok" => GREEN,
            _ => GRAY,
        }
    }
}

fn provider(activity: &Value) -> String {
    let p = activity.get("provider").unwrap_or(&Value::Null);
    match text(p, "type") {
        Some("python") => format!(
            "{}.{}",
            text(p, "module").unwrap_or("?"),
            text(p, "func").unwrap_or("?")
        ),
        Some("http") => format!("http {}", text(p, "url").unwrap_or("?")),
        Some("process") => format!("process {}", text(p, "path").unwrap_or("?")),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn exception(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => Some(
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => Some(other.to_string()),
    }
}

fn entries(journal: &Value) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    let ss = journal.get("steady_states").unwrap_or(&Value::Null);
    let lists: [(&'static str, Option<&Value>); 5] = [
        ("before", ss.pointer("/before/probes")),
        ("method", journal.get("run")),
        ("during", ss.get("during")),
        ("after", ss.pointer("/after/probes")),
        ("rollback", journal.get("rollbacks")),
    ];
    for (section, list) in lists {
        for e in list.and_then(Value::as_array).into_iter().flatten() {
            let activity = e.get("activity").unwrap_or(&Value::Null);
            let output = e.get("output").unwrap_or(&Value::Null);
            out.push(Entry {
                id: format!("act-{}", out.len() + 1),
                section,
                name: text(activity, "name").unwrap_or("(unnamed)").to_string(),
                kind: text(activity, "type").unwrap_or("?").to_string(),
                provider: provider(activity),
                status: text(e, "status").unwrap_or("?").to_string(),
                tolerance: activity.get("tolerance").filter(|t| !t.is_null()),
                tolerance_met: e.get("tolerance_met").and_then(Value::as_bool),
                start: text(e, "start").and_then(parse_time),
                end: text(e, "end").and_then(parse_time),
                duration: e
                    .get("duration")
                    .and_then(Value::as_f64)
                    .filter(|d| d.is_finite()),
                output,
                exception: exception(e.get("exception")),
                detail: e.get("turbulence_detail").filter(|d| !d.is_null()),
                attack: attack_report(output),
            });
        }
    }
    out
}

/// A load attack report (crates/load's `AttackReport`), recognised by its
/// shape: `stages` with per-stage status classes and latency percentiles,
/// and `totals`. Looked for in the output and one level inside it.
pub fn attack_report(output: &Value) -> Option<&Value> {
    fn is_report(v: &Value) -> bool {
        let stages = match v.get("stages").and_then(Value::as_array) {
            Some(s) => s,
            None => return false,
        };
        v.get("totals").is_some_and(Value::is_object)
            && v.get("stop_reason").is_some()
            && stages.iter().all(|s| {
                s.get("classes").is_some_and(Value::is_object)
                    && s.get("latency_ms").is_some_and(Value::is_object)
            })
    }
    if is_report(output) {
        return Some(output);
    }
    output.as_object()?.values().find(|v| is_report(v))
}

/// Renders the report. Fails only when the document is not a JSON object.
pub fn render(journal: &Value) -> Result<String, String> {
    let top = journal
        .as_object()
        .ok_or("not a journal: expected a JSON object")?;
    if !["status", "run", "steady_states"]
        .iter()
        .any(|k| top.contains_key(*k))
    {
        let keys: Vec<&str> = top.keys().take(8).map(String::as_str).collect();
        return Err(format!(
            "not a journal: it has none of status, run, steady_states (its keys: {})",
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        ));
    }
    let experiment = journal.get("experiment").unwrap_or(&Value::Null);
    let title = text(experiment, "title").unwrap_or("(untitled experiment)");
    let entries = entries(journal);
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Turbulence report</title><style>{CSS}</style></head><body>\n",
        esc(title)
    );
    header(&mut h, journal, title);
    h.push_str("<main>\n");
    verdict_section(&mut h, journal, &entries);
    run_section(&mut h, journal);
    target_section(&mut h, journal);
    timeline(&mut h, journal, &entries);
    for e in entries.iter().filter(|e| e.attack.is_some()) {
        attack(&mut h, e);
    }
    activities(&mut h, &entries);
    raw(&mut h, journal);
    let _ = write!(
        h,
        "<footer>Rendered by <code>turbulence report</code> from a Chaos Toolkit journal \
         ({} activities). Self-contained: no external resources.</footer>\n</main>\n\
         <script>{SCRIPT}</script>\n</body></html>\n",
        entries.len()
    );
    Ok(h)
}

fn badge(class: &str, label: &str) -> String {
    format!("<span class=\"badge {class}\">{}</span>", esc(label))
}

fn header(h: &mut String, j: &Value, title: &str) {
    let status = text(j, "status").unwrap_or("unknown");
    let status_class = match status {
        "completed" => "b-ok",
        "failed" => "b-bad",
        "aborted" => "b-warn",
        _ => "b-muted",
    };
    let deviated = j.get("deviated").and_then(Value::as_bool);
    let mut badges = vec![badge(status_class, status)];
    badges.push(match deviated {
        Some(true) => badge("b-bad", "deviated"),
        // Only a completed run was judged to its end.
        Some(false) if status == "completed" => badge("b-ok", "not deviated"),
        Some(false) => badge("b-muted", "deviation not judged"),
        None => badge("b-muted", "deviation unknown"),
    });
    let failed_rollbacks = failed_rollbacks(j);
    if failed_rollbacks > 0 {
        badges.push(badge(
            "b-bad",
            &format!(
                "{failed_rollbacks} rollback{} failed",
                if failed_rollbacks == 1 { "" } else { "s" }
            ),
        ));
    }
    for (phase, label) in [
        ("before", "steady state before"),
        ("after", "steady state after"),
    ] {
        let met = j
            .pointer(&format!("/steady_states/{phase}/steady_state_met"))
            .and_then(Value::as_bool);
        badges.push(match met {
            Some(true) => badge("b-ok", &format!("{label}: met")),
            Some(false) => badge("b-bad", &format!("{label}: not met")),
            None => badge("b-muted", &format!("{label}: not checked")),
        });
    }
    let _ = write!(
        h,
        "<header class=\"top\"><div class=\"wrap\"><div class=\"brand\">Turbulence · chaos experiment report</div>\
         <h1>{}</h1>",
        esc(title)
    );
    if let Some(d) = j.pointer("/experiment/description").and_then(Value::as_str) {
        let _ = write!(h, "<p class=\"desc\">{}</p>", esc(&cut(d, 2000)));
    }
    let _ = write!(
        h,
        "<div class=\"badges\">{}</div><div class=\"facts\">",
        badges.join("")
    );
    for (label, key) in [("start", "start"), ("end", "end"), ("platform", "platform")] {
        if let Some(v) = text(j, key) {
            let _ = write!(h, "<span>{label} <b>{}</b></span>", esc(v));
        }
    }
    if let Some(d) = j
        .get("duration")
        .and_then(Value::as_f64)
        .filter(|d| d.is_finite())
    {
        let _ = write!(h, "<span>duration <b>{}</b></span>", esc(&seconds(d)));
    }
    h.push_str("</div></div></header>\n");
}

/// Turbulence's own section: execution, error and cause, cost, the rest.
fn run_section(h: &mut String, j: &Value) {
    let t = j.get("turbulence").and_then(Value::as_object);
    h.push_str("<section id=\"run\"><h2>Run</h2><dl class=\"kv\">");
    let row = |h: &mut String, k: &str, v: String| {
        let _ = write!(h, "<dt>{}</dt><dd>{v}</dd>", esc(k));
    };
    let node = text(j, "node").unwrap_or("");
    let Some(t) = t else {
        if !node.is_empty() {
            row(h, "node", format!("<code>{}</code>", esc(node)));
        }
        h.push_str("<dt>turbulence</dt><dd class=\"muted\">no <code>turbulence</code> section in this journal</dd></dl></section>\n");
        return;
    };
    let s = |k: &str| t.get(k).and_then(Value::as_str);
    if let Some(arn) = s("execution").or((!node.is_empty()).then_some(node)) {
        row(h, "execution", format!("<code>{}</code>", esc(arn)));
    }
    if let Some(p) = s("experiment_parameter") {
        row(
            h,
            "experiment parameter",
            format!("<code>{}</code>", esc(p)),
        );
    }
    match s("error") {
        Some(e) => row(h, "error", badge("b-bad b-name", e)),
        None => row(h, "error", "<span class=\"muted\">none</span>".into()),
    }
    if let Some(c) = s("cause") {
        row(
            h,
            "cause",
            format!("<pre>{}</pre>", esc(&cut(c, EXPANDED_CHARS))),
        );
    }
    if let Some(ts) = t.get("time_scale").and_then(Value::as_f64) {
        let text = if ts < 1.0 && ts > 0.0 {
            format!(
                "1/{:.0} ({ts:.6}): a rehearsal, every pause compressed",
                1.0 / ts
            )
        } else {
            format!("{ts}")
        };
        row(h, "time scale", esc(&text));
    }
    if let Some(c) = t.get("compensations").and_then(Value::as_array) {
        let items: Vec<String> = c
            .iter()
            .map(|c| {
                format!(
                    "<li>{}{}</li>",
                    esc(text(c, "name").unwrap_or("?")),
                    text(c, "for_action")
                        .map(|a| format!(" <span class=\"muted\">(for {})</span>", esc(a)))
                        .unwrap_or_default()
                )
            })
            .collect();
        row(
            h,
            "undo records",
            if items.is_empty() {
                "<span class=\"muted\">none</span>".into()
            } else {
                format!("<ul>{}</ul>", items.join(""))
            },
        );
    }
    if let Some(b) = t
        .get("baselines")
        .and_then(Value::as_object)
        .filter(|b| !b.is_empty())
    {
        row(
            h,
            "baselines",
            format!(
                "<pre>{}</pre>",
                esc(&pretty(&Value::Object(b.clone()), EXPANDED_CHARS))
            ),
        );
    }
    for (k, v) in t.iter().filter(|(k, _)| k.contains("cost")) {
        row(h, k, figures(v));
    }
    const KNOWN: &[&str] = &[
        "execution",
        "experiment_parameter",
        "error",
        "cause",
        "time_scale",
        "compensations",
        "baselines",
        // Charted in its own section.
        "metrics",
    ];
    for (k, v) in t {
        if KNOWN.contains(&k.as_str()) || k.contains("cost") || v.is_null() {
            continue;
        }
        row(h, k, value_cell(v));
    }
    h.push_str("</dl></section>\n");
}

/// Cost figures: a small table of an object's numbers, else the value.
fn figures(v: &Value) -> String {
    match v.as_object() {
        Some(o) if !o.is_empty() => {
            let mut t = String::from("<table><tbody>");
            for (k, v) in o {
                let shown = match v {
                    Value::Number(n) => esc(&n.to_string()),
                    Value::String(s) => esc(s),
                    other => format!("<code>{}</code>", esc(&cut(&other.to_string(), CELL_CHARS))),
                };
                let _ = write!(
                    t,
                    "<tr><td>{}</td><td class=\"num\">{shown}</td></tr>",
                    esc(k)
                );
            }
            t.push_str("</tbody></table>");
            t
        }
        _ => value_cell(v),
    }
}

fn pretty(v: &Value, max: usize) -> String {
    cut(
        &serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()),
        max,
    )
}

/// A value in a cell: short inline, long behind "more".
fn value_cell(v: &Value) -> String {
    let compact = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if compact.chars().count() <= CELL_CHARS {
        return format!("<code>{}</code>", esc(&compact));
    }
    format!(
        "<code>{}</code><details><summary>all of it ({} characters)</summary><pre>{}</pre></details>",
        esc(&cut(&compact, CELL_CHARS)),
        compact.chars().count(),
        esc(&pretty(v, EXPANDED_CHARS))
    )
}

const SECTION_LABELS: [(&str, &str); 5] = [
    ("before", "steady state before"),
    ("method", "method"),
    ("during", "during"),
    ("after", "steady state after"),
    ("rollback", "rollbacks"),
];

fn section_label(s: &str) -> &'static str {
    SECTION_LABELS
        .iter()
        .find(|(k, _)| *k == s)
        .map_or("?", |(_, v)| v)
}

/// Every activity as a bar on one time axis.
fn timeline(h: &mut String, j: &Value, entries: &[Entry]) {
    h.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
    if entries.is_empty() {
        h.push_str("<p class=\"muted\">No activity ran.</p></section>\n");
        return;
    }
    let journal_start = text(j, "start").and_then(parse_time);
    let journal_end = text(j, "end").and_then(parse_time);
    let starts = entries.iter().filter_map(|e| e.start);
    let ends = entries.iter().filter_map(|e| e.end.or(e.start));
    let t0 = journal_start
        .into_iter()
        .chain(starts)
        .fold(f64::INFINITY, f64::min);
    let t1 = journal_end
        .into_iter()
        .chain(ends)
        .fold(f64::NEG_INFINITY, f64::max);
    let (t0, span) = if t0.is_finite() && t1.is_finite() && t1 > t0 {
        (t0, t1 - t0)
    } else if t0.is_finite() {
        (t0, 1.0)
    } else {
        (0.0, 1.0)
    };

    const W: f64 = 1180.0;
    const LABEL: f64 = 330.0;
    const RIGHT: f64 = 70.0;
    const ROW: f64 = 24.0;
    const TOP: f64 = 8.0;
    let plot = W - LABEL - RIGHT;
    let x = |t: f64| LABEL + (t - t0) / span * plot;
    let pauses = pauses(j);
    // A gap row before each new section; a method activity's pauses in
    // rows of their own around it.
    let mut rows: Vec<(f64, Row)> = Vec::new();
    let mut y = TOP;
    let mut last_section = "";
    for e in entries {
        if e.section != last_section {
            rows.push((y, Row::Section(e.section)));
            y += ROW;
            last_section = e.section;
        }
        let (before, after) = match e.section {
            "method" => pauses.get(e.name.as_str()).copied().unwrap_or_default(),
            _ => (0.0, 0.0),
        };
        if let (Some(s), true) = (e.start, before > 0.0) {
            rows.push((
                y,
                Row::Pause(format!("pause before '{}'", e.name), s - before, s),
            ));
            y += ROW;
        }
        rows.push((y, Row::Entry(e)));
        y += ROW;
        if let (Some(end), true) = (e.end.or(e.start), after > 0.0) {
            rows.push((
                y,
                Row::Pause(format!("pause after '{}'", e.name), end, end + after),
            ));
            y += ROW;
        }
    }
    let axis_y = y + 6.0;
    let height = axis_y + 40.0;
    let _ = write!(
        h,
        "<div class=\"svgbox\"><svg class=\"timeline\" viewBox=\"0 0 {W} {height}\" width=\"{W}\" height=\"{height}\" role=\"img\" aria-label=\"Timeline of the activities\">"
    );
    // Grid and axis.
    let step = nice_step(span, 8.0);
    let mut k = 0.0;
    while k <= span + 1e-9 && k / step < 200.0 {
        let gx = x(t0 + k);
        let _ = write!(
            h,
            "<line class=\"grid\" x1=\"{gx:.1}\" y1=\"{TOP}\" x2=\"{gx:.1}\" y2=\"{axis_y}\"/>\
             <text x=\"{gx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} s</text>",
            axis_y + 16.0,
            tick(k)
        );
        k += step;
    }
    let _ =
        write!(
        h,
        "<line x1=\"{LABEL}\" y1=\"{axis_y}\" x2=\"{:.1}\" y2=\"{axis_y}\" stroke=\"#9ca3af\"/>\
         <text x=\"{LABEL}\" y=\"{:.1}\" class=\"muted\">seconds since the start{}</text>",
        W - RIGHT,
        axis_y + 34.0,
        esc(&text(j, "start").map(|s| format!(" ({s})")).unwrap_or_default())
    );
    for (y, row) in rows {
        let e = match row {
            Row::Section(section) => {
                let _ = write!(
                    h,
                    "<rect x=\"0\" y=\"{y}\" width=\"{W}\" height=\"{ROW}\" fill=\"#f3f4f6\"/>\
                     <text x=\"6\" y=\"{:.1}\" font-weight=\"600\">{}</text>",
                    y + 16.0,
                    esc(section_label(section))
                );
                continue;
            }
            Row::Pause(label, from, to) => {
                // Clipped to the run: an aborted pause ends with the run.
                let to = to.min(t0 + span).max(from);
                let bx = x(from.max(t0));
                let bw = ((to - from.max(t0)) / span * plot).max(3.0);
                let _ = write!(
                    h,
                    "<text x=\"24\" y=\"{:.1}\" class=\"muted\">{}</text>\
                     <rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"14\" rx=\"3\" fill=\"#eef0f3\" stroke=\"#9aa5b1\" stroke-dasharray=\"4 3\"><title>{} · {}</title></rect>\
                     <text x=\"{:.1}\" y=\"{:.1}\" class=\"muted\">{}</text>",
                    y + 16.0,
                    esc(&cut(&label, 46)),
                    y + 5.0,
                    esc(&label),
                    esc(&seconds(to - from)),
                    bx + bw + 4.0,
                    y + 16.0,
                    esc(&seconds(to - from)),
                );
                continue;
            }
            Row::Entry(e) => e,
        };
        let label = cut(&e.name, 44);
        let _ = write!(
            h,
            "<text class=\"label\" x=\"14\" y=\"{:.1}\">{}<title>{}</title></text>",
            y + 16.0,
            esc(&label),
            esc(&e.name)
        );
        let tip = format!(
            "{} · {} {} · {}{}",
            e.name,
            section_label(e.section),
            e.kind,
            match e.verdict() {
                "missed" => "tolerance not met",
                other => other,
            },
            e.duration
                .map(|d| format!(" · {}", seconds(d)))
                .unwrap_or_default()
        );
        match e.start {
            Some(s) => {
                let end = e
                    .end
                    .or_else(|| e.duration.map(|d| s + d))
                    .unwrap_or(s)
                    .max(s);
                let bx = x(s);
                let bw = ((end - s) / span * plot).max(3.0);
                let _ = write!(
                    h,
                    "<a href=\"#{id}\"><rect data-row=\"{id}\" x=\"{bx:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"14\" rx=\"3\" fill=\"{}\"><title>{}</title></rect></a>\
                     <text x=\"{:.1}\" y=\"{:.1}\" class=\"muted\">{}</text>",
                    y + 5.0,
                    e.color(),
                    esc(&tip),
                    bx + bw + 4.0,
                    y + 16.0,
                    esc(&e.duration.map(seconds).unwrap_or_default()),
                    id = e.id,
                );
            }
            None => {
                let _ = write!(
                    h,
                    "<text x=\"{LABEL}\" y=\"{:.1}\" class=\"muted\">no start time recorded</text>",
                    y + 16.0
                );
            }
        }
    }
    h.push_str("</svg></div>");
    let _ = writeln!(
        h,
        "<div class=\"legend\"><span><i style=\"background:{GREEN}\"></i>succeeded</span>\
         <span><i style=\"background:{ORANGE}\"></i>tolerance not met</span>\
         <span><i style=\"background:{RED}\"></i>failed</span>\
         <span><i style=\"background:#eef0f3;border:1px solid #9aa5b1\"></i>pause</span>\
         <span class=\"muted\">Hover a bar to find its row; click to jump to it.</span></div></section>"
    );
}

fn activities(h: &mut String, entries: &[Entry]) {
    h.push_str("<section id=\"activities\"><h2>Activities</h2>");
    if entries.is_empty() {
        h.push_str("<p class=\"muted\">None.</p></section>\n");
        return;
    }
    let t0 = entries
        .iter()
        .filter_map(|e| e.start)
        .fold(f64::INFINITY, f64::min);
    h.push_str(
        "<div class=\"tablebox\"><table><thead><tr><th>#</th><th>Phase</th><th>Activity</th><th>Status</th>\
         <th class=\"num\">At</th><th class=\"num\">Took</th><th>Output</th><th>Exception</th></tr></thead><tbody>",
    );
    for (i, e) in entries.iter().enumerate() {
        let status = match e.verdict() {
            "ok" => badge("b-ok", &e.status),
            "failed" => badge("b-bad", &e.status),
            "missed" => badge("b-warn", "tolerance not met"),
            _ => badge("b-muted", &e.status),
        };
        let tolerance = match (e.tolerance, e.tolerance_met) {
            (Some(t), Some(met)) => format!(
                "<div class=\"tol muted\">tolerance <code>{}</code> {}</div>",
                esc(&cut(&t.to_string(), 80)),
                if met { "met" } else { "not met" }
            ),
            (None, Some(true)) => "<div class=\"tol muted\">tolerance met</div>".into(),
            _ => String::new(),
        };
        let at = match e.start {
            Some(s) if t0.is_finite() => format!("+{}", seconds(s - t0)),
            _ => "—".into(),
        };
        let output = if e.attack.is_some() {
            format!(
                "load attack report: <a href=\"#attack-{}\">its charts</a>",
                esc(&e.id)
            )
        } else {
            let mut cell = value_cell(e.output);
            if let Some(d) = e.detail {
                let _ = write!(cell, "<div class=\"muted\">detail: {}</div>", value_cell(d));
            }
            cell
        };
        let exc = e
            .exception
            .as_deref()
            .map(|x| format!("<pre class=\"exc\">{}</pre>", esc(&cut(x, 4000))))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<tr id=\"{}\"><td class=\"num\">{}</td><td class=\"nowrap\">{}</td><td><b>{}</b> <span class=\"muted\">{}</span><div><code>{}</code></div></td>\
             <td>{status}{tolerance}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"out\">{output}</td><td>{exc}</td></tr>",
            e.id,
            i + 1,
            esc(e.section),
            esc(&e.name),
            esc(&e.kind),
            esc(&e.provider),
            esc(&at),
            esc(&e.duration.map(seconds).unwrap_or_else(|| "—".into())),
        );
    }
    h.push_str("</tbody></table></div></section>\n");
}

fn stop_reason(r: &Value) -> (String, &'static str) {
    let kind = text(r, "kind").unwrap_or("unknown");
    let n = |k: &str| count(num(r, k));
    match kind {
        "completed" => ("ran every stage".into(), "b-ok"),
        "violations" => (
            format!("stopped: {} violations (max {})", n("count"), n("max")),
            "b-bad",
        ),
        "server_errors" => (
            format!("stopped: {} 5xx responses (max {})", n("count"), n("max")),
            "b-bad",
        ),
        "errors" => (
            format!(
                "stopped: {} transport errors (max {})",
                n("count"),
                n("max")
            ),
            "b-bad",
        ),
        "aborted" => (
            format!("aborted: {}", text(r, "reason").unwrap_or("stop signal")),
            "b-warn",
        ),
        other => (other.to_string(), "b-muted"),
    }
}

fn errors_total(stats: &Value) -> f64 {
    stats
        .get("errors")
        .and_then(Value::as_object)
        .map(|o| {
            o.values()
                .filter_map(Value::as_f64)
                .filter(|x| x.is_finite())
                .sum()
        })
        .unwrap_or(0.0)
}

const CLASS_COLORS: [(&str, &str); 6] = [
    ("1xx", "#9aa5b1"),
    ("2xx", "#2e9d5b"),
    ("3xx", "#3b82c4"),
    ("4xx", "#e0a526"),
    ("5xx", "#d64545"),
    ("errors", "#6b4fa0"),
];
const LATENCY_COLORS: [(&str, &str); 3] =
    [("p50", "#93c5e8"), ("p90", "#3b82c4"), ("p99", "#1d4f91")];

fn stage_label(s: &Value, i: usize) -> String {
    let index = s
        .get("stage")
        .and_then(Value::as_u64)
        .map_or(i + 1, |n| n as usize + 1);
    format!("stage {index}")
}

fn legend(items: &[(&str, &str)]) -> String {
    let mut l = String::from("<div class=\"legend\">");
    for (name, color) in items {
        let _ = write!(
            l,
            "<span><i style=\"background:{color}\"></i>{}</span>",
            esc(name)
        );
    }
    l.push_str("</div>");
    l
}

/// A chart's size and margins.
#[derive(Clone, Copy)]
struct Chart {
    w: f64,
    ht: f64,
    left: f64,
    top: f64,
    bottom: f64,
}

/// Chart frame: y grid and labels up to `max`; returns the top value of
/// the y axis and the plot's height.
fn frame(h: &mut String, c: Chart, max: f64, unit: &str) -> (f64, f64) {
    let Chart {
        w,
        ht,
        left,
        top,
        bottom,
    } = c;
    let step = nice_step(max, 5.0);
    let top_value = (max / step).ceil().max(1.0) * step;
    let plot_h = ht - top - bottom;
    let mut v = 0.0;
    while v <= top_value + 1e-9 {
        let y = top + plot_h - v / top_value * plot_h;
        let _ = write!(
            h,
            "<line class=\"grid\" x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}{}</text>",
            w - 10.0,
            left - 6.0,
            y + 4.0,
            tick(v),
            esc(unit)
        );
        v += step;
    }
    (top_value, plot_h)
}

/// Responses per status class (and transport errors), stacked, per stage.
fn classes_chart(stages: &[Value]) -> String {
    let chart = Chart {
        w: 560.0,
        ht: 300.0,
        left: 64.0,
        top: 12.0,
        bottom: 48.0,
    };
    let Chart {
        w, ht, left, top, ..
    } = chart;
    // A stage's responses of one class, or its transport errors.
    let value = |s: &Value, k: &str| {
        if k == "errors" {
            errors_total(s)
        } else {
            s.get("classes").map_or(0.0, |c| num(c, k))
        }
    };
    let totals: Vec<f64> = stages
        .iter()
        .map(|s| CLASS_COLORS.iter().map(|(k, _)| value(s, k)).sum())
        .collect();
    let max = totals.iter().cloned().fold(0.0, f64::max);
    let mut h = format!(
        "<svg viewBox=\"0 0 {w} {ht}\" width=\"{w}\" height=\"{ht}\" role=\"img\" aria-label=\"Responses per status class and stage\">"
    );
    let (top_value, plot_h) = frame(&mut h, chart, max, "");
    let n = stages.len().max(1) as f64;
    let slot = (w - left - 10.0) / n;
    let bw = (slot * 0.6).min(90.0);
    for (i, s) in stages.iter().enumerate() {
        let cx = left + slot * (i as f64 + 0.5);
        let mut y = top + plot_h;
        for (k, color) in CLASS_COLORS {
            let v = value(s, k);
            if v <= 0.0 {
                continue;
            }
            let bh = v / top_value * plot_h;
            y -= bh;
            let _ = write!(
                h,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{} · {k}: {}</title></rect>",
                cx - bw / 2.0,
                esc(&stage_label(s, i)),
                count(v)
            );
        }
        let _ = write!(
            h,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"muted\">{} users · {}</text>\
             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"600\">{}</text>",
            top + plot_h + 16.0,
            esc(&stage_label(s, i)),
            top + plot_h + 32.0,
            count(num(s, "users")),
            esc(&seconds(num(s, "duration_s"))),
            (y - 4.0).max(10.0),
            count(totals[i]),
        );
    }
    h.push_str("</svg>");
    h
}

/// Latency p50 / p90 / p99 per stage, grouped bars.
fn latency_chart(stages: &[Value]) -> String {
    let chart = Chart {
        w: 560.0,
        ht: 300.0,
        left: 64.0,
        top: 16.0,
        bottom: 48.0,
    };
    let Chart {
        w, ht, left, top, ..
    } = chart;
    let lat = |s: &Value, k: &str| s.get("latency_ms").map_or(0.0, |l| num(l, k));
    let max = stages
        .iter()
        .flat_map(|s| LATENCY_COLORS.iter().map(move |(k, _)| lat(s, k)))
        .fold(0.0, f64::max);
    let mut h = format!(
        "<svg viewBox=\"0 0 {w} {ht}\" width=\"{w}\" height=\"{ht}\" role=\"img\" aria-label=\"Latency percentiles per stage\">"
    );
    let (top_value, plot_h) = frame(&mut h, chart, max, " ms");
    let n = stages.len().max(1) as f64;
    let slot = (w - left - 10.0) / n;
    let bw = (slot * 0.8 / 3.0).min(36.0);
    for (i, s) in stages.iter().enumerate() {
        let cx = left + slot * (i as f64 + 0.5);
        let approximate = s
            .pointer("/latency_ms/approximate")
            .and_then(Value::as_bool)
            == Some(true);
        for (j, (k, color)) in LATENCY_COLORS.iter().enumerate() {
            let v = lat(s, k);
            let bh = v / top_value * plot_h;
            let bx = cx + (j as f64 - 1.5) * bw;
            let by = top + plot_h - bh;
            let value = format!("{}{}", if approximate { "≤" } else { "" }, ms(v));
            let _ = write!(
                h,
                "<rect x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{} · {k}: {value} ms</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{value}</text>",
                bw - 2.0,
                esc(&stage_label(s, i)),
                bx + bw / 2.0 - 1.0,
                (by - 3.0).max(10.0),
            );
        }
        let _ = write!(
            h,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"muted\">max {} ms</text>",
            top + plot_h + 16.0,
            esc(&stage_label(s, i)),
            top + plot_h + 32.0,
            ms(lat(s, "max")),
        );
    }
    h.push_str("</svg>");
    h
}

fn statuses(stats: &Value) -> String {
    let mut parts: Vec<String> = stats
        .get("statuses")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(code, n)| format!("{} ×{}", code, count(n.as_f64().unwrap_or(0.0))))
                .collect()
        })
        .unwrap_or_default();
    let other = num(stats, "other_statuses");
    if other > 0.0 {
        parts.push(format!("other ×{}", count(other)));
    }
    parts.join(", ")
}

fn expected(v: Option<&Value>) -> String {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(" or ")
        })
        .unwrap_or_default()
}

fn kpi(h: &mut String, label: &str, value: String, bad: bool) {
    let _ = write!(
        h,
        "<div class=\"kpi{}\"><span class=\"muted\">{}</span><b>{}</b></div>",
        if bad { " bad" } else { "" },
        esc(label),
        esc(&value)
    );
}

/// A load attack run entry: figures, charts, stages, violations, samples.
fn attack(h: &mut String, e: &Entry) {
    let Some(r) = e.attack else { return };
    let stages: Vec<Value> = r
        .get("stages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let totals = r.get("totals").unwrap_or(&Value::Null);
    let (reason, reason_class) = stop_reason(r.get("stop_reason").unwrap_or(&Value::Null));
    let _ = write!(
        h,
        "<section class=\"attack\" id=\"attack-{}\"><h2>Load attack: {}</h2>\
         <p>{} target <code>{}</code> · {} · {} share{}{}</p><div class=\"kpis\">",
        esc(&e.id),
        esc(&e.name),
        badge(reason_class, &reason),
        esc(text(r, "target").unwrap_or("?")),
        esc(&seconds(num(r, "duration_s"))),
        count(num(r, "shares").max(1.0)),
        if num(r, "shares") > 1.0 { "s" } else { "" },
        if r.get("trimmed").and_then(Value::as_bool) == Some(true) {
            " · <span class=\"badge b-warn\">trimmed to fit the state</span>"
        } else {
            ""
        }
    );
    let violations = num(totals, "violations");
    let c5 = totals.get("classes").map_or(0.0, |c| num(c, "5xx"));
    let errs = errors_total(totals);
    kpi(h, "requests", count(num(totals, "requests")), false);
    kpi(h, "requests/s", format!("{:.1}", num(totals, "rps")), false);
    kpi(h, "violations", count(violations), violations > 0.0);
    kpi(h, "5xx responses", count(c5), c5 > 0.0);
    kpi(h, "transport errors", count(errs), errs > 0.0);
    if let Some(l) = totals.get("latency_ms") {
        kpi(
            h,
            "p50 / p99 latency",
            format!("{} / {} ms", ms(num(l, "p50")), ms(num(l, "p99"))),
            false,
        );
    }
    h.push_str("</div>");
    if !stages.is_empty() {
        let _ = write!(
            h,
            "<div class=\"charts\"><figure><div class=\"svgbox\">{}</div>{}<figcaption>Responses per status class in each stage (transport errors on top).</figcaption></figure>\
             <figure><div class=\"svgbox\">{}</div>{}<figcaption>Response latency per stage (send to last body byte).</figcaption></figure></div>",
            classes_chart(&stages),
            legend(&CLASS_COLORS),
            latency_chart(&stages),
            legend(&LATENCY_COLORS)
        );
        h.push_str(
            "<h3>Stages</h3><div class=\"tablebox\"><table><thead><tr><th>Stage</th><th class=\"num\">Users</th><th class=\"num\">Planned</th><th class=\"num\">Took</th>\
             <th class=\"num\">Requests</th><th class=\"num\">Req/s</th><th>Statuses</th><th class=\"num\">Errors</th><th class=\"num\">Violations</th>\
             <th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th><th class=\"num\">max</th></tr></thead><tbody>",
        );
        for (i, s) in stages.iter().enumerate() {
            let l = s.get("latency_ms").unwrap_or(&Value::Null);
            let _ = write!(
                h,
                "<tr><td class=\"nowrap\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{:.1}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{} ms</td><td class=\"num\">{} ms</td><td class=\"num\">{} ms</td><td class=\"num\">{} ms</td></tr>",
                esc(&stage_label(s, i)),
                count(num(s, "users")),
                esc(&seconds(num(s, "planned_s"))),
                esc(&seconds(num(s, "duration_s"))),
                count(num(s, "requests")),
                num(s, "rps"),
                esc(&statuses(s)),
                count(errors_total(s)),
                count(num(s, "violations")),
                ms(num(l, "p50")),
                ms(num(l, "p90")),
                ms(num(l, "p99")),
                ms(num(l, "max")),
            );
        }
        h.push_str("</tbody></table></div>");
    }
    h.push_str("<h3>Violations</h3>");
    let lines: Vec<&str> = r
        .get("violations")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if lines.is_empty() {
        h.push_str("<p class=\"muted\">None: every response was one its request expected.</p>");
    } else {
        h.push_str("<ul class=\"violations\">");
        for l in lines {
            let _ = write!(h, "<li>{}</li>", esc(l));
        }
        h.push_str("</ul>");
    }
    let templates = r.get("requests").and_then(Value::as_array);
    if let Some(templates) = templates.filter(|t| !t.is_empty()) {
        h.push_str(
            "<h3>Requests</h3><div class=\"tablebox\"><table><thead><tr><th>Name</th><th>Template</th><th>Request</th><th>Expected</th>\
             <th class=\"num\">Requests</th><th>Statuses</th><th class=\"num\">Errors</th><th class=\"num\">Violations</th></tr></thead><tbody>",
        );
        for t in templates {
            let v = num(t, "violations");
            let _ = write!(
                h,
                "<tr><td><b>{}</b></td><td><code>{}</code></td><td><code>{} {}</code></td><td>{}</td><td class=\"num\">{}</td>\
                 <td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(text(t, "name").unwrap_or("?")),
                esc(text(t, "template").unwrap_or("")),
                esc(text(t, "method").unwrap_or("")),
                esc(text(t, "path").unwrap_or("")),
                esc(&expected(t.get("expected"))),
                count(num(t, "requests")),
                esc(&statuses(t)),
                count(num(t, "errors")),
                if v > 0.0 {
                    badge("b-bad", &count(v))
                } else {
                    "0".into()
                },
            );
        }
        h.push_str("</tbody></table></div>");
        samples(h, templates);
    }
    let errors: Vec<&str> = r
        .get("error_samples")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !errors.is_empty() {
        h.push_str("<h3>Transport errors</h3><ul>");
        for e in errors {
            let _ = write!(h, "<li><code>{}</code></li>", esc(e));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>\n");
}

fn samples(h: &mut String, templates: &[Value]) {
    let all: Vec<(&str, &Value)> = templates
        .iter()
        .flat_map(|t| {
            let name = text(t, "name").unwrap_or("?");
            t.get("samples")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(move |s| (name, s))
        })
        .collect();
    if all.is_empty() {
        return;
    }
    h.push_str("<h3>Violation samples</h3><div class=\"samples\">");
    let empty = Map::new();
    for (name, s) in all {
        let req = s.get("request").unwrap_or(&Value::Null);
        let resp = s.get("response").unwrap_or(&Value::Null);
        let headers: Vec<String> = req
            .get("headers")
            .and_then(Value::as_object)
            .unwrap_or(&empty)
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}: {}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_string)
                )
            })
            .collect();
        let status = num(resp, "status");
        let _ = write!(
            h,
            "<div class=\"sample\"><b>{}</b> <span class=\"muted\">expected {}</span>\
             <pre>{} {}\n{}\n\n{}</pre>\
             <div>→ {}</div><pre>{}</pre></div>",
            esc(name),
            esc(&expected(s.get("expected"))),
            esc(text(req, "method").unwrap_or("?")),
            esc(text(req, "path").unwrap_or("?")),
            esc(&headers.join("\n")),
            esc(&cut(text(req, "body").unwrap_or(""), 2000)),
            badge(
                if status >= 500.0 { "b-bad" } else { "b-warn" },
                &format!("{status:.0}")
            ),
            esc(&cut(text(resp, "body").unwrap_or(""), 2000)),
        );
    }
    h.push_str("</div>");
}

/// A row of the timeline.
enum Row<'a> {
    Section(&'static str),
    Entry(&'a Entry<'a>),
    /// A pause: its label, and from when to when (seconds since the epoch).
    Pause(String, f64, f64),
}

/// Each method activity's pauses (before, after) as they ran: in seconds,
/// time-scaled as the run scaled them. `${name}` pauses are read from the
/// experiment's configuration when it has them as literals.
fn pauses(j: &Value) -> std::collections::BTreeMap<&str, (f64, f64)> {
    let scale = j
        .pointer("/turbulence/time_scale")
        .and_then(Value::as_f64)
        .filter(|s| *s > 0.0 && *s <= 1.0)
        .unwrap_or(1.0);
    let config = j.pointer("/experiment/configuration");
    let seconds = |v: Option<&Value>| -> f64 {
        let v = match v {
            Some(Value::String(s)) => s
                .strip_prefix("${")
                .and_then(|r| r.strip_suffix('}'))
                .and_then(|name| config.and_then(|c| c.get(name))),
            other => other,
        };
        v.and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(0.0)
            * scale
    };
    let mut out = std::collections::BTreeMap::new();
    for a in j
        .pointer("/experiment/method")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(p)) = (text(a, "name"), a.get("pauses")) else {
            continue;
        };
        out.insert(name, (seconds(p.get("before")), seconds(p.get("after"))));
    }
    out
}

/// Rollbacks that failed: each needs a look at the account.
fn failed_rollbacks(j: &Value) -> usize {
    j.get("rollbacks").and_then(Value::as_array).map_or(0, |r| {
        r.iter()
            .filter(|r| text(r, "status") == Some("failed"))
            .count()
    })
}

/// The plain verdict first: what happened, in one line, and why.
fn verdict_section(h: &mut String, j: &Value, entries: &[Entry]) {
    let status = text(j, "status").unwrap_or("unknown");
    let deviated = j.get("deviated").and_then(Value::as_bool) == Some(true);
    let error = j.pointer("/turbulence/error").and_then(Value::as_str);
    let cause = j.pointer("/turbulence/cause").and_then(Value::as_str);
    let when = text(j, "end")
        .map(|e| format!(" at {e}"))
        .unwrap_or_default();
    let missed = |section: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e.section == section && e.tolerance_met == Some(false))
            .map(|e| match e.tolerance {
                Some(t) => format!("'{}' (tolerance {})", e.name, cut(&t.to_string(), 60)),
                None => format!("'{}'", e.name),
            })
            .collect()
    };
    let failed_step = entries
        .iter()
        .find(|e| e.status == "failed" && e.section != "rollback");
    let mut details: Vec<String> = Vec::new();
    let (class, title) = if deviated {
        let probes = missed("after");
        details.push(if probes.is_empty() {
            "The hypothesis was not met after the method.".into()
        } else {
            format!("Not met after the method: {}.", probes.join(", "))
        });
        (
            "v-bad",
            "Deviated: the steady state did not hold".to_string(),
        )
    } else {
        match status {
            "completed" => {
                details
                    .push("The steady-state hypothesis held before and after the method.".into());
                ("v-ok", "Completed: the steady state held".to_string())
            }
            "aborted" => {
                let by = match cause {
                    Some(c) if c.contains("kill switch") => "the kill switch".to_string(),
                    Some(c) => alarms_in(c)
                        .map(|a| format!("abort alarm {a}"))
                        .unwrap_or_else(|| "an abort condition".into()),
                    None => "an abort condition".into(),
                };
                ("v-warn", format!("Aborted by {by}{when}"))
            }
            "interrupted" => {
                details.push(
                    "The execution was stopped or timed out; the janitor ran the rollbacks.".into(),
                );
                ("v-warn", format!("Interrupted{when}"))
            }
            _ => {
                let title = match (error, failed_step) {
                    (Some("ExperimentInvalid"), _) => {
                        "Failed: Plan refused the experiment; nothing was touched".to_string()
                    }
                    (Some("GuardRefused"), _) => {
                        "Refused by a guard; nothing was touched".to_string()
                    }
                    (Some("SteadyStateDeviated"), _) => {
                        let probes = missed("before");
                        format!(
                            "Failed: the system was not steady before the method{}",
                            if probes.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", probes.join(", "))
                            }
                        )
                    }
                    (Some("RollbackFailed"), _) => "Failed: a rollback failed".to_string(),
                    (_, Some(step)) => format!("Failed at '{}'", step.name),
                    (Some(e), None) => format!("Failed: {e}"),
                    (None, None) => format!("Ended {status}"),
                };
                ("v-bad", title)
            }
        }
    };
    if status != "completed" || deviated {
        if let Some(c) = cause {
            details.push(cut(c, 600));
        }
    }
    let failed = failed_rollbacks(j);
    if failed > 0 {
        details.push(format!(
            "{failed} rollback{} failed: look at the account, what they undo may still be changed.",
            if failed == 1 { "" } else { "s" }
        ));
    }
    let _ = write!(
        h,
        "<section id=\"verdict\" class=\"verdict {class}\"><h2>{}</h2>",
        esc(&title)
    );
    for d in details {
        let _ = write!(h, "<p>{}</p>", esc(&d));
    }
    h.push_str("</section>\n");
}

/// `'a', 'b'` out of `abort alarm 'a', 'b' in ALARM ...`.
fn alarms_in(cause: &str) -> Option<&str> {
    let rest = cause.split_once("abort alarm ")?.1;
    Some(
        rest.split_once(" in ALARM")
            .map_or(rest, |(names, _)| names),
    )
}

/// What happened to the target over the run: each series the journal
/// function collected (`turbulence.metrics`: abort alarms' metrics with
/// their threshold and when they fired, metric probes' metrics, an ECS
/// service's desired and running tasks), one chart each.
fn target_section(h: &mut String, j: &Value) {
    let Some(series) = j
        .pointer("/turbulence/metrics")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
    else {
        return;
    };
    let t0 = text(j, "start").and_then(parse_time);
    let t1 = text(j, "end").and_then(parse_time);
    h.push_str("<section id=\"target\"><h2>The target over time</h2><div class=\"charts\">");
    for s in series {
        metric_chart(h, s, t0, t1);
    }
    h.push_str("</div></section>\n");
}

const LINE_COLORS: [&str; 4] = ["#1d4f91", "#2e9d5b", "#8a4b00", "#6b21a8"];

fn metric_chart(h: &mut String, s: &Value, t0: Option<f64>, t1: Option<f64>) {
    const W: f64 = 560.0;
    const H: f64 = 220.0;
    const L: f64 = 56.0;
    const R: f64 = 16.0;
    const T: f64 = 12.0;
    const B: f64 = 40.0;
    let title = text(s, "title").unwrap_or("metric");
    let lines: Vec<(&str, Vec<(f64, f64)>)> = s
        .get("lines")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|l| {
            let points = l
                .get("points")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let t = p.get(0).and_then(Value::as_str).and_then(parse_time)?;
                    let v = p.get(1).and_then(Value::as_f64).filter(|v| v.is_finite())?;
                    Some((t, v))
                })
                .collect();
            (text(l, "name").unwrap_or(""), points)
        })
        .collect();
    let threshold = s
        .get("threshold")
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite());
    let fired = text(s, "fired_at").and_then(parse_time);
    let times = lines.iter().flat_map(|(_, p)| p.iter().map(|(t, _)| *t));
    let (mut lo, mut hi) = (t0.unwrap_or(f64::INFINITY), t1.unwrap_or(f64::NEG_INFINITY));
    for t in times.chain(fired) {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    let _ = write!(h, "<figure><div class=\"svgbox\">");
    let values = lines.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v));
    let vmax = values.chain(threshold).fold(0.0_f64, f64::max);
    if !lo.is_finite() || !hi.is_finite() || lines.iter().all(|(_, p)| p.is_empty()) {
        let note = text(s, "note").unwrap_or("no datapoints in the run's window");
        let _ = write!(
            h,
            "<p class=\"muted\">{}</p></div><figcaption>{}</figcaption></figure>",
            esc(note),
            esc(title)
        );
        return;
    }
    let span = (hi - lo).max(1.0);
    let vtop = if vmax > 0.0 {
        nice_step(vmax, 4.0) * 4.0
    } else {
        1.0
    };
    let x = |t: f64| L + (t - lo) / span * (W - L - R);
    let y = |v: f64| T + (1.0 - v / vtop) * (H - T - B);
    let _ = write!(
        h,
        "<svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for k in 0..=4 {
        let v = vtop * f64::from(k) / 4.0;
        let gy = y(v);
        let _ = write!(
            h,
            "<line class=\"grid\" x1=\"{L}\" y1=\"{gy:.1}\" x2=\"{:.1}\" y2=\"{gy:.1}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - R,
            L - 6.0,
            gy + 4.0,
            tick(v)
        );
    }
    let _ = write!(
        h,
        "<text x=\"{L}\" y=\"{:.1}\">0 s</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        H - B + 16.0,
        W - R,
        H - B + 16.0,
        esc(&seconds(span))
    );
    if let Some(th) = threshold {
        let ty = y(th);
        let _ = write!(
            h,
            "<line x1=\"{L}\" y1=\"{ty:.1}\" x2=\"{:.1}\" y2=\"{ty:.1}\" stroke=\"{RED}\" stroke-dasharray=\"5 4\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{RED}\">threshold {}</text>",
            W - R,
            W - R,
            ty - 4.0,
            tick(th)
        );
    }
    if let Some(f) = fired {
        let fx = x(f);
        let _ = write!(
            h,
            "<line x1=\"{fx:.1}\" y1=\"{T}\" x2=\"{fx:.1}\" y2=\"{:.1}\" stroke=\"{RED}\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{RED}\" text-anchor=\"{}\">fired</text>",
            H - B,
            // Beside the line, on whichever side has room.
            if fx > W - R - 40.0 { fx - 3.0 } else { fx + 3.0 },
            T + 10.0,
            if fx > W - R - 40.0 { "end" } else { "start" }
        );
    }
    for (i, (name, points)) in lines.iter().enumerate() {
        let color = LINE_COLORS[i % LINE_COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let _ = write!(
            h,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            path.join(" "),
            esc(name)
        );
    }
    h.push_str("</svg></div>");
    let names: Vec<(&str, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (*n, LINE_COLORS[i % LINE_COLORS.len()]))
        .collect();
    if names.len() > 1 {
        h.push_str(&legend(&names));
    }
    let _ = write!(h, "<figcaption>{}</figcaption></figure>", esc(title));
}

fn raw(h: &mut String, j: &Value) {
    let text = serde_json::to_string_pretty(j).unwrap_or_default();
    let shown = cut(&text, RAW_CHARS);
    let _ = writeln!(
        h,
        "<section id=\"raw\"><details><summary>The journal as JSON ({} KiB{})</summary><pre>{}</pre></details></section>",
        text.len().div_ceil(1024),
        if shown.len() < text.len() { ", cut" } else { "" },
        esc(&shown)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        // The CLI's fixtures: journals of real runs.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../cli/tests/fixtures")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn escapes_everything_that_could_be_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn a_script_in_an_activity_name_is_text() {
        let mut j = fixture("journal-api-abuse-deviated.json");
        let evil = "<script>alert(\"pwned\")</script><img src=x onerror=alert(1)>";
        j["run"][0]["activity"]["name"] = json!(evil);
        j["experiment"]["title"] = json!(evil);
        j["run"][1]["output"]["violations"][0] = json!(evil);
        j["run"][1]["output"]["requests"][0]["samples"][0]["response"]["body"] = json!(evil);
        j["turbulence"]["cause"] = json!(evil);
        let html = render(&j).unwrap();
        assert!(!html.contains("<script>alert"), "raw script in the page");
        assert!(!html.contains("<img src=x"), "raw img in the page");
        assert!(html.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;"));
        // The page's own script is the only one.
        assert_eq!(html.matches("<script>").count(), 1);
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
    }

    #[test]
    fn the_report_has_every_part() {
        let j = fixture("journal-api-abuse-deviated.json");
        let html = render(&j).unwrap();
        for needle in [
            "<title>The moderation API rejects bad credentials under load · Turbulence report</title>",
            "badge b-bad\">failed</span>",
            "badge b-bad\">deviated</span>",
            "steady state after: not met",
            "arn:aws:states:us-east-1:123456789012:execution:turbulence-api-abuse:turbulence-the-moderation-api-rejects-bad-1767258000000",
            "SteadyStateDeviated",
            "estimated_usd",
            "id=\"timeline\"",
            "id=\"activities\"",
            "Load attack: abuse-the-api",
            "aria-label=\"Responses per status class and stage\"",
            "aria-label=\"Latency percentiles per stage\"",
            "invalid-token: expected 401 or 403, saw 500 ×449",
            "Violation samples",
            "tolerance not met",
        ] {
            assert!(html.contains(needle), "missing {needle:?}");
        }
        // One bar per activity, each linking to its row.
        let activities = j["run"].as_array().unwrap().len()
            + j["rollbacks"].as_array().unwrap().len()
            + j["steady_states"]["before"]["probes"]
                .as_array()
                .unwrap()
                .len()
            + j["steady_states"]["after"]["probes"]
                .as_array()
                .unwrap()
                .len();
        assert_eq!(html.matches("<rect data-row=\"act-").count(), activities);
        for i in 1..=activities {
            assert!(html.contains(&format!("<tr id=\"act-{i}\">")));
        }
        // Nothing external.
        assert!(!html.contains("src=\""), "no element loads anything");
        assert!(!html.contains("<link"), "no stylesheet link");
        assert!(!html.contains("url("), "no CSS url()");
    }

    #[test]
    fn a_failed_run_from_the_local_stack_renders() {
        let j = fixture("journal-ecs-action-failed.json");
        let html = render(&j).unwrap();
        assert!(html.contains("ActivityFailed"));
        assert!(html.contains("class=\"exc\""), "the exception is shown");
        assert!(!html.contains("Load attack:"));
    }

    #[test]
    fn odd_journals_render_without_panicking() {
        for j in [
            json!({"status": null}),
            json!({"run": 1, "steady_states": [], "rollbacks": {"a": 1}}),
            json!({"run": [{"activity": null, "start": "yesterday", "duration": -1}], "status": 5}),
            json!({"run": [{"activity": {"name": "x"}, "start": "2026-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}]}),
            json!({"run": [{"activity": {"name": "x"}, "output": {"stages": [{"classes": {}, "latency_ms": {"p50": "fast"}}], "totals": {}, "stop_reason": null}}]}),
            json!({"run": [{"activity": {"name": "x"}, "output": {"stages": [], "totals": {}, "stop_reason": {"kind": "aborted"}}}]}),
            json!({"status": "completed", "turbulence": {"cost": 3, "x": [1, 2]}}),
        ] {
            let html = render(&j).unwrap();
            assert!(html.ends_with("</html>\n"));
            assert!(!html.contains("NaN") && !html.contains("inf\""), "{html}");
        }
        assert!(render(&json!([1])).is_err());
        let e = render(&json!({"title": "t", "method": []})).unwrap_err();
        // Key order depends on serde_json's preserve_order, which other
        // crates of the workspace may turn on.
        assert!(
            e.contains("not a journal") && e.contains("method") && e.contains("title"),
            "{e}"
        );
    }

    #[test]
    fn the_verdict_comes_first_and_says_what_happened() {
        let verdict = |j: &Value| {
            let html = render(j).unwrap();
            let start = html.find("<section id=\"verdict\"").expect("a verdict");
            assert!(
                start < html.find("<section id=\"run\"").unwrap(),
                "verdict first"
            );
            let end = start + html[start..].find("</section>").unwrap();
            html[start..end].to_string()
        };
        let failed = fixture("journal-ecs-action-failed.json");
        let v = verdict(&failed);
        assert!(
            v.contains("v-bad") && v.contains("Failed at &#39;stop-random-task&#39;"),
            "{v}"
        );
        assert!(v.contains("no running tasks in service"), "{v}");
        // A failed run is not "not deviated" in green.
        let html = render(&failed).unwrap();
        assert!(
            !html.contains("badge b-ok\">not deviated"),
            "a failed run shows no green 'not deviated'"
        );
        assert!(html.contains("deviation not judged"));

        let deviated = fixture("journal-api-abuse-deviated.json");
        let v = verdict(&deviated);
        assert!(v.contains("Deviated: the steady state did not hold"), "{v}");
        // Key order follows serde_json's features: look for the parts.
        assert!(
            v.contains("Not met after the method: &#39;no-5xx-from-the-api&#39; (tolerance {")
                && v.contains("&quot;range&quot;:[0,0]"),
            "{v}"
        );

        let mut aborted = failed.clone();
        aborted["status"] = json!("aborted");
        aborted["turbulence"]["error"] = json!("ExperimentAborted");
        aborted["turbulence"]["cause"] =
            json!("abort alarm 'api-5xx' in ALARM during 'pause after 'scale-service-to-zero''");
        let v = verdict(&aborted);
        assert!(
            v.contains("v-warn") && v.contains("Aborted by abort alarm &#39;api-5xx&#39; at 20"),
            "{v}"
        );

        let mut completed = failed.clone();
        completed["status"] = json!("completed");
        completed["turbulence"]["error"] = Value::Null;
        completed["run"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["status"] == "succeeded");
        let v = verdict(&completed);
        assert!(
            v.contains("v-ok") && v.contains("Completed: the steady state held"),
            "{v}"
        );

        // A failed rollback has a badge of its own, and the verdict says it.
        let mut bad_rollback = completed.clone();
        bad_rollback["rollbacks"] = json!([{"activity": {"name": "restore", "type": "action"}, "status": "failed",
            "start": "2026-11-25T23:16:12Z", "end": "2026-11-25T23:16:13Z", "exception": "AccessDenied"}]);
        let html = render(&bad_rollback).unwrap();
        assert!(
            html.contains("badge b-bad\">1 rollback failed</span>"),
            "a badge of its own"
        );
        assert!(verdict(&bad_rollback).contains("1 rollback failed: look at the account"));
    }

    #[test]
    fn pauses_are_drawn_as_pauses_and_tolerances_shown() {
        let j = fixture("journal-ecs-action-failed.json");
        let html = render(&j).unwrap();
        // The 150 s pause after the stop, at the run's 1/600 scale.
        assert!(
            html.contains("pause after &#39;scale-service-to-zero&#39;")
                || html.contains("pause after &#39;stop-random-task&#39;"),
            "a labelled pause row"
        );
        assert!(
            html.contains("stroke-dasharray=\"4 3\""),
            "drawn as a pause"
        );
        let deviated = render(&fixture("journal-api-abuse-deviated.json")).unwrap();
        let cells: Vec<&str> = deviated
            .split("<div class=\"tol muted\">")
            .skip(1)
            .map(|rest| &rest[..rest.find("</div>").unwrap()])
            .collect();
        assert!(
            cells
                .iter()
                .any(|c| c.contains("&quot;range&quot;:[0,0]") && c.ends_with("</code> not met")),
            "the tolerance beside 'not met': {cells:?}"
        );
        assert!(
            cells.iter().any(|c| c.ends_with("</code> met")),
            "{cells:?}"
        );
    }

    #[test]
    fn the_target_over_time_is_charted_with_threshold_and_firing() {
        let mut j = fixture("journal-ecs-action-failed.json");
        let start = j["start"].as_str().unwrap().to_string();
        let end = j["end"].as_str().unwrap().to_string();
        j["turbulence"]["metrics"] = json!([
            {"title": "abort alarm 'api-5xx': AWS/ApiGateway 5XXError (Sum, 60 s)", "source": "alarm",
             "lines": [{"name": "5XXError", "points": [[start, 0.0], [end, 12.0]]}],
             "threshold": 5.0, "fired_at": end},
            {"title": "ECS service 'web': tasks", "source": "ecs",
             "lines": [{"name": "desired", "points": [[start, 3], [end, 0]]}, {"name": "running", "points": [[start, 3], [end, 1]]}]},
            {"title": "empty", "lines": [], "note": "no datapoints: nothing published the metric"}
        ]);
        let html = render(&j).unwrap();
        assert!(html.contains("<section id=\"target\"><h2>The target over time</h2>"));
        assert!(html.contains("threshold 5"));
        assert!(html.contains(">fired</text>"));
        assert_eq!(html.matches("<polyline").count(), 3);
        assert!(html.contains("no datapoints: nothing published the metric"));
        assert!(!render(&fixture("journal-ecs-action-failed.json"))
            .unwrap()
            .contains("id=\"target\""));
    }

    #[test]
    fn attack_reports_are_found_by_shape() {
        let j = fixture("journal-api-abuse-deviated.json");
        let report = &j["run"][1]["output"];
        assert!(attack_report(report).is_some());
        assert!(attack_report(&json!({"report": report})).is_some());
        assert!(attack_report(&json!({"stages": [], "totals": {}})).is_none());
        assert!(attack_report(&json!(true)).is_none());
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(7.0, 8.0), 1.0);
        assert_eq!(nice_step(3600.0, 8.0), 500.0);
        assert_eq!(nice_step(0.4, 5.0), 0.1);
        assert_eq!(tick(0.30000000000000004), "0.3");
        assert_eq!(count(1_234_567.0), "1,234,567");
    }
}
