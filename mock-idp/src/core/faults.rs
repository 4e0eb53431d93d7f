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
//!
//! Tampering actions (`{"tamper_id_token": "wrong_iss"}`, `{"tamper_access_token": "expired"}`,
//! `{"tamper_authorize": "wrong_state"}`) do not act on the request: they change the answer the handler
//! builds, so the handler takes them ([`FaultSet::take_tamper`]) at the moment it mints a token or builds a
//! code redirect. A tampering rule is therefore used only by an answer it can change (a code redirect, a
//! token answer with an ID token), never by the sign-in page hop or an error.

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

/// Declares [`TokenDefect`] with its JSON names, whether it applies to access tokens, and the request-log
/// labels (`tamper_id_token:<name>`, `tamper_access_token:<name>`), so the three never disagree.
macro_rules! token_defects {
    ($($(#[$doc:meta])* $v:ident = $name:literal, access: $access:literal;)*) => {
        /// One defect a tampered token carries; everything else stays as the IdP minted it, so a relying
        /// party that rejects the token can only have rejected it for this defect.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum TokenDefect {
            $($(#[$doc])* #[serde(rename = $name)] $v,)*
        }

        impl TokenDefect {
            /// Every defect, in documentation order.
            pub const ALL: &'static [TokenDefect] = &[$(TokenDefect::$v),*];

            /// The JSON name, e.g. `wrong_iss`.
            pub fn as_str(self) -> &'static str {
                match self { $(TokenDefect::$v => $name),* }
            }

            /// Whether the defect means anything in an access token (nonce, at_hash, azp and email are
            /// ID-token claims).
            pub fn applies_to_access_token(self) -> bool {
                match self { $(TokenDefect::$v => $access),* }
            }

            fn id_token_label(self) -> &'static str {
                match self { $(TokenDefect::$v => concat!("tamper_id_token:", $name)),* }
            }

            fn access_token_label(self) -> &'static str {
                match self { $(TokenDefect::$v => concat!("tamper_access_token:", $name)),* }
            }
        }
    };
}

token_defects! {
    /// `iss` is another issuer ([`TAMPERED_ISSUER`]).
    WrongIss = "wrong_iss", access: true;
    /// `aud` is another audience ([`TAMPERED_AUDIENCE`]).
    WrongAud = "wrong_aud", access: true;
    /// `aud` is `[client_id, TAMPERED_AUDIENCE]` and there is no `azp`.
    ExtraAudWithoutAzp = "extra_aud_without_azp", access: false;
    /// `exp` is an hour before the minting instant (`iat` is unchanged).
    Expired = "expired", access: true;
    /// `iat` is an hour after the minting instant (`exp` is unchanged).
    IatInFuture = "iat_in_future", access: true;
    /// `nonce` is [`TAMPERED_NONCE`] instead of the one the client sent.
    WrongNonce = "wrong_nonce", access: false;
    /// No `nonce` claim although the client sent one.
    MissingNonce = "missing_nonce", access: false;
    /// Header `alg` is `none` and the signature is empty.
    AlgNone = "alg_none", access: true;
    /// Header `alg` is `HS256`, signed with the client secret as the HMAC key.
    Hs256ClientSecret = "hs256_client_secret", access: true;
    /// A correct RS256 signature with the bits of one byte flipped.
    BadSignature = "bad_signature", access: true;
    /// Signed with a key that is not in the JWKS, under that key's own kid.
    UnknownKid = "unknown_kid", access: true;
    /// Signed with a key that is not in the JWKS, under the kid of the active key.
    SameKidOtherKey = "same_kid_other_key", access: true;
    /// `at_hash` is not the hash of the access token that came with the ID token.
    BadAtHash = "bad_at_hash", access: false;
    /// No `sub` claim.
    MissingSub = "missing_sub", access: true;
    /// `email_verified` is `false`.
    EmailUnverified = "email_unverified", access: false;
}

impl TokenDefect {
    /// `wrong_nonce` and `missing_nonce` change the nonce the client sent, so they apply only to ID tokens
    /// that carry one (a login whose authorization request had a nonce; not Okta's refreshed ID tokens).
    /// Without a nonce in the request, OpenID Connect Core §3.1.3.7 item 11 asks nothing of the client.
    pub fn needs_nonce(self) -> bool {
        matches!(self, TokenDefect::WrongNonce | TokenDefect::MissingNonce)
    }
}

