//! A typed Rust client for the IdP's control plane: Okta's management API subset (users, lifecycle,
//! groups, OIDC apps, assignments, authorization servers, keys, a user's refresh tokens, the System Log)
//! and the mock-only controls under `/_mock/` (clock, reset, org key rotation, faults, rate limits, request
//! log).
//!
//! It speaks HTTP only, so it works the same against an in-process [`crate::MockIdp`], the `mock-idp`
//! binary or a container, and its calls are the ones an Okta SDK or script would make.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mock_idp::client::ClientError> {
//! use mock_idp::client::AdminClient;
//! use mock_idp::core::faults::{Action, Endpoint, RuleSpec};
//! let admin = AdminClient::new("http://127.0.0.1:8080", "mock-admin-token");
//! admin.deactivate_user("alice@example.com").await?;
//! let id = admin.add_fault(&RuleSpec::new(Endpoint::Token, Action::DropAfterCommit).grant_type("refresh_token").times(1)).await?;
//! let log = admin.requests().await?;
//! # let _ = (id, log); Ok(()) }
//! ```

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::core::faults::{Action, Endpoint, RuleSpec};
use crate::core::model::{AppStatus, ApplicationType, AuthMethod, RefreshTokenSettings, UserProfile, UserStatus};
pub use crate::core::ratelimit::{Bucket, RateLimits};

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Okta's error body (`errorCode`, `errorSummary`, `errorCauses`).
    #[error("HTTP {status} {code}: {summary} {causes:?}")]
    Api { status: u16, code: String, summary: String, causes: Vec<String> },
    /// Any other unsuccessful answer.
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// A successful answer that does not have the expected shape.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Status { status, .. } => Some(*status),
            ClientError::Http(e) => e.status().map(|s| s.as_u16()),
            ClientError::Decode(_) => None,
        }
    }
    /// Okta's `errorCode`, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A user as `/api/v1/users` answers it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub status: UserStatus,
    pub created: String,
    pub activated: Option<String>,
    pub status_changed: Option<String>,
    pub last_login: Option<String>,
    pub last_updated: String,
    pub password_changed: Option<String>,
    pub profile: UserProfile,
}

/// A group's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupProfile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A group as `/api/v1/groups` answers it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Group {
    pub id: String,
    pub profile: GroupProfile,
}

/// `credentials.oauthClient` of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthClientCredentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// In clear only in the answer to a create; masked elsewhere; on update, `None` keeps the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub token_endpoint_auth_method: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce_required: Option<bool>,
}

/// `settings.oauthClient` of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthClientSettings {
    pub application_type: ApplicationType,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub response_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
}

/// `settings.oauthClient.refresh_token`: `rotation_type` ROTATE or STATIC, `leeway` 0–60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub rotation_type: crate::core::model::RotationType,
    pub leeway: u8,
}

impl From<RefreshTokenSettings> for RefreshToken {
    fn from(s: RefreshTokenSettings) -> Self {
        RefreshToken { rotation_type: s.rotation_type, leeway: s.leeway }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppCredentials {
    #[serde(rename = "oauthClient")]
    pub oauth_client: OAuthClientCredentials,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppSettings {
    #[serde(rename = "oauthClient")]
    pub oauth_client: OAuthClientSettings,
}

/// An OIDC app as `/api/v1/apps` answers it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct App {
    pub id: String,
    pub label: String,
    pub status: AppStatus,
    pub credentials: AppCredentials,
    pub settings: AppSettings,
}

/// An OIDC app to create (`POST /api/v1/apps`), serialised as Okta's JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOidcApp {
    pub name: &'static str,
    pub label: String,
    pub sign_on_mode: &'static str,
    pub credentials: AppCredentials,
    pub settings: AppSettings,
}

impl NewOidcApp {
    /// A web app (client_secret_basic, authorization_code + refresh_token, ROTATE with `leeway`).
    pub fn web(label: &str, client_id: &str, client_secret: &str, redirect_uris: &[&str], leeway: u8) -> Self {
        NewOidcApp {
            name: "oidc_client",
            label: label.into(),
            sign_on_mode: "OPENID_CONNECT",
            credentials: AppCredentials {
                oauth_client: OAuthClientCredentials {
                    client_id: Some(client_id.into()),
                    client_secret: Some(client_secret.into()),
                    token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
                    pkce_required: Some(false),
                },
            },
            settings: AppSettings {
                oauth_client: OAuthClientSettings {
                    application_type: ApplicationType::Web,
                    redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
                    post_logout_redirect_uris: vec![],
                    grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                    response_types: vec!["code".into()],
                    refresh_token: Some(RefreshToken { rotation_type: crate::core::model::RotationType::Rotate, leeway }),
                },
            },
        }
    }
}

/// A user's assignment to an app (`scope` USER or GROUP).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AppUser {
    pub id: String,
    pub scope: String,
    pub status: String,
}

