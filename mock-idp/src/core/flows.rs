//! The OAuth/OIDC decisions: authorize, token grants, userinfo, introspection, revocation, logout.
//!
//! Handlers parse, read the clock once, lock the tenant, call one of these, unlock, sign what needs
//! signing outside the lock, and render. Nothing here is slow: RSA signing happens in [`crate::signing`].

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::errors::*;
use super::ids;
use super::model::*;
use super::params::Params;
use super::refresh::{self, FamilyGrant, FamilyId, FamilyMeta, Lifetimes, NewToken, RefreshError, RevokeReason, RotationPolicy};
use super::syslog::{Actor, Event, Outcome};
use super::tenant::*;
use crate::clock::Millis;
use crate::keys::KeyMaterial;

/// How `/v1/authorize` fails.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeError {
    /// Unknown custom authorization server: Okta's 404 E0000007.
    ServerNotFound(String),
    /// The client or redirect URI cannot be trusted: an HTML 400 page, no redirect.
    Page(OAuthError),
    /// Everything else goes back to the client's redirect URI.
    Redirect { redirect_uri: String, mode: ResponseMode, state: Option<String>, error: OAuthError },
}

fn is_pkce_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

impl Tenant {
    /// The admin-console address Okta names in its redirect_uri error page.
    pub fn admin_app_url(&self, client_id: &str) -> String {
        format!("{}/admin/app/oidc_client/instance/{client_id}#tab-general", self.base_url)
    }

