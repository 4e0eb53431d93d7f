//! The tenant file: YAML whose objects follow Okta's management API shapes.
//!
//! Every error names the file, line, column and field, so a typo in a 200-line tenant is found at once.
//! Range checks happen while deserialising where they can (so serde's position applies); cross-references
//! (a group member that is not a user) are checked after, and located by searching the source text.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::core::model::{
    AppMockOptions, AppStatus, ApplicationType, AuthMethod, GroupsClaim, RefreshTokenSettings, RotationType, TokenLifetimes, TrustedOrigin,
    UserProfile, UserStatus,
};
use crate::core::ratelimit::RateLimits;

/// The embedded default tenant, as `mock-idp --print-default-config` prints it.
pub const DEFAULT_TENANT_YAML: &str = include_str!("default-tenant.yaml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    #[serde(default)]
    pub org: OrgConfig,
    #[serde(default = "default_mgmt_token")]
    pub management_token: String,
    /// The public base URL (issuer of the org server). Defaults to `http://<listen address>`; set it when
    /// clients reach the mock under another name (docker-compose: `http://mock-idp:8080`).
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default)]
    pub keys: KeysConfig,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    #[serde(default)]
    pub assignments: Vec<AssignmentConfig>,
    #[serde(default)]
    pub authorization_servers: Vec<AuthServerConfig>,
    /// Okta's Trusted Origins: the origins whose browser JavaScript may call the IdP (scope `CORS`).
    #[serde(default)]
    pub trusted_origins: Vec<TrustedOrigin>,
    /// Okta's rate limits: requests per minute per bucket (`token: 600`, `api_users: 100`, …); a bucket
    /// left out is not enforced (`core::ratelimit`, docs/management-api.md).
    #[serde(default, skip_serializing_if = "RateLimits::is_empty")]
    pub rate_limits: RateLimits,
}

