//! One tenant (an Okta org): its directory, sessions, codes, issued tokens, refresh families and System
//! Log. Every method that decides takes `now`; nothing here reads the clock, the network or the environment.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ids::{self, Secret};
use super::keyset::KeySet;
use super::model::*;
use super::ratelimit::RateLimiter;
use super::refresh::{FamilyId, RefreshStore, RevokeReason};
use super::syslog::{Actor, Event, Outcome, SystemLog, Target};
use crate::clock::Millis;
use crate::config::{KeyConfig, KeyStatusConfig, TenantConfig};
use crate::keys::KeyMaterial;

/// An IdP browser session (Okta's `sid` cookie).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created: Millis,
    pub auth_time: Millis,
    pub last_active: Millis,
    pub amr: Vec<String>,
}

/// A one-time session token from `/api/v1/authn`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionToken {
    pub user_id: String,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::Fragment => "fragment",
            ResponseMode::FormPost => "form_post",
        }
    }
}

/// A validated `/v1/authorize` request, kept while the user signs in on the hosted page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub server: ServerId,
    pub client_id: String,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scopes: Vec<String>,
    pub state: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
}

/// An authorization code (single use, 300 s).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthCode {
    pub client_id: String,
    pub server: ServerId,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub user_id: String,
    pub auth_time: Millis,
    pub amr: Vec<String>,
    pub session_id: Option<String>,
    pub expires_at: Millis,
    pub redeemed: bool,
    /// What the first redemption issued, so a replay can revoke it (RFC 6749 §4.1.2).
    pub issued_tokens: Vec<[u8; 32]>,
    #[serde(with = "super::stored::opt_family")]
    pub family: Option<FamilyId>,
}

pub const CODE_LIFETIME_MS: i64 = 300_000;
pub const SESSION_TOKEN_LIFETIME_MS: i64 = 300_000;
pub const PENDING_LIFETIME_MS: i64 = 3_600_000;
pub const ORG_REFRESH_LIFETIME_MS: i64 = 90 * 86_400_000;
pub const ID_TOKEN_LIFETIME_S: i64 = 3600;
/// How long past its expiry an ID token is still recognised as an `id_token_hint` at logout (Okta accepts
/// expired hints), so [`Tenant::purge`] keeps its record that much longer.
pub const ID_TOKEN_HINT_GRACE_S: i64 = 86_400;
/// How long a revoked refresh family is kept after its revocation, so a replay still gets a precise answer.
pub const KEEP_REVOKED_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenKind {
    Access,
    Id,
}

/// What the mock remembers of a JWT it issued, keyed by the token's SHA-256: the token's own values and
/// its [`TokenContext`], which it shares (one `Arc`) with every other token issued for the same server,
/// client, user and scopes. Reads go through `Deref`: `record.client_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub kind: TokenKind,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(with = "super::stored::opt_family")]
    pub family: Option<FamilyId>,
    pub revoked: bool,
    #[serde(flatten)]
    pub ctx: Arc<TokenContext>,
}

/// Who and what a token was issued for; shared between tokens (see [`Tenant::intern`]), so a hundred
/// thousand tokens of one client and user hold these strings once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenContext {
    pub server: ServerId,
    pub client_id: String,
    pub user_id: String,
    pub login: String,
    pub scopes: Vec<String>,
    pub aud: String,
    pub iss: String,
}

impl std::ops::Deref for TokenRecord {
    type Target = TokenContext;
    fn deref(&self) -> &TokenContext {
        &self.ctx
    }
}

