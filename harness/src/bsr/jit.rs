//! Just-in-time provisioning as BSR documents it (okta-behaviour.md §8, Buf "User lifecycle"): a pure
//! decision, applied by the user store under its lock.
//!
//! BSR's documented rule: the username is the part of the email before `@`; invalid characters become `-`;
//! it must start with a letter and contain only alphanumeric characters and `-`; a username or reserved word
//! collision gets sequentially incrementing integers appended. Where the documentation is silent the stub
//! decides, and the decisions are listed here so they are visible rather than accidental:
//!
//! - Emails are compared case-insensitively (the whole address, lower-cased), so `Alice@Example.com` and
//!   `alice@example.com` are one user. A login with a known email signs in the existing user; the IdP
//!   subject does not matter, so an email changed at the IdP makes a new user and keeps the old one (C19).
//! - Usernames are lower-case ASCII: `A`–`Z` are lower-cased, every other character that is not `a`–`z`,
//!   `0`–`9` or `-` becomes one `-` each (no collapsing: `a..b` gives `a--b`).
//! - "Must start with a letter": leading characters that are not letters are dropped (`1bob` gives `bob`,
//!   `.bob` gives `bob`); if nothing is left the username is `user`.
//! - Collisions: the first free of `name`, `name2`, `name3`, … (the second `bob-smith` is `bob-smith2`).
//!   Reserved words ([`RESERVED`]) count as taken.
//! - `email_verified` ([`check_email_verified`]): BSR's documentation does not mention the claim. Since
//!   the email is what links a login to an account, the stub refuses an email the IdP calls unverified
//!   (`email_verified: false`) before it provisions or signs in anyone; a login without the claim is
//!   accepted (setting `email_verified`, see [`EmailVerifiedPolicy`]).

use std::collections::BTreeSet;

use super::config::EmailVerifiedPolicy;

/// Names the stub's own routes use, which no user may take.
pub const RESERVED: &[&str] = &["admin", "api", "login", "logout", "oauth2", "settings", "buf"];

/// Why provisioning refused a login; nothing is created in either case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JitError {
    #[error(
        "the identity provider sent no email claim (was the email scope granted, and does the user have an email?); BSR provisions users by email, so no user was created"
    )]
    MissingEmail,
    #[error("the email claim {0:?} is not an email address; no user was created")]
    InvalidEmail(String),
    #[error(
        "the identity provider says the email {0:?} is not verified (email_verified is false); BSR links accounts by email, so nobody was signed in and no user was created"
    )]
    UnverifiedEmail(String),
    #[error(
        "the identity provider does not say the email {0:?} is verified (no email_verified claim, and email_verified: require is set); nobody was signed in and no user was created"
    )]
    EmailNotConfirmed(String),
}

/// Whether a login's email may be trusted to link or create an account, by `email_verified` (the ID
/// token's, or userinfo's when the email came from there).
pub fn check_email_verified(email: Option<&str>, verified: Option<bool>, policy: EmailVerifiedPolicy) -> Result<(), JitError> {
    let shown = || email.unwrap_or_default().trim().to_string();
    match (policy, verified) {
        (EmailVerifiedPolicy::Ignore, _) | (_, Some(true)) => Ok(()),
        (_, Some(false)) => Err(JitError::UnverifiedEmail(shown())),
        (EmailVerifiedPolicy::RejectFalse, None) => Ok(()),
        (EmailVerifiedPolicy::Require, None) => Err(JitError::EmailNotConfirmed(shown())),
    }
}

/// What to do with a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The email is known: sign in this existing user (by username).
    SignIn { username: String },
    /// A new user with this username, for the normalized email.
    Create { username: String, email_key: String },
}

/// The lower-cased email used to compare addresses; refuses what is not `local@domain`.
pub fn email_key(email: &str) -> Result<String, JitError> {
    let e = email.trim();
    if e.is_empty() {
        return Err(JitError::MissingEmail);
    }
    match e.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !e.chars().any(char::is_whitespace) => Ok(e.to_lowercase()),
        _ => Err(JitError::InvalidEmail(e.to_string())),
    }
}

/// The username an email asks for, before collisions.
pub fn base_username(email_key: &str) -> String {
    let local = email_key.rsplit_once('@').map(|(l, _)| l).unwrap_or(email_key);
    let mapped: String = local
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' { c } else { '-' }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(|c: char| !c.is_ascii_lowercase());
    if trimmed.is_empty() { "user".to_string() } else { trimmed.to_string() }
}

