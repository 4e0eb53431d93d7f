//! Rate limits: the pure decision behind Okta's `X-Rate-Limit-*` headers and its 429s.
//!
//! Okta counts the requests of each bucket (an endpoint or a group of endpoints) in fixed windows and refuses
//! requests once a bucket is used up (okta-behaviour.md §7.2). The mock does the same when the tenant's
//! `rate_limits:` section (or `PUT /_mock/rate-limits`) gives a bucket a limit:
//!
//! - Buckets are the fault-rule endpoint names (`authorize`, `token`, `keys`, …, `authn`, `login`), with the
//!   management API split as Okta splits it (`api_users`, `api_groups`, `api_apps`,
//!   `api_authorization_servers`, `api_logs`, and `api` for the rest). A management-API group without a limit
//!   of its own falls back to `api`, so `api: 100` limits the whole management API.
//! - Protocol buckets are counted per authorization server, as Okta's buckets are per path
//!   (`/oauth2/v1/token` and `/oauth2/default/v1/token` are two buckets).
//! - Windows are fixed minutes of the *tenant* clock (aligned to the minute), so a test moves the clock
//!   instead of sleeping; `X-Rate-Limit-Reset` is the window's end in UNIX seconds.
//! - A bucket without a limit is not enforced; its headers show [`DEFAULT_LIMIT`] and this window's count.
//!
//! The System Log gets one `system.org.rate_limit.violation` per bucket and window, at the first refusal
//! (Okta's org-level "endpoint is exceeding its rate limit" event; its operation-limit events are likewise
//! sent once per rate-limit period).

use std::collections::HashMap;
use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::faults::Endpoint;
use super::syslog::{Actor, Event, Outcome, Target};
use super::tenant::Tenant;
use crate::clock::Millis;

/// The length of a window: Okta's limits are per minute.
pub const WINDOW_MS: Millis = 60_000;
/// What the headers of a bucket without a limit show as its ceiling (Okta's documented example value; the
/// mock does not enforce it).
pub const DEFAULT_LIMIT: u32 = 600;
/// The largest limit a bucket may have.
pub const MAX_PER_MINUTE: u32 = 1_000_000;