/// The whole mutable state of one Okta org.
pub struct Tenant {
    pub config: TenantConfig,
    pub base_url: String,
    pub org_id: String,
    pub org_name: String,
    pub management_token: Secret,
    pub session_lifetime_ms: i64,
    pub jwks_max_age_s: u32,
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, Group>,
    pub apps: BTreeMap<String, App>,
    pub servers: BTreeMap<String, AuthServer>,
    pub keys: BTreeMap<ServerId, KeySet>,
    /// Org-server access tokens are signed with a key Okta does not publish (okta-behaviour.md §3.3).
    pub org_access_key: Arc<KeyMaterial>,
    pub sessions: HashMap<String, Session>,
    pub session_tokens: HashMap<[u8; 32], SessionToken>,
    pub pending: HashMap<String, (AuthorizeRequest, Millis)>,
    pub codes: HashMap<[u8; 32], AuthCode>,
    pub tokens: HashMap<[u8; 32], TokenRecord>,
    /// The distinct [`TokenContext`]s of `tokens`, so equal ones are stored once; purged with the tokens.
    pub token_contexts: std::collections::HashSet<Arc<TokenContext>>,
    pub refresh: RefreshStore,
    pub log: SystemLog,
    /// Next key-pool slot for rotations.
    pub next_key_slot: usize,
    /// Okta's Trusted Origins (CORS for browser apps).
    pub trusted_origins: Vec<TrustedOrigin>,
    /// The rate limits of `config.rate_limits` and the counts of the current windows (not kept in a state
    /// file: counts start afresh after a restart).
    pub rate_limiter: RateLimiter,
}

/// Where a tenant gets RSA keys: the per-process pool in tests, fresh keys in the binary.
pub type KeySource<'a> = &'a dyn Fn(usize) -> Arc<KeyMaterial>;

fn load_keys(list: &[KeyConfig], slot: &mut usize, source: KeySource, now: Millis) -> anyhow::Result<KeySet> {
    let mut active = None;
    let mut next = None;
    for k in list {
        let pem = k.pem.as_deref().ok_or_else(|| anyhow::anyhow!("key needs pem or pem_file"))?;
        let m = Arc::new(KeyMaterial::from_pem(pem, k.kid.clone())?);
        match k.status {
            KeyStatusConfig::Active if active.is_none() => active = Some(m),
            KeyStatusConfig::Next if next.is_none() => next = Some(m),
            _ => anyhow::bail!("at most one ACTIVE and one NEXT key per authorization server"),
        }
    }
    let mut take = || {
        let m = source(*slot);
        *slot += 1;
        m
    };
    let active = match active {
        Some(a) => a,
        None => take(),
    };
    let next = match next {
        Some(n) => n,
        None => take(),
    };
    Ok(KeySet::new(active, Some(next), now))
}