fn default_mgmt_token() -> String {
    "mock-admin-token".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrgConfig {
    #[serde(default = "default_org_id")]
    pub id: String,
    #[serde(default = "default_org_name")]
    pub name: String,
}
fn default_org_id() -> String {
    "00o1mockorg000000001".into()
}
fn default_org_name() -> String {
    "Mock Okta".into()
}
impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig { id: default_org_id(), name: default_org_name() }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Okta's default: a session ends after 2 hours without use.
    #[serde(default = "two_hours")]
    pub lifetime_minutes: u32,
}
fn two_hours() -> u32 {
    120
}
impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig { lifetime_minutes: 120 }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// `Cache-Control: max-age` of the JWKS responses.
    #[serde(default = "one_hour")]
    pub max_age_seconds: u32,
    /// Keys of the org server, loaded from PEM instead of generated.
    #[serde(default)]
    pub org: Vec<KeyConfig>,
}
fn one_hour() -> u32 {
    3600
}
impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig { max_age_seconds: 3600, org: Vec::new() }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    #[serde(default)]
    pub kid: Option<String>,
    /// The PEM text itself.
    #[serde(default)]
    pub pem: Option<String>,
    /// Or a path to a PEM file, relative to the tenant file.
    #[serde(default)]
    pub pem_file: Option<String>,
    #[serde(default = "active")]
    pub status: KeyStatusConfig,
}
fn active() -> KeyStatusConfig {
    KeyStatusConfig::Active
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyStatusConfig {
    Active,
    Next,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default = "user_active")]
    pub status: UserStatus,
    pub profile: UserProfile,
    #[serde(default)]
    pub credentials: Option<CredentialsConfig>,
}
fn user_active() -> UserStatus {
    UserStatus::Active
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    #[serde(default)]
    pub password: Option<PasswordConfig>,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfig {
    pub value: String,
}
impl fmt::Debug for PasswordConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordConfig(<redacted>)")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    #[serde(default)]
    pub id: Option<String>,
    pub profile: GroupProfileConfig,
    /// Member logins.
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupProfileConfig {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    #[serde(default)]
    pub id: Option<String>,
    pub label: String,
    #[serde(default = "app_active")]
    pub status: AppStatus,
    pub credentials: AppCredentialsConfig,
    #[serde(default)]
    pub settings: AppSettingsConfig,
    #[serde(default)]
    pub mock: AppMockOptions,
}
fn app_active() -> AppStatus {
    AppStatus::Active
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppCredentialsConfig {
    #[serde(rename = "oauthClient")]
    pub oauth_client: OauthClientCredentialsConfig,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OauthClientCredentialsConfig {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default = "basic")]
    pub token_endpoint_auth_method: AuthMethod,
    /// Okta's default: true for browser and native apps, false for web apps.
    #[serde(default)]
    pub pkce_required: Option<bool>,
    /// Accepted for Okta compatibility; the mock does not rotate client secrets.
    #[serde(default, rename = "autoKeyRotation")]
    pub auto_key_rotation: Option<bool>,
}
fn basic() -> AuthMethod {
    AuthMethod::ClientSecretBasic
}
impl fmt::Debug for OauthClientCredentialsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OauthClientCredentialsConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("token_endpoint_auth_method", &self.token_endpoint_auth_method)
            .field("pkce_required", &self.pkce_required)
            .finish()
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettingsConfig {
    #[serde(default, rename = "oauthClient")]
    pub oauth_client: OauthClientSettingsConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OauthClientSettingsConfig {
    #[serde(default = "web")]
    pub application_type: ApplicationType,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default = "code_grant")]
    pub grant_types: Vec<String>,
    #[serde(default = "code_response")]
    pub response_types: Vec<String>,
    #[serde(default)]
    pub refresh_token: Option<RefreshTokenConfig>,
    #[serde(default)]
    pub groups_claim: Option<GroupsClaim>,
    /// Accepted for Okta compatibility and ignored.
    #[serde(default)]
    pub consent_method: Option<String>,
    #[serde(default)]
    pub issuer_mode: Option<String>,
}
fn web() -> ApplicationType {
    ApplicationType::Web
}
fn code_grant() -> Vec<String> {
    vec!["authorization_code".into()]
}
fn code_response() -> Vec<String> {
    vec!["code".into()]
}
impl Default for OauthClientSettingsConfig {
    fn default() -> Self {
        OauthClientSettingsConfig {
            application_type: ApplicationType::Web,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: code_grant(),
            response_types: code_response(),
            refresh_token: None,
            groups_claim: None,
            consent_method: None,
            issuer_mode: None,
        }
    }
}

/// `settings.oauthClient.refresh_token`; `leeway` is refused outside 0–60 while parsing.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshTokenConfig {
    pub rotation_type: RotationType,
    #[serde(default = "thirty", deserialize_with = "leeway")]
    pub leeway: u8,
}
fn thirty() -> u8 {
    30
}

/// Okta allows a grace period of 0 to 60 seconds.
pub fn leeway<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let v = i64::deserialize(d)?;
    if !(0..=60).contains(&v) {
        return Err(serde::de::Error::custom(format!("leeway must be between 0 and 60 seconds (Okta's range), got {v}")));
    }
    Ok(v as u8)
}