    /// Validates an authorize request in Okta's order: client, redirect URI (page errors), then the rest
    /// (redirect errors, `state` first).
    pub fn validate_authorize(&self, server: &ServerId, p: &Params) -> Result<AuthorizeRequest, AuthorizeError> {
        let Some(client_id) = p.get("client_id") else {
            return Err(AuthorizeError::Page(OAuthError::invalid_request(missing_param("client_id"))));
        };
        let Some(app) = self.app_by_client_id(client_id).filter(|a| a.status == AppStatus::Active) else {
            return Err(AuthorizeError::Page(OAuthError::invalid_client(BAD_CLIENT_ID).with_status(400)));
        };
        let redirect_uri = match p.get("redirect_uri") {
            Some(r) if app.redirect_uris.iter().any(|x| x == r) => r.to_string(),
            _ => {
                return Err(AuthorizeError::Page(OAuthError::invalid_request(redirect_uri_not_registered(&self.admin_app_url(client_id)))));
            }
        };
        let state = p.get("state").map(str::to_string);
        let mode = match p.get("response_mode") {
            None | Some("query") => ResponseMode::Query,
            Some("fragment") => ResponseMode::Fragment,
            Some("form_post") => ResponseMode::FormPost,
            Some(other) => {
                return Err(AuthorizeError::Redirect {
                    redirect_uri,
                    mode: ResponseMode::Query,
                    state,
                    error: OAuthError::new(
                        ErrorCode::UnsupportedResponseMode,
                        format!(
                            "The response mode '{other}' is not supported by the authorization server. Supported values: [query, fragment, form_post]."
                        ),
                    ),
                });
            }
        };
        let redirect =
            |error: OAuthError| AuthorizeError::Redirect { redirect_uri: redirect_uri.clone(), mode, state: state.clone(), error };
        match p.get("response_type") {
            Some("code") => {}
            Some(_) => {
                return Err(redirect(OAuthError::new(ErrorCode::UnsupportedResponseType, unsupported_response_type(&app.response_types))));
            }
            None => return Err(redirect(OAuthError::invalid_request(missing_param("response_type")))),
        }
        let Some(state_v) = state.clone() else {
            return Err(redirect(OAuthError::invalid_request(INVALID_STATE)));
        };
        let Some(scope) = p.get("scope") else {
            return Err(redirect(OAuthError::invalid_scope(SCOPE_MALFORMED)));
        };
        if scope.len() > 1024 {
            return Err(redirect(OAuthError::invalid_scope(SCOPE_MALFORMED)));
        }
        let mut scopes: Vec<String> = Vec::new();
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            if !scopes.iter().any(|x| x == s) {
                scopes.push(s.to_string());
            }
        }
        let known = |s: &str| {
            OIDC_SCOPES.contains(&s)
                || match server {
                    ServerId::Org => s == "groups",
                    ServerId::Custom(id) => self.servers.get(id).is_some_and(|x| x.scopes.iter().any(|c| c == s)),
                }
        };
        if scopes.is_empty() || scopes.iter().any(|s| !known(s)) {
            return Err(redirect(OAuthError::invalid_scope(SCOPE_UNKNOWN)));
        }
        if *server == ServerId::Org && !scopes.iter().any(|s| s == "openid") {
            return Err(redirect(OAuthError::invalid_scope(SCOPE_UNKNOWN)));
        }
        let mut prompt_none = false;
        let mut prompt_login = false;
        if let Some(prompt) = p.get("prompt") {
            for v in prompt.split(' ').filter(|s| !s.is_empty()) {
                match v {
                    "none" => prompt_none = true,
                    "login" => prompt_login = true,
                    "consent" => {}
                    _ => return Err(redirect(OAuthError::invalid_request(invalid_prompt("none, consent, login, consent and login")))),
                }
            }
            if prompt_none && prompt_login {
                return Err(redirect(OAuthError::invalid_request(invalid_prompt("none, consent, login, consent and login"))));
            }
        }
        let max_age = match p.get("max_age") {
            None => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (0..=i32::MAX as i64).contains(&n) => Some(n),
                _ => return Err(redirect(OAuthError::invalid_request("The 'max_age' parameter must be a non-negative integer."))),
            },
        };
        if prompt_none && max_age == Some(0) {
            return Err(redirect(OAuthError::invalid_request(PROMPT_NONE_MAX_AGE_ZERO)));
        }
        let code_challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
            (None, Some(_)) | (None, None) => {
                if app.pkce_required {
                    return Err(redirect(OAuthError::invalid_request(PKCE_CHALLENGE_REQUIRED)));
                }
                None
            }
            (Some(c), method) => {
                if method != Some("S256") {
                    return Err(redirect(OAuthError::invalid_request(PKCE_METHOD_UNSUPPORTED)));
                }
                if !c.chars().all(is_pkce_char) || c.len() < 43 || c.len() > 128 {
                    return Err(redirect(OAuthError::invalid_request(PKCE_ILLEGAL_CHARS)));
                }
                Some(c.to_string())
            }
        };
        Ok(AuthorizeRequest {
            server: server.clone(),
            client_id: client_id.to_string(),
            redirect_uri,
            response_mode: mode,
            scopes,
            state: state_v,
            nonce: p.get("nonce").map(str::to_string),
            code_challenge,
            prompt_none,
            prompt_login,
            max_age,
            login_hint: p.get("login_hint").map(str::to_string),
        })
    }

    /// Whether an existing session satisfies the request (no `prompt=login`, `max_age` respected).
    pub fn session_satisfies(req: &AuthorizeRequest, s: &Session, now: Millis) -> bool {
        !req.prompt_login && req.max_age.is_none_or(|m| now - s.auth_time <= m * 1000)
    }

    /// Parks a request while the user signs in on the hosted page; returns the `okta_key`.
    pub fn park_authorize(&mut self, req: AuthorizeRequest, now: Millis) -> String {
        let key = ids::opaque(24);
        self.pending.insert(key.clone(), (req, now));
        key
    }

    pub fn take_parked(&mut self, key: &str, now: Millis) -> Option<AuthorizeRequest> {
        let (req, at) = self.pending.remove(key)?;
        (now - at <= PENDING_LIFETIME_MS).then_some(req)
    }

    /// Mock-only (`tamper_authorize: injected_code`): makes an issued code one of another authorization
    /// request of the same client, user and redirect URI, as an attacker's code injected into this response
    /// would be. Its PKCE challenge becomes the one of [`super::faults::INJECTED_CODE_VERIFIER`] and its
    /// nonce [`super::faults::TAMPERED_NONCE`], each only if the request had one.
    pub fn rebind_code_to_another_request(&mut self, code: &str) {
        if let Some(c) = self.codes.get_mut(&ids::token_hash(code)) {
            if c.code_challenge.is_some() {
                c.code_challenge = Some(URL_SAFE_NO_PAD.encode(Sha256::digest(super::faults::INJECTED_CODE_VERIFIER.as_bytes())));
            }
            if c.nonce.is_some() {
                c.nonce = Some(super::faults::TAMPERED_NONCE.to_string());
            }
        }
    }

    /// Issues a code for an authenticated user, or the redirect error Okta gives (not assigned, inactive).
    pub fn complete_authorize(&mut self, req: &AuthorizeRequest, session: &Session, now: Millis) -> Result<String, AuthorizeError> {
        let prefix = req.server.event_prefix();
        let fail = |t: &mut Tenant, error: OAuthError| {
            let app = t.app_by_client_id(&req.client_id).cloned();
            let actor = t.user_actor(&session.user_id);
            let mut e = Event::new(format!("{prefix}.authorize"), authorize_message(&req.server), Outcome::Failure, now)
                .actor(actor)
                .client(&req.client_id)
                .reason(error.description.clone());
            if let Some(a) = &app {
                e = e.target(Tenant::app_target(a));
            }
            t.push_event(e);
            AuthorizeError::Redirect {
                redirect_uri: req.redirect_uri.clone(),
                mode: req.response_mode,
                state: Some(req.state.clone()),
                error,
            }
        };
        let Some(app) = self.app_by_client_id(&req.client_id).cloned() else {
            return Err(AuthorizeError::Page(OAuthError::invalid_client(BAD_CLIENT_ID).with_status(400)));
        };
        if app.status != AppStatus::Active {
            return Err(AuthorizeError::Page(OAuthError::invalid_client(BAD_CLIENT_ID).with_status(400)));
        }
        let active = self.users.get(&session.user_id).is_some_and(|u| u.status == UserStatus::Active);
        if !active {
            return Err(fail(self, OAuthError::access_denied("The user is not active.")));
        }
        if !self.is_assigned(&app, &session.user_id) {
            return Err(fail(self, OAuthError::access_denied(NOT_ASSIGNED)));
        }
        let code = ids::opaque(32);
        self.codes.insert(
            ids::token_hash(&code),
            AuthCode {
                client_id: req.client_id.clone(),
                server: req.server.clone(),
                redirect_uri: req.redirect_uri.clone(),
                scopes: req.scopes.clone(),
                nonce: req.nonce.clone(),
                code_challenge: req.code_challenge.clone(),
                user_id: session.user_id.clone(),
                auth_time: session.auth_time,
                amr: session.amr.clone(),
                session_id: Some(session.id.clone()),
                expires_at: now + CODE_LIFETIME_MS,
                redeemed: false,
                issued_tokens: Vec::new(),
                family: None,
            },
        );
        let actor = self.user_actor(&session.user_id);
        self.push_event(
            Event::new(format!("{prefix}.authorize.code"), authorize_message(&req.server), Outcome::Success, now)
                .actor(actor)
                .client(&req.client_id)
                .target(Tenant::app_target(&app))
                .debug("grantedScopes", req.scopes.join(" ")),
        );
        Ok(code)
    }
}

fn authorize_message(server: &ServerId) -> &'static str {
    match server {
        ServerId::Org => "OIDC authorization code request",
        ServerId::Custom(_) => "OAuth2 authorization code request",
    }
}

fn token_message(server: &ServerId) -> &'static str {
    match server {
        ServerId::Org => "OIDC token request",
        ServerId::Custom(_) => "OAuth2 token request",
    }
}

