//! The scenario file format (YAML). Unknown fields are errors; every error names file, line, column and
//! field. The reference of every step and expectation is docs/scenarios.md.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::bsr::config::Switches;

/// One scenario: a small, named behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The case of ../shared/cases.md it reproduces (C01…C24), if any.
    #[serde(default)]
    pub case: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// What the scenario needs beyond the harness itself: `browser` (Chromium), `node` (external targets).
    #[serde(default)]
    pub requires: Vec<String>,
    /// What the scenario can run against: `stub` (the in-process stub BSR, default) and/or `external`
    /// (a real service provider given with `--target`).
    #[serde(default = "stub_only")]
    pub targets: Vec<String>,
    /// Conformance profile metadata: the specification clause the scenario checks.
    #[serde(default)]
    pub clause: Option<String>,
    /// `required` or `recommended` (conformance profile).
    #[serde(default)]
    pub level: Option<String>,
    /// The scenario reproduces a bug: it passes only if a step fails with a message containing this text.
    #[serde(default)]
    pub expect_failure: Option<String>,
    #[serde(default)]
    pub idp: IdpSetup,
    #[serde(default)]
    pub bsr: BsrSetup,
    /// Actors: browser tabs or HTTP clients. Actors naming the same `jar` share cookies (two tabs of one
    /// browser); by default each actor has its own.
    #[serde(default)]
    pub actors: BTreeMap<String, ActorSpec>,
    pub steps: Vec<Step>,
}

/// Overrides of the default tenant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpSetup {
    /// App settings by client_id.
    #[serde(default)]
    pub apps: BTreeMap<String, AppOverride>,
    /// Access-policy rule lifetimes by authorization server id.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerOverride>,
    /// Users added to the tenant.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// Groups added to the tenant.
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    /// Extra assignments: `{app: bsr-local, user: login}` or `{app: bsr-local, group: name}`.
    #[serde(default)]
    pub assignments: Vec<AssignmentSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppOverride {
    /// `ROTATE` or `STATIC`.
    #[serde(default)]
    pub rotation_type: Option<String>,
    /// Grace period in seconds, 0–60.
    #[serde(default)]
    pub leeway: Option<u8>,
    #[serde(default)]
    pub access_token_lifetime_seconds: Option<u32>,
    #[serde(default)]
    pub refresh_token_lifetime_seconds: Option<u32>,
    /// `omit` (default) or `echo`.
    #[serde(default)]
    pub refresh_nonce: Option<String>,
    /// Puts a groups claim with every group of the user into ID tokens.
    #[serde(default)]
    pub groups_claim: Option<bool>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    /// Okta's "Require PKCE as additional verification": the IdP refuses an authorize request without an
    /// S256 code challenge and a code exchange without its verifier (web apps default to false).
    #[serde(default)]
    pub pkce_required: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerOverride {
    #[serde(default)]
    pub access_token_lifetime_minutes: Option<u32>,
    #[serde(default)]
    pub refresh_token_lifetime_minutes: Option<u32>,
    #[serde(default)]
    pub refresh_token_window_minutes: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub login: String,
    /// Defaults to the login; `null` for a user without an email.
    #[serde(default = "some_default")]
    pub email: Option<Option<String>>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default = "default_password")]
    pub password: String,
    /// Group names to join (groups of the tenant or of `idp.groups`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// `ACTIVE` (default), `SUSPENDED`, `DEPROVISIONED`, …
    #[serde(default)]
    pub status: Option<String>,
}

fn stub_only() -> Vec<String> {
    vec!["stub".into()]
}

fn some_default() -> Option<Option<String>> {
    None
}

pub fn default_password() -> String {
    "Passw0rd!".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    /// Member logins.
    #[serde(default)]
    pub members: Vec<String>,
    /// Assign the group to this app (client_id).
    #[serde(default)]
    pub assign_to: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentSpec {
    pub app: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
}

/// The service provider under test.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BsrSetup {
    /// Which issuer the service provider is configured with: `org` (BSR's documented setup), `default`
    /// (a custom server id), or a template such as `"{org}/"` (the org issuer plus a trailing slash).
    #[serde(default = "org")]
    pub issuer: String,
    /// Start the stub without SSO settings (they are entered on the settings page in a step).
    #[serde(default)]
    pub unconfigured: bool,
    /// The stub BSR's switches (refresh strategy, JWKS policy, nonce check, clock offset, …).
    #[serde(default)]
    pub switches: Switches,
}

