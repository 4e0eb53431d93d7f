//! Signing-key states per authorization server, as Okta models them: ACTIVE signs, NEXT is published ahead
//! of rotation so clients can cache it, EXPIRED stays published while tokens it signed may still be valid.

use std::sync::Arc;

use crate::clock::Millis;
use crate::keys::KeyMaterial;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyStatus {
    Active,
    Next,
    Expired,
}

#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub material: Arc<KeyMaterial>,
    pub status: KeyStatus,
    pub created: Millis,
    pub last_rotated: Option<Millis>,
}

/// The keys of one authorization server. Invariant: exactly one ACTIVE key.
#[derive(Debug, Clone)]
pub struct KeySet {
    entries: Vec<KeyEntry>,
}

impl KeySet {
    /// A key set with an ACTIVE key and, optionally, a NEXT key.
    pub fn new(active: Arc<KeyMaterial>, next: Option<Arc<KeyMaterial>>, now: Millis) -> Self {
        let mut entries = vec![KeyEntry { material: active, status: KeyStatus::Active, created: now, last_rotated: None }];
        if let Some(n) = next {
            entries.push(KeyEntry { material: n, status: KeyStatus::Next, created: now, last_rotated: None });
        }
        KeySet { entries }
    }

    /// A key set from entries written out earlier (`mock-idp --state`); `None` unless exactly one is ACTIVE.
    pub fn from_entries(entries: Vec<KeyEntry>) -> Option<Self> {
        (entries.iter().filter(|e| e.status == KeyStatus::Active).count() == 1).then_some(KeySet { entries })
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> &Arc<KeyMaterial> {
        // The constructor and rotate() keep exactly one ACTIVE entry.
        &self.entries.iter().find(|e| e.status == KeyStatus::Active).expect("a key set always has an ACTIVE key").material
    }

    /// Keys published in the JWKS: ACTIVE, NEXT and EXPIRED (at most one expired key is kept).
    pub fn published(&self) -> impl Iterator<Item = &KeyEntry> {
        self.entries.iter()
    }

    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// Finds a published key by kid.
    pub fn by_kid(&self, kid: &str) -> Option<&KeyEntry> {
        self.entries.iter().find(|e| e.material.kid == kid)
    }

    /// Okta's manual rotation: ACTIVE→EXPIRED, NEXT→ACTIVE (used at once), `new_next` becomes NEXT; the
    /// previously expired key is dropped. Without a NEXT key, `new_next` becomes ACTIVE directly.
    pub fn rotate(&mut self, new_next: Arc<KeyMaterial>, now: Millis) {
        self.entries.retain(|e| e.status != KeyStatus::Expired);
        let had_next = self.entries.iter().any(|e| e.status == KeyStatus::Next);
        for e in &mut self.entries {
            match e.status {
                KeyStatus::Active => {
                    e.status = KeyStatus::Expired;
                    e.last_rotated = Some(now);
                }
                KeyStatus::Next => {
                    e.status = KeyStatus::Active;
                    e.last_rotated = Some(now);
                }
                KeyStatus::Expired => {}
            }
        }
        let status = if had_next { KeyStatus::Next } else { KeyStatus::Active };
        self.entries.push(KeyEntry { material: new_next, status, created: now, last_rotated: None });
    }

    /// An emergency rotation: `new_active`, never published before, signs at once; ACTIVE→EXPIRED; NEXT
    /// stays NEXT; the previously expired key is dropped.
    pub fn rotate_immediately(&mut self, new_active: Arc<KeyMaterial>, now: Millis) {
        self.entries.retain(|e| e.status != KeyStatus::Expired);
        for e in &mut self.entries {
            if e.status == KeyStatus::Active {
                e.status = KeyStatus::Expired;
                e.last_rotated = Some(now);
            }
        }
        self.entries.insert(0, KeyEntry { material: new_active, status: KeyStatus::Active, created: now, last_rotated: Some(now) });
    }
}
