//! Directory and lifecycle operations, the pure half of Okta's management API: users, groups, OIDC apps,
//! assignments, authorization-server policy rules and signing keys.
//!
//! Every operation takes `now`, applies the change at once, revokes what modelling decision M6 says
//! (okta-behaviour.md §6.2), and writes the System Log events Okta writes (`user.lifecycle.*`,
//! `group.user_membership.*`, `application.user_membership.*`, `app.oauth2[.as].key.rollover`, …).
//! Rendering Okta's JSON is the HTTP layer's job (`http::mgmt`).
//!
//! Mock choices where Okta is silent, documented in docs/management-api.md:
//! - Activating a DEPROVISIONED user makes it ACTIVE again (PROVISIONED without a password) with its
//!   password, group memberships and direct app assignments kept, but none of its old tokens, sessions or
//!   codes: they were revoked at deactivation and stay dead.
//! - Suspension revokes like deactivation (the 2017 Okta text); unsuspending does not bring tokens back.
//! - Losing the last assignment to an app (directly, through a group, by group deletion) revokes the
//!   user's refresh families for that app and the access tokens minted for it.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ids::{self, Secret};
use super::keyset::{KeySet, KeyStatus};
use super::model::*;
use super::refresh::{Family, FamilyId, RevokeReason};
use super::syslog::{Actor, Event, Outcome, Target};
use super::tenant::Tenant;
use crate::clock::Millis;
use crate::config::{AuthServerConfig, PolicyConfig, RuleActions, RuleConfig, check_lifetimes};
use crate::keys::KeyMaterial;

/// Why a directory operation was refused; `http::mgmt` renders Okta's error body for each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirError {
    /// 404 E0000007 `Not found: Resource not found: {id} ({kind})`.
    NotFound { id: String, kind: &'static str },
    /// 400 E0000001 `Api validation failed: {what}` with `errorCauses`.
    Validation { what: String, causes: Vec<String> },
    /// 403 E0000016 `Activation failed because the user is already active`.
    AlreadyActive,
    /// 403 E0000038 `This operation is not allowed in the user's current status.`
    WrongStatus,
    /// 403 E0000056 `Delete application forbidden.`: only an INACTIVE app can be deleted.
    AppActive,
    /// 403 E0000107 `The entity is not in the expected state for the requested transition.`: only an INACTIVE
    /// authorization server can be deleted (a mock choice; Okta documents no error).
    ServerActive,
    /// 403 E0000006 `You do not have permission to perform the requested action`: the `default` server is not
    /// deleted (a mock choice).
    DefaultServer,
}

impl DirError {
    pub fn not_found(id: &str, kind: &'static str) -> Self {
        DirError::NotFound { id: id.into(), kind }
    }
    pub fn validation(what: &str, cause: impl Into<String>) -> Self {
        DirError::Validation { what: what.into(), causes: vec![cause.into()] }
    }
}

/// Okta's cause text for a duplicate unique attribute.
pub fn already_exists(field: &str) -> String {
    format!("{field}: An object with this field already exists in the current organization")
}

/// A user to create (`POST /api/v1/users`).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub profile: UserProfile,
    pub password: Option<Secret>,
    pub group_ids: Vec<String>,
}

/// The OIDC settings of an app to create or replace (`POST`/`PUT /api/v1/apps`).
#[derive(Debug, Clone)]
pub struct AppSpec {
    pub label: String,
    /// `None` on create: Okta generates one (the mock uses the app id); `None` on update keeps it.
    pub client_id: Option<String>,
    /// `None` keeps the existing secret on update, and generates one on create when the auth method
    /// needs a secret.
    pub client_secret: Option<Secret>,
    pub token_endpoint_auth_method: AuthMethod,
    pub pkce_required: Option<bool>,
    pub application_type: ApplicationType,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub refresh_token: Option<RefreshTokenSettings>,
}

/// A custom authorization server to create (`POST /api/v1/authorizationServers`).
#[derive(Debug, Clone)]
pub struct NewServer {
    pub name: String,
    pub description: String,
    /// Okta supports exactly one audience (the `aud` of access tokens).
    pub audiences: Vec<String>,
    pub active: bool,
}

/// An authorization-server policy as the management API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub priority: usize,
    pub rules: Vec<RuleView>,
}

/// A policy rule; only its token lifetimes are modelled.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleView {
    pub id: String,
    pub name: String,
    pub priority: usize,
    pub lifetimes: TokenLifetimes,
}

/// A filter clause of the users list (`filter`/`search`): `field op "value"`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserClause {
    pub field: String,
    pub op: String,
    pub value: String,
}

/// Clauses joined by `or` (outer) and `and` (inner), without parentheses.
pub type UserFilter = Vec<Vec<UserClause>>;

/// Parses the subset of Okta's user filter/search syntax the mock understands: `eq` (and, for
/// `search`, `sw` and `co`) on `id`, `status`, `profile.login`, `profile.email`, `profile.firstName`,
/// `profile.lastName`, joined by `and` / `or`.
pub fn parse_user_filter(s: &str, allow_sw: bool) -> Result<UserFilter, String> {
    let mut out: UserFilter = vec![vec![]];
    let mut rest = s.trim();
    let bad = || format!("Invalid search criteria: {s}");
    loop {
        let (field, after) = rest.split_once(char::is_whitespace).ok_or_else(bad)?;
        let after = after.trim_start();
        let (op, after) = after.split_once(char::is_whitespace).ok_or_else(bad)?;
        let ok_op = op == "eq" || (allow_sw && (op == "sw" || op == "co"));
        if !ok_op {
            return Err(bad());
        }
        let after = after.trim_start().strip_prefix('"').ok_or_else(bad)?;
        let end = after.find('"').ok_or_else(bad)?;
        if !matches!(field, "id" | "status" | "profile.login" | "profile.email" | "profile.firstName" | "profile.lastName") {
            return Err(bad());
        }
        out.last_mut().ok_or_else(bad)?.push(UserClause { field: field.into(), op: op.into(), value: after[..end].into() });
        rest = after[end + 1..].trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        if let Some(r) = rest.strip_prefix("and ") {
            rest = r.trim_start();
        } else if let Some(r) = rest.strip_prefix("or ") {
            out.push(vec![]);
            rest = r.trim_start();
        } else {
            return Err(bad());
        }
    }
}

fn status_str(s: UserStatus) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl UserClause {
    fn matches(&self, u: &User) -> bool {
        let have: Option<String> = match self.field.as_str() {
            "id" => Some(u.id.clone()),
            "status" => Some(status_str(u.status)),
            "profile.login" => Some(u.profile.login.clone()),
            "profile.email" => u.profile.email.clone(),
            "profile.firstName" => u.profile.first_name.clone(),
            "profile.lastName" => u.profile.last_name.clone(),
            _ => None,
        };
        let Some(have) = have else { return false };
        // Okta compares profile strings case-insensitively; status and id exactly.
        let (h, v) =
            if self.field.starts_with("profile.") { (have.to_lowercase(), self.value.to_lowercase()) } else { (have, self.value.clone()) };
        match self.op.as_str() {
            "sw" => h.starts_with(&v),
            "co" => h.contains(&v),
            _ => h == v,
        }
    }
}