/// How the client authenticated at a token, introspect or revoke endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    Basic {
        client_id: String,
        secret: String,
    },
    /// An `Authorization` header that is not valid Basic credentials.
    BadHeader,
    Post {
        client_id: String,
        secret: String,
    },
    /// Only `client_id` in the body: a public client.
    ClientIdOnly {
        client_id: String,
    },
    /// `Authorization: Basic base64(client_id)`: no colon, no secret. okta-auth-js sends this when a public
    /// client revokes or introspects a token, and Okta takes it as that client's id; for any other client it
    /// is not valid Basic credentials.
    BasicIdOnly {
        client_id: String,
    },
    Multiple,
    Missing,
}

impl ClientAuth {
    fn client_id(&self) -> Option<&str> {
        match self {
            ClientAuth::Basic { client_id, .. }
            | ClientAuth::Post { client_id, .. }
            | ClientAuth::ClientIdOnly { client_id }
            | ClientAuth::BasicIdOnly { client_id } => Some(client_id),
            _ => None,
        }
    }
}

/// A token request, keyed by `grant_type` so the grant logic matches exhaustively.
#[derive(Debug, Clone)]
pub enum TokenRequest {
    AuthorizationCode { code: Option<String>, redirect_uri: Option<String>, code_verifier: Option<String> },
    RefreshToken { refresh_token: Option<String>, scope: Option<String> },
    ClientCredentials { scope: Option<String> },
}

impl TokenRequest {
    pub fn grant_type(&self) -> &'static str {
        match self {
            TokenRequest::AuthorizationCode { .. } => "authorization_code",
            TokenRequest::RefreshToken { .. } => "refresh_token",
            TokenRequest::ClientCredentials { .. } => "client_credentials",
        }
    }
}

/// What a successful grant will mint; signed outside the tenant lock, then registered.
pub struct MintPlan {
    pub server: ServerId,
    pub grant_type: &'static str,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_in: i64,
    pub access_claims: Map<String, Value>,
    pub access_key: Arc<KeyMaterial>,
    pub id_claims: Option<Map<String, Value>>,
    pub id_key: Arc<KeyMaterial>,
    pub refresh_token: Option<String>,
    pub family: Option<FamilyId>,
    pub refresh_generation: Option<u32>,
    pub code_hash: Option<[u8; 32]>,
    pub access_record: TokenRecord,
    pub id_record: Option<TokenRecord>,
}

/// The refresh-token family and generation a request presented, for the request log (never the token).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshTrace {
    pub family: Option<FamilyId>,
    pub generation: Option<u32>,
}

/// `at_hash`: base64url of the left half of SHA-256 of the access token.
pub fn at_hash(access_token: &str) -> String {
    let h = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&h[..16])
}

/// Grant types the mock implements, for Okta's "Valid values" list.
pub const IMPLEMENTED_GRANTS: &[&str] = &["authorization_code", "client_credentials", "refresh_token"];

impl Tenant {
    /// Authenticates the client of a token, introspect or revoke request.
    pub fn authenticate_client(&mut self, auth: &ClientAuth, now: Millis) -> Result<App, OAuthError> {
        let result = self.authenticate_client_inner(auth);
        if let Err(e) = &result {
            let mut ev = Event::new("app.oauth2.invalid_client_credentials", "OAuth client credentials are invalid", Outcome::Failure, now)
                .reason(e.description.clone());
            if let Some(c) = auth.client_id() {
                ev = ev.client(c);
                if let Some(app) = self.app_by_client_id(c) {
                    ev = ev.actor(Actor::client(&app.client_id, &app.label)).target(Tenant::app_target(app));
                }
            }
            self.push_event(ev);
        }
        result
    }

    fn authenticate_client_inner(&self, auth: &ClientAuth) -> Result<App, OAuthError> {
        let (client_id, secret, method) = match auth {
            ClientAuth::Missing => return Err(OAuthError::invalid_client(NO_CLIENT_CREDENTIALS)),
            ClientAuth::BadHeader => return Err(OAuthError::invalid_client(BAD_AUTH_HEADER)),
            ClientAuth::Multiple => return Err(OAuthError::invalid_request(MULTIPLE_CREDENTIALS).with_status(401)),
            ClientAuth::Basic { client_id, secret } => (client_id, Some(secret), AuthMethod::ClientSecretBasic),
            ClientAuth::Post { client_id, secret } => (client_id, Some(secret), AuthMethod::ClientSecretPost),
            ClientAuth::ClientIdOnly { client_id } => (client_id, None, AuthMethod::None),
            ClientAuth::BasicIdOnly { client_id } => match self.app_by_client_id(client_id) {
                Some(app) if app.is_public() => (client_id, None, AuthMethod::None),
                _ => return Err(OAuthError::invalid_client(BAD_AUTH_HEADER)),
            },
        };
        let Some(app) = self.app_by_client_id(client_id) else {
            return Err(OAuthError::invalid_client(BAD_CLIENT_ID));
        };
        if app.status != AppStatus::Active {
            return Err(OAuthError::invalid_client(CLIENT_AUTH_FAILED));
        }
        match (app.token_endpoint_auth_method, method) {
            (AuthMethod::None, AuthMethod::None) => Ok(app.clone()),
            (AuthMethod::None, _) => Err(OAuthError::invalid_client(CLIENT_AUTH_FAILED)),
            (_, AuthMethod::None) => Err(OAuthError::invalid_client(CLIENT_AUTH_FAILED)),
            (configured, used) => {
                let good = app.client_secret.as_ref().is_some_and(|s| s.matches(secret.map(String::as_str).unwrap_or("")));
                if !good {
                    return Err(OAuthError::invalid_client(BAD_CLIENT_SECRET));
                }
                if configured != used {
                    return Err(OAuthError::invalid_client(CLIENT_AUTH_FAILED));
                }
                Ok(app.clone())
            }
        }
    }