/// The issuer a `wrong_iss` token (or a `wrong_iss_param` redirect) names.
pub const TAMPERED_ISSUER: &str = "https://issuer.attacker.example";
/// The audience a `wrong_aud` token names, and the extra one of `extra_aud_without_azp`.
pub const TAMPERED_AUDIENCE: &str = "mock-idp-other-audience";
/// The nonce of a `wrong_nonce` ID token.
pub const TAMPERED_NONCE: &str = "mock-idp-tampered-nonce";
/// The `state` of a `wrong_state` redirect.
pub const TAMPERED_STATE: &str = "mock-idp-tampered-state";
/// The PKCE verifier of the transaction an `injected_code` belongs to (the attacker's): its S256 challenge
/// is bound to the code, so only this verifier redeems it.
pub const INJECTED_CODE_VERIFIER: &str = "mock-idp-injected-code-verifier-of-another-transaction";
/// How far `expired` and `iat_in_future` move the claim: an hour, beyond any sensible clock skew.
pub const TAMPER_SHIFT_S: i64 = 3600;

/// A defect of an authorization response (the redirect that carries the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizeDefect {
    /// `state` is [`TAMPERED_STATE`], not the client's.
    WrongState,
    /// An RFC 9207 `iss` parameter that is not the issuer ([`TAMPERED_ISSUER`]).
    WrongIssParam,
    /// The code belongs to another authorization request of the same client, user and redirect URI, as an
    /// attacker's code injected into this response would (RFC 9700 §4.5): its PKCE challenge is the one of
    /// [`INJECTED_CODE_VERIFIER`] and its nonce [`TAMPERED_NONCE`], each only if the client sent one, so a
    /// client that uses neither redeems it as its own.
    InjectedCode,
}

impl AuthorizeDefect {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizeDefect::WrongState => "wrong_state",
            AuthorizeDefect::WrongIssParam => "wrong_iss_param",
            AuthorizeDefect::InjectedCode => "injected_code",
        }
    }

    fn label(self) -> &'static str {
        match self {
            AuthorizeDefect::WrongState => "tamper_authorize:wrong_state",
            AuthorizeDefect::WrongIssParam => "tamper_authorize:wrong_iss_param",
            AuthorizeDefect::InjectedCode => "tamper_authorize:injected_code",
        }
    }
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
    /// The ID token of the next token answer that has one carries this defect (endpoint `token`).
    TamperIdToken(TokenDefect),
    /// The access token of the next successful token answer carries this defect (endpoint `token`); the
    /// ID token's `at_hash` is computed over the tampered access token, so the ID token stays valid.
    TamperAccessToken(TokenDefect),
    /// The next code redirect carries this defect (endpoint `authorize`).
    TamperAuthorize(AuthorizeDefect),
}