impl From<RefreshTokenConfig> for RefreshTokenSettings {
    fn from(c: RefreshTokenConfig) -> Self {
        RefreshTokenSettings { rotation_type: c.rotation_type, leeway: c.leeway }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentConfig {
    /// The app's client_id, id or label.
    pub app: String,
    /// A user's login.
    #[serde(default)]
    pub user: Option<String>,
    /// A group's name.
    #[serde(default)]
    pub group: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthServerConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
    /// Custom scopes (names) beyond the OIDC ones.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    /// Signing keys loaded from PEM instead of generated.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    #[serde(default)]
    pub actions: RuleActions,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleActions {
    #[serde(default)]
    pub token: TokenLifetimes,
}

/// A configuration error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if self.field.is_empty() || self.field == "." {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": field `{}`: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Turns a serde_yaml error (with its serde path) into a located [`ConfigError`]. serde_yaml reports
/// errors raised inside a mapping at the mapping's start and prefixes the message with the mapping's
/// path; this moves the position to the offending key itself (searched from the reported line on) and
/// drops the repeated path, so the message reads `file:line:col: field `a.b.c`: what is wrong`.
pub fn yaml_error(e: serde_path_to_error::Error<serde_yaml::Error>, src: &str, file: &str) -> ConfigError {
    let path = e.path().to_string();
    let field = Some(path.clone()).filter(|p| p != "?" && p != ".").unwrap_or_default();
    let inner = e.into_inner();
    let loc = inner.location();
    let mut message = inner.to_string();
    if let Some(pos) = message.find(" at line ") {
        message.truncate(pos);
    }
    // Drop a leading "<path>: " that repeats (a prefix of) the field path.
    if let Some((head, rest)) = message.split_once(": ")
        && !head.contains(' ')
        && !head.is_empty()
        && field.starts_with(head)
    {
        message = rest.to_string();
    }
    let (mut line, mut column) = (loc.as_ref().map(|l| l.line()), loc.as_ref().map(|l| l.column()));
    // The last path segment that is a key name (not an index) is what the user must change.
    let key = field.rsplit('.').next().map(|k| k.split('[').next().unwrap_or(k)).filter(|k| !k.is_empty());
    if let (Some(key), Some(start)) = (key, line) {
        let needle = format!("{key}:");
        for (i, l) in src.lines().enumerate().skip(start.saturating_sub(1)).take(200) {
            if let Some(c) = l.find(&needle) {
                line = Some(i + 1);
                column = Some(c + 1);
                break;
            }
        }
    }
    // serde_yaml places a missing field at the end of a later node (the end of the file, even); the mapping
    // that lacks it is found by its path instead, in block-style YAML.
    if message.starts_with("missing field")
        && let Some((l, c)) = block_position(src, &field)
    {
        (line, column) = (Some(l), Some(c));
    }
    ConfigError { file: file.into(), line, column, field, message }
}

/// The 1-based line and column of the node at `path` (`users[0].profile`) in block-style YAML, found by
/// indentation: a key among the keys of the node above it, an item among its `- ` items. `None` when the
/// source is not laid out that way (flow style, anchors).
fn block_position(src: &str, path: &str) -> Option<(usize, usize)> {
    struct Entry<'a> {
        line: usize,
        indent: usize,
        text: &'a str,
        item: bool,
    }
    let mut entries = Vec::new();
    for (line, l) in src.lines().enumerate() {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') || t == "---" {
            continue;
        }
        let indent = l.len() - t.len();
        if t == "-" || t.starts_with("- ") {
            entries.push(Entry { line, indent, text: t, item: true });
            let rest = t[1..].trim_start();
            if !rest.is_empty() {
                entries.push(Entry { line, indent: indent + (t.len() - rest.len()), text: rest, item: false });
            }
        } else {
            entries.push(Entry { line, indent, text: t, item: false });
        }
    }
    let (mut from, mut to) = (0, entries.len());
    let mut at = None;
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            segments.push(Err(name));
        }
        while let Some((i, r)) = rest.split_once(']') {
            segments.push(Ok(i.parse::<usize>().ok()?));
            rest = r.trim_start_matches('[');
        }
    }
    for seg in segments {
        let range = &entries[from..to];
        let idx = match seg {
            Err(key) => {
                let m = range.iter().filter(|e| !e.item).map(|e| e.indent).min()?;
                range.iter().position(|e| {
                    !e.item
                        && e.indent == m
                        && (e.text.strip_prefix(key).is_some_and(|r| r.starts_with(':'))
                            || e.text.strip_prefix(&format!("\"{key}\"")).is_some_and(|r| r.starts_with(':')))
                })?
            }
            Ok(n) => {
                let m = range.iter().filter(|e| e.item).map(|e| e.indent).min()?;
                range.iter().enumerate().filter(|(_, e)| e.item && e.indent == m).nth(n)?.0
            }
        };
        let e = &range[idx];
        at = Some((e.line + 1, e.indent + 1));
        let (indent, item) = (e.indent, e.item);
        let start = from + idx + 1;
        // The node's children: what follows until an entry at its level or above (a key's value may be a
        // sequence at the key's own indentation).
        let end = entries[start..to]
            .iter()
            .position(|f| f.indent < indent || (f.indent == indent && (item || !f.item)))
            .map_or(to, |p| start + p);
        (from, to) = (start, end);
    }
    at
}