    fn grant_failure(&mut self, server: &ServerId, app: &App, grant_type: &str, user_id: Option<&str>, err: &OAuthError, now: Millis) {
        let mut e = Event::new(format!("{}.token.grant", server.event_prefix()), token_message(server), Outcome::Failure, now)
            .client(&app.client_id)
            .target(Tenant::app_target(app))
            .reason(err.description.clone())
            .debug("grantType", grant_type);
        e.actor = match user_id {
            Some(u) => self.user_actor(u),
            None => Actor::client(&app.client_id, &app.label),
        };
        self.push_event(e);
    }

    /// Runs a grant for an authenticated client. On success returns what to mint; every failure is
    /// written to the System Log with its reason. The trace names the refresh family presented.
    pub fn grant(&mut self, server: &ServerId, app: &App, req: TokenRequest, now: Millis) -> (Result<MintPlan, OAuthError>, RefreshTrace) {
        let gt = req.grant_type();
        if !app.has_grant(gt) {
            let e = OAuthError::new(ErrorCode::UnauthorizedClient, unauthorized_client(&app.grant_types));
            self.grant_failure(server, app, gt, None, &e, now);
            return (Err(e), RefreshTrace::default());
        }
        match req {
            TokenRequest::AuthorizationCode { code, redirect_uri, code_verifier } => {
                let r = self.grant_code(server, app, code, redirect_uri, code_verifier, now);
                (r, RefreshTrace::default())
            }
            TokenRequest::RefreshToken { refresh_token, scope } => self.grant_refresh(server, app, refresh_token, scope, now),
            TokenRequest::ClientCredentials { scope } => (self.grant_client_credentials(server, app, scope, now), RefreshTrace::default()),
        }
    }

    fn grant_code(
        &mut self,
        server: &ServerId,
        app: &App,
        code: Option<String>,
        redirect_uri: Option<String>,
        verifier: Option<String>,
        now: Millis,
    ) -> Result<MintPlan, OAuthError> {
        let fail = |t: &mut Tenant, user: Option<&str>, e: OAuthError| {
            t.grant_failure(server, app, "authorization_code", user, &e, now);
            Err(e)
        };
        let Some(code) = code else {
            return fail(self, None, OAuthError::invalid_request(missing_param("code")));
        };
        let Some(redirect_uri) = redirect_uri else {
            return fail(self, None, OAuthError::invalid_request(missing_param("redirect_uri")));
        };
        let hash = ids::token_hash(&code);
        let Some(c) = self.codes.get(&hash).cloned() else {
            return fail(self, None, OAuthError::invalid_grant(CODE_INVALID));
        };
        if c.redeemed {
            // A replayed code revokes what its first use issued (RFC 6749 §4.1.2, decision M4).
            if let Some(f) = c.family {
                self.refresh.revoke_family(f, RevokeReason::CodeReplayed, now);
                self.revoke_tokens_of_families(&[f]);
            }
            for h in &c.issued_tokens {
                if let Some(r) = self.tokens.get_mut(h) {
                    r.revoked = true;
                }
            }
            return fail(self, Some(&c.user_id), OAuthError::invalid_grant(CODE_INVALID));
        }
        if now > c.expires_at {
            return fail(self, Some(&c.user_id), OAuthError::invalid_grant(CODE_INVALID));
        }
        if c.client_id != app.client_id {
            return fail(self, Some(&c.user_id), OAuthError::invalid_grant(OTHER_CLIENT));
        }
        if &c.server != server {
            return fail(self, Some(&c.user_id), OAuthError::invalid_request(OTHER_SERVER));
        }
        if c.redirect_uri != redirect_uri {
            return fail(self, Some(&c.user_id), OAuthError::invalid_grant(REDIRECT_MISMATCH_TOKEN));
        }
        match (&c.code_challenge, &verifier) {
            (None, Some(_)) => return fail(self, Some(&c.user_id), OAuthError::invalid_request(PKCE_CHALLENGE_MISSING)),
            (Some(_), None) if app.pkce_required => {
                return fail(self, Some(&c.user_id), OAuthError::invalid_request(PKCE_VERIFIER_REQUIRED));
            }
            (Some(_), None) => return fail(self, Some(&c.user_id), OAuthError::invalid_grant(PKCE_FAILED)),
            (Some(ch), Some(v)) => {
                let ok = (43..=128).contains(&v.len())
                    && v.chars().all(is_pkce_char)
                    && &URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == ch;
                if !ok {
                    return fail(self, Some(&c.user_id), OAuthError::invalid_grant(PKCE_FAILED));
                }
            }
            (None, None) => {}
        }
        let Some(user) = self.users.get(&c.user_id).cloned() else {
            return fail(self, None, OAuthError::invalid_grant(CODE_INVALID));
        };
        if user.status != UserStatus::Active {
            return fail(self, Some(&user.id), OAuthError::invalid_grant(CODE_INVALID));
        }
        if !self.is_assigned(app, &user.id) {
            return fail(self, Some(&user.id), OAuthError::access_denied(NOT_ASSIGNED));
        }
        if let Some(e) = self.groups_claim_error(app, &user.id) {
            return fail(self, Some(&user.id), e);
        }
        // Mark redeemed before minting so a concurrent second use is a replay. A redeemed code is kept only to
        // answer a replay (its user, family and issued tokens), so the request's details are dropped: with
        // many sign-ins in the code's lifetime they are most of its memory.
        if let Some(cm) = self.codes.get_mut(&hash) {
            cm.redeemed = true;
            cm.redirect_uri = String::new();
            cm.scopes = Vec::new();
            cm.nonce = None;
            cm.code_challenge = None;
            cm.amr = Vec::new();
            cm.session_id = None;
        }
        let offline = c.scopes.iter().any(|s| s == "offline_access") && app.has_grant("refresh_token");
        let mut refresh = None;
        if offline {
            let lifetimes = self.refresh_lifetimes(server, app, now);
            let first = NewToken { value: ids::opaque(32), id: ids::refresh_token_id() };
            let value = first.value.clone();
            let meta = FamilyMeta {
                grant: Arc::new(FamilyGrant {
                    user_id: user.id.clone(),
                    client_id: app.client_id.clone(),
                    server_id: server.key().to_string(),
                    scopes: c.scopes.clone(),
                    amr: c.amr.clone(),
                }),
                auth_time: c.auth_time,
                nonce: c.nonce.clone(),
                session_id: c.session_id.clone(),
                created_at: now,
            };
            let fam = self.refresh.create_family(meta, lifetimes, first, now);
            if let Some(cm) = self.codes.get_mut(&hash) {
                cm.family = Some(fam);
            }
            refresh = Some((value, fam, 0u32));
        }
        let id_nonce = c.nonce.clone();
        Ok(self.plan(server, app, &user, &c.scopes, c.auth_time, &c.amr, id_nonce, refresh, "authorization_code", Some(hash), now))
    }