impl Tenant {
    /// Builds a tenant from a validated config.
    pub fn from_config(config: TenantConfig, base_url: &str, now: Millis, source: KeySource) -> anyhow::Result<Self> {
        let base_url = config.base_url.clone().unwrap_or_else(|| base_url.to_string()).trim_end_matches('/').to_string();
        let mut slot = 0usize;
        let mut keys = BTreeMap::new();
        keys.insert(ServerId::Org, load_keys(&config.keys.org, &mut slot, source, now)?);
        let org_access_key = source(slot);
        slot += 1;
        let mut servers = BTreeMap::new();
        for s in &config.authorization_servers {
            keys.insert(ServerId::Custom(s.id.clone()), load_keys(&s.keys, &mut slot, source, now)?);
            let lifetimes = s.policies.first().and_then(|p| p.rules.first()).map(|r| r.actions.token).unwrap_or_default();
            servers.insert(
                s.id.clone(),
                AuthServer {
                    id: s.id.clone(),
                    name: s.name.clone().unwrap_or_else(|| s.id.clone()),
                    description: s.description.clone().unwrap_or_default(),
                    audiences: s.audiences.clone().unwrap_or_else(|| vec![format!("api://{}", s.id)]),
                    scopes: s.scopes.clone(),
                    lifetimes,
                    status: ServerStatus::Active,
                    created: now,
                    last_updated: now,
                },
            );
        }
        let mut users = BTreeMap::new();
        for u in &config.users {
            let id = u.id.clone().unwrap_or_else(ids::user_id);
            let activated = (u.status == UserStatus::Active).then_some(now);
            users.insert(
                id.clone(),
                User {
                    id,
                    status: u.status,
                    created: now,
                    activated,
                    status_changed: activated,
                    last_login: None,
                    last_updated: now,
                    password_changed: u.credentials.as_ref().and_then(|c| c.password.as_ref()).map(|_| now),
                    profile: u.profile.clone(),
                    password: u.credentials.as_ref().and_then(|c| c.password.as_ref()).map(|p| Secret::new(p.value.clone())),
                },
            );
        }
        let login_to_id: HashMap<String, String> = users.values().map(|u| (u.profile.login.to_lowercase(), u.id.clone())).collect();
        let mut groups = BTreeMap::new();
        for g in &config.groups {
            let id = g.id.clone().unwrap_or_else(ids::group_id);
            let members = g.members.iter().filter_map(|m| login_to_id.get(&m.to_lowercase()).cloned()).collect();
            groups.insert(
                id.clone(),
                Group {
                    id,
                    name: g.profile.name.clone(),
                    description: g.profile.description.clone(),
                    members,
                    created: now,
                    last_updated: now,
                },
            );
        }
        let mut apps = BTreeMap::new();
        for a in &config.apps {
            let id = a.id.clone().unwrap_or_else(ids::app_id);
            let c = &a.credentials.oauth_client;
            let s = &a.settings.oauth_client;
            let public_like = matches!(s.application_type, ApplicationType::Browser | ApplicationType::Native);
            let has_refresh = s.grant_types.iter().any(|g| g == "refresh_token");
            let refresh_token = if has_refresh {
                Some(s.refresh_token.map(Into::into).unwrap_or(RefreshTokenSettings {
                    // Okta's defaults: ROTATE for SPAs, STATIC (persistent) for web and native apps.
                    rotation_type: if s.application_type == ApplicationType::Browser { RotationType::Rotate } else { RotationType::Static },
                    leeway: 30,
                }))
            } else {
                None
            };
            apps.insert(
                id.clone(),
                App {
                    id,
                    label: a.label.clone(),
                    status: a.status,
                    created: now,
                    last_updated: now,
                    client_id: c.client_id.clone(),
                    client_secret: c.client_secret.clone().map(Secret::new),
                    token_endpoint_auth_method: c.token_endpoint_auth_method,
                    pkce_required: c.pkce_required.unwrap_or(public_like),
                    application_type: s.application_type,
                    redirect_uris: s.redirect_uris.clone(),
                    post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
                    grant_types: s.grant_types.clone(),
                    response_types: s.response_types.clone(),
                    refresh_token,
                    groups_claim: s.groups_claim.clone(),
                    mock: a.mock.clone(),
                    assigned_users: BTreeSet::new(),
                    assigned_groups: BTreeSet::new(),
                },
            );
        }
        for asg in &config.assignments {
            let app = apps.values_mut().find(|x| x.client_id == asg.app || x.label == asg.app || x.id == asg.app);
            let Some(app) = app else { continue };
            if let Some(u) = &asg.user
                && let Some(uid) = login_to_id.get(&u.to_lowercase())
            {
                app.assigned_users.insert(uid.clone());
            }
            if let Some(g) = &asg.group
                && let Some(gid) = groups.values().find(|x| &x.name == g).map(|x| x.id.clone())
            {
                app.assigned_groups.insert(gid);
            }
        }
        Ok(Tenant {
            base_url,
            org_id: config.org.id.clone(),
            org_name: config.org.name.clone(),
            management_token: Secret::new(config.management_token.clone()),
            session_lifetime_ms: config.session.lifetime_minutes as i64 * 60_000,
            jwks_max_age_s: config.keys.max_age_seconds,
            trusted_origins: config.trusted_origins.clone(),
            rate_limiter: RateLimiter::new(config.rate_limits),
            config,
            users,
            groups,
            apps,
            servers,
            keys,
            org_access_key,
            sessions: HashMap::new(),
            session_tokens: HashMap::new(),
            pending: HashMap::new(),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            token_contexts: Default::default(),
            refresh: RefreshStore::new(),
            log: SystemLog::default(),
            next_key_slot: slot,
        })
    }