/// Finds the 1-based line and column of the first occurrence of `needle` in `src`.
fn locate(src: &str, needle: &str) -> (Option<usize>, Option<usize>) {
    for (i, line) in src.lines().enumerate() {
        if let Some(c) = line.find(needle) {
            return (Some(i + 1), Some(c + 1));
        }
    }
    (None, None)
}

impl TenantConfig {
    /// The embedded default tenant.
    pub fn default_tenant() -> Self {
        // The embedded file is tested to parse and validate; failing here is a build defect.
        Self::parse(DEFAULT_TENANT_YAML, "<default tenant>").expect("the embedded default tenant is valid")
    }

    /// Reads and validates a tenant file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        // A file with no document in it (empty, comments only, `---`, `null`) is a mistake far more often than a wish
        // for a tenant with nothing in it, which is `{}`.
        if matches!(serde_yaml::from_str::<serde_yaml::Value>(&src), Ok(serde_yaml::Value::Null)) {
            return Err(ConfigError {
                file: name,
                line: None,
                column: None,
                field: String::new(),
                message: "no tenant in the file: it is empty, or only comments or null (a tenant with nothing in it is `{}`)".into(),
            });
        }
        let mut cfg = Self::parse(&src, &name)?;
        // Resolve pem_file paths relative to the tenant file.
        let dir = path.parent().unwrap_or(Path::new("."));
        let resolve = |k: &mut KeyConfig, field: String| -> Result<(), ConfigError> {
            if let Some(f) = &k.pem_file {
                let p = dir.join(f);
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    let (line, column) = locate(&src, f);
                    ConfigError {
                        file: name.clone(),
                        line,
                        column,
                        field: field.clone(),
                        message: format!("cannot read {}: {e}", p.display()),
                    }
                })?;
                k.pem = Some(text);
            }
            Ok(())
        };
        for (i, k) in cfg.keys.org.iter_mut().enumerate() {
            resolve(k, format!("keys.org[{i}].pem_file"))?;
        }
        for (si, s) in cfg.authorization_servers.iter_mut().enumerate() {
            for (i, k) in s.keys.iter_mut().enumerate() {
                resolve(k, format!("authorization_servers[{si}].keys[{i}].pem_file"))?;
            }
        }
        Ok(cfg)
    }

    /// Parses and validates tenant YAML; `file` names the source in errors.
    pub fn parse(src: &str, file: &str) -> Result<Self, ConfigError> {
        let de = serde_yaml::Deserializer::from_str(src);
        let cfg: TenantConfig = serde_path_to_error::deserialize(de).map_err(|e| yaml_error(e, src, file))?;
        cfg.validate(src, file)?;
        Ok(cfg)
    }

    /// Validates a config built or changed in code (no source text, so errors carry no line numbers).
    pub fn check(&self, file: &str) -> Result<(), ConfigError> {
        self.validate("", file)
    }

    fn validate(&self, src: &str, file: &str) -> Result<(), ConfigError> {
        let err = |field: String, needle: &str, message: String| {
            let (line, column) = if needle.is_empty() { (None, None) } else { locate(src, needle) };
            ConfigError { file: file.into(), line, column, field, message }
        };
        let mut logins = BTreeSet::new();
        // Object ids are unique across the tenant (a second user with the same id would replace the first).
        let mut ids = BTreeSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if u.profile.login.trim().is_empty() {
                return Err(err(format!("users[{i}].profile.login"), "login", "login must not be empty".into()));
            }
            if !logins.insert(u.profile.login.to_lowercase()) {
                return Err(err(
                    format!("users[{i}].profile.login"),
                    &u.profile.login,
                    format!("An object with this field already exists in the current organization: {}", u.profile.login),
                ));
            }
            if let Some(id) = &u.id {
                check_id(id, "00u").map_err(|m| err(format!("users[{i}].id"), id, m))?;
                if !ids.insert(id.clone()) {
                    return Err(err(format!("users[{i}].id"), id, format!("duplicate id {id}")));
                }
            }
        }
        let mut group_names = BTreeSet::new();
        for (i, g) in self.groups.iter().enumerate() {
            if !group_names.insert(g.profile.name.clone()) {
                return Err(err(format!("groups[{i}].profile.name"), &g.profile.name, format!("duplicate group name {}", g.profile.name)));
            }
            for (j, m) in g.members.iter().enumerate() {
                if !logins.contains(&m.to_lowercase()) {
                    return Err(err(format!("groups[{i}].members[{j}]"), m, format!("no user with login {m}")));
                }
            }
            if let Some(id) = &g.id {
                check_id(id, "00g").map_err(|m| err(format!("groups[{i}].id"), id, m))?;
                if !ids.insert(id.clone()) {
                    return Err(err(format!("groups[{i}].id"), id, format!("duplicate id {id}")));
                }
            }
        }
        let mut client_ids = BTreeSet::new();
        for (i, a) in self.apps.iter().enumerate() {
            let c = &a.credentials.oauth_client;
            let f = |s: &str| format!("apps[{i}].{s}");
            if !client_ids.insert(c.client_id.clone()) {
                return Err(err(f("credentials.oauthClient.client_id"), &c.client_id, format!("duplicate client_id {}", c.client_id)));
            }
            if let Some(id) = &a.id {
                check_id(id, "0oa").map_err(|m| err(f("id"), id, m))?;
                if !ids.insert(id.clone()) {
                    return Err(err(f("id"), id, format!("duplicate id {id}")));
                }
            }
            match (c.token_endpoint_auth_method, &c.client_secret) {
                (AuthMethod::None, Some(_)) => {
                    return Err(err(
                        f("credentials.oauthClient.client_secret"),
                        &c.client_id,
                        "a public client (token_endpoint_auth_method: none) has no client_secret".into(),
                    ));
                }
                (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost, None) => {
                    return Err(err(
                        f("credentials.oauthClient.client_secret"),
                        &c.client_id,
                        format!("token_endpoint_auth_method {} needs a client_secret", c.token_endpoint_auth_method.as_str()),
                    ));
                }
                _ => {}
            }
            let s = &a.settings.oauth_client;
            for (j, u) in s.redirect_uris.iter().enumerate() {
                check_uri(u).map_err(|m| err(f(&format!("settings.oauthClient.redirect_uris[{j}]")), u, m))?;
            }
            for (j, u) in s.post_logout_redirect_uris.iter().enumerate() {
                check_uri(u).map_err(|m| err(f(&format!("settings.oauthClient.post_logout_redirect_uris[{j}]")), u, m))?;
            }
            for (j, g) in s.grant_types.iter().enumerate() {
                if !matches!(g.as_str(), "authorization_code" | "refresh_token" | "client_credentials" | "implicit" | "password") {
                    return Err(err(f(&format!("settings.oauthClient.grant_types[{j}]")), g, format!("unknown grant type {g}")));
                }
            }
            for (j, r) in s.response_types.iter().enumerate() {
                if !matches!(r.as_str(), "code" | "token" | "id_token") {
                    return Err(err(f(&format!("settings.oauthClient.response_types[{j}]")), r, format!("unknown response type {r}")));
                }
            }
            if s.refresh_token.is_some() && !s.grant_types.iter().any(|g| g == "refresh_token") {
                return Err(err(
                    f("settings.oauthClient.refresh_token"),
                    "refresh_token:",
                    "refresh_token settings need the refresh_token grant type (Okta shows them only then)".into(),
                ));
            }
        }
        for (i, a) in self.assignments.iter().enumerate() {
            let app_ok = self
                .apps
                .iter()
                .any(|x| x.credentials.oauth_client.client_id == a.app || x.label == a.app || x.id.as_deref() == Some(&a.app));
            if !app_ok {
                return Err(err(format!("assignments[{i}].app"), &a.app, format!("no app with client_id, id or label {}", a.app)));
            }
            match (&a.user, &a.group) {
                (Some(u), None) => {
                    if !logins.contains(&u.to_lowercase()) {
                        return Err(err(format!("assignments[{i}].user"), u, format!("no user with login {u}")));
                    }
                }
                (None, Some(g)) => {
                    if !group_names.contains(g) {
                        return Err(err(format!("assignments[{i}].group"), g, format!("no group named {g}")));
                    }
                }
                _ => return Err(err(format!("assignments[{i}]"), &a.app, "an assignment names exactly one of user or group".into())),
            }
        }
        let mut server_ids = BTreeSet::new();
        for (i, s) in self.authorization_servers.iter().enumerate() {
            let f = |x: &str| format!("authorization_servers[{i}].{x}");
            if s.id == "v1" || s.id == "org" || s.id.is_empty() || !s.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(err(
                    f("id"),
                    &s.id,
                    format!("invalid authorization server id {:?} (letters, digits, - and _; not v1 or org)", s.id),
                ));
            }
            if !server_ids.insert(s.id.clone()) {
                return Err(err(f("id"), &s.id, format!("duplicate authorization server id {}", s.id)));
            }
            for (pi, p) in s.policies.iter().enumerate() {
                for (ri, r) in p.rules.iter().enumerate() {
                    let t = r.actions.token;
                    let field = f(&format!("policies[{pi}].rules[{ri}].actions.token"));
                    check_lifetimes(&t).map_err(|(sub, m)| err(format!("{field}.{sub}"), sub, m))?;
                }
            }
        }
        let mut origins = BTreeSet::new();
        for (i, o) in self.trusted_origins.iter().enumerate() {
            // Located from the trusted_origins list on: the same text (a redirect URI) may appear earlier, and
            // a repeated origin is found at its own repetition.
            let repeats = self.trusted_origins[..i].iter().filter(|x| x.origin == o.origin).count();
            let at = |field: String, message: String| {
                let (line, column) = if src.is_empty() { (None, None) } else { locate_after(src, "trusted_origins:", &o.origin, repeats) };
                ConfigError { file: file.into(), line, column, field, message }
            };
            check_origin(&o.origin).map_err(|m| at(format!("trusted_origins[{i}].origin"), m))?;
            if !origins.insert(o.origin.to_ascii_lowercase()) {
                return Err(at(
                    format!("trusted_origins[{i}].origin"),
                    format!("An object with this field already exists in the current organization: {}", o.origin),
                ));
            }
            if o.scopes.is_empty() {
                return Err(at(format!("trusted_origins[{i}].scopes"), "a trusted origin needs at least one scope".into()));
            }
        }
        if self.session.lifetime_minutes == 0 {
            return Err(err("session.lifetime_minutes".into(), "lifetime_minutes", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// The line and column of the `nth` occurrence (0-based) of `needle` at or after the first line holding
/// `anchor` (or its last occurrence there, if fewer); the first occurrence anywhere when there is none.
fn locate_after(src: &str, anchor: &str, needle: &str, nth: usize) -> (Option<usize>, Option<usize>) {
    let Some(start) = src.lines().position(|l| l.contains(anchor)) else {
        return locate(src, needle);
    };
    let hits: Vec<(usize, usize)> =
        src.lines().enumerate().skip(start).filter_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1))).collect();
    match hits.get(nth).or(hits.last()) {
        Some(&(l, c)) => (Some(l), Some(c)),
        None => locate(src, needle),
    }
}