    fn refresh_lifetimes(&self, server: &ServerId, app: &App, now: Millis) -> Lifetimes {
        let mut l = match server {
            ServerId::Org => Lifetimes { expires_at: Some(now + ORG_REFRESH_LIFETIME_MS), idle_ms: None },
            ServerId::Custom(id) => {
                let t = self.servers.get(id).map(|s| s.lifetimes).unwrap_or_default();
                Lifetimes {
                    expires_at: (t.refresh_token_lifetime_minutes > 0).then(|| now + t.refresh_token_lifetime_minutes as i64 * 60_000),
                    idle_ms: Some(t.refresh_token_window_minutes as i64 * 60_000),
                }
            }
        };
        if let Some(s) = app.mock.refresh_token_lifetime_seconds {
            l.expires_at = Some(now + s as i64 * 1000);
        }
        l
    }

    fn access_lifetime_s(&self, server: &ServerId, app: &App) -> i64 {
        if let Some(s) = app.mock.access_token_lifetime_seconds {
            return s as i64;
        }
        match server {
            ServerId::Org => 3600,
            ServerId::Custom(id) => self.servers.get(id).map(|s| s.lifetimes.access_token_lifetime_minutes as i64 * 60).unwrap_or(3600),
        }
    }

    /// The groups claim value for an app's tokens, or `None` when the app has no groups claim.
    fn groups_claim(&self, app: &App, user_id: &str) -> Option<(String, Vec<String>)> {
        let gc = app.groups_claim.as_ref()?;
        let groups = self.user_group_names(user_id).into_iter().filter(|g| gc.matches(g)).collect();
        Some((gc.name.clone(), groups))
    }

    fn groups_claim_error(&self, app: &App, user_id: &str) -> Option<OAuthError> {
        let (_, groups) = self.groups_claim(app, user_id)?;
        // Okta's limit: a groups claim may carry at most 100 groups.
        (groups.len() > 100).then(|| OAuthError::new(ErrorCode::ServerError, TOO_MANY_GROUPS).with_status(400))
    }

    /// Claims of the granted scopes, shared by ID tokens and userinfo.
    pub fn scope_claims(&self, user: &User, scopes: &[String], app: Option<&App>) -> Map<String, Value> {
        let mut m = Map::new();
        let has = |s: &str| scopes.iter().any(|x| x == s);
        let p = &user.profile;
        if has("profile") {
            m.insert("name".into(), json!(p.full_name()));
            m.insert("preferred_username".into(), json!(p.login));
            if let Some(v) = &p.first_name {
                m.insert("given_name".into(), json!(v));
            }
            if let Some(v) = &p.last_name {
                m.insert("family_name".into(), json!(v));
            }
            if let Some(v) = &p.nick_name {
                m.insert("nickname".into(), json!(v));
            }
            m.insert("locale".into(), json!(p.locale.clone().unwrap_or_else(|| "en_US".into())));
            m.insert("zoneinfo".into(), json!(p.time_zone.clone().unwrap_or_else(|| "America/Los_Angeles".into())));
            m.insert("updated_at".into(), json!(user.last_updated.div_euclid(1000)));
        }
        if has("email")
            && let Some(e) = &p.email
        {
            m.insert("email".into(), json!(e));
            m.insert("email_verified".into(), json!(p.email_verified));
        }
        if let Some(app) = app
            && let Some((name, groups)) = self.groups_claim(app, &user.id)
        {
            m.insert(name, json!(groups));
        }
        m
    }