    /// Whether browser JavaScript on `origin` may call the IdP: a Trusted Origin with the CORS scope.
    pub fn cors_allowed(&self, origin: &str) -> bool {
        self.trusted_origins.iter().any(|o| o.allows_cors(origin))
    }

    // ----- directory -----

    /// Resolves a server id from a URL path segment of a protocol endpoint; `None` for the org server. A
    /// deactivated server is unavailable to clients, so it resolves like an unknown one (Okta's 404).
    pub fn server(&self, id: Option<&str>) -> Option<ServerId> {
        match id {
            None => Some(ServerId::Org),
            Some(id) if self.servers.get(id).is_some_and(|s| s.status == ServerStatus::Active) => Some(ServerId::Custom(id.to_string())),
            Some(_) => None,
        }
    }

    pub fn issuer(&self, server: &ServerId) -> String {
        match server {
            ServerId::Org => self.base_url.clone(),
            ServerId::Custom(id) => format!("{}/oauth2/{id}", self.base_url),
        }
    }

    /// `aud` of access tokens: the org URL on the org server, the server's first audience otherwise.
    pub fn access_audience(&self, server: &ServerId) -> String {
        match server {
            ServerId::Org => self.base_url.clone(),
            ServerId::Custom(id) => {
                self.servers.get(id).and_then(|s| s.audiences.first().cloned()).unwrap_or_else(|| format!("api://{id}"))
            }
        }
    }

    pub fn app_by_client_id(&self, client_id: &str) -> Option<&App> {
        self.apps.values().find(|a| a.client_id == client_id)
    }

    pub fn user_by_login(&self, login: &str) -> Option<&User> {
        let l = login.to_lowercase();
        self.users.values().find(|u| u.profile.login.to_lowercase() == l)
    }

    /// Groups the user belongs to, by name, in name order.
    pub fn user_group_names(&self, user_id: &str) -> Vec<String> {
        let mut v: Vec<String> = self.groups.values().filter(|g| g.members.contains(user_id)).map(|g| g.name.clone()).collect();
        v.sort();
        v
    }

    /// Whether the user is assigned to the app, directly or through a group.
    pub fn is_assigned(&self, app: &App, user_id: &str) -> bool {
        app.assigned_users.contains(user_id)
            || app.assigned_groups.iter().any(|g| self.groups.get(g).is_some_and(|g| g.members.contains(user_id)))
    }

    pub fn app_target(app: &App) -> Target {
        Target::new("AppInstance", &app.id, &app.label, &app.label)
    }

    pub fn user_actor(&self, user_id: &str) -> Actor {
        match self.users.get(user_id) {
            Some(u) => Actor::user(&u.id, &u.profile.login, &u.profile.full_name()),
            None => Actor::unknown(),
        }
    }

    pub fn push_event(&mut self, e: Event) {
        self.log.push(e);
    }

    // ----- sessions -----

    /// Checks a username and password. Okta answers a wrong password and an unknown or inactive user the
    /// same way, so the caller cannot tell which.
    pub fn check_password(&self, username: &str, password: &str) -> Option<String> {
        let u = self.user_by_login(username)?;
        let ok = u.password.as_ref().is_some_and(|p| p.matches(password));
        (ok && u.status == UserStatus::Active).then(|| u.id.clone())
    }

