//! The System Log: Okta's audit trail, as `GET /api/v1/logs` serves it (Okta's LogEvent shape).
//!
//! Events carry the tenant clock's time. Secrets never go in: actors and targets name users and apps by id
//! and login/label, debug data names refresh-token families and generations, never token values.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::ids;
use crate::clock::{Millis, rfc3339};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub alternate_id: String,
    pub display_name: String,
    pub detail_entry: Option<Value>,
}

impl Actor {
    pub fn user(id: &str, login: &str, name: &str) -> Self {
        Actor { id: id.into(), kind: "User".into(), alternate_id: login.into(), display_name: name.into(), detail_entry: None }
    }
    pub fn client(client_id: &str, label: &str) -> Self {
        Actor {
            id: client_id.into(),
            kind: "PublicClientApp".into(),
            alternate_id: client_id.into(),
            display_name: label.into(),
            detail_entry: None,
        }
    }
    pub fn unknown() -> Self {
        Actor {
            id: "unknown".into(),
            kind: "User".into(),
            alternate_id: "unknown".into(),
            display_name: "Unknown".into(),
            detail_entry: None,
        }
    }
    pub fn system() -> Self {
        Actor {
            id: "0oa0000000000system0".into(),
            kind: "PublicClientApp".into(),
            alternate_id: "Okta System".into(),
            display_name: "Okta System".into(),
            detail_entry: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub alternate_id: String,
    pub display_name: String,
    pub detail_entry: Option<Value>,
}

impl Target {
    pub fn new(kind: &str, id: &str, alternate_id: &str, display_name: &str) -> Self {
        Target {
            id: id.into(),
            kind: kind.into(),
            alternate_id: alternate_id.into(),
            display_name: display_name.into(),
            detail_entry: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Success,
    Failure,
    Deny,
    Allow,
}

/// Okta's event severity (`DEBUG`, `INFO`, `WARN`, `ERROR`). An alias, not `&'static str` written out, so
/// serde's derive does not take the field for a string borrowed from the input.
pub type Severity = &'static str;

/// One event, before it is rendered as Okta's JSON. The serde derives are for the state file of
/// `mock-idp --state`; `/api/v1/logs` renders [`Event::to_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub uuid: String,
    pub published: Millis,
    pub event_type: String,
    pub display_message: String,
    #[serde(deserialize_with = "severity")]
    pub severity: Severity,
    pub actor: Actor,
    pub client_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub targets: Vec<Target>,
    pub debug: Map<String, Value>,
    pub session_id: Option<String>,
    pub request_id: Option<String>,
}

impl Event {
    pub fn new(event_type: impl Into<String>, display_message: impl Into<String>, outcome: Outcome, now: Millis) -> Self {
        Event {
            uuid: ids::uuid(),
            published: now,
            event_type: event_type.into(),
            display_message: display_message.into(),
            severity: if outcome == Outcome::Success || outcome == Outcome::Allow { "INFO" } else { "WARN" },
            actor: Actor::unknown(),
            client_id: None,
            ip_address: None,
            user_agent: None,
            outcome,
            reason: None,
            targets: Vec::new(),
            debug: Map::new(),
            session_id: None,
            request_id: None,
        }
    }
    pub fn actor(mut self, a: Actor) -> Self {
        self.actor = a;
        self
    }
    pub fn reason(mut self, r: impl Into<String>) -> Self {
        self.reason = Some(r.into());
        self
    }
    pub fn target(mut self, t: Target) -> Self {
        self.targets.push(t);
        self
    }
    pub fn client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.into());
        self
    }
    pub fn debug(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.debug.insert(k.into(), v.into());
        self
    }
    pub fn severity(mut self, s: &'static str) -> Self {
        self.severity = s;
        self
    }

    /// Okta's LogEvent JSON.
    pub fn to_json(&self) -> Value {
        let mut debug = self.debug.clone();
        if let Some(r) = &self.request_id {
            debug.insert("requestId".into(), json!(r));
        }
        json!({
            "actor": self.actor,
            "client": {
                "userAgent": self.user_agent.as_ref().map(|ua| json!({"rawUserAgent": ua, "os": "Unknown", "browser": "UNKNOWN"})),
                "zone": "null",
                "device": "Unknown",
                "id": self.client_id,
                "ipAddress": self.ip_address.clone().unwrap_or_else(|| "127.0.0.1".into()),
                "geographicalContext": null
            },
            "device": null,
            "authenticationContext": {
                "authenticationProvider": null,
                "credentialProvider": null,
                "credentialType": null,
                "issuer": null,
                "interface": null,
                "authenticationStep": 0,
                "rootSessionId": self.session_id,
                "externalSessionId": self.session_id
            },
            "displayMessage": self.display_message,
            "eventType": self.event_type,
            "outcome": {"result": self.outcome, "reason": self.reason},
            "published": rfc3339(self.published),
            "securityContext": {"asNumber": null, "asOrg": null, "isp": null, "domain": null, "isProxy": null},
            "severity": self.severity,
            "debugContext": {"debugData": debug},
            "legacyEventType": null,
            "transaction": {"type": "WEB", "id": self.request_id, "detail": {}},
            "uuid": self.uuid,
            "version": "0",
            "request": {"ipChain": [{"ip": self.ip_address.clone().unwrap_or_else(|| "127.0.0.1".into()), "geographicalContext": null, "version": "V4", "source": null}]},
            "target": if self.targets.is_empty() { Value::Null } else { json!(self.targets) }
        })
    }
}

/// One condition of a `filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterClause {
    pub field: String,
    pub value: String,
}