    #[allow(clippy::too_many_arguments)]
    fn plan(
        &mut self,
        server: &ServerId,
        app: &App,
        user: &User,
        scopes: &[String],
        auth_time: Millis,
        amr: &[String],
        nonce: Option<String>,
        refresh: Option<(String, FamilyId, u32)>,
        grant_type: &'static str,
        code_hash: Option<[u8; 32]>,
        now: Millis,
    ) -> MintPlan {
        let iss = self.issuer(server);
        let iat = now.div_euclid(1000);
        let lifetime = self.access_lifetime_s(server, app);
        let exp = iat + lifetime;
        let aud = self.access_audience(server);
        let family = refresh.as_ref().map(|r| r.1);
        let mut jti = format!("AT.{}", ids::jti_suffix());
        if let Some((_, f, _)) = &refresh
            && let Some(fam) = self.refresh.family(*f)
        {
            // Okta suffixes the jti of access tokens minted with a refresh token with its id.
            jti = format!("{jti}.{}", fam.current_token_id());
        }
        let mut at = Map::new();
        at.insert("ver".into(), json!(1));
        at.insert("jti".into(), json!(jti));
        at.insert("iss".into(), json!(iss));
        at.insert("aud".into(), json!(aud));
        at.insert("iat".into(), json!(iat));
        at.insert("exp".into(), json!(exp));
        at.insert("cid".into(), json!(app.client_id));
        at.insert("uid".into(), json!(user.id));
        at.insert("scp".into(), json!(scopes));
        at.insert("auth_time".into(), json!(auth_time.div_euclid(1000)));
        at.insert("sub".into(), json!(user.profile.login));
        if let Some((name, groups)) = self.groups_claim(app, &user.id)
            && matches!(server, ServerId::Custom(_))
        {
            at.insert(name, json!(groups));
        }
        let keyset = &self.keys[server];
        let id_key = keyset.active().clone();
        let access_key = match server {
            ServerId::Org => self.org_access_key.clone(),
            ServerId::Custom(_) => id_key.clone(),
        };
        let access_record = TokenRecord {
            kind: TokenKind::Access,
            jti: jti.clone(),
            iat,
            exp,
            family,
            revoked: false,
            ctx: Arc::new(TokenContext {
                server: server.clone(),
                client_id: app.client_id.clone(),
                user_id: user.id.clone(),
                login: user.profile.login.clone(),
                scopes: scopes.to_vec(),
                aud: aud.clone(),
                iss: iss.clone(),
            }),
        };
        let mut id_claims = None;
        let mut id_record = None;
        if scopes.iter().any(|s| s == "openid") {
            let id_jti = format!("ID.{}", ids::jti_suffix());
            let mut idt = Map::new();
            idt.insert("sub".into(), json!(user.id));
            idt.insert("ver".into(), json!(1));
            idt.insert("iss".into(), json!(iss));
            idt.insert("aud".into(), json!(app.client_id));
            idt.insert("iat".into(), json!(iat));
            idt.insert("exp".into(), json!(iat + ID_TOKEN_LIFETIME_S));
            idt.insert("jti".into(), json!(id_jti));
            idt.insert("amr".into(), json!(amr));
            idt.insert("idp".into(), json!(self.org_id));
            if let Some(n) = &nonce {
                idt.insert("nonce".into(), json!(n));
            }
            idt.insert("auth_time".into(), json!(auth_time.div_euclid(1000)));
            for (k, v) in self.scope_claims(user, scopes, Some(app)) {
                idt.insert(k, v);
            }
            id_record = Some(TokenRecord {
                kind: TokenKind::Id,
                jti: id_jti,
                iat,
                exp: iat + ID_TOKEN_LIFETIME_S,
                family,
                revoked: false,
                ctx: Arc::new(TokenContext { aud: app.client_id.clone(), ..(*access_record.ctx).clone() }),
            });
            id_claims = Some(idt);
        }
        // Success events, one per token kind, as Okta writes them.
        let (kind_msg, prefix) = match server {
            ServerId::Org => ("OIDC", "app.oauth2"),
            ServerId::Custom(_) => ("OAuth2", "app.oauth2.as"),
        };
        let actor = self.user_actor(&user.id);
        let mut kinds = vec![("access_token", "access token")];
        if id_claims.is_some() {
            kinds.push(("id_token", "id token"));
        }
        if refresh.is_some() {
            kinds.push(("refresh_token", "refresh token"));
        }
        for (k, label) in kinds {
            let mut e = Event::new(format!("{prefix}.token.grant.{k}"), format!("{kind_msg} {label} is granted."), Outcome::Success, now)
                .actor(actor.clone())
                .client(&app.client_id)
                .target(Tenant::app_target(app))
                .debug("grantType", grant_type)
                .debug("grantedScopes", scopes.join(" "));
            if let Some((_, f, g)) = &refresh {
                e = e.debug("refreshFamily", f.to_string()).debug("refreshGeneration", *g);
            }
            self.push_event(e);
        }
        MintPlan {
            server: server.clone(),
            grant_type,
            client_id: app.client_id.clone(),
            scopes: scopes.to_vec(),
            expires_in: lifetime,
            access_claims: at,
            access_key,
            id_claims,
            id_key,
            refresh_token: refresh.as_ref().map(|r| r.0.clone()),
            family,
            refresh_generation: refresh.as_ref().map(|r| r.2),
            code_hash,
            access_record,
            id_record,
        }
    }