fn org() -> String {
    "org".into()
}

impl Default for BsrSetup {
    fn default() -> Self {
        BsrSetup { issuer: org(), unconfigured: false, switches: Switches::default() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    /// Actors with the same jar share cookies.
    #[serde(default)]
    pub jar: Option<String>,
    /// `http` (default) or `browser`.
    #[serde(default)]
    pub kind: Option<String>,
}

/// One step: exactly one action key, plus an optional `expect` on its response and a `label`.
#[derive(Debug, Clone)]
pub struct Step {
    pub label: Option<String>,
    pub action: Action,
    pub expect: Option<Expect>,
}

#[derive(Debug, Clone)]
pub enum Action {
    /// Sign in at the service provider: its /login, the IdP's hosted form (or authn + sessionToken), back
    /// to the callback, and the page after it.
    SignIn(SignIn),
    /// A request to the service provider, optionally N concurrent ones released together.
    Request(RequestStep),
    /// Sign out at the service provider (its /logout and the IdP round trip).
    SignOut(ActorRef),
    /// Sign in directly at the IdP as an OAuth client (authn → authorize → code exchange), keeping the
    /// tokens in the actor.
    IdpLogin(IdpLogin),
    /// A refresh grant directly at the IdP with one of the actor's refresh tokens.
    IdpRefresh(IdpRefresh),
    /// Move clocks: `{advance_seconds: n}` moves both; `idp:` and `sp:` move one.
    Clock(ClockStep),
    /// A management operation at the IdP.
    Admin(AdminOp),
    /// Add a fault rule (mock-idp's `/_mock/faults` JSON).
    Fault(Value),
    /// Remove every fault rule.
    ClearFaults(Empty),
    /// Enter SSO settings on the stub's settings page, as an administrator would.
    ConfigureSso(ConfigureSso),
    /// Checks of state: sessions, provisioned users, System Log events, IdP request counts.
    Check(Check),
    /// Advance the IdP and service-provider clocks in steps until a condition holds.
    WaitFor(WaitFor),
    /// Wait in real time for external targets, whose clocks cannot be advanced; against the in-process
    /// stub BSR and IdP it advances both virtual clocks by the same amount instead.
    Sleep(SleepStep),
}

/// Step names, as written in scenario files.
pub const STEP_NAMES: &[&str] = &[
    "sign_in",
    "request",
    "sign_out",
    "idp_login",
    "idp_refresh",
    "clock",
    "admin",
    "fault",
    "clear_faults",
    "configure_sso",
    "check",
    "wait_for",
];

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::SignIn(_) => "sign_in",
            Action::Request(_) => "request",
            Action::SignOut(_) => "sign_out",
            Action::IdpLogin(_) => "idp_login",
            Action::IdpRefresh(_) => "idp_refresh",
            Action::Clock(_) => "clock",
            Action::Admin(_) => "admin",
            Action::Fault(_) => "fault",
            Action::ClearFaults(_) => "clear_faults",
            Action::ConfigureSso(_) => "configure_sso",
            Action::Check(_) => "check",
            Action::WaitFor(_) => "wait_for",
            Action::Sleep(_) => "sleep",
        }
    }
}

struct ActionSeed(String);

