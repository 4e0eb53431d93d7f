//! The request log behind `GET /_mock/requests`: one entry per protocol or API request the IdP handled,
//! in arrival order, so scenarios can assert "exactly one JWKS fetch" or "two refreshes, one rotation".
//!
//! Entries never hold a token, code, secret or query string: they name the endpoint, the grant type, the
//! client id, the refresh-token family and generation that was presented (by id), the status and the
//! fault that applied.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::faults::Endpoint;
use super::refresh::FamilyId;
use crate::clock::{Millis, rfc3339};

/// One handled request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestEntry {
    /// Arrival order; entries are listed by it even when a held request finishes after a later one.
    pub seq: u64,
    /// Arrival time on the tenant clock.
    pub time: Millis,
    pub method: String,
    /// The path without its query string (queries carry codes and tokens).
    pub path: String,
    pub endpoint: Endpoint,
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    /// The status the handler (or the fault) produced; for `drop_after_commit` the status the client
    /// never received.
    pub status: u16,
    pub refresh_family: Option<FamilyId>,
    pub refresh_generation: Option<u32>,
    /// The fault action that applied (`respond`, `delay`, `drop_after_commit`, `hold`).
    pub fault: Option<&'static str>,
}

impl RequestEntry {
    /// The documented JSON: every key present, `null` where it does not apply.
    pub fn to_json(&self) -> Value {
        json!({
            "time": rfc3339(self.time),
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint.as_str(),
            "grant_type": self.grant_type,
            "client_id": self.client_id,
            "status": self.status,
            "refresh_family": self.refresh_family.map(|f| f.to_string()),
            "refresh_generation": self.refresh_generation,
            "fault": self.fault,
        })
    }
}

/// Most entries kept by default; the oldest go first, so a long-running binary does not grow without bound.
pub const MAX_ENTRIES: usize = 10_000;

/// The log: entries plus the arrival counter.
#[derive(Debug)]
pub struct RequestLog {
    entries: VecDeque<RequestEntry>,
    next_seq: u64,
    max_entries: usize,
}

impl Default for RequestLog {
    fn default() -> Self {
        RequestLog { entries: VecDeque::new(), next_seq: 0, max_entries: MAX_ENTRIES }
    }
}

impl RequestLog {
    /// Sets the cap (at least 1), dropping the oldest entries above it (`mock-idp --request-log-cap`).
    pub fn set_capacity(&mut self, max_entries: usize) {
        self.max_entries = max_entries.max(1);
        while self.entries.len() > self.max_entries {
            self.entries.pop_front();
        }
    }

    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    /// A sequence number for a request that just arrived.
    pub fn arrive(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Records a finished request, keeping arrival order.
    pub fn record(&mut self, e: RequestEntry) {
        let at = self.entries.partition_point(|x| x.seq < e.seq);
        self.entries.insert(at, e);
        while self.entries.len() > self.max_entries {
            self.entries.pop_front();
        }
    }

    pub fn entries(&self) -> &VecDeque<RequestEntry> {
        &self.entries
    }

    /// Empties the log and gives its memory back.
    pub fn clear(&mut self) {
        self.entries = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> RequestEntry {
        RequestEntry {
            seq,
            time: 1_893_456_000_000,
            method: "POST".into(),
            path: "/oauth2/default/v1/token".into(),
            endpoint: Endpoint::Token,
            grant_type: Some("refresh_token".into()),
            client_id: Some("bsr-local".into()),
            status: 200,
            refresh_family: Some(FamilyId(1)),
            refresh_generation: Some(0),
            fault: None,
        }
    }

    #[test]
    fn entries_keep_arrival_order_and_render_every_key() {
        let mut log = RequestLog::default();
        let (a, b) = (log.arrive(), log.arrive());
        log.record(entry(b));
        log.record(entry(a));
        assert_eq!(log.entries().iter().map(|e| e.seq).collect::<Vec<_>>(), vec![a, b]);
        let v = log.entries()[0].to_json();
        assert_eq!(
            v,
            json!({"time": "2030-01-01T00:00:00.000Z", "method": "POST", "path": "/oauth2/default/v1/token", "endpoint": "token",
                "grant_type": "refresh_token", "client_id": "bsr-local", "status": 200, "refresh_family": "rtf_1",
                "refresh_generation": 0, "fault": null})
        );
    }
}