/// Declares [`Bucket`] and [`RateLimits`] (one optional limit per bucket) from one list, so the names in the
/// tenant file, the JSON of `/_mock/rate-limits` and the System Log never disagree.
macro_rules! buckets {
    ($($(#[$doc:meta])* $v:ident = $name:ident;)*) => {
        /// A group of requests counted together.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Bucket {
            $($(#[$doc])* $v,)*
        }

        impl Bucket {
            /// Every bucket, in documentation order.
            pub const ALL: &'static [Bucket] = &[$(Bucket::$v),*];

            /// The name in the tenant file and in `/_mock/rate-limits`.
            pub fn as_str(self) -> &'static str {
                match self { $(Bucket::$v => stringify!($name)),* }
            }
        }

        /// The tenant's `rate_limits:` section and the body of `/_mock/rate-limits`: requests per minute per
        /// bucket. A bucket left out (or `null`) is not enforced. Only an object (a YAML mapping) is read: an
        /// array is not taken by position.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
        pub struct RateLimits {
            $(
                $(#[$doc])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $name: Option<u32>,
            )*
        }

        /// The fields of [`RateLimits`] as read from an object ([`RateLimits`]'s `Deserialize` lets nothing
        /// else in).
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RateLimitFields {
            $(
                #[serde(default, deserialize_with = "per_minute")]
                $name: Option<u32>,
            )*
        }

        impl From<RateLimitFields> for RateLimits {
            fn from(f: RateLimitFields) -> Self {
                RateLimits { $($name: f.$name),* }
            }
        }

        impl RateLimits {
            /// The limit of one bucket, if it has one.
            pub fn get(&self, b: Bucket) -> Option<u32> {
                match b { $(Bucket::$v => self.$name),* }
            }

            /// Sets or removes the limit of one bucket.
            pub fn set(&mut self, b: Bucket, limit: Option<u32>) {
                match b { $(Bucket::$v => self.$name = limit),* }
            }
        }
    };
}

buckets! {
    /// `/v1/authorize` and its `/v1/authorize/redirect` continuation.
    Authorize = authorize;
    Token = token;
    Keys = keys;
    Userinfo = userinfo;
    Introspect = introspect;
    Revoke = revoke;
    Logout = logout;
    /// `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
    Discovery = discovery;
    /// `POST /api/v1/authn`.
    Authn = authn;
    /// The hosted sign-in page.
    Login = login;
    /// The management API: the `/api/v1` paths no group below covers (not `/api/v1/authn`, which is
    /// `authn`), and every `api_*` group below without a limit of its own.
    Api = api;
    /// `/api/v1/users…`.
    ApiUsers = api_users;
    /// `/api/v1/groups…`.
    ApiGroups = api_groups;
    /// `/api/v1/apps…`.
    ApiApps = api_apps;
    /// `/api/v1/authorizationServers…`.
    ApiAuthorizationServers = api_authorization_servers;
    /// `/api/v1/logs`.
    ApiLogs = api_logs;
}

/// What a `rate_limits` value must be, in the words of the errors: `invalid type: sequence, expected an
/// object of bucket: limit`.
const LIMITS_EXPECTED: &str = "an object of bucket: limit";

impl<'de> Deserialize<'de> for RateLimits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Limits;
        impl<'de> Visitor<'de> for Limits {
            type Value = RateLimits;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(LIMITS_EXPECTED)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RateLimits, A::Error> {
                RateLimitFields::deserialize(MapAccessDeserializer::new(map)).map(RateLimits::from)
            }
        }
        d.deserialize_map(Limits)
    }
}

/// A limit is a whole number of requests per minute, 1 to [`MAX_PER_MINUTE`]; `null` means none. The errors
/// say so in words, not in Rust types: ``invalid type: string "600", expected a whole number of requests per
/// minute (1–1000000)``, `must be between 1 and 1000000 requests per minute, got 0`.
fn per_minute<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct PerMinute;
    fn in_range<E: de::Error, N: Copy + fmt::Display + TryInto<u32>>(n: N) -> Result<Option<u32>, E> {
        match n.try_into() {
            Ok(m) if (1..=MAX_PER_MINUTE).contains(&m) => Ok(Some(m)),
            _ => Err(E::custom(format!("must be between 1 and {MAX_PER_MINUTE} requests per minute, got {n}"))),
        }
    }
    impl<'de> Visitor<'de> for PerMinute {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a whole number of requests per minute (1–{MAX_PER_MINUTE})")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<u32>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<u32>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u32>, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Option<u32>, E> {
            in_range(n)
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Option<u32>, E> {
            in_range(n)
        }
        fn visit_i128<E: de::Error>(self, n: i128) -> Result<Option<u32>, E> {
            in_range(n)
        }
        fn visit_u128<E: de::Error>(self, n: u128) -> Result<Option<u32>, E> {
            in_range(n)
        }
        /// `600.0` is a whole number too (and serde_json reads integers past u64 as floats); `1.5` is not.
        fn visit_f64<E: de::Error>(self, x: f64) -> Result<Option<u32>, E> {
            if !x.is_finite() || x.fract() != 0.0 {
                return Err(E::invalid_type(Unexpected::Float(x), &self));
            }
            if (1.0..=f64::from(MAX_PER_MINUTE)).contains(&x) {
                Ok(Some(x as u32))
            } else {
                Err(E::custom(format!("must be between 1 and {MAX_PER_MINUTE} requests per minute, got {x}")))
            }
        }
    }
    d.deserialize_option(PerMinute)
}

impl RateLimits {
    /// Whether no bucket has a limit (then nothing is enforced).
    pub fn is_empty(&self) -> bool {
        *self == RateLimits::default()
    }
}

