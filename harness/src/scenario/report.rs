//! Reports: a terminal summary a person reads, JUnit XML and JSON a CI system reads, and a self-contained
//! HTML page with a timeline per scenario drawn as inline SVG (requests per actor, the IdP's rotations,
//! grace windows shaded, reuse detections marked).

use std::fmt::Write;

use serde_json::Value;

use super::runner::{Outcome, ScenarioReport};

/// Text from a scenario file or a service provider's answer as reports show it: control characters (a
/// terminal's escape sequences, NUL, characters XML 1.0 does not allow) and the bidirectional overrides that
/// make text read other than it is are written as `\u{..}` escapes; lines and tabs stay.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{fffe}' | '\u{ffff}')
    };
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(s.chars().map(|c| if hidden(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect())
}

/// [`printable`] for text that must stay on one line (a scenario's name in a table or a progress line):
/// line breaks and tabs are escaped too, so a name cannot forge a line of its own.
pub fn printable_line(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\n', '\r', '\t']) {
        return printable(s);
    }
    std::borrow::Cow::Owned(
        printable(s)
            .chars()
            .map(|c| if matches!(c, '\n' | '\r' | '\t') { c.escape_unicode().to_string() } else { c.to_string() })
            .collect(),
    )
}

/// Text for XML and HTML: [`printable`], then the five markup characters escaped.
pub(crate) fn xml(s: &str) -> String {
    printable(s).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// Totals of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Recommended conformance requirements that were not met: reported, but not failures of the run.
    pub not_met: usize,
}

/// Whether a failure is a recommended conformance requirement not met (which does not fail the run).
pub fn is_not_met(r: &ScenarioReport) -> bool {
    matches!(r.outcome, Outcome::Failed { .. }) && r.level.as_deref() == Some("recommended")
}

pub fn totals(rs: &[ScenarioReport]) -> Totals {
    let mut t = Totals::default();
    for r in rs {
        match r.outcome {
            Outcome::Passed => t.passed += 1,
            Outcome::Failed { .. } if is_not_met(r) => t.not_met += 1,
            Outcome::Failed { .. } => t.failed += 1,
            Outcome::Skipped { .. } => t.skipped += 1,
        }
    }
    t
}

/// The summary table printed at the end of `harness run`.
pub fn terminal(rs: &[ScenarioReport]) -> String {
    let mut o = String::new();
    let w = rs.iter().map(|r| r.name.len()).max().unwrap_or(8).max(8);
    let _ = writeln!(o, "{:<w$}  {:<7}  {:>8}  detail", "scenario", "result", "time");
    for r in rs {
        let (res, detail) = match &r.outcome {
            Outcome::Passed => ("pass", r.expect_failure.as_ref().map(|f| format!("reproduces: {f}")).unwrap_or_default()),
            Outcome::Failed { message, .. } if is_not_met(r) => ("not met", first_line(message).to_string()),
            Outcome::Failed { message, .. } => ("FAIL", first_line(message).to_string()),
            Outcome::Skipped { reason } => ("skip", reason.clone()),
        };
        let _ = writeln!(o, "{:<w$}  {:<7}  {:>6}ms  {}", printable_line(&r.name), res, r.duration_ms, printable_line(&detail));
    }
    let t = totals(rs);
    if t.not_met > 0 {
        let _ = writeln!(o, "\n{} recommended conformance requirement(s) not met (they do not fail the run)", t.not_met);
    }
    let _ = writeln!(o, "\n{} passed, {} failed, {} skipped", t.passed, t.failed, t.skipped);
    o
}

/// The first line of a failure message: the summary table's detail, JUnit's `message` attribute. The lines
/// after it (e.g. a WebDriver's whole answer) are for [`failure_detail`].
pub fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("")
}

