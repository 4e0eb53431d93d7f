//! Restarts without loss: `mock-idp --state FILE` ([`crate::Options::state_file`]).
//!
//! The file is one JSON document, [`FORMAT`] version [`VERSION`], holding the whole tenant (directory, keys
//! as PKCS#1 PEM, sessions, session tokens, parked authorizations, codes, token records, refresh families
//! with every generation's value, the System Log) and the clock's state. Fault rules and the request log are
//! test-run state and are not kept. It is written atomically — a temporary file beside it, `fsync`, `rename`,
//! `fsync` of the folder — with mode 0600, since it holds passwords, secrets and live tokens.
//!
//! [`Persister`] decides when: every request that may have changed the tenant waits, before its response
//! goes out, until a snapshot taken after it is on disk ([`Persister::commit`]). Requests that arrive while a
//! write runs share the next one (group commit), so a SIGKILL right after a response never loses what it
//! promised, and a busy mock writes far less often than it answers.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::{Notify, watch};

use crate::clock::{Clock, Millis, rfc3339};
use crate::config::TenantConfig;
use crate::core::keyset::{KeyEntry, KeySet, KeyStatus};
use crate::core::model::{App, AuthServer, Group, ServerId, TrustedOrigin, User};
use crate::core::refresh::{
    FamilyGrant, FamilyId, FamilyMeta, FamilySnapshot, GenerationSnapshot, Lifetimes, PredecessorSnapshot, RefreshStore, Revocation,
    RevokeReason, StoreSnapshot,
};
use crate::core::syslog::{Event, KeptEvent};
use crate::core::tenant::{AuthCode, AuthorizeRequest, Session, SessionToken, Tenant, TokenRecord};
use crate::keys::KeyMaterial;

/// The `format` field of a state file.
pub const FORMAT: &str = "mock-idp-state";
/// The layout this mock reads and writes; a file with another version is refused, never guessed at.
pub const VERSION: u32 = 1;

/// The SHA-256 a store is keyed by, as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Hex32([u8; 32]);

impl Serialize for Hex32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::core::ids::hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for Hex32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || serde::de::Error::custom(format!("not 64 hex digits: {s:?}"));
        if s.len() != 64 || !s.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Hex32(out))
    }
}

/// The System Log of a state file: `[[seq, event], …]`. Written from the events as the log keeps them (their
/// compact JSON, copied into the file as it is: no decoding and encoding again), read back as events.
enum StoredLog {
    Kept(Vec<KeptEvent>),
    Read(Vec<(u64, Event)>),
}

impl StoredLog {
    fn into_events(self) -> Vec<(u64, Event)> {
        match self {
            StoredLog::Kept(k) => k.iter().map(|e| (e.seq(), e.event())).collect(),
            StoredLog::Read(r) => r,
        }
    }
}

impl Serialize for StoredLog {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StoredLog::Kept(k) => s.collect_seq(k.iter().map(|e| {
                // The log wrote this JSON from an Event, so it is JSON; were it not (a defect), the event is
                // decoded and written out instead, so the file always reads back.
                let entry = match serde_json::from_slice::<&serde_json::value::RawValue>(e.json()) {
                    Ok(raw) => LogEntry::Raw(raw),
                    Err(_) => LogEntry::Decoded(Box::new(e.event())),
                };
                (e.seq(), entry)
            })),
            StoredLog::Read(r) => r.serialize(s),
        }
    }
}

/// One event of [`StoredLog::Kept`] on its way into the file.
enum LogEntry<'a> {
    Raw(&'a serde_json::value::RawValue),
    Decoded(Box<Event>),
}

impl Serialize for LogEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LogEntry::Raw(r) => r.serialize(s),
            LogEntry::Decoded(e) => e.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for StoredLog {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<(u64, Event)>::deserialize(d).map(StoredLog::Read)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: String,
    version: u32,
    /// The tenant clock when the file was written, for people reading it.
    saved_at: String,
    clock: StoredClock,
    tenant: StoredTenant,
}

/// Only the fields that say whether the rest can be read.
#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredClock {
    offset_ms: i64,
    frozen_at: Option<Millis>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    kid: String,
    status: KeyStatus,
    created: Millis,
    last_rotated: Option<Millis>,
    pkcs1_pem: String,
}