/// A Trusted Origin is exactly what a browser sends as `Origin`: `scheme://host[:port]`, nothing after it.
fn check_origin(o: &str) -> Result<(), String> {
    let u = url::Url::parse(o).map_err(|e| format!("{o:?} is not an origin (scheme://host[:port]): {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(format!("{o:?} is not an http or https origin"));
    }
    if u.origin().ascii_serialization() != o {
        return Err(format!("{o:?} is not an origin: write it as {} (no path, query or trailing slash)", u.origin().ascii_serialization()));
    }
    Ok(())
}

fn check_id(id: &str, prefix: &str) -> Result<(), String> {
    if !id.starts_with(prefix) || id.len() != 20 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{id:?} is not an Okta id: {prefix} followed by 17 letters or digits"));
    }
    Ok(())
}

fn check_uri(u: &str) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("{u:?} is not an absolute URI: {e}"))?;
    if parsed.fragment().is_some() {
        return Err(format!("{u:?} must not contain a fragment"));
    }
    Ok(())
}

/// Okta's ranges for access-policy rule lifetimes.
pub fn check_lifetimes(t: &TokenLifetimes) -> Result<(), (&'static str, String)> {
    if !(5..=1440).contains(&t.access_token_lifetime_minutes) {
        return Err(("accessTokenLifetimeMinutes", format!("must be between 5 and 1440 minutes, got {}", t.access_token_lifetime_minutes)));
    }
    if t.refresh_token_lifetime_minutes != 0 && t.refresh_token_lifetime_minutes < t.access_token_lifetime_minutes {
        return Err((
            "refreshTokenLifetimeMinutes",
            format!(
                "must be 0 (unlimited) or at least the access-token lifetime ({} minutes), got {}",
                t.access_token_lifetime_minutes, t.refresh_token_lifetime_minutes
            ),
        ));
    }
    if !(10..=5 * 365 * 24 * 60).contains(&t.refresh_token_window_minutes) {
        return Err((
            "refreshTokenWindowMinutes",
            format!("must be between 10 minutes and 5 years, got {}", t.refresh_token_window_minutes),
        ));
    }
    if t.refresh_token_lifetime_minutes != 0 && t.refresh_token_window_minutes > t.refresh_token_lifetime_minutes {
        return Err((
            "refreshTokenWindowMinutes",
            format!(
                "must not exceed the refresh-token lifetime ({} minutes), got {}",
                t.refresh_token_lifetime_minutes, t.refresh_token_window_minutes
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tenant_parses() {
        let c = TenantConfig::default_tenant();
        assert_eq!(c.users.len(), 3);
        assert_eq!(c.apps[0].credentials.oauth_client.client_id, "bsr-local");
        let rt = c.apps[0].settings.oauth_client.refresh_token.unwrap();
        assert_eq!((rt.rotation_type, rt.leeway), (RotationType::Rotate, 15));
        assert_eq!(c.authorization_servers[0].policies[0].rules[0].actions.token.refresh_token_window_minutes, 10080);
    }

    #[test]
    fn leeway_out_of_range_names_file_line_column_field() {
        let src = DEFAULT_TENANT_YAML.replace("leeway: 15", "leeway: 90");
        let e = TenantConfig::parse(&src, "tenant.yaml").unwrap_err();
        assert_eq!(e.file, "tenant.yaml");
        assert_eq!(e.field, "apps[0].settings.oauthClient.refresh_token.leeway");
        let expected_line = src.lines().position(|l| l.contains("leeway: 90")).unwrap() + 1;
        assert_eq!(e.line, Some(expected_line));
        let expected_col = src.lines().nth(expected_line - 1).unwrap().find("leeway:").unwrap() + 1;
        assert_eq!(e.column, Some(expected_col), "the column of the `leeway` key itself");
        assert_eq!(e.message, "leeway must be between 0 and 60 seconds (Okta's range), got 90");
        assert!(e.to_string().starts_with(&format!("tenant.yaml:{expected_line}:")), "{e}");
    }

    #[test]
    fn unknown_field_is_an_error() {
        let src = DEFAULT_TENANT_YAML.replace("label: Buf Schema Registry", "label: Buf Schema Registry\n    lable: typo");
        let e = TenantConfig::parse(&src, "t.yaml").unwrap_err();
        assert_eq!(e.field, "apps[0].lable");
        assert!(e.message.contains("unknown field `lable`"), "{}", e.message);
        assert!(e.line.is_some());
    }

    #[test]
    fn dangling_member_is_located() {
        let src =
            DEFAULT_TENANT_YAML.replace("members: [alice@example.com, bob@example.com]", "members: [alice@example.com, dave@example.com]");
        let e = TenantConfig::parse(&src, "t.yaml").unwrap_err();
        assert_eq!(e.field, "groups[0].members[1]");
        assert_eq!(e.message, "no user with login dave@example.com");
        let expected_line = src.lines().position(|l| l.contains("dave@example.com")).unwrap() + 1;
        assert_eq!(e.line, Some(expected_line));
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let src = DEFAULT_TENANT_YAML.replace("id: 00u1bob0000000000001", "id: 00u1alice00000000001");
        let e = TenantConfig::parse(&src, "t.yaml").unwrap_err();
        assert_eq!(e.field, "users[1].id");
        assert_eq!(e.message, "duplicate id 00u1alice00000000001");
    }

    #[test]
    fn rate_limits_are_read_and_located() {
        let c = TenantConfig::parse(&format!("{DEFAULT_TENANT_YAML}\nrate_limits:\n  token: 600\n  api_users: 20\n"), "t.yaml").unwrap();
        assert_eq!((c.rate_limits.token, c.rate_limits.api_users, c.rate_limits.authorize), (Some(600), Some(20), None));
        assert!(TenantConfig::default_tenant().rate_limits.is_empty());
        let src = format!("{DEFAULT_TENANT_YAML}\nrate_limits:\n  authorize: 60\n  token: 0\n");
        let e = TenantConfig::parse(&src, "t.yaml").unwrap_err();
        assert_eq!(e.field, "rate_limits.token");
        assert_eq!(e.message, "must be between 1 and 1000000 requests per minute, got 0");
        assert_eq!(e.line, Some(src.lines().position(|l| l == "  token: 0").unwrap() + 1));
        assert_eq!(e.column, Some(3));
        let src = format!("{DEFAULT_TENANT_YAML}\nrate_limits:\n  tokens: 5\n");
        let e = TenantConfig::parse(&src, "t.yaml").unwrap_err();
        assert_eq!(e.field, "rate_limits.tokens");
        assert!(e.message.starts_with("unknown field `tokens`, expected one of `authorize`, `token`"), "{}", e.message);
        assert_eq!(e.line, Some(src.lines().position(|l| l == "  tokens: 5").unwrap() + 1));
    }

    #[test]
    fn lifetimes_are_range_checked() {
        let src = DEFAULT_TENANT_YAML.replace("accessTokenLifetimeMinutes: 60", "accessTokenLifetimeMinutes: 2");
        let e = TenantConfig::parse(&src, "t.yaml").unwrap_err();
        assert_eq!(e.field, "authorization_servers[0].policies[0].rules[0].actions.token.accessTokenLifetimeMinutes");
        assert_eq!(e.message, "must be between 5 and 1440 minutes, got 2");
    }
}
