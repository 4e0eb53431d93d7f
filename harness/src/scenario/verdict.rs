//! Conformance verdicts: the scenarios of a profile (every one names a `clause` and a `level`) read as a
//! table of requirements, the way a certification suite reports, with the evidence behind each verdict:
//! the failing step's message, what the service provider answered in that step, and the IdP's request-log
//! lines of that part of the run (the tampering fault that was applied among them).
//!
//! A run is a profile run when every scenario in it has a `level` ([`is_profile`]). Its exit status then
//! follows the verdict, not the raw pass count: a `recommended` requirement that is not met is reported
//! but does not fail the run, nor does one that was not applicable; a `required` one does
//! ([`exit_code`]).

use std::fmt::Write;

use serde_json::Value;

use super::report::{self, printable, printable_line, xml};
use super::runner::{HttpRecord, Outcome, ScenarioReport};

/// Most request-log lines quoted as evidence for one requirement.
const EVIDENCE_LINES: usize = 16;

/// The verdict on one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The service provider behaved as the requirement says.
    Pass,
    /// A `required` requirement is not met: the service provider does not conform.
    Fail,
    /// A `recommended` requirement is not met: reported, not a conformance failure.
    NotMet,
    /// The scenario did not run against this service provider (e.g. a stub-only check and `--target`).
    Skipped,
    /// The requirement was not exercised: the scenario installed a fault, the service provider redeemed
    /// its code, but the IdP never applied the fault to an answer, so the failure that followed says
    /// nothing about the requirement. The nonce defects do this when the service provider sends no nonce
    /// (the code flow allows that; OpenID Connect Core §3.1.3.7 item 11 then asks nothing).
    NotApplicable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::NotMet => "not met",
            Verdict::Skipped => "skipped",
            Verdict::NotApplicable => "n/a",
        }
    }
}

/// One row of the verdict table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The requirement: the scenario's name.
    pub requirement: String,
    pub clause: String,
    pub level: String,
    pub verdict: Verdict,
    /// One line: the failing step's message, or for a pass what the service provider answered to the
    /// tampered request.
    pub summary: String,
    /// The full evidence: the failing step, the service provider's answers in it, and the IdP's
    /// request-log lines around it.
    pub evidence: String,
}

/// A run is a conformance profile when it has scenarios and every one names its level.
pub fn is_profile(rs: &[ScenarioReport]) -> bool {
    !rs.is_empty() && rs.iter().all(|r| r.level.is_some())
}

fn is_required(r: &ScenarioReport) -> bool {
    r.level.as_deref() != Some("recommended")
}

/// Whether the scenario installed a fault that never applied although the service provider redeemed a
/// code (so the flow the fault was meant for did happen).
fn fault_never_applied(r: &ScenarioReport) -> bool {
    let installed = r.steps.iter().any(|s| s.action == "fault" && s.ok);
    let applied = r.idp_requests.iter().any(|q| !q["fault"].is_null());
    let redeemed = r.idp_requests.iter().any(|q| q["endpoint"] == "token" && q["grant_type"] == "authorization_code" && q["status"] == 200);
    installed && !applied && redeemed
}

/// The verdict of one scenario report.
pub fn verdict(r: &ScenarioReport) -> Verdict {
    match (&r.outcome, is_required(r)) {
        (Outcome::Passed, _) => Verdict::Pass,
        (Outcome::Skipped { .. }, _) => Verdict::Skipped,
        (Outcome::Failed { .. }, _) if fault_never_applied(r) => Verdict::NotApplicable,
        (Outcome::Failed { .. }, true) => Verdict::Fail,
        (Outcome::Failed { .. }, false) => Verdict::NotMet,
    }
}

/// The verdict table, in report order.
pub fn rows(rs: &[ScenarioReport]) -> Vec<Row> {
    rs.iter()
        .map(|r| {
            let (summary, evidence) = evidence(r);
            Row {
                requirement: r.name.clone(),
                clause: r.clause.clone().unwrap_or_default(),
                level: r.level.clone().unwrap_or_else(|| "required".into()),
                verdict: verdict(r),
                summary,
                evidence,
            }
        })
        .collect()
}

/// The origin (`scheme://host:port`) of a URL, or the URL itself.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

fn path_of(url: &str) -> &str {
    let o = origin(url).len();
    if o < url.len() { &url[o..] } else { "/" }
}

/// The IdP's origin, found as the origin of the runner's requests to an authorize endpoint.
fn idp_origin(r: &ScenarioReport) -> Option<String> {
    let authorize_paths: Vec<&str> =
        r.idp_requests.iter().filter(|q| q["endpoint"] == "authorize").filter_map(|q| q["path"].as_str()).collect();
    r.http.iter().find(|h| authorize_paths.contains(&path_of(&h.url))).map(|h| origin(&h.url).to_string())
}

