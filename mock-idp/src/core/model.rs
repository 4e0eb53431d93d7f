//! The tenant's directory: users, groups, apps (OIDC clients), authorization servers.
//!
//! Field names follow Okta's management API where Okta has one, so a tenant file reads like Okta's JSON.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ids::Secret;
use crate::clock::Millis;

/// Okta user statuses that matter to sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserStatus {
    Staged,
    Provisioned,
    Active,
    Recovery,
    LockedOut,
    PasswordExpired,
    Suspended,
    Deprovisioned,
}

/// A user profile with Okta's attribute names; attributes the mock does not model are kept as they came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    pub login: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Mock-only: whether the `email_verified` claim is true (Okta's users' primary emails are verified
    /// unless an admin says otherwise).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub email_verified: bool,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}

impl UserProfile {
    /// The `name` claim: displayName, else "first last", else the login.
    pub fn full_name(&self) -> String {
        if let Some(d) = &self.display_name {
            return d.clone();
        }
        match (&self.first_name, &self.last_name) {
            (Some(f), Some(l)) => format!("{f} {l}"),
            (Some(f), None) => f.clone(),
            (None, Some(l)) => l.clone(),
            (None, None) => self.login.clone(),
        }
    }
}

/// A user. The serde derives are for the state file of `mock-idp --state` only; API answers are built by
/// hand, never by serialising this (it holds the password).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub status: UserStatus,
    pub created: Millis,
    pub activated: Option<Millis>,
    pub status_changed: Option<Millis>,
    pub last_login: Option<Millis>,
    pub last_updated: Millis,
    pub password_changed: Option<Millis>,
    pub profile: UserProfile,
    #[serde(with = "super::stored::opt_secret")]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub members: BTreeSet<String>,
    pub created: Millis,
    pub last_updated: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppStatus {
    Active,
    Inactive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationType {
    Web,
    Browser,
    Native,
    Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RotationType {
    Rotate,
    Static,
}

/// `settings.oauthClient.refresh_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenSettings {
    pub rotation_type: RotationType,
    /// Grace period in seconds, 0–60.
    pub leeway: u8,
}

/// How the groups claim is filtered (Okta's app "Groups claim filter").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GroupFilterType {
    StartsWith,
    Equals,
    Contains,
    Regex,
}

/// Mock-only: which groups go into the groups claim of this app's ID tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsClaim {
    #[serde(default = "groups_name")]
    pub name: String,
    #[serde(default = "filter_regex")]
    pub filter_type: GroupFilterType,
    /// For REGEX, only `.*` (everything) and a literal prefix followed by `.*` are understood.
    #[serde(default = "match_all")]
    pub value: String,
}
fn groups_name() -> String {
    "groups".into()
}
fn filter_regex() -> GroupFilterType {
    GroupFilterType::Regex
}
fn match_all() -> String {
    ".*".into()
}

impl GroupsClaim {
    pub fn matches(&self, group: &str) -> bool {
        match self.filter_type {
            GroupFilterType::StartsWith => group.starts_with(&self.value),
            GroupFilterType::Equals => group == self.value,
            GroupFilterType::Contains => group.contains(&self.value),
            GroupFilterType::Regex => match self.value.strip_suffix(".*") {
                Some(prefix) => group.starts_with(prefix),
                None => group == self.value,
            },
        }
    }
}

/// Mock-only: what the ID token of a refresh grant does with the original `nonce` (decision M7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RefreshNonce {
    #[default]
    Omit,
    Echo,
}

/// Mock-only per-app options, under `mock:` in the tenant file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppMockOptions {
    pub refresh_nonce: RefreshNonce,
    /// Access-token lifetime in seconds, overriding the policy (for external targets that run on real time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime_seconds: Option<u32>,
    /// Refresh-token absolute lifetime in seconds, overriding the policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_lifetime_seconds: Option<u32>,
}