/// Parses the subset of Okta's SCIM filter syntax the mock understands: `field eq "value"` clauses joined
/// by `and`, for the fields eventType, outcome.result, actor.id, actor.alternateId, target.id,
/// client.id and severity.
pub fn parse_filter(s: &str) -> Result<Vec<FilterClause>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    loop {
        let (field, after) = rest.split_once(char::is_whitespace).ok_or_else(|| format!("Invalid filter: {s}"))?;
        let after = after.trim_start();
        let after = after.strip_prefix("eq").ok_or_else(|| format!("Invalid filter: {s}"))?.trim_start();
        let after = after.strip_prefix('"').ok_or_else(|| format!("Invalid filter: {s}"))?;
        let end = after.find('"').ok_or_else(|| format!("Invalid filter: {s}"))?;
        let value = &after[..end];
        if !matches!(field, "eventType" | "outcome.result" | "actor.id" | "actor.alternateId" | "target.id" | "client.id" | "severity") {
            return Err(format!("Invalid filter: unsupported field {field}"));
        }
        out.push(FilterClause { field: field.into(), value: value.into() });
        rest = after[end + 1..].trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        rest = rest.strip_prefix("and").ok_or_else(|| format!("Invalid filter: {s}"))?.trim_start();
    }
}

impl Event {
    fn matches(&self, c: &FilterClause) -> bool {
        match c.field.as_str() {
            "eventType" => self.event_type == c.value,
            "outcome.result" => serde_json::to_value(self.outcome).ok().and_then(|v| v.as_str().map(|x| x == c.value)).unwrap_or(false),
            "actor.id" => self.actor.id == c.value,
            "actor.alternateId" => self.actor.alternate_id == c.value,
            "target.id" => self.targets.iter().any(|t| t.id == c.value),
            "client.id" => self.client_id.as_deref() == Some(c.value.as_str()),
            "severity" => self.severity == c.value,
            _ => false,
        }
    }
}

/// What a System Log query asks for.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub filter: Vec<FilterClause>,
    /// Matches events containing this text in their type or display message or actor login (Okta's `q`).
    pub q: Option<String>,
    pub limit: usize,
    pub descending: bool,
    /// Paging cursor: the sequence number after which to continue.
    pub after: Option<u64>,
}

/// Okta's severities; a state file naming another one is refused.
fn severity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = String::deserialize(d)?;
    ["DEBUG", "INFO", "WARN", "ERROR"]
        .into_iter()
        .find(|x| *x == s)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown severity {s:?}: DEBUG, INFO, WARN or ERROR")))
}

/// Okta keeps System Log events for 90 days; [`SystemLog::expire`] drops older ones on the tenant clock.
pub const RETENTION_MS: Millis = 90 * 86_400_000;

/// Most events kept by default; the oldest go first, so a long-running mock does not grow without bound.
pub const DEFAULT_MAX_EVENTS: usize = 50_000;

/// One stored event: its sequence number, publication time and type, and the event itself as compact JSON.
///
/// An [`Event`] in memory is some twenty small allocations (about 2.3 KB); its JSON is a third of that, and
/// the log keeps up to [`DEFAULT_MAX_EVENTS`] of them. Queries decode only the events whose time and type
/// can match.
#[derive(Debug, Clone)]
struct Stored {
    seq: u64,
    published: Millis,
    event_type: Arc<str>,
    /// Shared, so a copy for the state file is a reference count, not the bytes.
    json: Arc<[u8]>,
}