impl StoredKey {
    fn of(e: &KeyEntry) -> Self {
        StoredKey {
            kid: e.material.kid.clone(),
            status: e.status,
            created: e.created,
            last_rotated: e.last_rotated,
            pkcs1_pem: e.material.pkcs1_pem.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTenant {
    config: TenantConfig,
    org_id: String,
    org_name: String,
    management_token: String,
    session_lifetime_ms: i64,
    jwks_max_age_s: u32,
    users: BTreeMap<String, User>,
    groups: BTreeMap<String, Group>,
    apps: BTreeMap<String, App>,
    servers: BTreeMap<String, AuthServer>,
    keys: Vec<(ServerId, Vec<StoredKey>)>,
    org_access_key: StoredKey,
    sessions: Vec<Session>,
    session_tokens: Vec<(Hex32, SessionToken)>,
    pending: Vec<(String, AuthorizeRequest, Millis)>,
    codes: Vec<(Hex32, AuthCode)>,
    tokens: Vec<(Hex32, TokenRecord)>,
    refresh: StoredRefresh,
    log_next_seq: u64,
    log: StoredLog,
    next_key_slot: usize,
    trusted_origins: Vec<TrustedOrigin>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredRefresh {
    next_id: u64,
    families: Vec<StoredFamily>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredFamily {
    id: u64,
    user_id: String,
    client_id: String,
    server_id: String,
    scopes: Vec<String>,
    auth_time: Millis,
    amr: Vec<String>,
    nonce: Option<String>,
    session_id: Option<String>,
    created_at: Millis,
    expires_at: Option<Millis>,
    idle_ms: Option<i64>,
    last_used: Millis,
    generation: u32,
    value: String,
    token_id: String,
    issued_at: Millis,
    predecessor: Option<StoredPredecessor>,
    /// `[reason, at]`; the reason by its stable name ([`RevokeReason::as_str`]).
    revocation: Option<(String, Millis)>,
    superseded: Vec<(u32, String)>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredPredecessor {
    generation: u32,
    token_id: String,
    issued_at: Millis,
    rotated_at: Millis,
    grace_until: Option<Millis>,
}

/// The reason of a stable name. A reason added to [`RevokeReason`] must be added here too, or files naming
/// it are refused (loudly, never misread).
fn reason(name: &str) -> Option<RevokeReason> {
    use RevokeReason::*;
    [
        Reuse,
        Revoked,
        UserDeactivated,
        UserSuspended,
        UserDeleted,
        PasswordReset,
        Unassigned,
        AppDeactivated,
        AppDeleted,
        ServerDeactivated,
        ConsentRevoked,
        SessionEnded,
        AdminCleared,
        CodeReplayed,
    ]
    .into_iter()
    .find(|r| r.as_str() == name)
}

fn store_refresh(s: StoreSnapshot) -> StoredRefresh {
    StoredRefresh {
        next_id: s.next_id,
        families: s
            .families
            .into_iter()
            .map(|f| StoredFamily {
                id: f.id.0,
                user_id: f.meta.user_id.clone(),
                client_id: f.meta.client_id.clone(),
                server_id: f.meta.server_id.clone(),
                scopes: f.meta.scopes.clone(),
                auth_time: f.meta.auth_time,
                amr: f.meta.amr.clone(),
                nonce: f.meta.nonce,
                session_id: f.meta.session_id,
                created_at: f.meta.created_at,
                expires_at: f.lifetimes.expires_at,
                idle_ms: f.lifetimes.idle_ms,
                last_used: f.last_used,
                generation: f.current.generation,
                value: f.current.value,
                token_id: f.current.token_id,
                issued_at: f.current.issued_at,
                predecessor: f.predecessor.map(|p| StoredPredecessor {
                    generation: p.generation,
                    token_id: p.token_id,
                    issued_at: p.issued_at,
                    rotated_at: p.rotated_at,
                    grace_until: p.grace_until,
                }),
                revocation: f.revocation.map(|r| (r.reason.as_str().to_string(), r.at)),
                superseded: f.superseded,
            })
            .collect(),
    }
}

fn load_refresh(s: StoredRefresh) -> anyhow::Result<RefreshStore> {
    let mut families = Vec::with_capacity(s.families.len());
    for f in s.families {
        let revocation = match f.revocation {
            None => None,
            Some((name, at)) => {
                Some(Revocation { reason: reason(&name).ok_or_else(|| anyhow!("rtf_{}: unknown revocation reason {name:?}", f.id))?, at })
            }
        };
        families.push(FamilySnapshot {
            id: FamilyId(f.id),
            meta: FamilyMeta {
                grant: std::sync::Arc::new(FamilyGrant {
                    user_id: f.user_id,
                    client_id: f.client_id,
                    server_id: f.server_id,
                    scopes: f.scopes,
                    amr: f.amr,
                }),
                auth_time: f.auth_time,
                nonce: f.nonce,
                session_id: f.session_id,
                created_at: f.created_at,
            },
            lifetimes: Lifetimes { expires_at: f.expires_at, idle_ms: f.idle_ms },
            last_used: f.last_used,
            current: GenerationSnapshot { generation: f.generation, value: f.value, token_id: f.token_id, issued_at: f.issued_at },
            predecessor: f.predecessor.map(|p| PredecessorSnapshot {
                generation: p.generation,
                token_id: p.token_id,
                issued_at: p.issued_at,
                rotated_at: p.rotated_at,
                grace_until: p.grace_until,
            }),
            revocation,
            superseded: f.superseded,
        });
    }
    RefreshStore::restore(StoreSnapshot { next_id: s.next_id, families }).map_err(|e| anyhow!("refresh families: {e}"))
}

fn hashed<V: Clone>(m: &HashMap<[u8; 32], V>) -> Vec<(Hex32, V)> {
    m.iter().map(|(k, v)| (Hex32(*k), v.clone())).collect()
}

/// Copies everything a restart needs out of the tenant; the caller holds the tenant lock only for this. The
/// System Log comes out as kept (compact JSON, shared: a reference count per event), and goes into the
/// file as it is after the lock is let go (decoding 50,000 events under the lock took about 200 ms, which
/// every request waited for).
fn capture(t: &Tenant, clock: &Clock) -> StateFile {
    let (offset_ms, frozen_at) = clock.persisted();
    let (events, log_next_seq) = t.log.snapshot();
    StateFile {
        format: FORMAT.into(),
        version: VERSION,
        saved_at: rfc3339(clock.now_ms()),
        clock: StoredClock { offset_ms, frozen_at },
        tenant: StoredTenant {
            config: t.config.clone(),
            org_id: t.org_id.clone(),
            org_name: t.org_name.clone(),
            management_token: t.management_token.expose().to_string(),
            session_lifetime_ms: t.session_lifetime_ms,
            jwks_max_age_s: t.jwks_max_age_s,
            users: t.users.clone(),
            groups: t.groups.clone(),
            apps: t.apps.clone(),
            servers: t.servers.clone(),
            keys: t.keys.iter().map(|(sid, ks)| (sid.clone(), ks.entries().iter().map(StoredKey::of).collect())).collect(),
            org_access_key: StoredKey {
                kid: t.org_access_key.kid.clone(),
                status: KeyStatus::Active,
                created: 0,
                last_rotated: None,
                pkcs1_pem: t.org_access_key.pkcs1_pem.clone(),
            },
            sessions: t.sessions.values().cloned().collect(),
            session_tokens: hashed(&t.session_tokens),
            pending: t.pending.iter().map(|(k, (r, at))| (k.clone(), r.clone(), *at)).collect(),
            codes: hashed(&t.codes),
            tokens: hashed(&t.tokens),
            refresh: store_refresh(t.refresh.snapshot()),
            log_next_seq,
            log: StoredLog::Kept(events),
            next_key_slot: t.next_key_slot,
            trusted_origins: t.trusted_origins.clone(),
        },
    }
}

/// The bytes of a state file for the tenant as it is now.
pub fn snapshot_bytes(t: &parking_lot::Mutex<Tenant>, clock: &Clock) -> Result<Vec<u8>, String> {
    // The file holds every key's private key: keys still being generated (a rotation's new NEXT key) are
    // waited for with the lock let go, until a take of the lock finds them all ready.
    let file = loop {
        let g = t.lock();
        let pending = g.keys_not_ready();
        if pending.is_empty() {
            break capture(&g, clock);
        }
        drop(g);
        pending.iter().for_each(|k| k.wait_ready());
    };
    serde_json::to_vec(&file).map_err(|e| format!("cannot serialise the state: {e}"))
}

/// serde_json's message without the " at line L column C" it ends with: the error names the position first.
fn without_position(e: &serde_json::Error) -> String {
    let m = e.to_string();
    match m.rsplit_once(" at line ") {
        Some((msg, _)) if e.line() > 0 => msg.to_string(),
        _ => m,
    }
}

/// What a state file restores: the tenant and the clock's state.
pub struct Restored {
    pub tenant: Tenant,
    pub clock_offset_ms: i64,
    pub clock_frozen_at: Option<Millis>,
}

/// Reads a state file; `Ok(None)` when there is none yet. Any other problem — unreadable, not JSON, another
/// format or version, a field that does not fit, a refresh store that breaks its rules — is an error that
/// names the file (and line, column and field where serde knows them), so start-up stops instead of
/// silently starting empty.
pub fn read(path: &Path, base_url: &str) -> anyhow::Result<Option<Restored>> {
    let name = path.display();
    let bytes = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("state file {name}: cannot read: {e}"),
        Ok(b) => b,
    };
    let header: Header = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!("state file {name}: line {}, column {}: not a mock-idp state file: {}", e.line(), e.column(), without_position(&e))
    })?;
    if header.format.as_deref() != Some(FORMAT) {
        bail!("state file {name}: not a mock-idp state file (format {:?}, expected {FORMAT:?})", header.format.unwrap_or_default());
    }
    match header.version {
        Some(VERSION) => {}
        v => bail!(
            "state file {name}: version {} is not the version this mock-idp reads ({VERSION}); move the file away to start from the tenant file",
            v.map(|v| v.to_string()).unwrap_or_else(|| "(none)".into())
        ),
    }
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let file: StateFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        anyhow!("state file {name}: line {}, column {}: field `{field}`: {}", inner.line(), inner.column(), without_position(&inner))
    })?;
    // The clock as POST /_mock/clock can leave it: between 1970 and the end of 9999, so an offset from the
    // system clock of at most that span either way (a hand-edited i64::MAX made "now" 1970 and every exp
    // negative).
    use crate::clock::LAST_MS;
    if file.clock.offset_ms.abs() > LAST_MS {
        bail!("state file {name}: clock.offset_ms: out of range: {} (at most {LAST_MS} either way)", file.clock.offset_ms);
    }
    if let Some(f) = file.clock.frozen_at
        && !(0..=LAST_MS).contains(&f)
    {
        bail!("state file {name}: clock.frozen_at: out of range: {f} (from 0, 1970-01-01, to {LAST_MS}, the end of 9999)");
    }
    let tenant = restore_tenant(file.tenant, base_url).with_context(|| format!("state file {name}"))?;
    Ok(Some(Restored { tenant, clock_offset_ms: file.clock.offset_ms, clock_frozen_at: file.clock.frozen_at }))
}

fn restore_tenant(st: StoredTenant, base_url: &str) -> anyhow::Result<Tenant> {
    // Parsing an RSA key takes a while and a key can serve several servers: each PEM once.
    let mut parsed: HashMap<(String, String), Arc<KeyMaterial>> = HashMap::new();
    let mut material = |k: &StoredKey| -> anyhow::Result<Arc<KeyMaterial>> {
        let id = (k.kid.clone(), k.pkcs1_pem.clone());
        if let Some(m) = parsed.get(&id) {
            return Ok(m.clone());
        }
        let m = Arc::new(KeyMaterial::from_pem(&k.pkcs1_pem, Some(k.kid.clone())).with_context(|| format!("key {}", k.kid))?);
        parsed.insert(id, m.clone());
        Ok(m)
    };
    let mut keys = BTreeMap::new();
    for (sid, list) in &st.keys {
        let mut entries = Vec::new();
        for k in list {
            entries.push(KeyEntry { material: material(k)?, status: k.status, created: k.created, last_rotated: k.last_rotated });
        }
        let set = KeySet::from_entries(entries).ok_or_else(|| anyhow!("keys of server {sid}: exactly one ACTIVE key is needed"))?;
        keys.insert(sid.clone(), set);
    }
    let org_access_key = material(&st.org_access_key)?;
    if !keys.contains_key(&ServerId::Org) {
        bail!("keys: the org server has none");
    }
    for id in st.servers.keys() {
        if !keys.contains_key(&ServerId::Custom(id.clone())) {
            bail!("keys: authorization server {id} has none");
        }
    }
    // The maps are keyed by the id each entry carries; a hand-edited file where the two differ would start
    // and then not find what it lists.
    let keyed = |what: &str, pairs: Vec<(&String, &String)>| -> anyhow::Result<()> {
        match pairs.into_iter().find(|(k, id)| k != id) {
            Some((k, id)) => bail!("{what}: the entry under {k:?} has the id {id:?}; they must be the same"),
            None => Ok(()),
        }
    };
    keyed("users", st.users.iter().map(|(k, u)| (k, &u.id)).collect())?;
    keyed("groups", st.groups.iter().map(|(k, g)| (k, &g.id)).collect())?;
    keyed("apps", st.apps.iter().map(|(k, a)| (k, &a.id)).collect())?;
    keyed("servers", st.servers.iter().map(|(k, a)| (k, &a.id)).collect())?;
    // The System Log pages by sequence number: the stored ones rising, and below the next one.
    if let StoredLog::Read(events) = &st.log {
        let mut last = None;
        for (i, (seq, _)) in events.iter().enumerate() {
            if last.is_some_and(|l| *seq <= l) {
                bail!("log[{i}]: sequence number {seq} is not above the one before it ({})", last.unwrap_or_default());
            }
            last = Some(*seq);
        }
        if let Some(l) = last
            && st.log_next_seq <= l
        {
            bail!("log_next_seq: {} is not above the last event's sequence number ({l})", st.log_next_seq);
        }
    }
    // The tenant is built from its configuration first, so anything derived from it that this file does
    // not carry comes out as at a fresh start; every stored part then replaces the built one. The keys the
    // build asks for are placeholders, replaced below.
    let placeholder = org_access_key.clone();
    let mut t = Tenant::from_config(st.config, base_url, 0, &|_| placeholder.clone())?;
    t.org_id = st.org_id;
    t.org_name = st.org_name;
    t.management_token = crate::core::ids::Secret::new(st.management_token);
    t.session_lifetime_ms = st.session_lifetime_ms;
    t.jwks_max_age_s = st.jwks_max_age_s;
    t.users = st.users;
    t.groups = st.groups;
    t.apps = st.apps;
    t.servers = st.servers;
    t.keys = keys;
    t.org_access_key = org_access_key;
    t.sessions = st.sessions.into_iter().map(|s| (s.id.clone(), s)).collect();
    t.session_tokens = st.session_tokens.into_iter().map(|(k, v)| (k.0, v)).collect();
    t.pending = st.pending.into_iter().map(|(k, r, at)| (k, (r, at))).collect();
    t.codes = st.codes.into_iter().map(|(k, v)| (k.0, v)).collect();
    t.tokens = st.tokens.into_iter().map(|(k, v)| (k.0, v)).collect();
    // Each restored record has its own context; share equal ones again.
    let mut tokens = std::mem::take(&mut t.tokens);
    for r in tokens.values_mut() {
        r.ctx = t.intern(&r.ctx);
    }
    t.tokens = tokens;
    t.refresh = load_refresh(st.refresh)?;
    t.log.restore(st.log.into_events(), st.log_next_seq);
    t.next_key_slot = st.next_key_slot;
    t.trusted_origins = st.trusted_origins;
    Ok(t)
}

/// Where a state file really is: a symbolic link is followed (to its target, which need not exist yet), so
/// writing by rename replaces the target and not the link.
pub fn resolve(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    // A bounded number of links, as the OS allows (a loop stays where it is and fails on write).
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&p) {
                Ok(t) if t.is_absolute() => p = t,
                Ok(t) => p = p.parent().map(|d| d.join(&t)).unwrap_or(t),
                Err(_) => break,
            },
            _ => break,
        }
    }
    p
}

