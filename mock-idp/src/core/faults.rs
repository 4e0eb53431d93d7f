//! Fault rules: what `POST /_mock/faults` installs, and which rule a request matches.
//!
//! A rule names an endpoint (and optionally a grant type and a client) and an action: answer with an
//! error instead of handling the request, add a delay, handle the request but drop the response after
//! the state change committed (the lost-response case), or hold requests at a barrier until enough of
//! them are waiting. This module only decides *which* rule applies and counts its uses; carrying out an
//! action (sleeping, holding, dropping a connection) is the HTTP layer's job, because it needs tokio.
//!
//! The JSON of a rule is a public contract (scenarios and scripts write it), so the serde shapes here are
//! the documented ones: `{"endpoint": "token", "grant_type": "refresh_token", "client_id": "bsr-local",
//! "times": 1, "action": A}` with A one of `{"respond": {"status": 503}}`, `{"delay_ms": 2000}`,
//! `"drop_after_commit"` or `{"hold": {"until_waiting": 2}}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The endpoints a fault rule can match (and the request log names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/v1/authorize` and its `/v1/authorize/redirect` continuation.
    Authorize,
    Token,
    Keys,
    Userinfo,
    Introspect,
    Revoke,
    Logout,
    /// `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
    Discovery,
    /// `POST /api/v1/authn`.
    Authn,
    /// The hosted sign-in page (`/login/login.htm`, `/`).
    Login,
    /// The management API (`/api/v1/…` other than authn).
    Api,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Authorize => "authorize",
            Endpoint::Token => "token",
            Endpoint::Keys => "keys",
            Endpoint::Userinfo => "userinfo",
            Endpoint::Introspect => "introspect",
            Endpoint::Revoke => "revoke",
            Endpoint::Logout => "logout",
            Endpoint::Discovery => "discovery",
            Endpoint::Authn => "authn",
            Endpoint::Login => "login",
            Endpoint::Api => "api",
        }
    }

    /// Classifies a request path; `None` for the mock's own controls (`/_mock/…`) and unknown paths,
    /// which are neither faulted nor logged.
    pub fn classify(path: &str) -> Option<Endpoint> {
        if path == "/.well-known/openid-configuration" {
            return Some(Endpoint::Discovery);
        }
        if path == "/" || path == "/login/login.htm" {
            return Some(Endpoint::Login);
        }
        if path == "/api/v1/authn" {
            return Some(Endpoint::Authn);
        }
        if path.starts_with("/api/") {
            return Some(Endpoint::Api);
        }
        let rest = path.strip_prefix("/oauth2/")?;
        // `/oauth2/v1/<name>` (org server) or `/oauth2/<server>/v1/<name>` or `/oauth2/<server>/.well-known/…`.
        let rest = match rest.split_once('/') {
            Some(("v1", _)) => rest,
            Some((_server, tail)) => tail,
            None => return None,
        };
        if rest.starts_with(".well-known/") {
            return Some(Endpoint::Discovery);
        }
        match rest.strip_prefix("v1/")? {
            "authorize" | "authorize/redirect" => Some(Endpoint::Authorize),
            "token" => Some(Endpoint::Token),
            "keys" => Some(Endpoint::Keys),
            "userinfo" => Some(Endpoint::Userinfo),
            "introspect" => Some(Endpoint::Introspect),
            "revoke" => Some(Endpoint::Revoke),
            "logout" => Some(Endpoint::Logout),
            _ => None,
        }
    }
}

/// `{"respond": {...}}`: answer at once with this status and an Okta-shaped body for the endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    pub status: u16,
    /// Replaces the body the mock would fill in: a JSON string is sent as raw text, anything else as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Extra or replacing response headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// `{"hold": {"until_waiting": n}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    pub until_waiting: u32,
}

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    Respond(Respond),
    /// Wait this many milliseconds of *wall* time before handling the request. Delays model a slow
    /// network or IdP, which is real time by nature; the tenant clock does not move while waiting.
    DelayMs(u64),
    /// Handle the request, commit its state change, then close the connection without a response.
    DropAfterCommit,
    /// Hold matching requests until `until_waiting` of them wait (or until released), then let them all
    /// go at once.
    Hold(Hold),
}

