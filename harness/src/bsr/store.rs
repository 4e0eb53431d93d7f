//! Provisioned users. The store applies [`jit::decide`] under its lock, so the decision and the insert are
//! one step: concurrent first logins of one email create exactly one user, and a refused login creates
//! nothing.

use serde::{Deserialize, Serialize};

use super::jit::{self, Decision, JitError};

/// A BSR user's state; deactivation is BSR's admin-panel action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserState {
    Active,
    Deactivated,
}

/// A provisioned user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BsrUser {
    pub id: String,
    pub username: String,
    /// The email as the IdP first sent it (case kept); comparisons use its lower-cased form.
    pub email: String,
    pub name: Option<String>,
    /// The IdP's `sub` of the last sign-in.
    pub idp_subject: String,
    pub state: UserState,
    /// Harness-clock milliseconds.
    pub created_ms: i64,
    pub last_login_ms: i64,
}

#[derive(Debug, Default)]
pub struct UserStore {
    /// (email key, user), in creation order.
    users: Vec<(String, BsrUser)>,
}

impl UserStore {
    /// Signs in or creates the user for a login's email; returns the user and whether it was created.
    pub fn provision(&mut self, email: Option<&str>, name: Option<&str>, sub: &str, now_ms: i64) -> Result<(BsrUser, bool), JitError> {
        let decision = jit::decide(email, self.users.iter().map(|(k, u)| (k.as_str(), u.username.as_str())))?;
        match decision {
            Decision::SignIn { username } => {
                // decide() returned a username taken from this list, so it is present.
                let Some((_, u)) = self.users.iter_mut().find(|(_, u)| u.username == username) else {
                    return Err(JitError::MissingEmail);
                };
                if u.state == UserState::Active {
                    u.idp_subject = sub.to_string();
                    u.last_login_ms = now_ms;
                    if let Some(n) = name {
                        u.name = Some(n.to_string());
                    }
                }
                Ok((u.clone(), false))
            }
            Decision::Create { username, email_key } => {
                let user = BsrUser {
                    id: format!("u{:06}", self.users.len() + 1),
                    username,
                    email: email.map(str::trim).unwrap_or_default().to_string(),
                    name: name.map(str::to_string),
                    idp_subject: sub.to_string(),
                    state: UserState::Active,
                    created_ms: now_ms,
                    last_login_ms: now_ms,
                };
                self.users.push((email_key, user.clone()));
                Ok((user, true))
            }
        }
    }

    pub fn all(&self) -> Vec<BsrUser> {
        self.users.iter().map(|(_, u)| u.clone()).collect()
    }

    pub fn get(&self, id: &str) -> Option<&BsrUser> {
        self.users.iter().map(|(_, u)| u).find(|u| u.id == id)
    }

    pub fn set_state(&mut self, id: &str, state: UserState) -> Option<BsrUser> {
        let (_, u) = self.users.iter_mut().find(|(_, u)| u.id == id)?;
        u.state = state;
        Some(u.clone())
    }

    /// The store as the state file of `harness bsr --state` holds it.
    pub fn to_state_file(&self) -> Result<Vec<u8>, String> {
        let f = StoreFile { format: STORE_FORMAT.into(), version: STORE_VERSION, users: self.users.clone() };
        serde_json::to_vec(&f).map_err(|e| format!("cannot serialise the user store: {e}"))
    }

    /// A store from a state file's bytes; `file` names it in errors. A corrupt file, another format or version
    /// is an error (start-up stops), never an empty store.
    pub fn from_state_file(bytes: &[u8], file: &str) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("state file {file}: line {}, column {}: not JSON: {e}", e.line(), e.column()))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(STORE_FORMAT) {
            return Err(format!("state file {file}: not a stub BSR state file (format is not {STORE_FORMAT:?})"));
        }
        if v.get("version").and_then(|f| f.as_u64()) != Some(u64::from(STORE_VERSION)) {
            return Err(format!(
                "state file {file}: version {} is not the version this stub reads ({STORE_VERSION})",
                v.get("version").map(|x| x.to_string()).unwrap_or_else(|| "(none)".into())
            ));
        }
        let f: StoreFile =
            serde_path_to_error::deserialize(v).map_err(|e| format!("state file {file}: field `{}`: {}", e.path(), e.inner()))?;
        Ok(UserStore { users: f.users })
    }
}

/// The `format` of the stub's state file.
pub const STORE_FORMAT: &str = "harness-bsr-users";
/// Its layout version; another is refused.
pub const STORE_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    format: String,
    version: u32,
    /// (lower-cased email, user), in creation order.
    users: Vec<(String, BsrUser)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_login_reuses_the_user_and_case_does_not_matter() {
        let mut s = UserStore::default();
        let (a, created) = s.provision(Some("Alice@Example.com"), Some("Alice"), "00u1", 1).unwrap();
        assert!(created);
        assert_eq!((a.username.as_str(), a.email.as_str()), ("alice", "Alice@Example.com"));
        let (b, created) = s.provision(Some("alice@example.com"), None, "00u1", 2).unwrap();
        assert!(!created);
        assert_eq!(b.id, a.id);
        assert_eq!(b.last_login_ms, 2);
        assert_eq!(s.all().len(), 1);
    }

    #[test]
    fn refused_logins_leave_nothing() {
        let mut s = UserStore::default();
        assert_eq!(s.provision(None, Some("X"), "00u1", 1), Err(JitError::MissingEmail));
        assert!(s.all().is_empty());
    }

    #[test]
    fn deactivated_users_are_returned_unchanged() {
        let mut s = UserStore::default();
        let (u, _) = s.provision(Some("bob@example.com"), None, "00u1", 1).unwrap();
        s.set_state(&u.id, UserState::Deactivated);
        let (again, created) = s.provision(Some("bob@example.com"), None, "00u2", 5).unwrap();
        assert!(!created);
        assert_eq!(again.state, UserState::Deactivated);
        assert_eq!(again.idp_subject, "00u1");
    }
}