impl Bucket {
    /// The bucket of a request to `endpoint` at `path` (a path [`Endpoint::classify`] gave `endpoint` for).
    pub fn of(endpoint: Endpoint, path: &str) -> Bucket {
        match endpoint {
            Endpoint::Authorize => Bucket::Authorize,
            Endpoint::Token => Bucket::Token,
            Endpoint::Keys => Bucket::Keys,
            Endpoint::Userinfo => Bucket::Userinfo,
            Endpoint::Introspect => Bucket::Introspect,
            Endpoint::Revoke => Bucket::Revoke,
            Endpoint::Logout => Bucket::Logout,
            Endpoint::Discovery => Bucket::Discovery,
            Endpoint::Authn => Bucket::Authn,
            Endpoint::Login => Bucket::Login,
            Endpoint::Api => match path.strip_prefix("/api/v1/").and_then(|r| r.split('/').next()) {
                Some("users") => Bucket::ApiUsers,
                Some("groups") => Bucket::ApiGroups,
                Some("apps") => Bucket::ApiApps,
                Some("authorizationServers") => Bucket::ApiAuthorizationServers,
                Some("logs") => Bucket::ApiLogs,
                _ => Bucket::Api,
            },
        }
    }

    /// Whether the bucket belongs to an authorization server (and is counted per server).
    pub fn per_server(self) -> bool {
        matches!(
            self,
            Bucket::Authorize
                | Bucket::Token
                | Bucket::Keys
                | Bucket::Userinfo
                | Bucket::Introspect
                | Bucket::Revoke
                | Bucket::Logout
                | Bucket::Discovery
        )
    }

    /// A management-API group, which falls back to the `api` limit when it has none of its own.
    fn is_api_group(self) -> bool {
        matches!(self, Bucket::ApiUsers | Bucket::ApiGroups | Bucket::ApiApps | Bucket::ApiAuthorizationServers | Bucket::ApiLogs)
    }

    /// Okta's name of the bucket, a URL pattern (`/oauth2/default/v1/token`, `/api/v1/users`), for the
    /// System Log. `server` is `org`, a custom server's id, or `None` for buckets not per server.
    pub fn pattern(self, server: Option<&str>) -> String {
        let prefix = match server {
            None | Some("org") => "/oauth2".to_string(),
            Some(UNKNOWN_SERVER) => "/oauth2/{authorizationServerId}".to_string(),
            Some(id) => format!("/oauth2/{id}"),
        };
        match self {
            Bucket::Discovery if prefix == "/oauth2" => "/.well-known/openid-configuration".into(),
            Bucket::Discovery => format!("{prefix}/.well-known/*"),
            b if b.per_server() => format!("{prefix}/v1/{}", b.as_str()),
            Bucket::Authn => "/api/v1/authn".into(),
            Bucket::Login => "/login/login.htm".into(),
            Bucket::ApiUsers => "/api/v1/users".into(),
            Bucket::ApiGroups => "/api/v1/groups".into(),
            Bucket::ApiApps => "/api/v1/apps".into(),
            Bucket::ApiAuthorizationServers => "/api/v1/authorizationServers".into(),
            Bucket::ApiLogs => "/api/v1/logs".into(),
            _ => "/api/v1".into(),
        }
    }
}

/// The server part of a protocol path: `None` for the org server (`/oauth2/v1/…`, `/.well-known/…`), the id
/// for `/oauth2/{id}/…`.
pub fn server_in_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/oauth2/")?;
    match rest.split_once('/') {
        Some(("v1", _)) | None => None,
        Some((id, _)) => Some(id),
    }
}

/// What the counters of requests to servers that do not exist are kept under (they share one), so unknown
/// ids in paths cannot make the limiter grow.
pub const UNKNOWN_SERVER: &str = "?";

/// What one request is counted against: a bucket, and for protocol buckets the server (`org` or an id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RateKey {
    pub bucket: Bucket,
    pub server: Option<String>,
}

