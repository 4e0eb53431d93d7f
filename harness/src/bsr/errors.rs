//! What can go wrong, as one enum mapped to a status and a page in one place. Every message names what
//! failed (the step, the method and URL, what came back), so a person reading the page knows where to look.
//! IdP misbehaviour is a 502 page, never a panic or a 500.

use std::fmt;
use std::time::Duration;

use axum::http::StatusCode;

use super::jit::JitError;

/// Which exchange with the IdP failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Discovery,
    Jwks,
    Token,
    Refresh,
    Userinfo,
    Revocation,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Discovery => "discovery",
            Step::Jwks => "JWKS fetch",
            Step::Token => "token request",
            Step::Refresh => "refresh",
            Step::Userinfo => "userinfo request",
            Step::Revocation => "revocation",
        }
    }
}

/// How an HTTP exchange with the IdP failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFailure {
    Timeout(Duration),
    Connect(String),
    Transport(String),
    /// A non-success status without an OAuth error body.
    Status(u16),
    /// An OAuth error body (`{"error", "error_description"}`).
    OAuth {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// A body that should be JSON and is not.
    NotJson {
        status: u16,
        content_type: Option<String>,
        detail: String,
    },
    /// JSON of the wrong shape (a missing field, a wrong type).
    BadShape {
        detail: String,
    },
    TooLarge {
        limit: usize,
    },
}

/// Formats a duration the way people say it: `2 s`, `250 ms`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) { format!("{} s", ms / 1000) } else { format!("{ms} ms") }
}

fn status_text(code: u16) -> String {
    match StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()) {
        Some(r) => format!("{code} {r}"),
        None => code.to_string(),
    }
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpFailure::Timeout(d) => write!(f, "timed out after {}", human(*d)),
            HttpFailure::Connect(e) => write!(f, "could not connect: {e}"),
            HttpFailure::Transport(e) => write!(f, "failed: {e}"),
            HttpFailure::Status(s) => write!(f, "returned {}", status_text(*s)),
            HttpFailure::OAuth { status, error, description } => {
                write!(f, "returned {}: {error}", status_text(*status))?;
                if let Some(d) = description {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            HttpFailure::NotJson { status, content_type, detail } => write!(
                f,
                "returned {} with a body that is not JSON (Content-Type: {}): {detail}",
                status_text(*status),
                content_type.as_deref().unwrap_or("none")
            ),
            HttpFailure::BadShape { detail } => write!(f, "returned an unusable document: {detail}"),
            HttpFailure::TooLarge { limit } => write!(f, "returned a body larger than {limit} bytes"),
        }
    }
}

/// A failed exchange with the IdP: `discovery failed: GET http://…/.well-known/openid-configuration returned 500
/// Internal Server Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    pub step: Step,
    pub method: &'static str,
    pub url: String,
    pub failure: HttpFailure,
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {} {} {}", self.step.label(), self.method, self.url, self.failure)
    }
}

impl UpstreamError {
    /// An OAuth `invalid_grant` answer: the refresh token is dead and the session with it.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(&self.failure, HttpFailure::OAuth { error, .. } if error == "invalid_grant")
    }
}

/// Everything a page can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BsrError {
    /// No SSO settings yet.
    NotConfigured {
        settings_path: String,
    },
    /// The discovery document names another issuer than the configured one (case C15).
    IssuerMismatch {
        discovery_url: String,
        configured: String,
        found: String,
    },
    Upstream(UpstreamError),
    /// The IdP redirected back with an error (`access_denied`, `login_required`, …).
    IdpRedirect {
        error: String,
        description: Option<String>,
    },
    /// The callback does not belong to a sign-in attempt of this browser.
    BadCallback(String),
    /// The ID token failed validation.
    IdToken(String),
    Provisioning(JitError),
    /// The BSR account exists but an administrator deactivated it.
    Deactivated {
        username: String,
    },
}