/// A live refresh token of a user at a client (one per refresh family).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRefreshToken {
    pub id: String,
    pub status: String,
    pub created: String,
    pub last_updated: String,
    pub expires_at: Option<String>,
    pub issuer: String,
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
}

/// A custom authorization server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuthorizationServer {
    pub id: String,
    pub name: String,
    pub description: String,
    pub audiences: Vec<String>,
    pub issuer: String,
    pub status: String,
}

/// A custom authorization server to create (`POST /api/v1/authorizationServers`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewAuthorizationServer {
    pub name: String,
    pub description: String,
    /// Okta supports exactly one.
    pub audiences: Vec<String>,
}

impl NewAuthorizationServer {
    pub fn new(name: &str, audience: &str, description: &str) -> Self {
        NewAuthorizationServer { name: name.into(), description: description.into(), audiences: vec![audience.into()] }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub priority: u32,
}

/// `actions.token` of a policy rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleLifetimes {
    pub access_token_lifetime_minutes: u32,
    pub refresh_token_lifetime_minutes: u32,
    pub refresh_token_window_minutes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct RuleTokenActions {
    pub token: RuleLifetimes,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PolicyRule {
    pub id: String,
    pub name: String,
    pub actions: RuleTokenActions,
}

/// A signing key with its Okta status (ACTIVE, NEXT, EXPIRED).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Key {
    pub kid: String,
    pub status: String,
    pub kty: String,
    pub alg: String,
    pub n: String,
    pub e: String,
}

/// An installed fault rule and its counters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FaultInfo {
    pub id: String,
    pub endpoint: Endpoint,
    #[serde(default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub times: Option<u32>,
    pub action: Action,
    /// Uses left; `None` = unlimited.
    pub remaining: Option<u32>,
    pub matched: u32,
    /// Requests waiting at a hold rule's barrier.
    #[serde(default)]
    pub waiting: Option<u32>,
}

/// One entry of `GET /_mock/requests`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RequestRecord {
    pub time: String,
    pub method: String,
    pub path: String,
    pub endpoint: Endpoint,
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub status: u16,
    pub refresh_family: Option<String>,
    pub refresh_generation: Option<u32>,
    pub fault: Option<String>,
}

/// `GET /_mock/clock`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClockInfo {
    pub now: String,
    pub frozen: bool,
    pub offset_seconds: f64,
}