    fn grant_refresh(
        &mut self,
        server: &ServerId,
        app: &App,
        token: Option<String>,
        scope: Option<String>,
        now: Millis,
    ) -> (Result<MintPlan, OAuthError>, RefreshTrace) {
        let gt = "refresh_token";
        let Some(token) = token else {
            let e = OAuthError::invalid_request(missing_param("refresh_token"));
            self.grant_failure(server, app, gt, None, &e, now);
            return (Err(e), RefreshTrace::default());
        };
        let view = self.refresh.lookup(&token, now);
        let trace = RefreshTrace { family: view.as_ref().map(|v| v.family), generation: view.as_ref().map(|v| v.generation) };
        let user_of_view = view.as_ref().map(|v| v.meta.user_id.clone());
        let fail = |t: &mut Tenant, e: OAuthError| {
            t.grant_failure(server, app, gt, user_of_view.as_deref(), &e, now);
            (Err(e), trace)
        };
        // A `scope` must be a subset of the original grant; checked before anything rotates.
        let original = view.as_ref().map(|v| v.meta.scopes.clone()).unwrap_or_default();
        let requested: Option<Vec<String>> = scope.as_ref().map(|s| s.split(' ').filter(|x| !x.is_empty()).map(str::to_string).collect());
        if let (Some(req), Some(_)) = (&requested, &view) {
            let denied: Vec<String> = req.iter().filter(|s| !original.contains(s)).cloned().collect();
            if !denied.is_empty() {
                return fail(self, OAuthError::access_denied(refresh_scopes_denied(&denied)));
            }
        }
        let scopes = requested.clone().filter(|r| !r.is_empty()).unwrap_or(original);
        // Without offline_access in the request's scope Okta returns no refresh token; the mock then uses the
        // token without rotating it, so the client's token stays the current one.
        let wants_refresh = scopes.iter().any(|s| s == "offline_access");
        let settings = app.refresh_token.unwrap_or(RefreshTokenSettings { rotation_type: RotationType::Static, leeway: 30 });
        let policy = RotationPolicy {
            rotation: match (settings.rotation_type, wants_refresh) {
                (RotationType::Rotate, true) => refresh::RotationType::Rotate,
                _ => refresh::RotationType::Static,
            },
            leeway_ms: settings.leeway as i64 * 1000,
        };
        let successor = NewToken { value: ids::opaque(32), id: ids::refresh_token_id() };
        match self.refresh.redeem(&token, &app.client_id, server.key(), &policy, successor, now) {
            Ok(r) => {
                let trace = RefreshTrace { family: Some(r.family), generation: Some(r.presented_generation) };
                let Some(user) = self.users.get(&r.meta.user_id).cloned().filter(|u| u.status == UserStatus::Active) else {
                    return fail(self, OAuthError::invalid_grant(REFRESH_INVALID));
                };
                let nonce = match app.mock.refresh_nonce {
                    RefreshNonce::Omit => None,
                    RefreshNonce::Echo => r.meta.nonce.clone(),
                };
                let refresh = wants_refresh.then(|| (r.refresh_token.clone(), r.family, r.generation));
                let mut plan = self.plan(server, app, &user, &scopes, r.meta.auth_time, &r.meta.amr, nonce, refresh, gt, None, now);
                plan.family = Some(r.family);
                plan.access_record.family = Some(r.family);
                if let Some(idr) = plan.id_record.as_mut() {
                    idr.family = Some(r.family);
                }
                (Ok(plan), trace)
            }
            Err(err) => {
                let e = match &err {
                    RefreshError::MismatchedClient { .. } => OAuthError::invalid_grant(OTHER_CLIENT),
                    RefreshError::MismatchedServer { .. } => OAuthError::invalid_request(OTHER_SERVER),
                    _ => OAuthError::invalid_grant(REFRESH_INVALID),
                };
                if let RefreshError::Reuse { family, replayed_generation, current_generation } = err {
                    // The store already revoked the family; its access tokens die with it (decision M2).
                    self.revoke_tokens_of_families(&[family]);
                    let actor = user_of_view.as_deref().map(|u| self.user_actor(u)).unwrap_or_else(Actor::unknown);
                    self.push_event(
                        Event::new(
                            format!("{}.token.detect_reuse", server.event_prefix()),
                            "Detect one-time refresh token attempted reuse",
                            Outcome::Failure,
                            now,
                        )
                        .severity("WARN")
                        .actor(actor)
                        .client(&app.client_id)
                        .target(Tenant::app_target(app))
                        .reason("Refresh token reuse detected")
                        .debug("refreshFamily", family.to_string())
                        .debug("replayedGeneration", replayed_generation)
                        .debug("currentGeneration", current_generation),
                    );
                }
                fail(self, e)
            }
        }
    }

    fn grant_client_credentials(
        &mut self,
        server: &ServerId,
        app: &App,
        scope: Option<String>,
        now: Millis,
    ) -> Result<MintPlan, OAuthError> {
        let gt = "client_credentials";
        let ServerId::Custom(sid) = server else {
            let e = OAuthError::new(ErrorCode::UnsupportedGrantType, CC_ORG_SERVER);
            self.grant_failure(server, app, gt, None, &e, now);
            return Err(e);
        };
        let custom = self.servers.get(sid).map(|s| s.scopes.clone()).unwrap_or_default();
        let scopes: Vec<String> = scope.unwrap_or_default().split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
        if scopes.is_empty() || scopes.iter().any(|s| !custom.contains(s)) {
            let e = OAuthError::invalid_scope(
                "The requested scope is invalid, unknown, malformed, or exceeds the scope granted by the resource owner.",
            );
            self.grant_failure(server, app, gt, None, &e, now);
            return Err(e);
        }
        let iss = self.issuer(server);
        let iat = now.div_euclid(1000);
        let lifetime = self.access_lifetime_s(server, app);
        let aud = self.access_audience(server);
        let jti = format!("AT.{}", ids::jti_suffix());
        let mut at = Map::new();
        at.insert("ver".into(), json!(1));
        at.insert("jti".into(), json!(jti));
        at.insert("iss".into(), json!(iss));
        at.insert("aud".into(), json!(aud));
        at.insert("iat".into(), json!(iat));
        at.insert("exp".into(), json!(iat + lifetime));
        at.insert("cid".into(), json!(app.client_id));
        at.insert("scp".into(), json!(scopes));
        at.insert("sub".into(), json!(app.client_id));
        let key = self.keys[server].active().clone();
        self.push_event(
            Event::new(
                format!("{}.token.grant.access_token", server.event_prefix()),
                "OAuth2 access token is granted.",
                Outcome::Success,
                now,
            )
            .actor(Actor::client(&app.client_id, &app.label))
            .client(&app.client_id)
            .target(Tenant::app_target(app))
            .debug("grantType", gt)
            .debug("grantedScopes", scopes.join(" ")),
        );
        Ok(MintPlan {
            server: server.clone(),
            grant_type: gt,
            client_id: app.client_id.clone(),
            scopes: scopes.clone(),
            expires_in: lifetime,
            access_claims: at,
            access_key: key.clone(),
            id_claims: None,
            id_key: key,
            refresh_token: None,
            family: None,
            refresh_generation: None,
            code_hash: None,
            access_record: TokenRecord {
                kind: TokenKind::Access,
                jti,
                iat,
                exp: iat + lifetime,
                family: None,
                revoked: false,
                ctx: Arc::new(TokenContext {
                    server: server.clone(),
                    client_id: app.client_id.clone(),
                    user_id: String::new(),
                    login: app.client_id.clone(),
                    scopes,
                    aud,
                    iss,
                }),
            },
            id_record: None,
        })
    }