impl<'de> serde::de::DeserializeSeed<'de> for ActionSeed {
    type Value = Action;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Action, D::Error> {
        Ok(match self.0.as_str() {
            "sign_in" => Action::SignIn(SignIn::deserialize(d)?),
            "request" => Action::Request(RequestStep::deserialize(d)?),
            "sign_out" => Action::SignOut(ActorRef::deserialize(d)?),
            "idp_login" => Action::IdpLogin(IdpLogin::deserialize(d)?),
            "idp_refresh" => Action::IdpRefresh(IdpRefresh::deserialize(d)?),
            "clock" => Action::Clock(ClockStep::deserialize(d)?),
            "admin" => Action::Admin(serde_yaml::with::singleton_map::deserialize(d)?),
            "fault" => Action::Fault(Value::deserialize(d)?),
            "clear_faults" => Action::ClearFaults(Option::<Empty>::deserialize(d)?.unwrap_or_default()),
            "configure_sso" => Action::ConfigureSso(ConfigureSso::deserialize(d)?),
            "check" => Action::Check(Check::deserialize(d)?),
            "wait_for" => Action::WaitFor(WaitFor::deserialize(d)?),
            "sleep" => Action::Sleep(SleepStep::deserialize(d)?),
            other => return Err(serde::de::Error::unknown_field(other, STEP_NAMES)),
        })
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Step, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Step;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a step: one action key (sign_in, request, …) with optional `expect` and `label`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Step, A::Error> {
                let (mut label, mut expect, mut action) = (None, None, None);
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "label" => label = Some(m.next_value::<String>()?),
                        "expect" => expect = Some(m.next_value::<Expect>()?),
                        name => {
                            if let Some(a) = &action {
                                let a: &Action = a;
                                return Err(serde::de::Error::custom(format!(
                                    "a step has exactly one action, found `{}` and `{name}`",
                                    a.name()
                                )));
                            }
                            action = Some(m.next_value_seed(ActionSeed(name.to_string()))?);
                        }
                    }
                }
                let action =
                    action.ok_or_else(|| serde::de::Error::custom(format!("a step needs an action, one of: {}", STEP_NAMES.join(", "))))?;
                Ok(Step { label, action, expect })
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepStep {
    /// Real seconds, at most 30.
    pub seconds: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorRef {
    pub actor: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub actor: String,
    pub user: String,
    #[serde(default = "default_password")]
    pub password: String,
    /// `form` (the hosted sign-in page, default), `authn` (sessionToken), or `browser` (Chromium).
    #[serde(default)]
    pub via: Option<String>,
    /// Extra authorize parameters appended to the IdP redirect (e.g. `prompt: none`).
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestStep {
    pub actor: String,
    /// More actors sending the same request at the same moment (two tabs), released together with `actor`'s.
    #[serde(default)]
    pub with: Vec<String>,
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    /// Send this many identical requests released together.
    #[serde(default)]
    pub concurrent: Option<usize>,
    /// Form fields for POST.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// Follow redirects within the service provider (default false).
    #[serde(default)]
    pub follow: bool,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpLogin {
    pub actor: String,
    pub user: String,
    #[serde(default = "default_password")]
    pub password: String,
    /// `org` or a custom server id.
    #[serde(default = "default_server")]
    pub server: String,
    #[serde(default = "default_scopes")]
    pub scopes: String,
    #[serde(default = "bsr_local")]
    pub client_id: String,
}

fn default_server() -> String {
    "default".into()
}
fn default_scopes() -> String {
    "openid profile email offline_access".into()
}
fn bsr_local() -> String {
    "bsr-local".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpRefresh {
    pub actor: String,
    /// Which of the actor's refresh tokens: `latest` (default), `previous`, `first`, or a generation number.
    #[serde(default)]
    pub token: Option<Value>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub concurrent: Option<usize>,
    /// Keep the returned refresh token as the actor's latest (default true; false models a lost response).
    #[serde(default = "yes")]
    pub keep: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockMove {
    #[serde(default)]
    pub advance_seconds: Option<f64>,
    #[serde(default)]
    pub advance_ms: Option<i64>,
    #[serde(default)]
    pub offset_seconds: Option<i64>,
    #[serde(default)]
    pub set: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockStep {
    #[serde(default)]
    pub advance_seconds: Option<f64>,
    #[serde(default)]
    pub advance_ms: Option<i64>,
    #[serde(default)]
    pub idp: Option<ClockMove>,
    #[serde(default)]
    pub sp: Option<ClockMove>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminOp {
    DeactivateUser(String),
    ActivateUser(String),
    SuspendUser(String),
    UnsuspendUser(String),
    DeleteUser(String),
    /// `{user: login, email: new}`.
    UpdateEmail(UpdateEmail),
    /// `{app: client_id, user: login}`.
    UnassignUser(Membership),
    /// `{group: name, user: login}`.
    RemoveFromGroup(Membership),
    /// `{app: client_id, rotation_type?, leeway?}`.
    UpdateApp(UpdateApp),
    DeactivateApp(String),
    /// Rotate signing keys: `{server: org | <id>, new_key_at_once?: bool}`. By default Okta's rotation (the
    /// published NEXT key signs from now on); `new_key_at_once` signs with a brand-new key no client has
    /// cached (an emergency rotation, org server only).
    RotateKeys(RotateKeys),
    /// `DELETE /api/v1/users/{id}/sessions?oauthTokens=true`.
    ClearSessions(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateKeys {
    pub server: String,
    #[serde(default)]
    pub new_key_at_once: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateEmail {
    pub user: String,
    pub email: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    pub user: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    pub app: String,
    #[serde(default)]
    pub rotation_type: Option<String>,
    #[serde(default)]
    pub leeway: Option<u8>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigureSso {
    /// `org`, a custom server id, or a template with `{org}`.
    #[serde(default = "org")]
    pub issuer: String,
    #[serde(default = "bsr_local")]
    pub client_id: String,
    #[serde(default = "bsr_secret")]
    pub client_secret: String,
    #[serde(default)]
    pub logout_url: Option<String>,
}

fn bsr_secret() -> String {
    "bsr-local-secret".into()
}

/// Expectations on a step's response(s).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Status of the (last) response; with `concurrent`, of every response. `0` means no response at all
    /// (the connection closed, as with the `drop_after_commit` fault).
    #[serde(default)]
    pub status: Option<u16>,
    /// With `concurrent`: how many responses had each status, e.g. `{200: 1, 400: 7}`.
    #[serde(default)]
    pub statuses: Option<BTreeMap<u16, usize>>,
    /// Response headers that must be present with these exact values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Texts the body must contain.
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// Texts the body must not contain.
    #[serde(default)]
    pub body_not_contains: Vec<String>,
    /// JSON pointers and their exact values, e.g. `{/email: alice@example.com}`.
    #[serde(default)]
    pub json: BTreeMap<String, Value>,
    /// The path of the final URL (after the sign-in round trip), e.g. `/`.
    #[serde(default)]
    pub final_path: Option<String>,
    /// With `idp_refresh` + `concurrent`: every success carries the same refresh token.
    #[serde(default)]
    pub same_refresh_token: Option<bool>,
}

/// State checks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// `{actor: signed_in | signed_out}`: asks the service provider's whoami endpoint.
    #[serde(default)]
    pub sessions: BTreeMap<String, SessionState>,
    /// `{actor: email}`: the service provider's whoami endpoint answers 200 naming this email (at the
    /// target's email pointer; `/email` on the stub).
    #[serde(default)]
    pub whoami: BTreeMap<String, String>,
    /// Users the stub BSR has provisioned, in full (username and email, case preserved).
    #[serde(default)]
    pub bsr_users: Option<Vec<BsrUser>>,
    /// System Log events by type: exact count, optionally only with an outcome.
    #[serde(default)]
    pub events: Vec<EventCount>,
    /// IdP request-log counts.
    #[serde(default)]
    pub requests: Vec<RequestCount>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    SignedIn,
    SignedOut,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BsrUser {
    pub username: String,
    pub email: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventCount {
    #[serde(rename = "type")]
    pub event_type: String,
    pub count: usize,
    #[serde(default)]
    pub outcome: Option<String>,
    /// Debug data that each counted event must carry.
    #[serde(default)]
    pub debug: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestCount {
    pub endpoint: String,
    #[serde(default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    pub count: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    /// Seconds to advance both clocks per attempt.
    #[serde(default = "ten")]
    pub step_seconds: f64,
    /// Give up after this many seconds of virtual time.
    #[serde(default = "hour")]
    pub max_seconds: f64,
    /// The condition: the same shape as `check`.
    pub until: Check,
}

fn ten() -> f64 {
    10.0
}
fn hour() -> f64 {
    3600.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCheck {
    pub actor: String,
    pub state: SessionState,
}