/// The limiter's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The bucket counted (`api` when a management-API group falls back to it).
    pub bucket: Bucket,
    /// `X-Rate-Limit-Limit`: the bucket's limit, or [`DEFAULT_LIMIT`] when none is set.
    pub limit: u32,
    /// `X-Rate-Limit-Remaining`: what is left of the limit in this window (0 on a refusal).
    pub remaining: u32,
    /// `X-Rate-Limit-Reset`: the end of the window, UNIX seconds on the tenant clock.
    pub reset_s: i64,
    /// Whether the limit is enforced (set by the tenant) or only reported.
    pub enforced: bool,
    /// Whether the request may go on.
    pub allowed: bool,
    /// The first refusal in this bucket and window: the one the System Log records.
    pub first_refusal: bool,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Millis,
    used: u32,
    refused: u32,
}

/// The limits and the counts of the current windows.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    limits: RateLimits,
    windows: HashMap<RateKey, Window>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter { limits, windows: HashMap::new() }
    }

    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// New limits apply from the next request; the counts of the current windows are kept.
    pub fn set_limits(&mut self, limits: RateLimits) {
        self.limits = limits;
    }

    /// Counts a request at `now` and decides whether it may go on. A refused request is not counted (it
    /// used nothing).
    pub fn check(&mut self, key: RateKey, now: Millis) -> Decision {
        let own = self.limits.get(key.bucket);
        let (key, limit) = match own {
            None if key.bucket.is_api_group() && self.limits.api.is_some() => {
                (RateKey { bucket: Bucket::Api, server: None }, self.limits.api)
            }
            _ => (key, own),
        };
        let start = now.div_euclid(WINDOW_MS) * WINDOW_MS;
        let w = self.windows.entry(key.clone()).or_insert(Window { start, used: 0, refused: 0 });
        if w.start != start {
            *w = Window { start, used: 0, refused: 0 };
        }
        let reset_s = (start + WINDOW_MS).div_euclid(1000);
        let enforced = limit.is_some();
        let ceiling = limit.unwrap_or(DEFAULT_LIMIT);
        if enforced && w.used >= ceiling {
            w.refused += 1;
            return Decision {
                bucket: key.bucket,
                limit: ceiling,
                remaining: 0,
                reset_s,
                enforced,
                allowed: false,
                first_refusal: w.refused == 1,
            };
        }
        w.used = w.used.saturating_add(1);
        Decision {
            bucket: key.bucket,
            limit: ceiling,
            remaining: ceiling.saturating_sub(w.used),
            reset_s,
            enforced,
            allowed: true,
            first_refusal: false,
        }
    }
}

impl Tenant {
    /// Counts a protocol or API request (`endpoint` at `path`, from `client_id` where known) against its
    /// bucket at `now`, and writes `system.org.rate_limit.violation` at the first refusal of a window.
    pub fn rate_check(&mut self, endpoint: Endpoint, path: &str, client_id: Option<&str>, now: Millis) -> Decision {
        let bucket = Bucket::of(endpoint, path);
        let server = bucket.per_server().then(|| match server_in_path(path) {
            None => "org".to_string(),
            Some(id) if self.servers.contains_key(id) => id.to_string(),
            Some(_) => UNKNOWN_SERVER.to_string(),
        });
        let d = self.rate_limiter.check(RateKey { bucket, server: server.clone() }, now);
        if d.first_refusal {
            let server = if d.bucket.per_server() { server.as_deref() } else { None };
            let pattern = d.bucket.pattern(server);
            let mut e = Event::new("system.org.rate_limit.violation", "Rate limit violation", Outcome::Deny, now)
                .actor(Actor::system())
                .reason(format!("Rate limit of {} requests per minute exceeded for {pattern}", d.limit))
                .target(Target::new("URL Pattern", &pattern, d.bucket.as_str(), &pattern))
                .debug("requestUri", path)
                .debug("rateLimitBucket", d.bucket.as_str())
                .debug("rateLimitThreshold", d.limit)
                // Whole seconds, rounded up: a refusal 0.2 s before the reset still has 1 s to wait.
                .debug("rateLimitSecondsToReset", (d.reset_s * 1000 - now + 999).div_euclid(1000))
                .debug("rateLimitTimeSpan", 1)
                .debug("rateLimitTimeUnit", "MINUTES");
            if let Some(c) = client_id {
                e = e.client(c);
            }
            self.push_event(e);
        }
        d
    }