/// For each runner request to the IdP (in order), the index of its request-log entry: the runner's
/// requests and the log are matched in order by method and path. Entries the service provider caused
/// (token, keys, …) stay unmatched.
fn align(r: &ScenarioReport, idp: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut cursor = 0;
    for (hi, h) in r.http.iter().enumerate() {
        if origin(&h.url) != idp {
            continue;
        }
        let path = path_of(&h.url);
        if let Some(off) = r.idp_requests[cursor..].iter().position(|q| q["method"] == h.method.as_str() && q["path"] == path) {
            out.push((hi, cursor + off));
            cursor += off + 1;
        }
    }
    out
}

/// One request-log entry as an evidence line.
pub fn request_line(q: &Value) -> String {
    let mut s = format!(
        "{} {} {} {}",
        q["time"].as_str().unwrap_or(""),
        q["method"].as_str().unwrap_or(""),
        q["path"].as_str().unwrap_or(""),
        q["status"]
    );
    if let Some(g) = q["grant_type"].as_str() {
        let _ = write!(s, " grant_type={g}");
    }
    if let Some(f) = q["refresh_family"].as_str() {
        let _ = write!(s, " family={f} gen={}", q["refresh_generation"]);
    }
    if let Some(f) = q["fault"].as_str() {
        let _ = write!(s, " fault={f}");
    }
    s
}

fn answer_line(h: &HttpRecord) -> String {
    format!("{} {} → {}", h.method, h.url, if h.status == 0 { "no response".to_string() } else { h.status.to_string() })
}

/// The request-log entries from the start of step `step` (or of the latest earlier step that reached the
/// IdP, when this one did not, e.g. a `check` whose page load made the service provider refresh) to the
/// end of the log. A run stops at its failing step, so for a failure that is "the failing step".
fn window(r: &ScenarioReport, step: usize) -> &[Value] {
    let Some(idp) = idp_origin(r) else { return &r.idp_requests };
    let aligned = align(r, &idp);
    let step_of = |hi: usize| r.http[hi].step;
    let latest = aligned.iter().map(|(hi, _)| step_of(*hi)).filter(|s| *s <= step).max();
    let start = latest.and_then(|st| aligned.iter().filter(|(hi, _)| step_of(*hi) == st).map(|(_, li)| *li).min());
    match start {
        Some(li) => &r.idp_requests[li..],
        None => &r.idp_requests,
    }
}

/// `(summary, evidence)` of one scenario report.
pub fn evidence(r: &ScenarioReport) -> (String, String) {
    let mut o = String::new();
    if verdict(r) == Verdict::NotApplicable {
        let _ = writeln!(o, "the fault was installed and the service provider redeemed its code, but the IdP never applied the fault");
        let _ = writeln!(o, "(a nonce defect needs a nonce in the authorization request; this service provider sent none)");
        if let Outcome::Failed { message, .. } = &r.outcome {
            let _ = writeln!(o, "the run then failed with: {message}");
        }
        return ("not exercised: the IdP never applied the fault (for a nonce defect: no nonce was sent)".into(), o);
    }
    let summary = match &r.outcome {
        Outcome::Skipped { reason } => return (format!("skipped: {reason}"), format!("skipped: {reason}\n")),
        Outcome::Failed { step, message } => {
            let _ = writeln!(o, "{message}");
            if let Some(i) = *step {
                let answers: Vec<&HttpRecord> = r.http.iter().filter(|h| h.step == i).collect();
                let idp = idp_origin(r);
                let sp: Vec<&&HttpRecord> = answers.iter().filter(|h| idp.as_deref() != Some(origin(&h.url))).collect();
                if !sp.is_empty() {
                    let _ = writeln!(o, "service provider's answers in this step:");
                    for h in sp.iter().rev().take(6).rev() {
                        let _ = writeln!(o, "  {}", answer_line(h));
                    }
                }
                let lines = window(r, i);
                if !lines.is_empty() {
                    let _ = writeln!(o, "IdP request log from this step on:");
                    for q in lines.iter().take(EVIDENCE_LINES) {
                        let _ = writeln!(o, "  {}", request_line(q));
                    }
                    if lines.len() > EVIDENCE_LINES {
                        let _ = writeln!(o, "  … {} more", lines.len() - EVIDENCE_LINES);
                    }
                }
            }
            message.lines().next().unwrap_or("").to_string()
        }
        Outcome::Passed => {
            // The tampering (or other fault) that was applied, and what the service provider answered in
            // the step right after the fault was installed.
            let faults: Vec<&Value> = r.idp_requests.iter().filter(|q| !q["fault"].is_null()).collect();
            let fault_step = r.steps.iter().find(|s| s.action == "fault").map(|s| s.index);
            let answer = fault_step.and_then(|f| {
                let idp = idp_origin(r);
                r.http.iter().rfind(|h| h.step == f + 1 && idp.as_deref() != Some(origin(&h.url)))
            });
            for q in &faults {
                let _ = writeln!(o, "IdP: {}", request_line(q));
            }
            if let Some(h) = answer {
                let _ = writeln!(o, "service provider answered: {}", answer_line(h));
            }
            match (faults.first(), answer) {
                (Some(q), Some(h)) => {
                    format!("{}; the service provider answered {} at {}", q["fault"].as_str().unwrap_or(""), h.status, path_of(&h.url))
                }
                (Some(q), None) => q["fault"].as_str().unwrap_or("").to_string(),
                _ => format!("all {} steps passed", r.steps.len()),
            }
        }
    };
    (summary, o)
}