/// Decides a login. `existing` lists every provisioned user as (email key, username).
pub fn decide<'a>(email: Option<&str>, existing: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Decision, JitError> {
    let key = email_key(email.ok_or(JitError::MissingEmail)?)?;
    let mut taken: BTreeSet<&str> = RESERVED.iter().copied().collect();
    for (e, u) in existing {
        if e == key {
            return Ok(Decision::SignIn { username: u.to_string() });
        }
        taken.insert(u);
    }
    let base = base_username(&key);
    let username = if !taken.contains(base.as_str()) {
        base
    } else {
        // There are finitely many taken names, so some suffix within taken.len() + 2 is free.
        (2..).map(|n| format!("{base}{n}")).find(|c| !taken.contains(c.as_str())).unwrap_or(base)
    };
    Ok(Decision::Create { username, email_key: key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(email: &str, existing: &[(&str, &str)]) -> String {
        match decide(Some(email), existing.iter().copied()).unwrap() {
            Decision::Create { username, .. } => username,
            d => panic!("expected Create, got {d:?}"),
        }
    }

    #[test]
    fn documented_examples() {
        assert_eq!(create("bob.smith@example.com", &[]), "bob-smith");
        assert_eq!(create("julia-smith+demo@example.com", &[]), "julia-smith-demo");
    }

    #[test]
    fn invalid_characters_each_become_a_dash() {
        assert_eq!(create("a..b@example.com", &[]), "a--b");
        assert_eq!(create("o'brien_jr@example.com", &[]), "o-brien-jr");
        assert_eq!(create("josé@example.com", &[]), "jos-");
        assert_eq!(create("Mixed.Case@Example.COM", &[]), "mixed-case");
    }

    #[test]
    fn must_start_with_a_letter() {
        assert_eq!(create("1bob@example.com", &[]), "bob");
        assert_eq!(create(".bob@example.com", &[]), "bob");
        assert_eq!(create("-9-x@example.com", &[]), "x");
        assert_eq!(create("123@example.com", &[]), "user");
    }

    #[test]
    fn collisions_get_incrementing_integers() {
        let existing = [("bob.smith@example.com", "bob-smith")];
        assert_eq!(create("bob.smith@other.com", &existing), "bob-smith2");
        let existing = [("bob.smith@example.com", "bob-smith"), ("bob.smith@other.com", "bob-smith2")];
        assert_eq!(create("bob_smith@third.com", &existing), "bob-smith3");
        // A gap is filled: the first free number wins.
        let existing = [("a@x.com", "bob-smith"), ("b@x.com", "bob-smith3")];
        assert_eq!(create("bob.smith@y.com", &existing), "bob-smith2");
    }

    #[test]
    fn reserved_words_count_as_taken() {
        assert_eq!(create("admin@example.com", &[]), "admin2");
        assert_eq!(create("api@example.com", &[]), "api2");
    }

    #[test]
    fn known_email_signs_in_regardless_of_case() {
        let existing = [("alice@example.com", "alice")];
        assert_eq!(decide(Some("Alice@Example.COM"), existing.iter().copied()), Ok(Decision::SignIn { username: "alice".into() }));
        assert_eq!(decide(Some(" alice@example.com "), existing.iter().copied()), Ok(Decision::SignIn { username: "alice".into() }));
    }

    #[test]
    fn create_carries_the_normalized_email() {
        assert_eq!(
            decide(Some("Bob.Smith@Example.com"), std::iter::empty()),
            Ok(Decision::Create { username: "bob-smith".into(), email_key: "bob.smith@example.com".into() })
        );
    }

    #[test]
    fn missing_or_invalid_email_is_refused() {
        assert_eq!(decide(None, std::iter::empty()), Err(JitError::MissingEmail));
        assert_eq!(decide(Some("  "), std::iter::empty()), Err(JitError::MissingEmail));
        assert_eq!(decide(Some("not-an-email"), std::iter::empty()), Err(JitError::InvalidEmail("not-an-email".into())));
        assert_eq!(decide(Some("@example.com"), std::iter::empty()), Err(JitError::InvalidEmail("@example.com".into())));
        assert_eq!(decide(Some("bob@"), std::iter::empty()), Err(JitError::InvalidEmail("bob@".into())));
        assert_eq!(decide(Some("bo b@x.com"), std::iter::empty()), Err(JitError::InvalidEmail("bo b@x.com".into())));
    }

    #[test]
    fn email_verified_false_is_refused_unless_ignored() {
        use EmailVerifiedPolicy::*;
        let e = Some("alice@example.com");
        for p in [RejectFalse, Require, Ignore] {
            assert_eq!(check_email_verified(e, Some(true), p), Ok(()), "{p:?}");
        }
        assert_eq!(check_email_verified(e, Some(false), RejectFalse), Err(JitError::UnverifiedEmail("alice@example.com".into())));
        assert_eq!(check_email_verified(e, Some(false), Require), Err(JitError::UnverifiedEmail("alice@example.com".into())));
        assert_eq!(check_email_verified(e, Some(false), Ignore), Ok(()));
        // Without the claim: accepted by default, refused when it is required.
        assert_eq!(check_email_verified(e, None, RejectFalse), Ok(()));
        assert_eq!(check_email_verified(e, None, Require), Err(JitError::EmailNotConfirmed("alice@example.com".into())));
        assert_eq!(check_email_verified(e, None, Ignore), Ok(()));
    }

    #[test]
    fn the_part_before_the_last_at_is_the_local_part() {
        assert_eq!(create("\"a@b\"@example.com", &[]), "a-b-");
    }
}