impl Action {
    /// The name the request log shows in `fault`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Respond(_) => "respond",
            Action::DelayMs(_) => "delay",
            Action::DropAfterCommit => "drop_after_commit",
            Action::Hold(_) => "hold",
        }
    }
}

/// A rule as posted. Only `endpoint` and `action` are required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub endpoint: Endpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// How many matching requests the rule applies to; absent means every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    pub action: Action,
}

/// Longest delay a rule may ask for (ten minutes), so a typo cannot wedge a test run for hours.
pub const MAX_DELAY_MS: u64 = 600_000;

impl RuleSpec {
    /// A rule for `endpoint` with `action`, matching every request.
    pub fn new(endpoint: Endpoint, action: Action) -> Self {
        RuleSpec { endpoint, grant_type: None, client_id: None, times: None, action }
    }
    pub fn grant_type(mut self, g: &str) -> Self {
        self.grant_type = Some(g.into());
        self
    }
    pub fn client_id(mut self, c: &str) -> Self {
        self.client_id = Some(c.into());
        self
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Range checks; each message names the field, as Okta's `errorCauses` do.
    pub fn validate(&self) -> Result<(), String> {
        if self.endpoint == Endpoint::Login {
            return Err("endpoint: the hosted sign-in page cannot be faulted; fault authorize or authn instead".into());
        }
        if self.times == Some(0) {
            return Err("times: must be at least 1 (omit it for every request)".into());
        }
        match &self.action {
            Action::Respond(r) if !(200..=599).contains(&r.status) => {
                return Err(format!("action.respond.status: must be between 200 and 599, got {}", r.status));
            }
            Action::Respond(r) => {
                for (k, v) in &r.headers {
                    if !is_header_name(k) || v.chars().any(|c| c.is_control() && c != '\t') {
                        return Err(format!("action.respond.headers: not a valid header: {k}"));
                    }
                }
            }
            Action::DelayMs(ms) if *ms > MAX_DELAY_MS => {
                return Err(format!("action.delay_ms: must be at most {MAX_DELAY_MS}, got {ms}"));
            }
            Action::Hold(h) if h.until_waiting == 0 => return Err("action.hold.until_waiting: must be at least 1".into()),
            _ => {}
        }
        Ok(())
    }

    fn matches(&self, endpoint: Endpoint, grant_type: Option<&str>, client_id: Option<&str>) -> bool {
        self.endpoint == endpoint
            && self.grant_type.as_deref().is_none_or(|g| grant_type == Some(g))
            && self.client_id.as_deref().is_none_or(|c| client_id == Some(c))
    }
}

/// RFC 9110 token characters, so the HTTP layer can always build the header.
fn is_header_name(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// An installed rule with its counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub spec: RuleSpec,
    /// Uses left; `None` = unlimited.
    pub remaining: Option<u32>,
    /// How many requests the rule has applied to.
    pub matched: u32,
}

/// The rule that applies to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub rule_id: String,
    pub action: Action,
}

/// The installed rules, in the order they were added.
#[derive(Debug, Default)]
pub struct FaultSet {
    rules: Vec<Rule>,
    next_id: u64,
}

impl FaultSet {
    /// Installs a validated rule; returns its id (`flt_1`, `flt_2`, …).
    pub fn add(&mut self, spec: RuleSpec) -> Result<String, String> {
        spec.validate()?;
        self.next_id += 1;
        let id = format!("flt_{}", self.next_id);
        self.rules.push(Rule { id: id.clone(), remaining: spec.times, spec, matched: 0 });
        Ok(id)
    }

    /// The first rule (in installation order) that matches and has uses left, counted as used. At most
    /// one rule applies to a request, so two rules never stack.
    pub fn take(&mut self, endpoint: Endpoint, grant_type: Option<&str>, client_id: Option<&str>) -> Option<Applied> {
        let rule = self.rules.iter_mut().find(|r| r.remaining != Some(0) && r.spec.matches(endpoint, grant_type, client_id))?;
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        rule.matched += 1;
        Some(Applied { rule_id: rule.id.clone(), action: rule.spec.action.clone() })
    }