/// Counts for the summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub required_met: usize,
    pub required: usize,
    pub recommended_met: usize,
    pub recommended: usize,
    pub skipped: usize,
    pub not_applicable: usize,
}

pub fn tally(rs: &[ScenarioReport]) -> Tally {
    let mut t = Tally::default();
    for r in rs {
        match (verdict(r), is_required(r)) {
            (Verdict::Skipped, _) => t.skipped += 1,
            (Verdict::NotApplicable, _) => t.not_applicable += 1,
            (v, true) => {
                t.required += 1;
                t.required_met += usize::from(v == Verdict::Pass);
            }
            (v, false) => {
                t.recommended += 1;
                t.recommended_met += usize::from(v == Verdict::Pass);
            }
        }
    }
    t
}

/// The one-line conclusion.
pub fn conclusion(rs: &[ScenarioReport]) -> String {
    let t = tally(rs);
    let status = if t.required_met == t.required { "CONFORMANT" } else { "NOT CONFORMANT" };
    let mut s = format!(
        "conformance: {status}: {}/{} required met, {}/{} recommended met",
        t.required_met, t.required, t.recommended_met, t.recommended
    );
    if t.not_applicable > 0 {
        let _ = write!(s, ", {} not applicable", t.not_applicable);
    }
    if t.skipped > 0 {
        let _ = write!(s, ", {} skipped", t.skipped);
    }
    let failed: Vec<&str> = rs.iter().filter(|r| verdict(r) == Verdict::Fail).map(|r| r.name.as_str()).collect();
    if !failed.is_empty() {
        let _ = write!(s, "; failing: {}", failed.join(", "));
    }
    s
}

/// The verdict table for the terminal: requirement, level, clause, verdict, one line of evidence.
pub fn terminal(rs: &[ScenarioReport]) -> String {
    let rows = rows(rs);
    let w = rows.iter().map(|r| r.requirement.len()).max().unwrap_or(11).max(11);
    let c = rows.iter().map(|r| r.clause.len()).max().unwrap_or(6).max(6);
    let mut o = String::new();
    let _ = writeln!(o, "\n{:<w$}  {:<11}  {:<c$}  {:<7}  evidence", "requirement", "level", "clause", "verdict");
    for r in &rows {
        let _ = writeln!(
            o,
            "{:<w$}  {:<11}  {:<c$}  {:<7}  {}",
            printable_line(&r.requirement),
            r.level,
            printable_line(&r.clause),
            r.verdict.as_str(),
            printable_line(&r.summary)
        );
    }
    let _ = writeln!(o, "\n{}", printable(&conclusion(rs)));
    o
}