/// A deterministic Okta-shaped id (`prefix` + 17 base62 characters) derived from `seed`, for objects the
/// tenant file does not name (policies, rules), so their ids survive a reset.
pub fn derived_id(prefix: &str, seed: &str) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let h = Sha256::digest(seed.as_bytes());
    let tail: String = h.iter().take(17).map(|b| BASE62[(*b as usize) % 62] as char).collect();
    format!("{prefix}{tail}")
}

fn user_target(u: &User) -> Target {
    Target::new("User", &u.id, &u.profile.login, &u.profile.full_name())
}

fn group_target(g: &Group) -> Target {
    Target::new("UserGroup", &g.id, &g.name, &g.name)
}

/// The actor of management-API changes: the mock has no admin users, so changes made with the API token
/// are logged as Okta's system principal.
fn admin() -> Actor {
    Actor::system()
}

const KNOWN_GRANTS: &[&str] = &["authorization_code", "refresh_token", "client_credentials", "implicit", "password"];

impl Tenant {
    // ----- users -----

    /// A user by id, or by login (case-insensitive), as Okta's `/api/v1/users/{id|login}` resolves it.
    pub fn find_user_id(&self, id_or_login: &str) -> Option<String> {
        if self.users.contains_key(id_or_login) {
            return Some(id_or_login.to_string());
        }
        self.user_by_login(id_or_login).map(|u| u.id.clone())
    }

    fn user_id_required(&self, id_or_login: &str) -> Result<String, DirError> {
        self.find_user_id(id_or_login).ok_or_else(|| DirError::not_found(id_or_login, "User"))
    }

    fn log_user(&mut self, event_type: &str, message: &str, uid: &str, now: Millis) {
        let Some(u) = self.users.get(uid) else { return };
        let t = user_target(u);
        self.push_event(Event::new(event_type, message, Outcome::Success, now).actor(admin()).target(t));
    }

    /// Users matching `q` (prefix of login, email, first or last name, case-insensitive) and a filter, in
    /// id order, after the cursor `after` (a user id), at most `limit`; the second value says whether more
    /// follow.
    pub fn search_users(&self, q: Option<&str>, filter: &UserFilter, after: Option<&str>, limit: usize) -> (Vec<&User>, bool) {
        let q = q.map(str::to_lowercase);
        let mut it = self
            .users
            .values()
            .filter(|u| after.is_none_or(|a| u.id.as_str() > a))
            .filter(|u| {
                q.as_ref().is_none_or(|q| {
                    let p = &u.profile;
                    [Some(&p.login), p.email.as_ref(), p.first_name.as_ref(), p.last_name.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|s| s.to_lowercase().starts_with(q.as_str()))
                })
            })
            .filter(|u| {
                filter.iter().all(|c| c.is_empty()) || filter.iter().any(|conj| !conj.is_empty() && conj.iter().all(|c| c.matches(u)))
            });
        let page: Vec<&User> = it.by_ref().take(limit).collect();
        let more = it.next().is_some();
        (page, more)
    }