impl Stored {
    fn new(seq: u64, e: &Event) -> Self {
        // Serialising an Event (strings, numbers, JSON values) cannot fail.
        let json = serde_json::to_vec(e).unwrap_or_default().into();
        Stored { seq, published: e.published, event_type: e.event_type.as_str().into(), json }
    }

    fn event(&self) -> Event {
        // Written by `Stored::new` from an Event, so it reads back; a defect would show as an empty event.
        serde_json::from_slice(&self.json).unwrap_or_else(|_| Event::new(self.event_type.to_string(), "", Outcome::Failure, self.published))
    }
}

/// An event as the log keeps it, copied out cheaply (a reference count, no decoding) so the caller can use it
/// after letting go of the tenant lock: the state file writer copies the stored JSON of up to 50,000 events
/// into the file as it is ([`KeptEvent::json`]).
#[derive(Debug, Clone)]
pub struct KeptEvent(Stored);

impl KeptEvent {
    pub fn seq(&self) -> u64 {
        self.0.seq
    }

    pub fn event(&self) -> Event {
        self.0.event()
    }

    /// The event as compact JSON, as the log stores it.
    pub fn json(&self) -> &[u8] {
        &self.0.json
    }
}

/// The log itself: events in publication order, each with a sequence number for paging.
#[derive(Debug)]
pub struct SystemLog {
    events: VecDeque<Stored>,
    next_seq: u64,
    max_events: usize,
}

impl Default for SystemLog {
    fn default() -> Self {
        SystemLog { events: VecDeque::new(), next_seq: 0, max_events: DEFAULT_MAX_EVENTS }
    }
}

impl SystemLog {
    pub fn push(&mut self, e: Event) {
        self.events.push_back(Stored::new(self.next_seq, &e));
        self.next_seq += 1;
        while self.events.len() > self.max_events {
            self.events.pop_front();
        }
    }

    /// Sets the cap (at least 1), dropping the oldest events above it.
    pub fn set_capacity(&mut self, max_events: usize) {
        self.max_events = max_events.max(1);
        while self.events.len() > self.max_events {
            self.events.pop_front();
        }
    }

    pub fn capacity(&self) -> usize {
        self.max_events
    }

    /// Drops events published more than [`RETENTION_MS`] before `now`; returns how many went.
    pub fn expire(&mut self, now: Millis) -> usize {
        let before = self.events.len();
        let cutoff = now.saturating_sub(RETENTION_MS);
        while self.events.front().is_some_and(|e| e.published < cutoff) {
            self.events.pop_front();
        }
        let removed = before - self.events.len();
        if removed > 0 && self.events.capacity() > 4 * self.events.len().max(1024) {
            self.events.shrink_to_fit();
        }
        removed
    }

    /// The events and the next sequence number, for the state file ([`KeptEvent::json`] is each as stored,
    /// [`KeptEvent::event`] decodes it).
    pub fn snapshot(&self) -> (Vec<KeptEvent>, u64) {
        (self.events.iter().cloned().map(KeptEvent).collect(), self.next_seq)
    }

    /// A log from [`SystemLog::snapshot`]'s parts (decoded), keeping this log's cap.
    pub fn restore(&mut self, events: Vec<(u64, Event)>, next_seq: u64) {
        self.events = events.iter().map(|(seq, e)| Stored::new(*seq, e)).collect();
        self.next_seq = next_seq;
        let cap = self.max_events;
        self.set_capacity(cap);
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn clear(&mut self) {
        self.events = VecDeque::new();
    }

    /// Every event, oldest first (decoded one by one).
    pub fn all(&self) -> impl Iterator<Item = Event> + '_ {
        self.events.iter().map(Stored::event)
    }