/// Held for as long as a process keeps a state file: an exclusive lock on `.FILE.lock` beside it, so a
/// second process with the same file stops at start instead of overwriting the first one's writes. The
/// operating system lets go of it when the process ends, however it ends.
pub struct FileLock {
    _file: std::fs::File,
}

/// Takes the lock of the state file `path` (see [`FileLock`]).
///
/// # Errors
///
/// Another process holds it, or the lock file cannot be created; the message names the state file.
pub fn lock(path: &Path) -> anyhow::Result<FileLock> {
    let path = resolve(path);
    // A directory or a device (`/dev/null`) is no state file: said before a lock file is made beside it.
    if let Ok(m) = std::fs::metadata(&path)
        && !m.is_file()
    {
        bail!(
            "state file {}: not a regular file ({})",
            path.display(),
            if m.is_dir() { "a directory" } else { "a device or other special file" }
        );
    }
    if path.as_os_str().to_string_lossy().ends_with('/') {
        bail!("state file {}: names a directory (it ends with /)", path.display());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let lock_path = path.with_file_name(format!(".{name}.lock"));
    let file = open_private(&lock_path, false)
        .map_err(|e| anyhow!("state file {}: cannot create its lock {}: {e}", path.display(), lock_path.display()))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock takes a descriptor this function owns (open for the call) and flags.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                bail!("state file {}: another process is using it (it holds {})", path.display(), lock_path.display());
            }
            bail!("state file {}: cannot lock {}: {e}", path.display(), lock_path.display());
        }
    }
    Ok(FileLock { _file: file })
}