    /// `POST /api/v1/users?activate=…`: a new user, ACTIVE when activated with a password, PROVISIONED
    /// when activated without one, STAGED otherwise; optionally in groups.
    pub fn create_user(&mut self, n: NewUser, activate: bool, now: Millis) -> Result<String, DirError> {
        if n.profile.login.trim().is_empty() {
            return Err(DirError::validation("login", "login: The field cannot be left blank"));
        }
        if self.user_by_login(&n.profile.login).is_some() {
            return Err(DirError::validation("login", already_exists("login")));
        }
        for g in &n.group_ids {
            if !self.groups.contains_key(g) {
                return Err(DirError::not_found(g, "UserGroup"));
            }
        }
        let id = loop {
            let id = ids::user_id();
            if !self.users.contains_key(&id) {
                break id;
            }
        };
        let status = match (activate, n.password.is_some()) {
            (true, true) => UserStatus::Active,
            (true, false) => UserStatus::Provisioned,
            (false, _) => UserStatus::Staged,
        };
        let activated = activate.then_some(now);
        self.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                status,
                created: now,
                activated,
                status_changed: activated,
                last_login: None,
                last_updated: now,
                password_changed: n.password.as_ref().map(|_| now),
                profile: n.profile,
                password: n.password,
            },
        );
        self.log_user("user.lifecycle.create", "Create Okta user", &id, now);
        if activate {
            self.log_user("user.lifecycle.activate", "Activate Okta user", &id, now);
        }
        for g in n.group_ids {
            self.add_group_member(&g, &id, now)?;
        }
        Ok(id)
    }

    /// Profile and password changes (`POST` = partial, `PUT` = full; the HTTP layer merges). Tokens are
    /// not revoked: Okta documents no effect of a profile or password change on OAuth tokens.
    pub fn update_user(
        &mut self,
        id_or_login: &str,
        profile: Option<UserProfile>,
        password: Option<Secret>,
        now: Millis,
    ) -> Result<String, DirError> {
        let uid = self.user_id_required(id_or_login)?;
        if let Some(p) = &profile {
            if p.login.trim().is_empty() {
                return Err(DirError::validation("login", "login: The field cannot be left blank"));
            }
            if self.user_by_login(&p.login).is_some_and(|other| other.id != uid) {
                return Err(DirError::validation("login", already_exists("login")));
            }
        }
        let Some(u) = self.users.get_mut(&uid) else { return Err(DirError::not_found(id_or_login, "User")) };
        let changed_profile = profile.is_some();
        let changed_password = password.is_some();
        if let Some(p) = profile {
            u.profile = p;
        }
        if let Some(pw) = password {
            u.password = Some(pw);
            u.password_changed = Some(now);
        }
        u.last_updated = now;
        if changed_profile {
            self.log_user("user.account.update_profile", "Update user profile for Okta", &uid, now);
        }
        if changed_password {
            self.log_user("user.account.update_password", "Update password for Okta user", &uid, now);
        }
        Ok(uid)
    }

    fn set_status(&mut self, uid: &str, status: UserStatus, now: Millis) {
        if let Some(u) = self.users.get_mut(uid) {
            u.status = status;
            u.status_changed = Some(now);
            u.last_updated = now;
            if status == UserStatus::Active && u.activated.is_none() {
                u.activated = Some(now);
            }
        }
    }

    /// Ends everything a user holds: refresh families and access tokens (M6), browser sessions, unused
    /// session tokens and authorization codes, so nothing issued before comes back after reactivation.
    fn cut_off_user(&mut self, uid: &str, reason: RevokeReason, now: Millis) -> Vec<FamilyId> {
        let fams = self.revoke_user_tokens(uid, None, reason, now);
        self.sessions.retain(|_, s| s.user_id != uid);
        self.session_tokens.retain(|_, t| t.user_id != uid);
        self.codes.retain(|_, c| c.user_id != uid);
        fams
    }

    fn log_lifecycle(&mut self, event_type: &str, message: &str, uid: &str, fams: &[FamilyId], now: Millis) {
        let Some(u) = self.users.get(uid) else { return };
        let mut e = Event::new(event_type, message, Outcome::Success, now).actor(admin()).target(user_target(u));
        if !fams.is_empty() {
            e = e.debug("revokedRefreshFamilies", fams.iter().map(|f| f.to_string()).collect::<Vec<_>>());
        }
        self.push_event(e);
    }

    /// `lifecycle/activate`: STAGED or DEPROVISIONED users only (an ACTIVE one is E0000016, others
    /// E0000038). Old tokens stay dead.
    pub fn activate_user(&mut self, id_or_login: &str, now: Millis) -> Result<String, DirError> {
        let uid = self.user_id_required(id_or_login)?;
        let u = &self.users[&uid];
        match u.status {
            UserStatus::Staged | UserStatus::Deprovisioned => {}
            UserStatus::Active => return Err(DirError::AlreadyActive),
            _ => return Err(DirError::WrongStatus),
        }
        let status = if u.password.is_some() { UserStatus::Active } else { UserStatus::Provisioned };
        self.set_status(&uid, status, now);
        if let Some(u) = self.users.get_mut(&uid) {
            u.activated = Some(now);
        }
        self.log_lifecycle("user.lifecycle.activate", "Activate Okta user", &uid, &[], now);
        Ok(uid)
    }

    /// `lifecycle/reactivate`: PROVISIONED users only (Okta also allows RECOVERY, which the mock never
    /// enters); the status does not change, the activation flow restarts.
    pub fn reactivate_user(&mut self, id_or_login: &str, now: Millis) -> Result<String, DirError> {
        let uid = self.user_id_required(id_or_login)?;
        if !matches!(self.users[&uid].status, UserStatus::Provisioned | UserStatus::Recovery) {
            return Err(DirError::WrongStatus);
        }
        self.log_lifecycle("user.lifecycle.reactivate", "Reactivate Okta user", &uid, &[], now);
        Ok(uid)
    }

    /// `lifecycle/deactivate`: any status but DEPROVISIONED (E0000038 then). Revokes every family of the
    /// user and ends their sessions (M6).
    pub fn deactivate_user(&mut self, id_or_login: &str, now: Millis) -> Result<Vec<FamilyId>, DirError> {
        let uid = self.user_id_required(id_or_login)?;
        if self.users[&uid].status == UserStatus::Deprovisioned {
            return Err(DirError::WrongStatus);
        }
        self.set_status(&uid, UserStatus::Deprovisioned, now);
        let fams = self.cut_off_user(&uid, RevokeReason::UserDeactivated, now);
        self.log_lifecycle("user.lifecycle.deactivate", "Deactivate Okta user", &uid, &fams, now);
        Ok(fams)
    }

    /// `lifecycle/suspend`: ACTIVE users only (400 E0000001 otherwise, as Okta documents). Revokes like
    /// deactivation.
    pub fn suspend_user(&mut self, id_or_login: &str, now: Millis) -> Result<Vec<FamilyId>, DirError> {
        let uid = self.user_id_required(id_or_login)?;
        let st = self.users[&uid].status;
        if st != UserStatus::Active {
            return Err(DirError::validation(
                "suspend",
                format!("status: Only an ACTIVE user can be suspended; this user is {}", status_str(st)),
            ));
        }
        self.set_status(&uid, UserStatus::Suspended, now);
        let fams = self.cut_off_user(&uid, RevokeReason::UserSuspended, now);
        self.log_lifecycle("user.lifecycle.suspend", "Suspend Okta user", &uid, &fams, now);
        Ok(fams)
    }

    /// `lifecycle/unsuspend`: SUSPENDED users only (400 E0000001 otherwise). Tokens revoked at suspension
    /// stay dead.
    pub fn unsuspend_user(&mut self, id_or_login: &str, now: Millis) -> Result<String, DirError> {
        let uid = self.user_id_required(id_or_login)?;
        let st = self.users[&uid].status;
        if st != UserStatus::Suspended {
            return Err(DirError::validation(
                "unsuspend",
                format!("status: Only a SUSPENDED user can be unsuspended; this user is {}", status_str(st)),
            ));
        }
        self.set_status(&uid, UserStatus::Active, now);
        self.log_lifecycle("user.lifecycle.unsuspend", "Unsuspend Okta user", &uid, &[], now);
        Ok(uid)
    }

    /// `DELETE /api/v1/users/{id}`: the first call on a user that is not DEPROVISIONED deactivates it
    /// (returns `false`), a call on a DEPROVISIONED user deletes it with its memberships and assignments
    /// (returns `true`).
    pub fn delete_user(&mut self, id_or_login: &str, now: Millis) -> Result<bool, DirError> {
        let uid = self.user_id_required(id_or_login)?;
        if self.users[&uid].status != UserStatus::Deprovisioned {
            self.deactivate_user(&uid, now)?;
            return Ok(false);
        }
        self.log_lifecycle("user.lifecycle.delete.initiated", "Delete Okta user", &uid, &[], now);
        let fams = self.cut_off_user(&uid, RevokeReason::UserDeleted, now);
        for g in self.groups.values_mut() {
            g.members.remove(&uid);
        }
        for a in self.apps.values_mut() {
            a.assigned_users.remove(&uid);
        }
        self.log_lifecycle("user.lifecycle.delete.completed", "Delete Okta user completed", &uid, &fams, now);
        self.users.remove(&uid);
        Ok(true)
    }

    /// `DELETE /api/v1/users/{id}/sessions[?oauthTokens=true]`: ends the user's browser sessions and, with
    /// `oauth_tokens`, revokes every refresh family and access token of the user.
    pub fn clear_user_sessions(&mut self, id_or_login: &str, oauth_tokens: bool, now: Millis) -> Result<Vec<FamilyId>, DirError> {
        let uid = self.user_id_required(id_or_login)?;
        let ended = self.sessions.values().filter(|s| s.user_id == uid).count();
        self.sessions.retain(|_, s| s.user_id != uid);
        let fams = if oauth_tokens { self.revoke_user_tokens(&uid, None, RevokeReason::AdminCleared, now) } else { Vec::new() };
        if let Some(u) = self.users.get(&uid) {
            let mut e = Event::new("user.session.clear", "Clear user session", Outcome::Success, now)
                .actor(admin())
                .target(user_target(u))
                .debug("endedSessions", ended as u64)
                .debug("oauthTokens", oauth_tokens);
            if !fams.is_empty() {
                e = e.debug("revokedRefreshFamilies", fams.iter().map(|f| f.to_string()).collect::<Vec<_>>());
            }
            self.push_event(e);
        }
        Ok(fams)
    }

    /// The live refresh families of a user at a client (`GET /api/v1/users/{uid}/clients/{cid}/tokens`),
    /// in creation order. Returns the user id too.
    pub fn user_client_families(&self, id_or_login: &str, client_id: &str, now: Millis) -> Result<(String, Vec<&Family>), DirError> {
        let uid = self.user_id_required(id_or_login)?;
        if self.app_by_client_id(client_id).is_none() {
            return Err(DirError::not_found(client_id, "AppInstance"));
        }
        let fams = self.refresh.live_families(now).filter(|f| f.meta().user_id == uid && f.meta().client_id == client_id).collect();
        Ok((uid, fams))
    }

    /// `DELETE /api/v1/users/{uid}/clients/{cid}/tokens[/{tokenId}]`: revokes the user's refresh families at
    /// the client (or the one whose current token id is `token_id`) and the access tokens minted from them;
    /// access tokens issued without a refresh token survive, as Okta documents.
    pub fn revoke_user_client_families(
        &mut self,
        id_or_login: &str,
        client_id: &str,
        token_id: Option<&str>,
        now: Millis,
    ) -> Result<Vec<FamilyId>, DirError> {
        let (uid, fams) = self.user_client_families(id_or_login, client_id, now)?;
        let targets: Vec<(FamilyId, String)> = fams
            .iter()
            .filter(|f| token_id.is_none_or(|t| f.current_token_id() == t))
            .map(|f| (f.id(), f.meta().server_id.clone()))
            .collect();
        if let Some(t) = token_id
            && targets.is_empty()
        {
            return Err(DirError::not_found(t, "RefreshToken"));
        }
        let mut revoked = Vec::new();
        for (f, server) in &targets {
            if self.refresh.revoke_family(*f, RevokeReason::AdminCleared, now) {
                revoked.push(*f);
            }
            let prefix = if server == "org" { "app.oauth2" } else { "app.oauth2.as" };
            let actor = self.user_actor(&uid);
            let mut e = Event::new(format!("{prefix}.token.revoke"), "OAuth2 token revocation request", Outcome::Success, now)
                .actor(actor)
                .client(client_id)
                .debug("tokenType", "refresh_token")
                .debug("refreshFamily", f.to_string())
                .debug("reason", RevokeReason::AdminCleared.as_str());
            if let Some(app) = self.app_by_client_id(client_id) {
                e = e.target(Tenant::app_target(app));
            }
            self.push_event(e);
        }
        self.revoke_tokens_of_families(&revoked);
        Ok(revoked)
    }

    // ----- assignments -----

    /// The (app id, user id) pairs among `users` that are assigned, directly or through a group.
    fn assignment_pairs(&self, users: &BTreeSet<String>) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for a in self.apps.values() {
            for u in users {
                if self.is_assigned(a, u) {
                    out.insert((a.id.clone(), u.clone()));
                }
            }
        }
        out
    }

    /// After a change to memberships or assignments: logs `application.user_membership.add/remove` for
    /// every pair that appeared or disappeared, and revokes the user's families at apps they lost (M6).
    fn reconcile(&mut self, before: BTreeSet<(String, String)>, users: &BTreeSet<String>, now: Millis) -> Vec<FamilyId> {
        let after = self.assignment_pairs(users);
        let mut revoked = Vec::new();
        for (app_id, uid) in before.difference(&after) {
            let Some(app) = self.apps.get(app_id).cloned() else { continue };
            let fams = self.revoke_user_tokens(uid, Some(&app.client_id), RevokeReason::Unassigned, now);
            let mut e = Event::new("application.user_membership.remove", "Remove user from application membership", Outcome::Success, now)
                .actor(admin())
                .target(Tenant::app_target(&app));
            if let Some(u) = self.users.get(uid) {
                e = e.target(user_target(u));
            }
            if !fams.is_empty() {
                e = e.debug("revokedRefreshFamilies", fams.iter().map(|f| f.to_string()).collect::<Vec<_>>());
            }
            self.push_event(e);
            revoked.extend(fams);
        }
        for (app_id, uid) in after.difference(&before) {
            let Some(app) = self.apps.get(app_id) else { continue };
            let mut e = Event::new("application.user_membership.add", "Add user to application membership", Outcome::Success, now)
                .actor(admin())
                .target(Tenant::app_target(app));
            if let Some(u) = self.users.get(uid) {
                e = e.target(user_target(u));
            }
            self.push_event(e);
        }
        revoked
    }

    fn group_required(&self, gid: &str) -> Result<&Group, DirError> {
        self.groups.get(gid).ok_or_else(|| DirError::not_found(gid, "UserGroup"))
    }

    fn app_required(&self, app_id: &str) -> Result<&App, DirError> {
        self.apps.get(app_id).ok_or_else(|| DirError::not_found(app_id, "AppInstance"))
    }

    // ----- groups -----

    /// `POST /api/v1/groups`: group names are unique, as in Okta.
    pub fn create_group(&mut self, name: &str, description: Option<String>, now: Millis) -> Result<String, DirError> {
        if name.trim().is_empty() {
            return Err(DirError::validation("name", "name: The field cannot be left blank"));
        }
        if self.groups.values().any(|g| g.name == name) {
            return Err(DirError::validation("name", already_exists("name")));
        }
        let id = loop {
            let id = ids::group_id();
            if !self.groups.contains_key(&id) {
                break id;
            }
        };
        let g = Group { id: id.clone(), name: name.into(), description, members: BTreeSet::new(), created: now, last_updated: now };
        let t = group_target(&g);
        self.groups.insert(id.clone(), g);
        self.push_event(Event::new("group.lifecycle.create", "Create okta user group", Outcome::Success, now).actor(admin()).target(t));
        Ok(id)
    }

    /// `PUT /api/v1/groups/{id}`: a new name and description.
    pub fn update_group(&mut self, gid: &str, name: &str, description: Option<String>, now: Millis) -> Result<(), DirError> {
        self.group_required(gid)?;
        if name.trim().is_empty() {
            return Err(DirError::validation("name", "name: The field cannot be left blank"));
        }
        if self.groups.values().any(|g| g.name == name && g.id != gid) {
            return Err(DirError::validation("name", already_exists("name")));
        }
        if let Some(g) = self.groups.get_mut(gid) {
            g.name = name.into();
            g.description = description;
            g.last_updated = now;
        }
        let t = group_target(&self.groups[gid]);
        self.push_event(Event::new("group.profile.update", "Update group profile", Outcome::Success, now).actor(admin()).target(t));
        Ok(())
    }

    /// `DELETE /api/v1/groups/{id}`: the group goes, with its app assignments; members who thereby lose an
    /// app lose their tokens for it.
    pub fn delete_group(&mut self, gid: &str, now: Millis) -> Result<Vec<FamilyId>, DirError> {
        let g = self.group_required(gid)?.clone();
        let before = self.assignment_pairs(&g.members);
        self.groups.remove(gid);
        for a in self.apps.values_mut() {
            a.assigned_groups.remove(gid);
        }
        self.push_event(
            Event::new("group.lifecycle.delete", "Delete okta user group", Outcome::Success, now).actor(admin()).target(group_target(&g)),
        );
        Ok(self.reconcile(before, &g.members, now))
    }

    /// `PUT /api/v1/groups/{gid}/users/{uid}` (idempotent).
    pub fn add_group_member(&mut self, gid: &str, id_or_login: &str, now: Millis) -> Result<(), DirError> {
        self.group_required(gid)?;
        let uid = self.user_id_required(id_or_login)?;
        if self.groups[gid].members.contains(&uid) {
            return Ok(());
        }
        let users = BTreeSet::from([uid.clone()]);
        let before = self.assignment_pairs(&users);
        if let Some(g) = self.groups.get_mut(gid) {
            g.members.insert(uid.clone());
            g.last_updated = now;
        }
        let e = Event::new("group.user_membership.add", "Add user to group membership", Outcome::Success, now)
            .actor(admin())
            .target(user_target(&self.users[&uid]))
            .target(group_target(&self.groups[gid]));
        self.push_event(e);
        self.reconcile(before, &users, now);
        Ok(())
    }

    /// `DELETE /api/v1/groups/{gid}/users/{uid}`: removing a member who is not one is a no-op, as in Okta.
    /// Apps the user is no longer assigned to lose the user's tokens.
    pub fn remove_group_member(&mut self, gid: &str, id_or_login: &str, now: Millis) -> Result<Vec<FamilyId>, DirError> {
        self.group_required(gid)?;
        let uid = self.user_id_required(id_or_login)?;
        if !self.groups[gid].members.contains(&uid) {
            return Ok(Vec::new());
        }
        let users = BTreeSet::from([uid.clone()]);
        let before = self.assignment_pairs(&users);
        if let Some(g) = self.groups.get_mut(gid) {
            g.members.remove(&uid);
            g.last_updated = now;
        }
        let e = Event::new("group.user_membership.remove", "Remove user from group membership", Outcome::Success, now)
            .actor(admin())
            .target(user_target(&self.users[&uid]))
            .target(group_target(&self.groups[gid]));
        self.push_event(e);
        Ok(self.reconcile(before, &users, now))
    }

    // ----- apps -----

    fn check_app_spec(&self, s: &AppSpec, existing_id: Option<&str>, will_have_secret: bool) -> Result<(), DirError> {
        let v = |cause: String| Err(DirError::validation("settings", cause));
        if s.label.trim().is_empty() {
            return Err(DirError::validation("label", "label: The field cannot be left blank"));
        }
        if let Some(c) = &s.client_id {
            if c.trim().is_empty() {
                return Err(DirError::validation("client_id", "client_id: The field cannot be left blank"));
            }
            if self.apps.values().any(|a| &a.client_id == c && Some(a.id.as_str()) != existing_id) {
                return Err(DirError::validation("client_id", already_exists("client_id")));
            }
        }
        for g in &s.grant_types {
            if !KNOWN_GRANTS.contains(&g.as_str()) {
                return v(format!("grant_types: unsupported grant type {g}; valid values: [{}]", KNOWN_GRANTS.join(", ")));
            }
        }
        if s.grant_types.is_empty() {
            return v("grant_types: The field cannot be left blank".into());
        }
        for r in &s.response_types {
            if !matches!(r.as_str(), "code" | "token" | "id_token") {
                return v(format!("response_types: unsupported response type {r}"));
            }
        }
        for (field, list) in [("redirect_uris", &s.redirect_uris), ("post_logout_redirect_uris", &s.post_logout_redirect_uris)] {
            for u in list {
                match url::Url::parse(u) {
                    Ok(p) if p.fragment().is_none() => {}
                    _ => return v(format!("{field}: '{u}' is not an absolute URI without a fragment")),
                }
            }
        }
        if s.grant_types.iter().any(|g| g == "authorization_code") && s.redirect_uris.is_empty() {
            return v("redirect_uris: The authorization_code grant type needs at least one redirect URI".into());
        }
        if let Some(rt) = &s.refresh_token
            && rt.leeway > 60
        {
            return v(format!("refresh_token.leeway: must be between 0 and 60 seconds, got {}", rt.leeway));
        }
        match s.token_endpoint_auth_method {
            AuthMethod::None if s.client_secret.is_some() => {
                return Err(DirError::validation(
                    "client_secret",
                    "client_secret: a public client (token_endpoint_auth_method none) has no client secret",
                ));
            }
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost if !will_have_secret => {
                return Err(DirError::validation("client_secret", "client_secret: The field cannot be left blank"));
            }
            _ => {}
        }
        Ok(())
    }

    fn refresh_settings(s: &AppSpec) -> Option<RefreshTokenSettings> {
        if !s.grant_types.iter().any(|g| g == "refresh_token") {
            return None;
        }
        Some(s.refresh_token.unwrap_or(RefreshTokenSettings {
            // Okta's defaults: ROTATE for SPAs, STATIC (persistent) for web and native apps.
            rotation_type: if s.application_type == ApplicationType::Browser { RotationType::Rotate } else { RotationType::Static },
            leeway: 30,
        }))
    }

    /// `POST /api/v1/apps?activate=…`: an OIDC app. Without a client_id the app id is used; a confidential
    /// client without a secret gets a generated one. Returns the app id and the secret in clear (the only
    /// time it is shown).
    pub fn create_app(&mut self, s: AppSpec, activate: bool, now: Millis) -> Result<(String, Option<String>), DirError> {
        self.check_app_spec(&s, None, true)?;
        let id = loop {
            let id = ids::app_id();
            if !self.apps.contains_key(&id) && !self.apps.values().any(|a| a.client_id == id) {
                break id;
            }
        };
        let needs_secret = s.token_endpoint_auth_method != AuthMethod::None;
        let secret = match (&s.client_secret, needs_secret) {
            (Some(x), _) => Some(x.clone()),
            (None, true) => Some(Secret::new(ids::opaque(48))),
            (None, false) => None,
        };
        let public_like = matches!(s.application_type, ApplicationType::Browser | ApplicationType::Native);
        let app = App {
            id: id.clone(),
            label: s.label.clone(),
            status: if activate { AppStatus::Active } else { AppStatus::Inactive },
            created: now,
            last_updated: now,
            client_id: s.client_id.clone().unwrap_or_else(|| id.clone()),
            client_secret: secret.clone(),
            token_endpoint_auth_method: s.token_endpoint_auth_method,
            pkce_required: s.pkce_required.unwrap_or(public_like),
            application_type: s.application_type,
            refresh_token: Self::refresh_settings(&s),
            redirect_uris: s.redirect_uris,
            post_logout_redirect_uris: s.post_logout_redirect_uris,
            grant_types: s.grant_types,
            response_types: s.response_types,
            groups_claim: None,
            mock: AppMockOptions::default(),
            assigned_users: BTreeSet::new(),
            assigned_groups: BTreeSet::new(),
        };
        let t = Tenant::app_target(&app);
        self.apps.insert(id.clone(), app);
        self.push_event(Event::new("application.lifecycle.create", "Create application", Outcome::Success, now).actor(admin()).target(t));
        Ok((id, secret.map(|s| s.expose().to_string())))
    }

    /// `PUT /api/v1/apps/{id}`: replaces label and OIDC settings. A missing client_secret keeps the current
    /// one. Existing tokens are not revoked (a changed rotation type or leeway applies from the next
    /// refresh), except that families of a client whose client_id changes stop working with it.
    pub fn update_app(&mut self, app_id: &str, s: AppSpec, now: Millis) -> Result<(), DirError> {
        let existing = self.app_required(app_id)?.clone();
        let will_have_secret = s.client_secret.is_some() || existing.client_secret.is_some();
        self.check_app_spec(&s, Some(app_id), will_have_secret)?;
        let refresh_token = Self::refresh_settings(&s);
        let Some(a) = self.apps.get_mut(app_id) else { return Err(DirError::not_found(app_id, "AppInstance")) };
        a.label = s.label;
        if let Some(c) = s.client_id {
            a.client_id = c;
        }
        if s.token_endpoint_auth_method == AuthMethod::None {
            a.client_secret = None;
        } else if let Some(sec) = s.client_secret {
            a.client_secret = Some(sec);
        }
        a.token_endpoint_auth_method = s.token_endpoint_auth_method;
        if let Some(p) = s.pkce_required {
            a.pkce_required = p;
        }
        a.application_type = s.application_type;
        a.redirect_uris = s.redirect_uris;
        a.post_logout_redirect_uris = s.post_logout_redirect_uris;
        a.grant_types = s.grant_types;
        a.response_types = s.response_types;
        a.refresh_token = refresh_token;
        a.last_updated = now;
        let t = Tenant::app_target(a);
        self.push_event(Event::new("application.lifecycle.update", "Update application", Outcome::Success, now).actor(admin()).target(t));
        Ok(())
    }

    /// `lifecycle/activate` and `lifecycle/deactivate` of an app. Deactivation revokes every token of the
    /// client and drops its unredeemed codes (M6); activation brings none back. Idempotent.
    pub fn set_app_active(&mut self, app_id: &str, active: bool, now: Millis) -> Result<Vec<FamilyId>, DirError> {
        let app = self.app_required(app_id)?.clone();
        let status = if active { AppStatus::Active } else { AppStatus::Inactive };
        if app.status == status {
            return Ok(Vec::new());
        }
        if let Some(a) = self.apps.get_mut(app_id) {
            a.status = status;
            a.last_updated = now;
        }
        let fams = if active {
            Vec::new()
        } else {
            self.codes.retain(|_, c| c.client_id != app.client_id);
            self.revoke_client_tokens(&app.client_id, RevokeReason::AppDeactivated, now)
        };
        let (ty, msg) = if active {
            ("application.lifecycle.activate", "Activate application")
        } else {
            ("application.lifecycle.deactivate", "Deactivate application")
        };
        let mut e = Event::new(ty, msg, Outcome::Success, now).actor(admin()).target(Tenant::app_target(&app));
        if !fams.is_empty() {
            e = e.debug("revokedRefreshFamilies", fams.iter().map(|f| f.to_string()).collect::<Vec<_>>());
        }
        self.push_event(e);
        Ok(fams)
    }

    /// `DELETE /api/v1/apps/{id}`: only an INACTIVE app (E0000056 otherwise, as Okta answers). The app goes
    /// with its assignments (`application.user_membership.remove` for each user who had it), its codes and
    /// every token still alive (deactivation revoked them already), then `application.lifecycle.delete`.
    pub fn delete_app(&mut self, app_id: &str, now: Millis) -> Result<Vec<FamilyId>, DirError> {
        let app = self.app_required(app_id)?.clone();
        if app.status == AppStatus::Active {
            return Err(DirError::AppActive);
        }
        let users: BTreeSet<String> = self.users.keys().filter(|u| self.is_assigned(&app, u)).cloned().collect();
        let before = self.assignment_pairs(&users);
        if let Some(a) = self.apps.get_mut(app_id) {
            a.assigned_users.clear();
            a.assigned_groups.clear();
        }
        let mut fams = self.reconcile(before, &users, now);
        self.codes.retain(|_, c| c.client_id != app.client_id);
        self.pending.retain(|_, (r, _)| r.client_id != app.client_id);
        fams.extend(self.revoke_client_tokens(&app.client_id, RevokeReason::AppDeleted, now));
        self.apps.remove(app_id);
        let mut e = Event::new("application.lifecycle.delete", "Delete application", Outcome::Success, now)
            .actor(admin())
            .target(Tenant::app_target(&app));
        if !fams.is_empty() {
            e = e.debug("revokedRefreshFamilies", fams.iter().map(|f| f.to_string()).collect::<Vec<_>>());
        }
        self.push_event(e);
        Ok(fams)
    }

    /// `POST /api/v1/apps/{id}/users`: a direct assignment (idempotent).
    pub fn assign_user(&mut self, app_id: &str, id_or_login: &str, now: Millis) -> Result<String, DirError> {
        self.app_required(app_id)?;
        let uid = self.user_id_required(id_or_login)?;
        let users = BTreeSet::from([uid.clone()]);
        let before = self.assignment_pairs(&users);
        if let Some(a) = self.apps.get_mut(app_id) {
            a.assigned_users.insert(uid.clone());
        }
        self.reconcile(before, &users, now);
        Ok(uid)
    }

    /// `DELETE /api/v1/apps/{id}/users/{uid}`: removes a direct assignment (404 if the user has none);
    /// the user's tokens for the app are revoked unless a group still assigns the user.
    pub fn unassign_user(&mut self, app_id: &str, id_or_login: &str, now: Millis) -> Result<Vec<FamilyId>, DirError> {
        self.app_required(app_id)?;
        let uid = self.user_id_required(id_or_login)?;
        if !self.apps[app_id].assigned_users.contains(&uid) {
            return Err(DirError::not_found(&uid, "AppUser"));
        }
        let users = BTreeSet::from([uid.clone()]);
        let before = self.assignment_pairs(&users);
        if let Some(a) = self.apps.get_mut(app_id) {
            a.assigned_users.remove(&uid);
        }
        // A user still assigned through a group keeps the app (and its tokens): reconcile sees no change.
        Ok(self.reconcile(before, &users, now))
    }

    /// `PUT /api/v1/apps/{id}/groups/{gid}` (idempotent).
    pub fn assign_group(&mut self, app_id: &str, gid: &str, now: Millis) -> Result<(), DirError> {
        self.app_required(app_id)?;
        let g = self.group_required(gid)?.clone();
        if self.apps[app_id].assigned_groups.contains(gid) {
            return Ok(());
        }
        let before = self.assignment_pairs(&g.members);
        if let Some(a) = self.apps.get_mut(app_id) {
            a.assigned_groups.insert(gid.to_string());
        }
        let e = Event::new("group.application_assignment.add", "Add assigned application to group", Outcome::Success, now)
            .actor(admin())
            .target(Tenant::app_target(&self.apps[app_id]))
            .target(group_target(&g));
        self.push_event(e);
        self.reconcile(before, &g.members, now);
        Ok(())
    }

    /// `DELETE /api/v1/apps/{id}/groups/{gid}`: members no longer assigned lose their tokens for the app.
    pub fn unassign_group(&mut self, app_id: &str, gid: &str, now: Millis) -> Result<Vec<FamilyId>, DirError> {
        self.app_required(app_id)?;
        let g = self.group_required(gid)?.clone();
        if !self.apps[app_id].assigned_groups.contains(gid) {
            return Err(DirError::not_found(gid, "ApplicationGroupAssignment"));
        }
        let before = self.assignment_pairs(&g.members);
        if let Some(a) = self.apps.get_mut(app_id) {
            a.assigned_groups.remove(gid);
        }
        let e = Event::new("group.application_assignment.remove", "Remove assigned application from group", Outcome::Success, now)
            .actor(admin())
            .target(Tenant::app_target(&self.apps[app_id]))
            .target(group_target(&g));
        self.push_event(e);
        Ok(self.reconcile(before, &g.members, now))
    }

    // ----- authorization servers -----

    fn server_required(&self, server_id: &str) -> Result<&AuthServer, DirError> {
        self.servers.get(server_id).ok_or_else(|| DirError::not_found(server_id, "AuthorizationServer"))
    }

    fn log_server(&mut self, event_type: &str, message: &str, server_id: &str, fams: &[FamilyId], now: Millis) {
        let name = self.servers.get(server_id).map(|s| s.name.clone()).unwrap_or_else(|| server_id.to_string());
        let mut e = Event::new(event_type, message, Outcome::Success, now).actor(admin()).target(Target::new(
            "AuthorizationServer",
            server_id,
            &name,
            &name,
        ));
        if !fams.is_empty() {
            e = e.debug("revokedRefreshFamilies", fams.iter().map(|f| f.to_string()).collect::<Vec<_>>());
        }
        self.push_event(e);
    }

    /// `POST /api/v1/authorizationServers`: a custom server (`aus…` id, issuer `{base}/oauth2/{id}`) with its
    /// own signing keys (`active` signs, `next` is published beside it) and Okta's "Default Policy" with a
    /// "Default Policy Rule" of Okta's default lifetimes, so it issues tokens at once (Okta creates a server
    /// without policies; the mock evaluates none). Names are unique; exactly one audience. Returns the id.
    pub fn create_server(
        &mut self,
        n: NewServer,
        active: Arc<KeyMaterial>,
        next: Arc<KeyMaterial>,
        now: Millis,
    ) -> Result<String, DirError> {
        self.check_new_server(&n)?;
        let id = loop {
            let id = ids::okta_id("aus");
            if !self.servers.contains_key(&id) {
                break id;
            }
        };
        let lifetimes = TokenLifetimes::default();
        self.servers.insert(
            id.clone(),
            AuthServer {
                id: id.clone(),
                name: n.name.clone(),
                description: n.description.clone(),
                audiences: n.audiences.clone(),
                scopes: Vec::new(),
                lifetimes,
                status: if n.active { ServerStatus::Active } else { ServerStatus::Inactive },
                created: now,
                last_updated: now,
            },
        );
        self.keys.insert(ServerId::Custom(id.clone()), KeySet::new(active, Some(next), now));
        // The tenant's copy of its configuration holds the policies (`server_policies`, `update_rule`) and what
        // a state file restores the server from.
        self.config.authorization_servers.push(AuthServerConfig {
            id: id.clone(),
            name: Some(n.name),
            description: Some(n.description),
            audiences: Some(n.audiences),
            scopes: Vec::new(),
            policies: vec![default_policy(lifetimes)],
            keys: Vec::new(),
        });
        self.log_server("oauth2.as.created", "Create authorization server", &id, &[], now);
        if n.active {
            self.log_server("oauth2.as.activated", "Activate authorization server", &id, &[], now);
        }
        Ok(id)
    }

    /// Whether a server could be created: a name not blank and not taken, exactly one audience.
    pub fn check_new_server(&self, n: &NewServer) -> Result<(), DirError> {
        if n.name.trim().is_empty() {
            return Err(DirError::validation("name", "name: The field cannot be left blank"));
        }
        if self.servers.values().any(|s| s.name == n.name) {
            return Err(DirError::validation("name", already_exists("name")));
        }
        match n.audiences.as_slice() {
            [a] if !a.trim().is_empty() => Ok(()),
            [] | [_] => Err(DirError::validation("audiences", "audiences: The field cannot be left blank")),
            _ => Err(DirError::validation("audiences", "audiences: Okta supports only one audience")),
        }
    }

    /// `lifecycle/activate` and `lifecycle/deactivate` of a custom server (idempotent). A deactivated server is
    /// unavailable to clients: its protocol endpoints answer as an unknown server's, and its refresh families,
    /// access tokens, codes and parked authorizations are revoked (okta-behaviour.md §6.2: tokens of a changed
    /// or deleted server). Activation brings none back.
    pub fn set_server_active(&mut self, server_id: &str, active: bool, now: Millis) -> Result<Vec<FamilyId>, DirError> {
        let status = if active { ServerStatus::Active } else { ServerStatus::Inactive };
        if self.server_required(server_id)?.status == status {
            return Ok(Vec::new());
        }
        if let Some(s) = self.servers.get_mut(server_id) {
            s.status = status;
            s.last_updated = now;
        }
        let fams = if active { Vec::new() } else { self.cut_off_server(server_id, now) };
        let (ty, msg) = if active {
            ("oauth2.as.activated", "Activate authorization server")
        } else {
            ("oauth2.as.deactivated", "Deactivate authorization server")
        };
        self.log_server(ty, msg, server_id, &fams, now);
        Ok(fams)
    }

    /// Revokes everything issued by a custom server and drops its codes and parked authorizations.
    fn cut_off_server(&mut self, server_id: &str, now: Millis) -> Vec<FamilyId> {
        let server = ServerId::Custom(server_id.to_string());
        let fams = self.refresh.revoke_matching(|m| m.server_id == server_id, RevokeReason::ServerDeactivated, now);
        for r in self.tokens.values_mut() {
            if r.server == server {
                r.revoked = true;
            }
        }
        self.codes.retain(|_, c| c.server != server);
        self.pending.retain(|_, (r, _)| r.server != server);
        fams
    }

    /// `DELETE /api/v1/authorizationServers/{id}`: only an INACTIVE server (E0000107 otherwise), never
    /// `default` (E0000006). Its keys, policies and tokens go; `oauth2.as.deleted`.
    pub fn delete_server(&mut self, server_id: &str, now: Millis) -> Result<(), DirError> {
        let s = self.server_required(server_id)?;
        if s.id == "default" {
            return Err(DirError::DefaultServer);
        }
        if s.status == ServerStatus::Active {
            return Err(DirError::ServerActive);
        }
        let fams = self.cut_off_server(server_id, now);
        self.log_server("oauth2.as.deleted", "Delete authorization server", server_id, &fams, now);
        self.servers.remove(server_id);
        self.keys.remove(&ServerId::Custom(server_id.to_string()));
        self.config.authorization_servers.retain(|c| c.id != server_id);
        Ok(())
    }

    /// The policies and rules of a custom server. A server configured without policies shows Okta's
    /// "Default Policy" with a "Default Policy Rule" carrying the server's lifetimes. Only the first rule
    /// of the first policy decides token lifetimes (the mock evaluates no conditions).
    pub fn server_policies(&self, server_id: &str) -> Result<Vec<PolicyView>, DirError> {
        let s = self.servers.get(server_id).ok_or_else(|| DirError::not_found(server_id, "AuthorizationServer"))?;
        let configured =
            self.config.authorization_servers.iter().find(|c| c.id == server_id).map(|c| c.policies.clone()).unwrap_or_default();
        let policies = if configured.is_empty() { vec![default_policy(s.lifetimes)] } else { configured };
        Ok(policies
            .iter()
            .enumerate()
            .map(|(pi, p)| PolicyView {
                id: derived_id("00p", &format!("policy:{server_id}:{pi}")),
                name: p.name.clone(),
                description: p.description.clone().unwrap_or_else(|| p.name.clone()),
                priority: pi + 1,
                rules: p
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(ri, r)| RuleView {
                        id: derived_id("0pr", &format!("rule:{server_id}:{pi}:{ri}")),
                        name: r.name.clone(),
                        priority: ri + 1,
                        // The first rule's lifetimes live on the server, which is what token minting reads.
                        lifetimes: if pi == 0 && ri == 0 { s.lifetimes } else { r.actions.token },
                    })
                    .collect(),
            })
            .collect())
    }

    /// `PUT …/policies/{pid}/rules/{rid}`: new token lifetimes (Okta's ranges, [`check_lifetimes`]) and
    /// optionally a new name. New lifetimes apply to families created afterwards and to access tokens
    /// minted afterwards; existing families keep the lifetimes they were created with (M4).
    pub fn update_rule(
        &mut self,
        server_id: &str,
        policy_id: &str,
        rule_id: &str,
        name: Option<String>,
        lifetimes: TokenLifetimes,
        now: Millis,
    ) -> Result<RuleView, DirError> {
        let policies = self.server_policies(server_id)?;
        let (pi, p) =
            policies.iter().enumerate().find(|(_, p)| p.id == policy_id).ok_or_else(|| DirError::not_found(policy_id, "Policy"))?;
        let (ri, _) =
            p.rules.iter().enumerate().find(|(_, r)| r.id == rule_id).ok_or_else(|| DirError::not_found(rule_id, "PolicyRule"))?;
        check_lifetimes(&lifetimes)
            .map_err(|(field, msg)| DirError::validation("actions.token", format!("actions.token.{field}: {msg}")))?;
        // The policy store is the tenant's copy of its configuration: reset rebuilds from the original.
        let server_lifetimes = self.servers.get(server_id).map(|s| s.lifetimes).unwrap_or_default();
        if let Some(c) = self.config.authorization_servers.iter_mut().find(|c| c.id == server_id) {
            if c.policies.is_empty() {
                c.policies.push(default_policy(server_lifetimes));
            }
            if let Some(r) = c.policies.get_mut(pi).and_then(|p| p.rules.get_mut(ri)) {
                r.actions.token = lifetimes;
                if let Some(n) = &name {
                    r.name = n.clone();
                }
            }
        }
        if pi == 0
            && ri == 0
            && let Some(s) = self.servers.get_mut(server_id)
        {
            s.lifetimes = lifetimes;
            s.last_updated = now;
        }
        let e = Event::new("policy.rule.update", "Update policy rule", Outcome::Success, now)
            .actor(admin())
            .target(Target::new("PolicyRule", rule_id, &p.rules[ri].name, &p.rules[ri].name))
            .debug("authorizationServer", server_id)
            .debug("accessTokenLifetimeMinutes", lifetimes.access_token_lifetime_minutes)
            .debug("refreshTokenLifetimeMinutes", lifetimes.refresh_token_lifetime_minutes)
            .debug("refreshTokenWindowMinutes", lifetimes.refresh_token_window_minutes);
        self.push_event(e);
        let views = self.server_policies(server_id)?;
        views.into_iter().nth(pi).and_then(|p| p.rules.into_iter().nth(ri)).ok_or_else(|| DirError::not_found(rule_id, "PolicyRule"))
    }

    /// Rotates a server's signing keys. `at_once == false` is Okta's rotation (keyRotate): ACTIVE→EXPIRED,
    /// NEXT→ACTIVE (already published, so clients may have cached it), `fresh` becomes NEXT. `at_once ==
    /// true` is an emergency rotation: `fresh`, a key no client has seen, becomes ACTIVE immediately,
    /// ACTIVE→EXPIRED, NEXT stays. Either way new tokens carry the new ACTIVE kid at once, and the expired
    /// key stays published while tokens it signed may still be valid.
    pub fn rotate_server_keys(&mut self, server: &ServerId, fresh: Arc<KeyMaterial>, at_once: bool, now: Millis) -> Result<(), DirError> {
        let Some(ks) = self.keys.get_mut(server) else { return Err(DirError::not_found(server.key(), "AuthorizationServer")) };
        let old = ks.active().kid.clone();
        if at_once {
            ks.rotate_immediately(fresh, now);
        } else {
            ks.rotate(fresh, now);
        }
        let new = ks.active().kid.clone();
        let next = ks.entries().iter().find(|e| e.status == KeyStatus::Next).map(|e| e.material.kid.clone());
        let name = match server {
            ServerId::Org => "Org Authorization Server".to_string(),
            ServerId::Custom(id) => self.servers.get(id).map(|s| s.name.clone()).unwrap_or_else(|| id.clone()),
        };
        let mut e = Event::new(
            format!("{}.key.rollover", server.event_prefix()),
            "Authorization server signing key rolled over",
            Outcome::Success,
            now,
        )
        .actor(admin())
        .target(Target::new("AuthorizationServer", server.key(), &name, &name))
        .debug("expiredKid", old)
        .debug("activeKid", new)
        .debug("emergency", at_once);
        if let Some(n) = next {
            e = e.debug("nextKid", n);
        }
        self.push_event(e);
        Ok(())
    }
}