/// The client. Cheap to clone; every call is one HTTP request (list calls follow `Link` paging).
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl AdminClient {
    /// A client for the IdP at `base_url` with the management token (`SSWS …`).
    pub fn new(base_url: &str, token: &str) -> Self {
        // Where reqwest is built with rustls and no provider of its own (feature unification with a crate
        // that asks for `rustls-tls-…-no-provider`, as the harness does), building a client without the
        // process-wide provider panics; install it first (idempotent).
        crate::tls::install_default_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            // A client with the provider installed and no proxies only fails to build if the OS refuses resources; an invariant.
            .expect("a reqwest client builds");
        AdminClient { http, base: base_url.trim_end_matches('/').to_string(), token: token.into() }
    }

    /// A client for an in-process IdP, with its tenant's management token.
    pub fn for_idp(idp: &crate::MockIdp) -> Self {
        let token = idp.with_tenant(|t| t.management_token.expose().to_string());
        Self::new(idp.base_url(), &token)
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request and returns the status and the parsed JSON body (`Null` for an empty body);
    /// unsuccessful answers become [`ClientError`]s.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(StatusCode, Value, Option<String>)> {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) };
        let mut rb = self.http.request(method, url).header("Accept", "application/json");
        if !path.contains("/_mock/") {
            rb = rb.header("Authorization", format!("SSWS {}", self.token));
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await?;
        let status = r.status();
        let link = r.headers().get("link").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = r.text().await?;
        if !status.is_success() {
            if let Ok(v) = serde_json::from_str::<Value>(&text)
                && let Some(code) = v.get("errorCode").and_then(Value::as_str)
            {
                let causes = v["errorCauses"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|c| c["errorSummary"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                return Err(ClientError::Api {
                    status: status.as_u16(),
                    code: code.into(),
                    summary: v["errorSummary"].as_str().unwrap_or_default().into(),
                    causes,
                });
            }
            return Err(ClientError::Status { status: status.as_u16(), body: text });
        }
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))?
        };
        Ok((status, v, link))
    }

    async fn call<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<&Value>) -> Result<T> {
        let (_, v, _) = self.send(method, path, body).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    async fn unit(&self, method: Method, path: &str, body: Option<&Value>) -> Result<()> {
        self.send(method, path, body).await.map(|_| ())
    }

    /// GETs a list and follows `rel="next"` links.
    async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(p) = next.take() {
            let (_, v, link) = self.send(Method::GET, &p, None).await?;
            let page: Vec<T> = serde_json::from_value(v).map_err(|e| ClientError::Decode(format!("{p}: {e}")))?;
            out.extend(page);
            next = link.and_then(|l| {
                l.split(',').find(|x| x.contains("rel=\"next\"")).and_then(|x| Some(x.split_once('<')?.1.split_once('>')?.0.to_string()))
            });
        }
        Ok(out)
    }

    // ----- users -----

    /// `POST /api/v1/users?activate=…` with a profile and optionally a password.
    pub async fn create_user(&self, profile: &UserProfile, password: Option<&str>, activate: bool) -> Result<User> {
        let mut body = json!({"profile": profile});
        if let Some(p) = password {
            body["credentials"] = json!({"password": {"value": p}});
        }
        self.call(Method::POST, &format!("/api/v1/users?activate={activate}"), Some(&body)).await
    }

    /// `GET /api/v1/users/{id or login}`.
    pub async fn get_user(&self, id_or_login: &str) -> Result<User> {
        self.call(Method::GET, &format!("/api/v1/users/{}", enc(id_or_login)), None).await
    }

    /// `GET /api/v1/users` with raw query pairs (`q`, `filter`, `search`, `limit`); follows paging.
    pub async fn list_users(&self, query: &[(&str, &str)]) -> Result<Vec<User>> {
        let q = form_urlencoded::Serializer::new(String::new()).extend_pairs(query.iter().copied()).finish();
        self.list(&format!("/api/v1/users{}", if q.is_empty() { String::new() } else { format!("?{q}") })).await
    }

    /// `POST /api/v1/users/{id}` with profile attributes to change (a partial update).
    pub async fn update_user_profile(&self, id_or_login: &str, changes: &Value) -> Result<User> {
        self.call(Method::POST, &format!("/api/v1/users/{}", enc(id_or_login)), Some(&json!({"profile": changes}))).await
    }

    /// Sets a new password (`POST /api/v1/users/{id}` with `credentials.password.value`).
    pub async fn set_password(&self, id_or_login: &str, password: &str) -> Result<User> {
        let body = json!({"credentials": {"password": {"value": password}}});
        self.call(Method::POST, &format!("/api/v1/users/{}", enc(id_or_login)), Some(&body)).await
    }

    async fn lifecycle(&self, id: &str, op: &str) -> Result<()> {
        self.unit(Method::POST, &format!("/api/v1/users/{}/lifecycle/{op}", enc(id)), None).await
    }

    /// `lifecycle/activate` (STAGED or DEPROVISIONED users; old tokens stay dead).
    pub async fn activate_user(&self, id_or_login: &str) -> Result<()> {
        self.lifecycle(id_or_login, "activate").await
    }
    /// `lifecycle/deactivate`: revokes the user's tokens.
    pub async fn deactivate_user(&self, id_or_login: &str) -> Result<()> {
        self.lifecycle(id_or_login, "deactivate").await
    }
    /// `lifecycle/suspend` (ACTIVE users): revokes the user's tokens.
    pub async fn suspend_user(&self, id_or_login: &str) -> Result<()> {
        self.lifecycle(id_or_login, "suspend").await
    }
    /// `lifecycle/unsuspend` (SUSPENDED users).
    pub async fn unsuspend_user(&self, id_or_login: &str) -> Result<()> {
        self.lifecycle(id_or_login, "unsuspend").await
    }

    /// `DELETE /api/v1/users/{id}`: deactivates first, deletes on the second call.
    pub async fn delete_user(&self, id_or_login: &str) -> Result<()> {
        self.unit(Method::DELETE, &format!("/api/v1/users/{}", enc(id_or_login)), None).await
    }

    /// `DELETE /api/v1/users/{id}/sessions[?oauthTokens=true]`.
    pub async fn clear_sessions(&self, id_or_login: &str, oauth_tokens: bool) -> Result<()> {
        self.unit(Method::DELETE, &format!("/api/v1/users/{}/sessions?oauthTokens={oauth_tokens}", enc(id_or_login)), None).await
    }

    /// `GET /api/v1/users/{id}/groups`.
    pub async fn user_groups(&self, id_or_login: &str) -> Result<Vec<Group>> {
        self.call(Method::GET, &format!("/api/v1/users/{}/groups", enc(id_or_login)), None).await
    }

    /// `GET /api/v1/users/{uid}/clients/{client_id}/tokens`: the live refresh tokens (one per family).
    pub async fn refresh_tokens(&self, user: &str, client_id: &str) -> Result<Vec<UserRefreshToken>> {
        self.call(Method::GET, &format!("/api/v1/users/{}/clients/{}/tokens", enc(user), enc(client_id)), None).await
    }

    /// `DELETE /api/v1/users/{uid}/clients/{client_id}/tokens[/{token_id}]`.
    pub async fn revoke_refresh_tokens(&self, user: &str, client_id: &str, token_id: Option<&str>) -> Result<()> {
        let tail = token_id.map(|t| format!("/{}", enc(t))).unwrap_or_default();
        self.unit(Method::DELETE, &format!("/api/v1/users/{}/clients/{}/tokens{tail}", enc(user), enc(client_id)), None).await
    }

    // ----- groups -----

    pub async fn create_group(&self, name: &str, description: Option<&str>) -> Result<Group> {
        self.call(Method::POST, "/api/v1/groups", Some(&json!({"profile": {"name": name, "description": description}}))).await
    }
    pub async fn get_group(&self, id: &str) -> Result<Group> {
        self.call(Method::GET, &format!("/api/v1/groups/{}", enc(id)), None).await
    }
    /// `GET /api/v1/groups[?q=prefix]`.
    pub async fn list_groups(&self, q: Option<&str>) -> Result<Vec<Group>> {
        let path = match q {
            Some(q) => format!("/api/v1/groups?q={}", enc(q)),
            None => "/api/v1/groups".into(),
        };
        self.call(Method::GET, &path, None).await
    }
    pub async fn delete_group(&self, id: &str) -> Result<()> {
        self.unit(Method::DELETE, &format!("/api/v1/groups/{}", enc(id)), None).await
    }
    pub async fn group_members(&self, id: &str) -> Result<Vec<User>> {
        self.call(Method::GET, &format!("/api/v1/groups/{}/users", enc(id)), None).await
    }
    pub async fn add_group_member(&self, group_id: &str, user: &str) -> Result<()> {
        self.unit(Method::PUT, &format!("/api/v1/groups/{}/users/{}", enc(group_id), enc(user)), None).await
    }
    /// Removes a member; apps the user is no longer assigned to lose the user's tokens.
    pub async fn remove_group_member(&self, group_id: &str, user: &str) -> Result<()> {
        self.unit(Method::DELETE, &format!("/api/v1/groups/{}/users/{}", enc(group_id), enc(user)), None).await
    }

    // ----- apps -----

    /// `POST /api/v1/apps?activate=…`; the answer shows the client secret in clear (the only time).
    pub async fn create_app(&self, app: &NewOidcApp, activate: bool) -> Result<App> {
        let body = serde_json::to_value(app).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.create_app_json(&body, activate).await
    }
    /// `POST /api/v1/apps` with any Okta app JSON.
    pub async fn create_app_json(&self, body: &Value, activate: bool) -> Result<App> {
        self.call(Method::POST, &format!("/api/v1/apps?activate={activate}"), Some(body)).await
    }
    pub async fn get_app(&self, id: &str) -> Result<App> {
        self.call(Method::GET, &format!("/api/v1/apps/{}", enc(id)), None).await
    }
    pub async fn list_apps(&self) -> Result<Vec<App>> {
        self.call(Method::GET, "/api/v1/apps", None).await
    }
    /// The app with this client_id, app id or label (scenarios name apps by client_id).
    pub async fn find_app(&self, name: &str) -> Result<App> {
        self.list_apps()
            .await?
            .into_iter()
            .find(|a| a.id == name || a.label == name || a.credentials.oauth_client.client_id.as_deref() == Some(name))
            .ok_or_else(|| ClientError::Api {
                status: 404,
                code: "E0000007".into(),
                summary: format!("Not found: Resource not found: {name} (AppInstance)"),
                causes: vec![],
            })
    }
    /// `PUT /api/v1/apps/{id}` with Okta app JSON (left-out attributes and a missing secret are kept).
    pub async fn update_app(&self, id: &str, body: &Value) -> Result<App> {
        self.call(Method::PUT, &format!("/api/v1/apps/{}", enc(id)), Some(body)).await
    }
    /// Changes the refresh-token rotation of an app (`settings.oauthClient.refresh_token`).
    pub async fn set_refresh_rotation(&self, id: &str, rotation: crate::core::model::RotationType, leeway: u8) -> Result<App> {
        let body = json!({"settings": {"oauthClient": {"refresh_token": {"rotation_type": rotation, "leeway": leeway}}}});
        self.update_app(id, &body).await
    }
    pub async fn activate_app(&self, id: &str) -> Result<()> {
        self.unit(Method::POST, &format!("/api/v1/apps/{}/lifecycle/activate", enc(id)), None).await
    }
    /// Deactivation revokes every token of the app.
    pub async fn deactivate_app(&self, id: &str) -> Result<()> {
        self.unit(Method::POST, &format!("/api/v1/apps/{}/lifecycle/deactivate", enc(id)), None).await
    }
    pub async fn app_users(&self, id: &str) -> Result<Vec<AppUser>> {
        self.call(Method::GET, &format!("/api/v1/apps/{}/users", enc(id)), None).await
    }
    pub async fn assign_user(&self, app_id: &str, user_id: &str) -> Result<AppUser> {
        self.call(Method::POST, &format!("/api/v1/apps/{}/users", enc(app_id)), Some(&json!({"id": user_id, "scope": "USER"}))).await
    }
    pub async fn unassign_user(&self, app_id: &str, user_id: &str) -> Result<()> {
        self.unit(Method::DELETE, &format!("/api/v1/apps/{}/users/{}", enc(app_id), enc(user_id)), None).await
    }
    pub async fn assign_group(&self, app_id: &str, group_id: &str) -> Result<()> {
        self.unit(Method::PUT, &format!("/api/v1/apps/{}/groups/{}", enc(app_id), enc(group_id)), None).await
    }
    pub async fn unassign_group(&self, app_id: &str, group_id: &str) -> Result<()> {
        self.unit(Method::DELETE, &format!("/api/v1/apps/{}/groups/{}", enc(app_id), enc(group_id)), None).await
    }
    /// `DELETE /api/v1/apps/{id}`: only an INACTIVE app (403 `E0000056` otherwise); its assignments and
    /// tokens go with it.
    pub async fn delete_app(&self, id: &str) -> Result<()> {
        self.unit(Method::DELETE, &format!("/api/v1/apps/{}", enc(id)), None).await
    }

    // ----- authorization servers -----

    pub async fn list_servers(&self) -> Result<Vec<AuthorizationServer>> {
        self.call(Method::GET, "/api/v1/authorizationServers", None).await
    }
    pub async fn get_server(&self, id: &str) -> Result<AuthorizationServer> {
        self.call(Method::GET, &format!("/api/v1/authorizationServers/{}", enc(id)), None).await
    }
    /// `POST /api/v1/authorizationServers`: an ACTIVE custom server with its own keys; issuer
    /// `{base}/oauth2/{id}`.
    pub async fn create_server(&self, server: &NewAuthorizationServer) -> Result<AuthorizationServer> {
        let body = serde_json::to_value(server).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call(Method::POST, "/api/v1/authorizationServers", Some(&body)).await
    }
    pub async fn activate_server(&self, id: &str) -> Result<()> {
        self.unit(Method::POST, &format!("/api/v1/authorizationServers/{}/lifecycle/activate", enc(id)), None).await
    }
    /// Deactivation makes the server's endpoints unavailable (404) and revokes its tokens.
    pub async fn deactivate_server(&self, id: &str) -> Result<()> {
        self.unit(Method::POST, &format!("/api/v1/authorizationServers/{}/lifecycle/deactivate", enc(id)), None).await
    }
    /// `DELETE /api/v1/authorizationServers/{id}`: only an INACTIVE server other than `default`.
    pub async fn delete_server(&self, id: &str) -> Result<()> {
        self.unit(Method::DELETE, &format!("/api/v1/authorizationServers/{}", enc(id)), None).await
    }
    pub async fn policies(&self, server: &str) -> Result<Vec<Policy>> {
        self.call(Method::GET, &format!("/api/v1/authorizationServers/{}/policies", enc(server)), None).await
    }
    pub async fn rules(&self, server: &str, policy: &str) -> Result<Vec<PolicyRule>> {
        self.call(Method::GET, &format!("/api/v1/authorizationServers/{}/policies/{}/rules", enc(server), enc(policy)), None).await
    }
    /// `PUT …/rules/{rid}` with new token lifetimes.
    pub async fn set_rule_lifetimes(&self, server: &str, policy: &str, rule: &str, l: RuleLifetimes) -> Result<PolicyRule> {
        let path = format!("/api/v1/authorizationServers/{}/policies/{}/rules/{}", enc(server), enc(policy), enc(rule));
        self.call(Method::PUT, &path, Some(&json!({"actions": {"token": l}}))).await
    }
    /// The first rule of the first policy: the one that decides token lifetimes.
    pub async fn set_token_lifetimes(&self, server: &str, l: RuleLifetimes) -> Result<PolicyRule> {
        let p = self.policies(server).await?.into_iter().next().ok_or_else(|| ClientError::Decode("no policy".into()))?;
        let r = self.rules(server, &p.id).await?.into_iter().next().ok_or_else(|| ClientError::Decode("no rule".into()))?;
        self.set_rule_lifetimes(server, &p.id, &r.id, l).await
    }
    /// `GET …/credentials/keys`.
    pub async fn server_keys(&self, server: &str) -> Result<Vec<Key>> {
        self.call(Method::GET, &format!("/api/v1/authorizationServers/{}/credentials/keys", enc(server)), None).await
    }
    /// `POST …/credentials/lifecycle/keyRotate`: NEXT signs from now on.
    pub async fn rotate_server_keys(&self, server: &str) -> Result<Vec<Key>> {
        let path = format!("/api/v1/authorizationServers/{}/credentials/lifecycle/keyRotate", enc(server));
        self.call(Method::POST, &path, Some(&json!({"use": "sig"}))).await
    }

    // ----- System Log -----

    /// `GET /api/v1/logs` with an optional SCIM filter, oldest first; follows paging.
    pub async fn logs(&self, filter: Option<&str>) -> Result<Vec<Value>> {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("limit", "1000");
        if let Some(f) = filter {
            q.append_pair("filter", f);
        }
        self.list(&format!("/api/v1/logs?{}", q.finish())).await
    }

    // ----- mock controls -----

    /// `POST /_mock/reset`: the tenant as configured, the clock as started, no faults, empty logs.
    pub async fn reset(&self) -> Result<()> {
        self.unit(Method::POST, "/_mock/reset", None).await
    }
    /// `POST /_mock/reset {"tenant": …}`: as [`AdminClient::reset`], but to another tenant configuration.
    pub async fn reset_to(&self, tenant: &crate::TenantConfig) -> Result<()> {
        let t = serde_json::to_value(tenant).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.unit(Method::POST, "/_mock/reset", Some(&json!({"tenant": t}))).await
    }
    /// `GET /_mock/rate-limits`: the limits in force (requests per minute per bucket).
    pub async fn rate_limits(&self) -> Result<RateLimits> {
        self.call(Method::GET, "/_mock/rate-limits", None).await
    }
    /// `PUT /_mock/rate-limits`: replaces every limit (`RateLimits::default()` turns them all off); the counts
    /// of the current windows are kept.
    pub async fn set_rate_limits(&self, limits: &RateLimits) -> Result<RateLimits> {
        let body = serde_json::to_value(limits).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.call(Method::PUT, "/_mock/rate-limits", Some(&body)).await
    }
    pub async fn clock(&self) -> Result<ClockInfo> {
        self.call(Method::GET, "/_mock/clock", None).await
    }
    /// Moves the tenant clock forward.
    pub async fn advance_clock(&self, seconds: f64) -> Result<ClockInfo> {
        self.call(Method::POST, "/_mock/clock", Some(&json!({"advance_seconds": seconds}))).await
    }
    /// `POST /_mock/clock` with any of `advance_seconds`, `advance_ms`, `set`, `freeze`, `offset_seconds`.
    pub async fn set_clock(&self, change: &Value) -> Result<ClockInfo> {
        self.call(Method::POST, "/_mock/clock", Some(change)).await
    }
    /// `POST /_mock/keys/rotate`: rotates the org server's keys (`at_once`: a never-published key signs
    /// at once).
    pub async fn rotate_org_keys(&self, sign_with_new_key_at_once: bool) -> Result<Vec<Key>> {
        self.call(Method::POST, "/_mock/keys/rotate", Some(&json!({"sign_with_new_key_at_once": sign_with_new_key_at_once}))).await
    }
    /// `POST /_mock/faults`; returns the rule id.
    pub async fn add_fault(&self, rule: &RuleSpec) -> Result<String> {
        let body = serde_json::to_value(rule).map_err(|e| ClientError::Decode(e.to_string()))?;
        let v: Value = self.call(Method::POST, "/_mock/faults", Some(&body)).await?;
        v["id"].as_str().map(str::to_string).ok_or_else(|| ClientError::Decode(format!("no id in {v}")))
    }
    pub async fn faults(&self) -> Result<Vec<FaultInfo>> {
        self.call(Method::GET, "/_mock/faults", None).await
    }
    pub async fn fault(&self, id: &str) -> Result<FaultInfo> {
        self.call(Method::GET, &format!("/_mock/faults/{}", enc(id)), None).await
    }
    pub async fn remove_fault(&self, id: &str) -> Result<()> {
        self.unit(Method::DELETE, &format!("/_mock/faults/{}", enc(id)), None).await
    }
    pub async fn clear_faults(&self) -> Result<()> {
        self.unit(Method::DELETE, "/_mock/faults", None).await
    }
    /// Releases the requests held by a hold rule; returns how many went.
    pub async fn release_fault(&self, id: &str) -> Result<u32> {
        let v: Value = self.call(Method::POST, &format!("/_mock/faults/{}/release", enc(id)), None).await?;
        v["released"].as_u64().map(|n| n as u32).ok_or_else(|| ClientError::Decode(format!("no released in {v}")))
    }
    /// `GET /_mock/requests`.
    pub async fn requests(&self) -> Result<Vec<RequestRecord>> {
        self.call(Method::GET, "/_mock/requests", None).await
    }
    /// `GET /_mock/requests?endpoint=…`.
    pub async fn requests_to(&self, endpoint: Endpoint) -> Result<Vec<RequestRecord>> {
        self.call(Method::GET, &format!("/_mock/requests?endpoint={}", endpoint.as_str()), None).await
    }
    pub async fn clear_requests(&self) -> Result<()> {
        self.unit(Method::DELETE, "/_mock/requests", None).await
    }
}