/// What a failing step looked like: expected vs actual (every line of the message), and the IdP's events
/// and requests around it; a section the IdP has nothing for (the step failed before any IdP traffic) says
/// `(none)`. The terminal, JUnit's failure text and the HTML report all show this text.
pub fn failure_detail(r: &ScenarioReport) -> Option<String> {
    let Outcome::Failed { step, message } = &r.outcome else { return None };
    let mut o = String::new();
    let _ = writeln!(o, "--- {} ({})", printable_line(&r.name), printable_line(&r.file));
    for l in message.lines() {
        let _ = writeln!(o, "    {}", printable(l));
    }
    let at = step.and_then(|i| r.steps.get(i)).map(|s| s.idp_time_ms);
    if let Some(t) = at {
        let events: Vec<&Value> = r.idp_events.iter().filter(|e| near(e["published"].as_str(), t)).take(12).collect();
        let requests: Vec<&Value> = r.idp_requests.iter().filter(|q| near(q["time"].as_str(), t)).take(12).collect();
        let _ = writeln!(o, "    IdP events around it:{}", if events.is_empty() { " (none)" } else { "" });
        for e in events {
            let _ = writeln!(
                o,
                "      {} {} {} {}",
                e["published"].as_str().unwrap_or(""),
                e["eventType"].as_str().unwrap_or(""),
                e["outcome"]["result"].as_str().unwrap_or(""),
                e["outcome"]["reason"].as_str().unwrap_or("")
            );
        }
        let _ = writeln!(o, "    IdP requests around it:{}", if requests.is_empty() { " (none)" } else { "" });
        for q in requests {
            let _ = writeln!(
                o,
                "      {} {} {} {} family={} gen={} fault={}",
                q["time"].as_str().unwrap_or(""),
                q["endpoint"].as_str().unwrap_or(""),
                q["grant_type"].as_str().unwrap_or("-"),
                q["status"],
                q["refresh_family"].as_str().unwrap_or("-"),
                q["refresh_generation"].as_u64().map_or_else(|| "-".to_string(), |g| g.to_string()),
                q["fault"].as_str().unwrap_or("-")
            );
        }
    }
    Some(o)
}

fn near(ts: Option<&str>, t: i64) -> bool {
    ts.and_then(mock_idp::clock::parse_rfc3339).is_some_and(|x| (x - t).abs() <= 120_000)
}

/// JUnit XML (the flavour GitHub Actions and GitLab read): one testcase per scenario run.
pub fn junit(rs: &[ScenarioReport]) -> String {
    let t = totals(rs);
    let total_ms: u128 = rs.iter().map(|r| r.duration_ms).sum();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"harness\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{:.3}\">",
        rs.len(),
        t.failed,
        t.skipped + t.not_met,
        total_ms as f64 / 1000.0
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"scenarios\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{:.3}\">",
        rs.len(),
        t.failed,
        t.skipped + t.not_met,
        total_ms as f64 / 1000.0
    );
    for r in rs {
        let classname = std::path::Path::new(&r.file).parent().and_then(|p| p.file_name()).and_then(|s| s.to_str()).unwrap_or("scenarios");
        let _ = write!(
            o,
            "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\"",
            xml(classname),
            xml(&r.name),
            xml(&r.file),
            r.duration_ms as f64 / 1000.0
        );
        match &r.outcome {
            Outcome::Passed => o.push_str(" />\n"),
            Outcome::Failed { message, .. } if is_not_met(r) => {
                let _ = writeln!(o, ">\n      <skipped message=\"recommended requirement not met: {}\" />\n    </testcase>", xml(message));
            }
            Outcome::Failed { message, .. } => {
                let detail = failure_detail(r).unwrap_or_default();
                let _ = writeln!(
                    o,
                    ">\n      <failure message=\"{}\" type=\"ScenarioFailure\">{}</failure>\n    </testcase>",
                    xml(first_line(message)),
                    xml(&detail)
                );
            }
            Outcome::Skipped { reason } => {
                let _ = writeln!(o, ">\n      <skipped message=\"{}\" />\n    </testcase>", xml(reason));
            }
        }
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}

/// The whole run as JSON.
pub fn json(rs: &[ScenarioReport]) -> String {
    let t = totals(rs);
    let text =
        serde_json::to_string_pretty(&serde_json::json!({"passed": t.passed, "failed": t.failed, "skipped": t.skipped, "recommended_not_met": t.not_met, "scenarios": rs}))
            .unwrap_or_else(|_| "{}".into());
    // serde_json escapes only the controls below U+0020; DEL, the C1 controls (U+009B starts a terminal
    // escape sequence) and the bidirectional overrides are escaped too, so `cat run.json` shows them as
    // text. They can only stand inside strings, where `\uXXXX` decodes to the same character.
    let hidden = |c: char| matches!(c, '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(hidden) {
        return text;
    }
    text.chars().map(|c| if hidden(c) { format!("\\u{:04x}", c as u32) } else { c.to_string() }).collect()
}