    /// Records the signed tokens of a plan. If the family was revoked (or the code replayed) while the
    /// tokens were being signed, they are recorded as revoked.
    pub fn register(&mut self, plan: &MintPlan, access_token: &str, id_token: Option<&str>) {
        let revoked = plan.family.is_some_and(|f| self.refresh.is_revoked(f));
        let mut hashes = vec![ids::token_hash(access_token)];
        let mut ar = plan.access_record.clone();
        ar.revoked = revoked;
        ar.ctx = self.intern(&ar.ctx);
        self.tokens.insert(hashes[0], ar);
        if let (Some(t), Some(r)) = (id_token, &plan.id_record) {
            let h = ids::token_hash(t);
            let mut r = r.clone();
            r.revoked = revoked;
            r.ctx = self.intern(&r.ctx);
            self.tokens.insert(h, r);
            hashes.push(h);
        }
        if let Some(ch) = plan.code_hash
            && let Some(c) = self.codes.get_mut(&ch)
        {
            c.issued_tokens.extend(hashes);
        }
    }

    /// `/v1/userinfo`: the claims of the token's scopes, or the Okta error.
    pub fn userinfo(&self, server: &ServerId, token: &str, now: Millis) -> Result<Value, UserinfoError> {
        let rec = self.valid_access_token(token, server, now.div_euclid(1000)).ok_or(UserinfoError::InvalidToken)?;
        let user = self.users.get(&rec.user_id).filter(|u| u.status == UserStatus::Active).ok_or(UserinfoError::InvalidToken)?;
        if !rec.scopes.iter().any(|s| s == "openid") {
            return Err(UserinfoError::InsufficientScope);
        }
        let app = self.app_by_client_id(&rec.client_id);
        let mut m = Map::new();
        m.insert("sub".into(), json!(user.id));
        for (k, v) in self.scope_claims(user, &rec.scopes, app) {
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }

    /// `/v1/introspect` for an authenticated client: `{"active": false}` for anything unknown, expired,
    /// revoked or issued to another client or by another server.
    pub fn introspect(&self, server: &ServerId, app: &App, token: &str, now: Millis) -> Value {
        let now_s = now.div_euclid(1000);
        if let Some(r) = self.tokens.get(&ids::token_hash(token)) {
            let family_ok = r.family.is_none_or(|f| !self.refresh.is_revoked(f));
            if &r.server == server && r.client_id == app.client_id && !r.revoked && family_ok && now_s < r.exp {
                let mut m = Map::new();
                m.insert("active".into(), json!(true));
                if r.kind == TokenKind::Access {
                    m.insert("token_type".into(), json!("Bearer"));
                    m.insert("scope".into(), json!(r.scopes.join(" ")));
                }
                m.insert("client_id".into(), json!(r.client_id));
                m.insert("username".into(), json!(r.login));
                m.insert("exp".into(), json!(r.exp));
                m.insert("iat".into(), json!(r.iat));
                m.insert("sub".into(), json!(if r.kind == TokenKind::Id { r.user_id.clone() } else { r.login.clone() }));
                m.insert("aud".into(), json!(r.aud));
                m.insert("iss".into(), json!(r.iss));
                m.insert("jti".into(), json!(r.jti));
                if !r.user_id.is_empty() {
                    m.insert("uid".into(), json!(r.user_id));
                }
                return Value::Object(m);
            }
            return json!({"active": false});
        }
        if let Some(v) = self.refresh.lookup(token, now)
            && v.usable
            && v.meta.client_id == app.client_id
            && v.meta.server_id == server.key()
        {
            let login = self.users.get(&v.meta.user_id).map(|u| u.profile.login.clone()).unwrap_or_default();
            let mut m = Map::new();
            m.insert("active".into(), json!(true));
            m.insert("token_type".into(), json!("Bearer"));
            m.insert("scope".into(), json!(v.meta.scopes.join(" ")));
            m.insert("client_id".into(), json!(v.meta.client_id));
            m.insert("username".into(), json!(login));
            m.insert("iat".into(), json!(v.meta.created_at.div_euclid(1000)));
            if let Some(e) = v.expires_at {
                m.insert("exp".into(), json!(e.div_euclid(1000)));
            }
            m.insert("sub".into(), json!(login));
            m.insert("uid".into(), json!(v.meta.user_id));
            return Value::Object(m);
        }
        json!({"active": false})
    }

    /// `/v1/revoke`: revoking an access token leaves its refresh token alone; revoking a refresh token
    /// revokes its whole family and the access tokens minted from it. Unknown tokens are fine (200).
    pub fn revoke(&mut self, server: &ServerId, app: &App, token: &str, now: Millis) {
        let h = ids::token_hash(token);
        let mut kind = None;
        if let Some(r) = self.tokens.get_mut(&h)
            && &r.server == server
            && r.client_id == app.client_id
            && r.kind == TokenKind::Access
        {
            r.revoked = true;
            kind = Some(("access_token", r.user_id.clone(), None));
        }
        if kind.is_none()
            && let Some(v) = self.refresh.lookup(token, now)
            && v.meta.client_id == app.client_id
            && v.meta.server_id == server.key()
        {
            self.refresh.revoke_family(v.family, RevokeReason::Revoked, now);
            self.revoke_tokens_of_families(&[v.family]);
            kind = Some(("refresh_token", v.meta.user_id.clone(), Some(v.family)));
        }
        if let Some((k, user, fam)) = kind {
            let actor = self.user_actor(&user);
            let mut e =
                Event::new(format!("{}.token.revoke", server.event_prefix()), "OAuth2 token revocation request", Outcome::Success, now)
                    .actor(actor)
                    .client(&app.client_id)
                    .target(Tenant::app_target(app))
                    .debug("tokenType", k);
            if let Some(f) = fam {
                e = e.debug("refreshFamily", f.to_string());
            }
            self.push_event(e);
        }
    }

    /// Checks an `id_token_hint`: a token this server issued (expired ones are accepted, as Okta does).
    pub fn id_token_hint(&self, server: &ServerId, token: &str) -> Option<&TokenRecord> {
        self.tokens.get(&ids::token_hash(token)).filter(|r| r.kind == TokenKind::Id && &r.server == server)
    }
}

/// How `/v1/userinfo` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserinfoError {
    InvalidToken,
    InsufficientScope,
}