/// JUnit XML grouped by level: one `<testsuite>` per level, one `<testcase>` per requirement (name =
/// requirement, classname = `conformance.<level>`), clause and level as properties, the evidence as the
/// failure text. A recommended requirement that is not met is a failure of the `recommended` suite, so
/// report viewers show it, while the exit status ([`exit_code`]) ignores it.
pub fn junit(rs: &[ScenarioReport]) -> String {
    let rows = rows(rs);
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total_ms: u128 = rs.iter().map(|r| r.duration_ms).sum();
    let failures = rows.iter().filter(|r| matches!(r.verdict, Verdict::Fail | Verdict::NotMet)).count();
    let skipped = rows.iter().filter(|r| matches!(r.verdict, Verdict::Skipped | Verdict::NotApplicable)).count();
    let _ = writeln!(
        o,
        "<testsuites name=\"conformance\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" errors=\"0\" time=\"{:.3}\">",
        rows.len(),
        total_ms as f64 / 1000.0
    );
    for level in ["required", "recommended"] {
        let items: Vec<(&Row, &ScenarioReport)> = rows.iter().zip(rs).filter(|(row, _)| row.level == level).collect();
        if items.is_empty() {
            continue;
        }
        let f = items.iter().filter(|(r, _)| matches!(r.verdict, Verdict::Fail | Verdict::NotMet)).count();
        let s = items.iter().filter(|(r, _)| matches!(r.verdict, Verdict::Skipped | Verdict::NotApplicable)).count();
        let ms: u128 = items.iter().map(|(_, r)| r.duration_ms).sum();
        let _ = writeln!(
            o,
            "  <testsuite name=\"conformance.{level}\" tests=\"{}\" failures=\"{f}\" skipped=\"{s}\" errors=\"0\" time=\"{:.3}\">",
            items.len(),
            ms as f64 / 1000.0
        );
        for (row, r) in items {
            let _ = writeln!(
                o,
                "    <testcase classname=\"conformance.{level}\" name=\"{}\" file=\"{}\" time=\"{:.3}\">",
                xml(&row.requirement),
                xml(&r.file),
                r.duration_ms as f64 / 1000.0
            );
            let _ = writeln!(
                o,
                "      <properties><property name=\"clause\" value=\"{}\" /><property name=\"level\" value=\"{level}\" /></properties>",
                xml(&row.clause)
            );
            match row.verdict {
                Verdict::Pass => {
                    if !row.evidence.is_empty() {
                        let _ = writeln!(o, "      <system-out>{}</system-out>", xml(&row.evidence));
                    }
                }
                Verdict::Fail | Verdict::NotMet => {
                    let kind = if row.verdict == Verdict::Fail { "RequiredNotMet" } else { "RecommendedNotMet" };
                    let _ =
                        writeln!(o, "      <failure message=\"{}\" type=\"{kind}\">{}</failure>", xml(&row.summary), xml(&row.evidence));
                }
                Verdict::Skipped | Verdict::NotApplicable => {
                    let _ = writeln!(o, "      <skipped message=\"{}\" />", xml(&row.summary));
                }
            }
            o.push_str("    </testcase>\n");
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

/// The verdict table as an HTML fragment: requirement (linked to its section of the run report), clause,
/// level, verdict, evidence.
pub fn html_table(rs: &[ScenarioReport]) -> String {
    let mut o = String::from("<h2>Conformance verdict</h2>");
    let _ = write!(o, "<p><strong>{}</strong></p>", xml(&conclusion(rs)));
    o.push_str("<table class=\"verdict\"><tr><th>requirement</th><th>clause</th><th>level</th><th>verdict</th><th>evidence</th></tr>");
    for (i, row) in rows(rs).iter().enumerate() {
        let cls = match row.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NotMet => "notmet",
            Verdict::Skipped | Verdict::NotApplicable => "skip",
        };
        let _ = write!(
            o,
            "<tr><td><a href=\"#s{i}\">{}</a></td><td>{}</td><td>{}</td><td class=\"{cls}\">{}</td><td><details><summary>{}</summary><pre>{}</pre></details></td></tr>",
            xml(&row.requirement),
            xml(&row.clause),
            xml(&row.level),
            row.verdict.as_str(),
            xml(&row.summary),
            xml(&row.evidence)
        );
    }
    o.push_str("</table>");
    o
}

/// The run's HTML report with the verdict table first. Section anchors (`#s{i}`) are the run report's.
pub fn html(rs: &[ScenarioReport]) -> String {
    let page = report::html(rs);
    let table = html_table(rs);
    let style = "<style>.notmet{color:#b26a00;font-weight:bold}table.verdict td{vertical-align:top}</style>";
    // The verdict goes right after the page's heading, before the run's own table.
    match page.find("</h1>") {
        Some(i) => format!("{}{style}{table}{}", &page[..i + 5], &page[i + 5..]),
        None => format!("{style}{table}{page}"),
    }
}

/// The exit status of a profile run: 1 when a required requirement is not met (or, in a mixed run, any
/// scenario without a level failed), 0 otherwise; recommended requirements never fail the run.
pub fn exit_code(rs: &[ScenarioReport]) -> i32 {
    let failed = rs.iter().any(|r| match r.level {
        None => matches!(r.outcome, Outcome::Failed { .. }),
        Some(_) => verdict(r) == Verdict::Fail,
    });
    i32::from(failed)
}