    /// Starts an IdP session for a user who just authenticated; returns the session id (the cookie value).
    pub fn start_session(&mut self, user_id: &str, now: Millis) -> String {
        let id = ids::session_id() + &ids::opaque(16);
        self.sessions.insert(
            id.clone(),
            Session { id: id.clone(), user_id: user_id.into(), created: now, auth_time: now, last_active: now, amr: vec!["pwd".into()] },
        );
        if let Some(u) = self.users.get_mut(user_id) {
            u.last_login = Some(now);
        }
        let actor = self.user_actor(user_id);
        let mut e = Event::new("user.session.start", "User login to Okta", Outcome::Success, now).actor(actor);
        e.session_id = Some(id[..20].to_string());
        self.push_event(e);
        id
    }

    /// A live session for the cookie value: not expired (2 h idle by default) and its user still ACTIVE.
    pub fn live_session(&mut self, sid: &str, now: Millis) -> Option<Session> {
        let s = self.sessions.get(sid)?;
        let alive =
            now - s.last_active <= self.session_lifetime_ms && self.users.get(&s.user_id).is_some_and(|u| u.status == UserStatus::Active);
        if !alive {
            self.sessions.remove(sid);
            return None;
        }
        let s = self.sessions.get_mut(sid)?;
        s.last_active = now;
        Some(s.clone())
    }

    pub fn end_session(&mut self, sid: &str, now: Millis) -> Option<Session> {
        let s = self.sessions.remove(sid)?;
        let actor = self.user_actor(&s.user_id);
        let mut e = Event::new("user.session.end", "User logout from Okta", Outcome::Success, now).actor(actor);
        e.session_id = Some(s.id[..20].to_string());
        self.push_event(e);
        Some(s)
    }

    pub fn issue_session_token(&mut self, user_id: &str, now: Millis) -> String {
        let token = format!("2011{}", ids::opaque(32));
        self.session_tokens
            .insert(ids::token_hash(&token), SessionToken { user_id: user_id.into(), expires_at: now + SESSION_TOKEN_LIFETIME_MS });
        token
    }

    /// Redeems a one-time session token; a second use, an expired or unknown token gives `None`.
    pub fn redeem_session_token(&mut self, token: &str, now: Millis) -> Option<String> {
        let t = self.session_tokens.remove(&ids::token_hash(token))?;
        let active = self.users.get(&t.user_id).is_some_and(|u| u.status == UserStatus::Active);
        (now <= t.expires_at && active).then_some(t.user_id)
    }

    // ----- tokens -----

    /// The keys a token from `server` may be signed with (its active key, and the org server's access-token
    /// key) when one of them is still being generated in the background; `None` when all are ready, the usual
    /// case, so the token endpoint's hot path copies nothing.
    pub fn signing_keys_not_ready(&self, server: &ServerId) -> Option<Vec<Arc<KeyMaterial>>> {
        let active = self.keys.get(server)?.active();
        if active.is_ready() && self.org_access_key.is_ready() {
            return None;
        }
        Some(vec![active.clone(), self.org_access_key.clone()])
    }

    /// Every key the state file holds that is still being generated in the background.
    pub fn keys_not_ready(&self) -> Vec<Arc<KeyMaterial>> {
        self.keys
            .values()
            .flat_map(|ks| ks.entries().iter().map(|e| &e.material))
            .chain(std::iter::once(&self.org_access_key))
            .filter(|k| !k.is_ready())
            .cloned()
            .collect()
    }

    /// Validates an access token string for `/userinfo`: issued here by this server, not expired, not
    /// revoked, its family (if any) not revoked.
    pub fn valid_access_token(&self, token: &str, server: &ServerId, now_s: i64) -> Option<&TokenRecord> {
        let r = self.tokens.get(&ids::token_hash(token))?;
        let family_ok = r.family.is_none_or(|f| !self.refresh.is_revoked(f));
        (r.kind == TokenKind::Access && &r.server == server && !r.revoked && family_ok && now_s < r.exp).then_some(r)
    }