    /// Replaces the tenant's rate limits (`PUT /_mock/rate-limits`); they apply from the next request, and the
    /// tenant's configuration (what a state file keeps) carries them.
    pub fn set_rate_limits(&mut self, limits: RateLimits) {
        self.config.rate_limits = limits;
        self.rate_limiter.set_limits(limits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_893_456_000_000;

    fn key(b: Bucket) -> RateKey {
        RateKey { bucket: b, server: b.per_server().then(|| "default".to_string()) }
    }

    #[test]
    fn counts_down_refuses_at_limit_plus_one_and_opens_the_next_window() {
        let mut l = RateLimiter::new(RateLimits { token: Some(3), ..Default::default() });
        let t = T0 + 12_345;
        let got: Vec<(bool, u32)> = (0..4).map(|_| l.check(key(Bucket::Token), t)).map(|d| (d.allowed, d.remaining)).collect();
        assert_eq!(got, vec![(true, 2), (true, 1), (true, 0), (false, 0)]);
        let refused = l.check(key(Bucket::Token), t + 1);
        assert_eq!(
            refused,
            Decision {
                bucket: Bucket::Token,
                limit: 3,
                remaining: 0,
                reset_s: T0 / 1000 + 60,
                enforced: true,
                allowed: false,
                first_refusal: false
            }
        );
        // The last millisecond of the window is still in it; the next one starts a new window.
        assert!(!l.check(key(Bucket::Token), T0 + WINDOW_MS - 1).allowed);
        let next = l.check(key(Bucket::Token), T0 + WINDOW_MS);
        assert_eq!((next.allowed, next.remaining, next.reset_s), (true, 2, T0 / 1000 + 120));
    }

    #[test]
    fn only_the_first_refusal_of_a_window_is_marked() {
        let mut l = RateLimiter::new(RateLimits { keys: Some(1), ..Default::default() });
        let marks: Vec<bool> = (0..4).map(|_| l.check(key(Bucket::Keys), T0).first_refusal).collect();
        assert_eq!(marks, vec![false, true, false, false]);
        l.check(key(Bucket::Keys), T0 + WINDOW_MS);
        assert!(l.check(key(Bucket::Keys), T0 + WINDOW_MS).first_refusal);
    }

    #[test]
    fn unlimited_buckets_report_the_default_and_never_refuse() {
        let mut l = RateLimiter::default();
        let first = l.check(key(Bucket::ApiUsers), T0);
        assert_eq!((first.limit, first.remaining, first.enforced, first.allowed), (DEFAULT_LIMIT, DEFAULT_LIMIT - 1, false, true));
        for _ in 0..DEFAULT_LIMIT + 5 {
            assert!(l.check(key(Bucket::ApiUsers), T0).allowed);
        }
        assert_eq!(l.check(key(Bucket::ApiUsers), T0).remaining, 0);
    }

    #[test]
    fn servers_are_counted_apart_and_api_groups_fall_back_to_api() {
        let mut l = RateLimiter::new(RateLimits { token: Some(1), api: Some(2), api_logs: Some(5), ..Default::default() });
        let org = RateKey { bucket: Bucket::Token, server: Some("org".into()) };
        assert!(l.check(key(Bucket::Token), T0).allowed);
        assert!(l.check(org.clone(), T0).allowed);
        assert!(!l.check(org, T0).allowed);
        // users and groups share the `api` limit; logs has its own.
        assert_eq!(l.check(key(Bucket::ApiUsers), T0).bucket, Bucket::Api);
        assert!(l.check(key(Bucket::ApiGroups), T0).allowed);
        assert!(!l.check(key(Bucket::ApiApps), T0).allowed);
        let logs = l.check(key(Bucket::ApiLogs), T0);
        assert_eq!((logs.bucket, logs.allowed, logs.remaining), (Bucket::ApiLogs, true, 4));
    }

    #[test]
    fn new_limits_keep_the_window_count() {
        let mut l = RateLimiter::default();
        for _ in 0..3 {
            l.check(key(Bucket::Authn), T0);
        }
        l.set_limits(RateLimits { authn: Some(3), ..Default::default() });
        assert!(!l.check(key(Bucket::Authn), T0).allowed);
        l.set_limits(RateLimits::default());
        assert!(l.check(key(Bucket::Authn), T0).allowed);
    }

    #[test]
    fn buckets_and_patterns_of_paths() {
        let cases = [
            (Endpoint::Token, "/oauth2/default/v1/token", Bucket::Token, "/oauth2/default/v1/token"),
            (Endpoint::Token, "/oauth2/v1/token", Bucket::Token, "/oauth2/v1/token"),
            (Endpoint::Authorize, "/oauth2/v1/authorize/redirect", Bucket::Authorize, "/oauth2/v1/authorize"),
            (Endpoint::Discovery, "/.well-known/openid-configuration", Bucket::Discovery, "/.well-known/openid-configuration"),
            (
                Endpoint::Discovery,
                "/oauth2/default/.well-known/oauth-authorization-server",
                Bucket::Discovery,
                "/oauth2/default/.well-known/*",
            ),
            (Endpoint::Api, "/api/v1/users/00u1/lifecycle/suspend", Bucket::ApiUsers, "/api/v1/users"),
            (
                Endpoint::Api,
                "/api/v1/authorizationServers/default/credentials/keys",
                Bucket::ApiAuthorizationServers,
                "/api/v1/authorizationServers",
            ),
            (Endpoint::Api, "/api/v1/logs", Bucket::ApiLogs, "/api/v1/logs"),
            (Endpoint::Api, "/api/v1/trustedOrigins", Bucket::Api, "/api/v1"),
            (Endpoint::Authn, "/api/v1/authn", Bucket::Authn, "/api/v1/authn"),
        ];
        for (endpoint, path, bucket, pattern) in cases {
            let b = Bucket::of(endpoint, path);
            assert_eq!(b, bucket, "{path}");
            let server = b.per_server().then(|| server_in_path(path).unwrap_or("org"));
            assert_eq!(b.pattern(server), pattern, "{path}");
        }
        assert_eq!(Bucket::Token.pattern(Some(UNKNOWN_SERVER)), "/oauth2/{authorizationServerId}/v1/token");
    }

    #[test]
    fn limits_parse_with_okta_range_and_names() {
        let l: RateLimits = serde_json::from_value(serde_json::json!({"token": 600, "api_users": 1, "keys": null})).unwrap();
        assert_eq!((l.get(Bucket::Token), l.get(Bucket::ApiUsers), l.get(Bucket::Keys)), (Some(600), Some(1), None));
        assert_eq!(serde_json::to_value(l).unwrap(), serde_json::json!({"token": 600, "api_users": 1}));
        let e = serde_json::from_value::<RateLimits>(serde_json::json!({"token": 0})).unwrap_err().to_string();
        assert_eq!(e, "must be between 1 and 1000000 requests per minute, got 0");
        let e = serde_json::from_value::<RateLimits>(serde_json::json!({"tokens": 5})).unwrap_err().to_string();
        assert!(e.starts_with("unknown field `tokens`, expected one of `authorize`, `token`"), "{e}");
        assert!(RateLimits::default().is_empty());
        let names: Vec<&str> = Bucket::ALL.iter().map(|b| b.as_str()).collect();
        assert_eq!(names.len(), 16);
        for b in Bucket::ALL {
            assert_eq!(serde_json::to_value(b).unwrap(), serde_json::json!(b.as_str()));
        }
    }

    /// The errors speak of requests per minute and objects, never of `i64`, `u128` or `struct RateLimits`.
    #[test]
    fn limit_errors_are_in_words() {
        let err = |v: serde_json::Value| serde_json::from_value::<RateLimits>(v).unwrap_err().to_string();
        let whole = "expected a whole number of requests per minute (1–1000000)";
        assert_eq!(err(serde_json::json!({"token": "600"})), format!("invalid type: string \"600\", {whole}"));
        assert_eq!(err(serde_json::json!({"token": 1.5})), format!("invalid type: floating point `1.5`, {whole}"));
        assert_eq!(err(serde_json::json!({"token": true})), format!("invalid type: boolean `true`, {whole}"));
        assert_eq!(err(serde_json::json!({"token": [1]})), format!("invalid type: sequence, {whole}"));
        assert_eq!(err(serde_json::json!({"token": -3})), "must be between 1 and 1000000 requests per minute, got -3");
        assert_eq!(err(serde_json::json!({"token": 1e20})), "must be between 1 and 1000000 requests per minute, got 100000000000000000000");
        assert_eq!(err(serde_json::json!({"token": 1_000_001})), "must be between 1 and 1000000 requests per minute, got 1000001");
        assert_eq!(err(serde_json::json!([1])), "invalid type: sequence, expected an object of bucket: limit");
        assert_eq!(err(serde_json::json!([])), "invalid type: sequence, expected an object of bucket: limit");
        assert_eq!(err(serde_json::json!(null)), "invalid type: null, expected an object of bucket: limit");
        assert_eq!(err(serde_json::json!("token")), "invalid type: string \"token\", expected an object of bucket: limit");
        // A whole float is a whole number; the bounds are in.
        let l: RateLimits = serde_json::from_value(serde_json::json!({"token": 600.0, "keys": 1, "authn": 1_000_000})).unwrap();
        assert_eq!((l.token, l.keys, l.authn), (Some(600), Some(1), Some(1_000_000)));
        let yaml = |src: &str| serde_yaml::from_str::<RateLimits>(src).unwrap_err().to_string();
        assert_eq!(yaml("token: \"600\""), format!("token: invalid type: string \"600\", {whole} at line 1 column 8"));
        assert_eq!(
            yaml("token: 340282366920938463463374607431768211455"),
            "token: must be between 1 and 1000000 requests per minute, got 340282366920938463463374607431768211455 at line 1 column 8"
        );
        assert_eq!(yaml("[1]"), "invalid type: sequence, expected an object of bucket: limit");
        assert_eq!(serde_yaml::from_str::<RateLimits>("{token: ~, keys: 7}").unwrap(), RateLimits { keys: Some(7), ..Default::default() });
    }

    /// In the tenant file the errors keep file, line, column and field.
    #[test]
    fn limit_errors_in_the_tenant_file_are_located() {
        let cases = [
            (
                "rate_limits:\n  token: \"600\"\n",
                "  token: \"600\"",
                3,
                "rate_limits.token",
                "invalid type: string \"600\", expected a whole number of requests per minute (1–1000000)",
            ),
            (
                "rate_limits:\n  token: 99999999999999999999999\n",
                "  token: 99999999999999999999999",
                3,
                "rate_limits.token",
                "must be between 1 and 1000000 requests per minute, got 99999999999999999999999",
            ),
            ("rate_limits: [600]\n", "rate_limits: [600]", 1, "rate_limits", "invalid type: sequence, expected an object of bucket: limit"),
            (
                "rate_limits: 600\n",
                "rate_limits: 600",
                1,
                "rate_limits",
                "invalid type: integer `600`, expected an object of bucket: limit",
            ),
        ];
        for (tail, line, column, field, message) in cases {
            let src = format!("{}\n{tail}", crate::config::DEFAULT_TENANT_YAML);
            let e = crate::config::TenantConfig::parse(&src, "t.yaml").unwrap_err();
            let at = src.lines().position(|l| l == line).unwrap() + 1;
            assert_eq!((e.line, e.column, e.field.as_str(), e.message.as_str()), (Some(at), Some(column), field, message), "{tail}");
            assert_eq!(e.to_string(), format!("t.yaml:{at}:{column}: field `{field}`: {message}"));
        }
        // `rate_limits:` with nothing under it is no limits.
        let src = format!("{}\nrate_limits:\n", crate::config::DEFAULT_TENANT_YAML);
        assert!(crate::config::TenantConfig::parse(&src, "t.yaml").unwrap().rate_limits.is_empty());
    }
}