fn ms_of(v: &Value, key: &str) -> Option<i64> {
    v[key].as_str().and_then(mock_idp::clock::parse_rfc3339)
}

/// One scenario's timeline as inline SVG.
pub fn timeline_svg(r: &ScenarioReport) -> String {
    let mut actors: Vec<String> = Vec::new();
    for h in &r.http {
        if !actors.contains(&h.actor) {
            actors.push(h.actor.clone());
        }
    }
    let rotations: Vec<(i64, &Value)> = r
        .idp_events
        .iter()
        .filter(|e| e["eventType"].as_str().is_some_and(|t| t.ends_with(".token.grant.refresh_token")))
        .filter_map(|e| ms_of(e, "published").map(|t| (t, e)))
        .collect();
    let reuse: Vec<i64> = r
        .idp_events
        .iter()
        .filter(|e| e["eventType"].as_str().is_some_and(|t| t.ends_with("detect_reuse")))
        .filter_map(|e| ms_of(e, "published"))
        .collect();
    let mut times: Vec<i64> = r.http.iter().map(|h| h.idp_time_ms).collect();
    times.extend(rotations.iter().map(|(t, _)| *t));
    times.extend(reuse.iter().copied());
    times.push(r.started_idp_ms);
    let t0 = times.iter().copied().min().unwrap_or(0);
    let t1 = times.iter().copied().max().unwrap_or(0).max(t0 + 1000) + (r.leeway_s as i64 * 1000).max(1000);
    let (left, width, lane) = (140.0, 820.0, 28.0);
    let lanes = actors.len() + 1;
    let height = 40.0 + lane * lanes as f64 + 30.0;
    // A linear time axis squashes a 90-day jump into nothing; a rank axis (equal spacing per distinct
    // instant) keeps every event visible, and the labels say the real times.
    let mut distinct: Vec<i64> = times.clone();
    distinct.push(t1);
    distinct.sort_unstable();
    distinct.dedup();
    let x = |t: i64| -> f64 {
        let i = distinct.partition_point(|&d| d < t);
        let frac = if distinct.len() > 1 { i as f64 / (distinct.len() - 1) as f64 } else { 0.0 };
        left + frac * width
    };
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1000 {height}\" width=\"100%\" role=\"img\" aria-label=\"timeline of {}\">",
        xml(&r.name)
    );
    o.push_str("<style>text{font:11px sans-serif;fill:#333}.ok{fill:#2e7d32}.err{fill:#c62828}.redir{fill:#1565c0}</style>");
    let idp_y = 30.0 + lane * actors.len() as f64;
    for (i, a) in actors.iter().enumerate() {
        let y = 30.0 + lane * i as f64;
        let _ = write!(
            o,
            "<text x=\"8\" y=\"{}\">{}</text><line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/>",
            y + 4.0,
            xml(a),
            left + width
        );
    }
    let _ = write!(
        o,
        "<text x=\"8\" y=\"{}\">IdP</text><line x1=\"{left}\" y1=\"{idp_y}\" x2=\"{}\" y2=\"{idp_y}\" stroke=\"#bbb\"/>",
        idp_y + 4.0,
        left + width
    );
    // Grace windows: from each rotation to rotation + leeway, shaded across every lane.
    if r.leeway_s > 0 {
        for (t, e) in &rotations {
            if e["debugContext"]["debugData"]["grantType"] == "refresh_token" {
                let (x0, x1) = (x(*t), x(*t + r.leeway_s as i64 * 1000));
                let _ = write!(
                    o,
                    "<rect x=\"{x0}\" y=\"16\" width=\"{}\" height=\"{}\" fill=\"#fff3c4\" opacity=\"0.7\"><title>grace window {} s</title></rect>",
                    (x1 - x0).max(2.0),
                    idp_y - 6.0,
                    r.leeway_s
                );
            }
        }
    }
    for (t, e) in &rotations {
        let g = &e["debugContext"]["debugData"]["refreshGeneration"];
        let _ = write!(
            o,
            "<circle cx=\"{}\" cy=\"{idp_y}\" r=\"5\" fill=\"#6a1b9a\"><title>refresh token generation {g} issued at {}</title></circle>",
            x(*t),
            xml(e["published"].as_str().unwrap_or(""))
        );
    }
    for t in &reuse {
        let cx = x(*t);
        let _ = write!(
            o,
            "<path d=\"M{} {} L{} {} M{} {} L{} {}\" stroke=\"#c62828\" stroke-width=\"3\"><title>reuse detected: family revoked</title></path>",
            cx - 6.0,
            idp_y - 6.0,
            cx + 6.0,
            idp_y + 6.0,
            cx - 6.0,
            idp_y + 6.0,
            cx + 6.0,
            idp_y - 6.0
        );
    }
    for h in &r.http {
        let i = actors.iter().position(|a| a == &h.actor).unwrap_or(0);
        let y = 30.0 + lane * i as f64;
        let class = if h.status >= 400 {
            "err"
        } else if h.status >= 300 {
            "redir"
        } else {
            "ok"
        };
        let _ = write!(
            o,
            "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"4\" height=\"12\"><title>step {}: {} {} → {}</title></rect>",
            x(h.idp_time_ms) - 2.0,
            y - 6.0,
            h.step + 1,
            h.method,
            xml(&h.url),
            h.status
        );
    }
    let _ = write!(o, "<text x=\"{left}\" y=\"{}\">{}</text>", height - 8.0, xml(&mock_idp::clock::rfc3339(t0)));
    let _ =
        write!(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", left + width, height - 8.0, xml(&mock_idp::clock::rfc3339(t1)));
    o.push_str("</svg>");
    o
}