    /// Runs a query; returns the page and the cursor of its last event when more may follow.
    pub fn query(&self, q: &LogQuery) -> (Vec<Event>, Option<u64>) {
        // Every value a filter clause compares with appears in a matching event's JSON as that JSON string
        // (quoted, escaped), and `q`'s text as an escaped substring: an event whose JSON lacks one of them
        // cannot match and is not decoded. Serde's escaping is per character, so this never skips a match.
        let quoted = |v: &str| serde_json::to_string(v).unwrap_or_default();
        let mut needles: Vec<String> = q.filter.iter().filter(|c| c.field != "eventType").map(|c| quoted(&c.value)).collect();
        if let Some(t) = &q.q {
            let j = quoted(t);
            needles.push(j[1..j.len() - 1].to_string());
        }
        let finders: Vec<memchr::memmem::Finder> = needles.iter().map(|n| memchr::memmem::Finder::new(n.as_bytes())).collect();
        // What can be decided without decoding: time, cursor, an `eventType eq` clause and the needles.
        let cheap = |s: &&Stored| {
            q.since.is_none_or(|t| s.published >= t)
                && q.until.is_none_or(|u| s.published < u)
                && q.filter.iter().filter(|c| c.field == "eventType").all(|c| *s.event_type == *c.value)
                && match q.after {
                    None => true,
                    Some(a) if q.descending => s.seq < a,
                    Some(a) => s.seq > a,
                }
                && finders.iter().all(|f| f.find(&s.json).is_some())
        };
        let full = |e: &Event| {
            q.filter.iter().all(|c| e.matches(c))
                && q.q.as_ref().is_none_or(|t| {
                    e.event_type.contains(t.as_str()) || e.display_message.contains(t.as_str()) || e.actor.alternate_id.contains(t.as_str())
                })
        };
        let limit = q.limit.max(1);
        let decode = |s: &Stored| (s.seq, s.event());
        let picked: Vec<(u64, Event)> = if q.descending {
            self.events.iter().rev().filter(cheap).map(decode).filter(|(_, e)| full(e)).take(limit + 1).collect()
        } else {
            self.events.iter().filter(cheap).map(decode).filter(|(_, e)| full(e)).take(limit + 1).collect()
        };
        let more = picked.len() > limit;
        let page: Vec<(u64, Event)> = picked.into_iter().take(limit).collect();
        let cursor = if more { page.last().map(|(s, _)| *s) } else { None };
        (page.into_iter().map(|(_, e)| e).collect(), cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw-JSON prefilter never hides a match, whatever the value's characters need in JSON.
    #[test]
    fn queries_find_values_that_json_escapes() {
        let mut log = SystemLog::default();
        let odd = "a\"b\\c\nd é\u{1}";
        log.push(Event::new("user.session.start", "User login to Okta", Outcome::Success, 1).actor(Actor::user("00u1", odd, "Odd")));
        log.push(Event::new("user.session.start", "User login to Okta", Outcome::Failure, 2).actor(Actor::user("00u2", "plain", "Plain")));
        let q = |filter: &str, text: Option<&str>| {
            let query = LogQuery { filter: parse_filter(filter).unwrap(), q: text.map(str::to_string), limit: 10, ..Default::default() };
            log.query(&query).0.iter().map(|e| e.published).collect::<Vec<_>>()
        };
        assert_eq!(q("actor.id eq \"00u1\"", None), vec![1]);
        assert_eq!(q("outcome.result eq \"FAILURE\"", None), vec![2]);
        assert_eq!(q("severity eq \"WARN\"", None), vec![2]);
        assert_eq!(q("eventType eq \"user.session.start\"", Some("\"b\\c\nd é")), vec![1]);
        assert_eq!(q("eventType eq \"user.session.start\"", Some("login to")), vec![1, 2]);
        assert_eq!(q("eventType eq \"user.session.start\"", Some("zzz")), Vec::<i64>::new());
        assert_eq!(q("actor.id eq \"00u\"", None), Vec::<i64>::new());
    }

    #[test]
    fn filter_parses_and_matches() {
        let f = parse_filter(r#"eventType eq "app.oauth2.as.token.detect_reuse" and outcome.result eq "FAILURE""#).unwrap();
        assert_eq!(f.len(), 2);
        let e = Event::new("app.oauth2.as.token.detect_reuse", "x", Outcome::Failure, 0);
        assert!(f.iter().all(|c| e.matches(c)));
        assert!(parse_filter("eventType sw \"x\"").is_err());
        assert!(parse_filter("bogus eq \"x\"").is_err());
    }

    #[test]
    fn paging_returns_cursor_until_exhausted() {
        let mut log = SystemLog::default();
        for i in 0..5 {
            log.push(Event::new("user.session.start", "s", Outcome::Success, i));
        }
        let mut q = LogQuery { limit: 2, ..Default::default() };
        let (p1, c1) = log.query(&q);
        assert_eq!(p1.iter().map(|e| e.published).collect::<Vec<_>>(), vec![0, 1]);
        q.after = c1;
        let (p2, c2) = log.query(&q);
        assert_eq!(p2.iter().map(|e| e.published).collect::<Vec<_>>(), vec![2, 3]);
        q.after = c2;
        let (p3, c3) = log.query(&q);
        assert_eq!(p3.len(), 1);
        assert_eq!(c3, None);
    }
}