    /// Marks the access tokens of a family revoked (they are also checked against the family at use).
    pub fn revoke_tokens_of_families(&mut self, families: &[FamilyId]) {
        if families.is_empty() {
            return;
        }
        let set: BTreeSet<FamilyId> = families.iter().copied().collect();
        for r in self.tokens.values_mut() {
            if r.family.is_some_and(|f| set.contains(&f)) {
                r.revoked = true;
            }
        }
    }

    /// Revokes every refresh family and access token of a user (optionally only for one client), as
    /// deactivation, suspension, deletion or an admin's "clear sessions and tokens" do (decision M6).
    pub fn revoke_user_tokens(&mut self, user_id: &str, client_id: Option<&str>, reason: RevokeReason, now: Millis) -> Vec<FamilyId> {
        let fams = self.refresh.revoke_matching(|m| m.user_id == user_id && client_id.is_none_or(|c| m.client_id == c), reason, now);
        for r in self.tokens.values_mut() {
            if r.user_id == user_id && client_id.is_none_or(|c| r.client_id == c) {
                r.revoked = true;
            }
        }
        fams
    }

    /// Revokes every token issued to a client (app deactivation).
    pub fn revoke_client_tokens(&mut self, client_id: &str, reason: RevokeReason, now: Millis) -> Vec<FamilyId> {
        let fams = self.refresh.revoke_matching(|m| m.client_id == client_id, reason, now);
        for r in self.tokens.values_mut() {
            if r.client_id == client_id {
                r.revoked = true;
            }
        }
        fams
    }

    /// The stored `Arc` equal to `ctx` (adding it if new), so records share one copy.
    pub fn intern(&mut self, ctx: &Arc<TokenContext>) -> Arc<TokenContext> {
        if let Some(c) = self.token_contexts.get(ctx) {
            return c.clone();
        }
        self.token_contexts.insert(ctx.clone());
        ctx.clone()
    }

    /// Drops what has expired: sessions, session tokens, pending authorizations, codes (kept one code
    /// lifetime past expiry, so a late replay is still recognised), access-token records, ID-token records
    /// a day past expiry (they serve as `id_token_hint`), refresh families past their lifetime (revoked ones a
    /// day after revocation), and System Log events past Okta's 90-day retention. Maps that shrank to a
    /// quarter of their capacity give the memory back. Returns how many entries went.
    pub fn purge(&mut self, now: Millis) -> usize {
        let before = self.sessions.len() + self.session_tokens.len() + self.pending.len() + self.codes.len() + self.tokens.len();
        let lifetime = self.session_lifetime_ms;
        self.sessions.retain(|_, s| now - s.last_active <= lifetime);
        self.session_tokens.retain(|_, t| now <= t.expires_at);
        self.pending.retain(|_, (_, at)| now - *at <= PENDING_LIFETIME_MS);
        self.codes.retain(|_, c| now <= c.expires_at + CODE_LIFETIME_MS);
        let now_s = now.div_euclid(1000);
        self.tokens.retain(|_, r| now_s < r.exp + if r.kind == TokenKind::Id { ID_TOKEN_HINT_GRACE_S } else { 0 });
        fn shrink<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>) {
            if m.capacity() > 4 * m.len().max(1024) {
                m.shrink_to_fit();
            }
        }
        shrink(&mut self.sessions);
        shrink(&mut self.session_tokens);
        shrink(&mut self.pending);
        shrink(&mut self.codes);
        shrink(&mut self.tokens);
        self.token_contexts.retain(|c| Arc::strong_count(c) > 1);
        if self.token_contexts.capacity() > 4 * self.token_contexts.len().max(1024) {
            self.token_contexts.shrink_to_fit();
        }
        let after = self.sessions.len() + self.session_tokens.len() + self.pending.len() + self.codes.len() + self.tokens.len();
        before - after + self.refresh.purge(now, KEEP_REVOKED_MS) + self.log.expire(now)
    }
}