/// A self-contained HTML page for the whole run, grouped by folder (conformance requirement groups).
pub fn html(rs: &[ScenarioReport]) -> String {
    let t = totals(rs);
    let mut o = String::from("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>harness run</title><style>");
    o.push_str("body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}.pass{color:#2e7d32}.fail{color:#c62828;font-weight:bold}.skip{color:#777}section{margin:28px 0;border-top:1px solid #ddd}pre{background:#f6f6f6;padding:8px;white-space:pre-wrap}");
    o.push_str("</style></head><body>");
    let _ = write!(o, "<h1>harness run</h1><p>{} passed, {} failed, {} skipped</p>", t.passed, t.failed, t.skipped);
    o.push_str("<table><tr><th>scenario</th><th>case / clause</th><th>level</th><th>result</th><th>time</th></tr>");
    for (i, r) in rs.iter().enumerate() {
        let (cls, res) = match &r.outcome {
            Outcome::Passed => ("pass", "pass"),
            Outcome::Failed { .. } => ("fail", "FAIL"),
            Outcome::Skipped { .. } => ("skip", "skip"),
        };
        let _ = write!(
            o,
            "<tr><td><a href=\"#s{i}\">{}</a></td><td>{}</td><td>{}</td><td class=\"{cls}\">{res}</td><td>{} ms</td></tr>",
            xml(&r.name),
            xml(&r.clause.clone().or(r.case.clone()).unwrap_or_default()),
            xml(r.level.as_deref().unwrap_or("")),
            r.duration_ms
        );
    }
    o.push_str("</table>");
    for (i, r) in rs.iter().enumerate() {
        let _ =
            write!(o, "<section id=\"s{i}\"><h2>{}</h2><p>{}</p><p><small>{}</small></p>", xml(&r.name), xml(&r.description), xml(&r.file));
        match &r.outcome {
            Outcome::Failed { message, .. } => {
                let _ = write!(o, "<pre class=\"fail\">{}</pre>", xml(&failure_detail(r).unwrap_or_else(|| message.clone())));
            }
            Outcome::Skipped { reason } => {
                let _ = write!(o, "<p class=\"skip\">skipped: {}</p>", xml(reason));
            }
            Outcome::Passed => {}
        }
        o.push_str(&timeline_svg(r));
        o.push_str("<ol>");
        for s in &r.steps {
            let _ = write!(
                o,
                "<li class=\"{}\">{} {}{}</li>",
                if s.ok { "pass" } else { "fail" },
                xml(&s.action),
                xml(s.label.as_deref().unwrap_or("")),
                s.message.as_ref().map(|m| format!(" — {}", xml(first_line(m)))).unwrap_or_default()
            );
        }
        o.push_str("</ol></section>");
    }
    o.push_str("</body></html>");
    o
}