/// An OIDC app (Okta `oidc_client`). The serde derives are for the state file only (it holds the secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub label: String,
    pub status: AppStatus,
    pub created: Millis,
    pub last_updated: Millis,
    pub client_id: String,
    #[serde(with = "super::stored::opt_secret")]
    pub client_secret: Option<Secret>,
    pub token_endpoint_auth_method: AuthMethod,
    pub pkce_required: bool,
    pub application_type: ApplicationType,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub refresh_token: Option<RefreshTokenSettings>,
    pub groups_claim: Option<GroupsClaim>,
    pub mock: AppMockOptions,
    /// Users assigned directly (user ids).
    pub assigned_users: BTreeSet<String>,
    /// Groups assigned (group ids).
    pub assigned_groups: BTreeSet<String>,
}

impl App {
    pub fn has_grant(&self, g: &str) -> bool {
        self.grant_types.iter().any(|x| x == g)
    }
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == AuthMethod::None
    }
}

/// Token lifetimes from an access-policy rule (`actions.token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenLifetimes {
    #[serde(default = "sixty")]
    pub access_token_lifetime_minutes: u32,
    /// 0 means unlimited.
    #[serde(default)]
    pub refresh_token_lifetime_minutes: u32,
    #[serde(default = "seven_days")]
    pub refresh_token_window_minutes: u32,
}
fn sixty() -> u32 {
    60
}
fn seven_days() -> u32 {
    10080
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        TokenLifetimes { access_token_lifetime_minutes: 60, refresh_token_lifetime_minutes: 0, refresh_token_window_minutes: 10080 }
    }
}

/// Which authorization server: the org server or a custom one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ServerId {
    Org,
    Custom(String),
}

impl ServerId {
    /// The key used in stores and logs: `org` or the custom server's id.
    pub fn key(&self) -> &str {
        match self {
            ServerId::Org => "org",
            ServerId::Custom(id) => id,
        }
    }
    /// System Log event-type prefix: `app.oauth2` on the org server, `app.oauth2.as` on a custom one.
    pub fn event_prefix(&self) -> &'static str {
        match self {
            ServerId::Org => "app.oauth2",
            ServerId::Custom(_) => "app.oauth2.as",
        }
    }
    /// The path prefix of the server's endpoints: `/oauth2` or `/oauth2/{id}`.
    pub fn path_prefix(&self) -> String {
        match self {
            ServerId::Org => "/oauth2".into(),
            ServerId::Custom(id) => format!("/oauth2/{id}"),
        }
    }
}

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// A custom authorization server (the org server is implicit and fixed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthServer {
    pub id: String,
    pub name: String,
    pub description: String,
    pub audiences: Vec<String>,
    /// Custom scopes beyond the OIDC ones.
    pub scopes: Vec<String>,
    pub lifetimes: TokenLifetimes,
    /// INACTIVE servers answer their protocol endpoints as unknown ones (state files without it: ACTIVE).
    #[serde(default)]
    pub status: ServerStatus,
    pub created: Millis,
    pub last_updated: Millis,
}

/// `ACTIVE` or `INACTIVE` (`POST /api/v1/authorizationServers/{id}/lifecycle/activate|deactivate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerStatus {
    #[default]
    Active,
    Inactive,
}

/// The OIDC scopes every server knows.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "address", "phone", "offline_access"];

/// What a Trusted Origin allows (Okta's `scopes[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OriginScope {
    /// Browser JavaScript on the origin may call the IdP's endpoints (CORS headers are sent to it).
    Cors,
    /// The origin may be a redirect target after sign-in or sign-out (stored; the mock's hosted page only
    /// returns to paths on the IdP itself).
    Redirect,
    /// Okta pages may be framed by the origin (stored; the mock's pages always send `X-Frame-Options: DENY`).
    IframeEmbed,
}

/// An Okta Trusted Origin (Security > API > Trusted Origins): `origin` is `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedOrigin {
    pub name: String,
    pub origin: String,
    pub scopes: Vec<OriginScope>,
}

impl TrustedOrigin {
    /// Whether browser JavaScript on `origin` (a request's `Origin` header) may call the IdP.
    pub fn allows_cors(&self, origin: &str) -> bool {
        self.scopes.contains(&OriginScope::Cors) && self.origin.eq_ignore_ascii_case(origin)
    }
}