impl fmt::Display for BsrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BsrError::NotConfigured { settings_path } => write!(
                f,
                "single sign-on is not configured; an administrator can enter the identity provider's settings at {settings_path}"
            ),
            BsrError::IssuerMismatch { discovery_url, configured, found } => write!(
                f,
                "discovery failed: GET {discovery_url} returned issuer {found:?}, but the configured issuer URL is {configured:?}; they must be equal exactly"
            ),
            BsrError::Upstream(e) => e.fmt(f),
            BsrError::IdpRedirect { error, description } => match description {
                Some(d) => write!(f, "the identity provider refused the sign-in: {error}: {d}"),
                None => write!(f, "the identity provider refused the sign-in: {error}"),
            },
            BsrError::BadCallback(m) => write!(f, "sign-in failed: {m}"),
            BsrError::IdToken(m) => write!(f, "ID token rejected: {m}"),
            BsrError::Provisioning(e) => write!(f, "provisioning failed: {e}"),
            BsrError::Deactivated { username } => {
                write!(f, "the BSR user {username} is deactivated; an administrator can reactivate it at /admin/users")
            }
        }
    }
}

impl From<UpstreamError> for BsrError {
    fn from(e: UpstreamError) -> Self {
        BsrError::Upstream(e)
    }
}

impl BsrError {
    /// The one mapping from failure to status: 502 for an IdP that misbehaves, 4xx for what the browser or
    /// the IdP's decision caused, 503 while unconfigured.
    pub fn status(&self) -> StatusCode {
        match self {
            BsrError::NotConfigured { .. } => StatusCode::SERVICE_UNAVAILABLE,
            BsrError::IssuerMismatch { .. } | BsrError::Upstream(_) | BsrError::IdToken(_) | BsrError::Provisioning(_) => {
                StatusCode::BAD_GATEWAY
            }
            BsrError::IdpRedirect { error, .. } if error == "access_denied" => StatusCode::FORBIDDEN,
            BsrError::IdpRedirect { .. } | BsrError::BadCallback(_) => StatusCode::BAD_REQUEST,
            BsrError::Deactivated { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// A short machine-readable code for JSON answers.
    pub fn code(&self) -> &'static str {
        match self {
            BsrError::NotConfigured { .. } => "sso_not_configured",
            BsrError::IssuerMismatch { .. } => "issuer_mismatch",
            BsrError::Upstream(_) => "upstream_failure",
            BsrError::IdpRedirect { .. } => "idp_error",
            BsrError::BadCallback(_) => "bad_callback",
            BsrError::IdToken(_) => "id_token_rejected",
            BsrError::Provisioning(_) => "provisioning_failed",
            BsrError::Deactivated { .. } => "user_deactivated",
        }
    }

    /// The page title.
    pub fn title(&self) -> &'static str {
        match self {
            BsrError::NotConfigured { .. } => "Single sign-on is not configured",
            BsrError::IdpRedirect { .. } => "The identity provider refused the sign-in",
            BsrError::Deactivated { .. } => "Account deactivated",
            _ => "Sign-in failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_failed() {
        let e = UpstreamError {
            step: Step::Discovery,
            method: "GET",
            url: "http://127.0.0.1:1/.well-known/openid-configuration".into(),
            failure: HttpFailure::Status(500),
        };
        assert_eq!(
            e.to_string(),
            "discovery failed: GET http://127.0.0.1:1/.well-known/openid-configuration returned 500 Internal Server Error"
        );
        let e = UpstreamError {
            step: Step::Token,
            method: "POST",
            url: "http://x/token".into(),
            failure: HttpFailure::Timeout(Duration::from_millis(250)),
        };
        assert_eq!(e.to_string(), "token request failed: POST http://x/token timed out after 250 ms");
        let e = UpstreamError {
            step: Step::Refresh,
            method: "POST",
            url: "http://x/token".into(),
            failure: HttpFailure::OAuth {
                status: 400,
                error: "invalid_grant".into(),
                description: Some("The refresh token is invalid or expired.".into()),
            },
        };
        assert!(e.is_invalid_grant());
        assert_eq!(
            e.to_string(),
            "refresh failed: POST http://x/token returned 400 Bad Request: invalid_grant: The refresh token is invalid or expired."
        );
    }

    #[test]
    fn statuses_are_never_500() {
        let all = [
            BsrError::NotConfigured { settings_path: "/acme/pro-settings".into() },
            BsrError::IdToken("x".into()),
            BsrError::IdpRedirect { error: "access_denied".into(), description: None },
            BsrError::IdpRedirect { error: "login_required".into(), description: None },
            BsrError::BadCallback("x".into()),
            BsrError::Provisioning(JitError::MissingEmail),
            BsrError::Deactivated { username: "bob".into() },
        ];
        for e in all {
            assert_ne!(e.status(), StatusCode::INTERNAL_SERVER_ERROR, "{e}");
        }
        assert_eq!(human(Duration::from_secs(2)), "2 s");
    }
}