impl Action {
    /// The name the request log shows in `fault`; tampering names its defect, e.g.
    /// `tamper_id_token:wrong_iss`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Respond(_) => "respond",
            Action::DelayMs(_) => "delay",
            Action::DropAfterCommit => "drop_after_commit",
            Action::Hold(_) => "hold",
            Action::TamperIdToken(d) => d.id_token_label(),
            Action::TamperAccessToken(d) => d.access_token_label(),
            Action::TamperAuthorize(d) => d.label(),
        }
    }

    /// Tampering actions change the handler's answer and are taken by the handler, not the middleware.
    pub fn is_tamper(&self) -> bool {
        matches!(self, Action::TamperIdToken(_) | Action::TamperAccessToken(_) | Action::TamperAuthorize(_))
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
            Action::TamperIdToken(_) | Action::TamperAccessToken(_) if self.endpoint != Endpoint::Token => {
                return Err(format!("action.{}: tampers with tokens; the endpoint must be token", tamper_field(&self.action)));
            }
            Action::TamperAccessToken(d) if !d.applies_to_access_token() => {
                let ok: Vec<&str> = TokenDefect::ALL.iter().filter(|d| d.applies_to_access_token()).map(|d| d.as_str()).collect();
                return Err(format!(
                    "action.tamper_access_token: {} is a defect of ID tokens only; access tokens take {}",
                    d.as_str(),
                    ok.join(", ")
                ));
            }
            Action::TamperAuthorize(_) if self.endpoint != Endpoint::Authorize => {
                return Err("action.tamper_authorize: tampers with the code redirect; the endpoint must be authorize".into());
            }
            Action::TamperAuthorize(_) if self.grant_type.is_some() => {
                return Err("grant_type: authorize requests have no grant type; omit it".into());
            }
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

fn tamper_field(a: &Action) -> &'static str {
    match a {
        Action::TamperAccessToken(_) => "tamper_access_token",
        _ => "tamper_id_token",
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
    /// one rule applies to a request, so two rules never stack. Tampering rules are not considered: the
    /// handler takes them with [`FaultSet::take_tamper`] when it builds an answer they can change.
    pub fn take(&mut self, endpoint: Endpoint, grant_type: Option<&str>, client_id: Option<&str>) -> Option<Applied> {
        self.take_where(endpoint, grant_type, client_id, |a| !a.is_tamper())
    }

    /// The first tampering rule that matches and whose action `applies` to the answer being built,
    /// counted as used. At most one tampering rule changes an answer.
    pub fn take_tamper(
        &mut self,
        endpoint: Endpoint,
        grant_type: Option<&str>,
        client_id: Option<&str>,
        applies: impl Fn(&Action) -> bool,
    ) -> Option<Applied> {
        self.take_where(endpoint, grant_type, client_id, |a| a.is_tamper() && applies(a))
    }

    fn take_where(
        &mut self,
        endpoint: Endpoint,
        grant_type: Option<&str>,
        client_id: Option<&str>,
        want: impl Fn(&Action) -> bool,
    ) -> Option<Applied> {
        let rule = self
            .rules
            .iter_mut()
            .find(|r| r.remaining != Some(0) && want(&r.spec.action) && r.spec.matches(endpoint, grant_type, client_id))?;
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
    fn tamper_rules_are_the_documented_json_and_are_validated() {
        let r: RuleSpec =
            serde_json::from_value(json!({"endpoint": "token", "times": 1, "action": {"tamper_id_token": "wrong_iss"}})).unwrap();
        assert_eq!(r.action, Action::TamperIdToken(TokenDefect::WrongIss));
        assert_eq!(r.action.name(), "tamper_id_token:wrong_iss");
        let names: Vec<&str> = TokenDefect::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(
            names,
            [
                "wrong_iss",
                "wrong_aud",
                "extra_aud_without_azp",
                "expired",
                "iat_in_future",
                "wrong_nonce",
                "missing_nonce",
                "alg_none",
                "hs256_client_secret",
                "bad_signature",
                "unknown_kid",
                "same_kid_other_key",
                "bad_at_hash",
                "missing_sub",
                "email_unverified"
            ]
        );
        for d in TokenDefect::ALL {
            assert_eq!(serde_json::to_value(d).unwrap(), json!(d.as_str()));
            assert_eq!(Action::TamperIdToken(*d).name(), format!("tamper_id_token:{}", d.as_str()));
            assert_eq!(Action::TamperAccessToken(*d).name(), format!("tamper_access_token:{}", d.as_str()));
        }
        let a: RuleSpec =
            serde_json::from_value(json!({"endpoint": "authorize", "action": {"tamper_authorize": "wrong_iss_param"}})).unwrap();
        assert_eq!(a.action, Action::TamperAuthorize(AuthorizeDefect::WrongIssParam));
        assert_eq!(a.action.name(), "tamper_authorize:wrong_iss_param");
        let a: RuleSpec =
            serde_json::from_value(json!({"endpoint": "authorize", "action": {"tamper_authorize": "injected_code"}})).unwrap();
        assert_eq!(a.action, Action::TamperAuthorize(AuthorizeDefect::InjectedCode));
        assert_eq!(a.action.name(), "tamper_authorize:injected_code");
        assert!(serde_json::from_value::<RuleSpec>(json!({"endpoint": "token", "action": {"tamper_id_token": "wrong"}})).is_err());

        let bad = |v: Value| serde_json::from_value::<RuleSpec>(v).unwrap().validate().unwrap_err();
        assert_eq!(
            bad(json!({"endpoint": "userinfo", "action": {"tamper_id_token": "expired"}})),
            "action.tamper_id_token: tampers with tokens; the endpoint must be token"
        );
        assert_eq!(
            bad(json!({"endpoint": "token", "action": {"tamper_access_token": "wrong_nonce"}})),
            "action.tamper_access_token: wrong_nonce is a defect of ID tokens only; access tokens take wrong_iss, wrong_aud, expired, \
             iat_in_future, alg_none, hs256_client_secret, bad_signature, unknown_kid, same_kid_other_key, missing_sub"
        );
        assert_eq!(
            bad(json!({"endpoint": "token", "action": {"tamper_authorize": "wrong_state"}})),
            "action.tamper_authorize: tampers with the code redirect; the endpoint must be authorize"
        );
    }

    #[test]
    fn tamper_rules_are_taken_only_by_the_handler_and_only_where_they_apply() {
        let mut f = FaultSet::default();
        let t = f.add(RuleSpec::new(Endpoint::Token, Action::TamperIdToken(TokenDefect::Expired)).times(1)).unwrap();
        let d = f.add(RuleSpec::new(Endpoint::Token, Action::DelayMs(1))).unwrap();
        // The middleware never sees the tampering rule, so a delay rule installed after it still applies.
        assert_eq!(f.take(Endpoint::Token, Some("authorization_code"), None).unwrap().rule_id, d);
        // An answer without an ID token does not use it up.
        assert_eq!(f.take_tamper(Endpoint::Token, Some("client_credentials"), None, |_| false), None);
        assert_eq!(f.get(&t).unwrap().remaining, Some(1));
        let got = f.take_tamper(Endpoint::Token, Some("authorization_code"), Some("bsr-local"), |_| true).unwrap();
        assert_eq!((got.rule_id.as_str(), got.action), (t.as_str(), Action::TamperIdToken(TokenDefect::Expired)));
        assert_eq!(f.take_tamper(Endpoint::Token, Some("authorization_code"), Some("bsr-local"), |_| true), None);
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