/// Opens `path` for writing, created readable by its owner only (mode 0600: the state holds private keys
/// and tokens); `truncate` empties an existing file.
fn open_private(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Writes `bytes` to `path` so that a crash at any moment leaves either the old file or the new one: a
/// temporary file in the same folder (mode 0600), `fsync`, `rename` over the target, `fsync` of the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    {
        let mut f = open_private(&tmp, true)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // A folder cannot be opened for syncing everywhere; where it can, the rename is then durable too.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[derive(Clone, Debug, Default)]
struct Written {
    /// Every commit up to this number is on disk (or failed with `error`).
    through: u64,
    error: Option<String>,
}

type Snapshot = Box<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync>;

/// Keeps a file in step with in-memory state by group commit (see the module documentation). Used by
/// mock-idp for its tenant and by the stub BSR for its user store.
pub struct Persister {
    path: PathBuf,
    snapshot: Snapshot,
    wanted: AtomicU64,
    kick: Notify,
    written: watch::Sender<Written>,
    closed: AtomicBool,
    /// One write at a time: the writer task's and [`Persister::write_now`]'s.
    write_lock: parking_lot::Mutex<()>,
}

impl Persister {
    /// A persister for `path`; `snapshot` renders the state as it is at the moment it is called.
    /// [`Persister::start`] starts its writer.
    pub fn new(path: PathBuf, snapshot: impl Fn() -> Result<Vec<u8>, String> + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Persister {
            path: resolve(&path),
            snapshot: Box::new(snapshot),
            wanted: AtomicU64::new(0),
            kick: Notify::new(),
            written: watch::channel(Written::default()).0,
            closed: AtomicBool::new(false),
            write_lock: parking_lot::Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the writer task (needs a tokio runtime). It ends at [`Persister::close`].
    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let target = me.wanted.load(Ordering::SeqCst);
                if target <= me.written.borrow().through {
                    if me.closed.load(Ordering::SeqCst) {
                        break;
                    }
                    me.kick.notified().await;
                    continue;
                }
                let w = me.clone();
                // The target was read before the snapshot is taken, so the snapshot holds every change whose
                // commit number is at most the target.
                let result = tokio::task::spawn_blocking(move || w.write_now()).await.unwrap_or_else(|e| Err(e.to_string()));
                me.written.send_modify(|d| {
                    d.through = d.through.max(target);
                    d.error = result.err();
                });
            }
        });
    }

    /// Waits until the state as it is now is on disk. Call it after a change and before answering.
    ///
    /// # Errors
    ///
    /// The message of the write that covered this change and failed (disk full, folder gone).
    pub async fn commit(&self) -> Result<(), String> {
        let n = self.wanted.fetch_add(1, Ordering::SeqCst) + 1;
        if self.closed.load(Ordering::SeqCst) {
            // The writer is gone (shutdown): a request still in flight writes for itself.
            return self.write_now();
        }
        self.kick.notify_one();
        let mut rx = self.written.subscribe();
        let r = rx.wait_for(|w| w.through >= n).await.map_err(|_| "the state writer has stopped".to_string())?;
        match &r.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Takes a snapshot and writes it now, blocking the calling thread (start-up and shutdown).
    ///
    /// # Errors
    ///
    /// What went wrong, naming the file.
    pub fn write_now(&self) -> Result<(), String> {
        let _one = self.write_lock.lock();
        let bytes = (self.snapshot)()?;
        write_atomically(&self.path, &bytes).map_err(|e| format!("state file {}: cannot write: {e}", self.path.display()))
    }

    /// Stops the writer task once everything asked for is written.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.kick.notify_one();
    }
}