    /// Every rule, exhausted ones included (their `remaining` is 0), so a test can check a rule fired.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Removes one rule; `false` if there was none with that id.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.id != id);
        self.rules.len() != before
    }

    /// Removes every rule (ids keep counting, so an old id never names a new rule).
    pub fn clear(&mut self) {
        self.rules.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rule_json_is_the_documented_contract() {
        let r: RuleSpec = serde_json::from_value(json!({
            "endpoint": "token", "grant_type": "refresh_token", "client_id": "bsr-local", "times": 1,
            "action": {"respond": {"status": 503}}
        }))
        .unwrap();
        assert_eq!(r.action, Action::Respond(Respond { status: 503, body: None, headers: BTreeMap::new() }));
        let d: RuleSpec = serde_json::from_value(json!({"endpoint": "keys", "action": {"delay_ms": 2000}})).unwrap();
        assert_eq!(d.action, Action::DelayMs(2000));
        let x: RuleSpec = serde_json::from_value(json!({"endpoint": "token", "action": "drop_after_commit"})).unwrap();
        assert_eq!(x.action, Action::DropAfterCommit);
        let h: RuleSpec = serde_json::from_value(json!({"endpoint": "token", "action": {"hold": {"until_waiting": 2}}})).unwrap();
        assert_eq!(h.action, Action::Hold(Hold { until_waiting: 2 }));
        assert_eq!(serde_json::to_value(&x).unwrap(), json!({"endpoint": "token", "action": "drop_after_commit"}));
        assert!(serde_json::from_value::<RuleSpec>(json!({"endpoint": "tokens", "action": "drop_after_commit"})).is_err());
        assert!(serde_json::from_value::<RuleSpec>(json!({"endpoint": "token", "action": "drop_after_commit", "x": 1})).is_err());
    }

    #[test]
    fn times_are_counted_and_first_rule_wins() {
        let mut f = FaultSet::default();
        let a = f.add(RuleSpec::new(Endpoint::Token, Action::DelayMs(1)).grant_type("refresh_token").times(2)).unwrap();
        let b = f.add(RuleSpec::new(Endpoint::Token, Action::DropAfterCommit)).unwrap();
        assert_eq!(f.take(Endpoint::Token, Some("authorization_code"), None).unwrap().rule_id, b);
        assert_eq!(f.take(Endpoint::Token, Some("refresh_token"), None).unwrap().rule_id, a);
        assert_eq!(f.take(Endpoint::Token, Some("refresh_token"), None).unwrap().rule_id, a);
        assert_eq!(f.take(Endpoint::Token, Some("refresh_token"), None).unwrap().rule_id, b);
        assert_eq!(f.get(&a).unwrap().remaining, Some(0));
        assert_eq!(f.get(&a).unwrap().matched, 2);
        assert_eq!(f.take(Endpoint::Keys, None, None), None);
        assert!(f.remove(&b));
        assert_eq!(f.take(Endpoint::Token, Some("refresh_token"), None), None);
        assert!(f.add(RuleSpec::new(Endpoint::Token, Action::DelayMs(1)).times(0)).is_err());
    }

    #[test]
    fn paths_are_classified() {
        assert_eq!(Endpoint::classify("/oauth2/v1/token"), Some(Endpoint::Token));
        assert_eq!(Endpoint::classify("/oauth2/default/v1/token"), Some(Endpoint::Token));
        assert_eq!(Endpoint::classify("/oauth2/default/v1/authorize/redirect"), Some(Endpoint::Authorize));
        assert_eq!(Endpoint::classify("/oauth2/default/.well-known/oauth-authorization-server"), Some(Endpoint::Discovery));
        assert_eq!(Endpoint::classify("/.well-known/openid-configuration"), Some(Endpoint::Discovery));
        assert_eq!(Endpoint::classify("/api/v1/authn"), Some(Endpoint::Authn));
        assert_eq!(Endpoint::classify("/api/v1/users"), Some(Endpoint::Api));
        assert_eq!(Endpoint::classify("/_mock/reset"), None);
        assert_eq!(Endpoint::classify("/oauth2/default/v1/nothing"), None);
    }
}