fn default_policy(t: TokenLifetimes) -> PolicyConfig {
    PolicyConfig {
        name: "Default Policy".into(),
        description: Some("Default policy description".into()),
        rules: vec![RuleConfig { name: "Default Policy Rule".into(), actions: RuleActions { token: t } }],
    }
}

/// Merges a partial profile update (`POST /api/v1/users/{id}`) into a profile: keys present replace,
/// `null` removes an optional attribute.
pub fn merge_profile(current: &UserProfile, patch: &serde_json::Map<String, Value>) -> Result<UserProfile, String> {
    let mut v = serde_json::to_value(current).map_err(|e| e.to_string())?;
    if let Value::Object(m) = &mut v {
        for (k, x) in patch {
            if x.is_null() {
                m.remove(k);
            } else {
                m.insert(k.clone(), x.clone());
            }
        }
    }
    serde_json::from_value(v).map_err(|e| format!("profile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_filters_parse() {
        let f = parse_user_filter(r#"status eq "ACTIVE" and profile.email eq "a@b.c" or id eq "x""#, false).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].len(), 2);
        assert_eq!(f[0][1], UserClause { field: "profile.email".into(), op: "eq".into(), value: "a@b.c".into() });
        assert!(parse_user_filter(r#"profile.email sw "a""#, false).is_err());
        assert!(parse_user_filter(r#"profile.email sw "a""#, true).is_ok());
        assert!(parse_user_filter(r#"nickName eq "a""#, false).is_err());
        assert!(parse_user_filter("status eq ACTIVE", false).is_err());
    }

    #[test]
    fn derived_ids_are_stable_and_okta_shaped() {
        let a = derived_id("00p", "policy:default:0");
        assert_eq!(a, derived_id("00p", "policy:default:0"));
        assert_ne!(a, derived_id("00p", "policy:default:1"));
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
