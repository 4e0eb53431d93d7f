//! Protocol errors, one enum of OAuth error codes; `http::errors` maps them to Okta's wire shapes in one
//! place. Descriptions are Okta's exact strings (okta-behaviour.md §4).

/// OAuth 2.0 / OIDC error codes Okta uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedResponseMode,
    InvalidScope,
    AccessDenied,
    LoginRequired,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::UnsupportedResponseMode => "unsupported_response_mode",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An OAuth error with Okta's description and HTTP status (Okta answers some `invalid_request`s with 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    pub status: u16,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::InvalidClient => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        };
        OAuthError { code, description: description.into(), status }
    }
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::AccessDenied, d)
    }
}

// Okta's strings, kept in one place so tests and code cannot drift apart.
pub const DUPLICATE_PARAMS: &str = "The request contained multiple parameters with the same name.";
pub const INVALID_STATE: &str = "The authentication request has an invalid 'state' parameter.";
pub const NOT_ASSIGNED: &str = "User is not assigned to the client application.";
pub const LOGIN_REQUIRED: &str = "The client specified not to prompt, but the user is not logged in.";
pub const LOGIN_REQUIRED_REAUTH: &str = "The client specified not to prompt, but the client app requires re-authentication or MFA.";
pub const PROMPT_NONE_MAX_AGE_ZERO: &str = "'prompt' parameter must not have the value 'none' for request with 'zero' as max_age.";
pub const PKCE_CHALLENGE_REQUIRED: &str = "PKCE code challenge is required by the application.";
pub const PKCE_VERIFIER_REQUIRED: &str = "PKCE code verifier is required by the application.";
pub const PKCE_CHALLENGE_MISSING: &str = "PKCE code challenge should be specified in the authorize request for code verification.";
pub const PKCE_ILLEGAL_CHARS: &str = "PKCE code challenge contains illegal characters.";
pub const PKCE_METHOD_UNSUPPORTED: &str = "PKCE code challenge method is not supported. Valid values: [S256]";
pub const PKCE_FAILED: &str = "PKCE verification failed.";
pub const NO_CLIENT_CREDENTIALS: &str = "No client credentials found.";
pub const CLIENT_AUTH_FAILED: &str = "Client authentication failed. Either the client or the client credentials are invalid.";
pub const BAD_CLIENT_SECRET: &str = "The client secret supplied for a confidential client is invalid.";
pub const BAD_CLIENT_ID: &str = "Invalid value for 'client_id' parameter.";
pub const BAD_AUTH_HEADER: &str = "Found Authentication header but was not valid client credentials.";
pub const MULTIPLE_CREDENTIALS: &str = "Cannot supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a client_assertion in the post body.";
pub const CREDENTIALS_IN_QUERY: &str = "Client credentials cannot be supplied via query parameters.";
pub const CODE_INVALID: &str = "The authorization code is invalid or has expired.";
pub const REFRESH_INVALID: &str = "The refresh token is invalid or expired.";
pub const REDIRECT_MISMATCH_TOKEN: &str = "The 'redirect_uri' does not match the redirection URI used in the authorization request.";
pub const OTHER_CLIENT: &str =
    "The grant was issued to another client. Please make sure the 'client_id' matches the one used at the authorize request.";
pub const OTHER_SERVER: &str = "The grant was issued for another authorization server.";
pub const TOO_MANY_GROUPS: &str = "The groups claim matched too many groups and must be configured to match fewer groups.";
pub const SCOPE_UNKNOWN: &str = "One or more scopes are not configured for the authorization server resource.";
pub const SCOPE_MALFORMED: &str = "The requested scope is invalid, unknown, or malformed";
pub const CC_ORG_SERVER: &str = "'client_credentials' grant type can only be used with a custom authorization server.";
pub const BROWSER_PKCE: &str = "Browser requests to the token endpoint must use Proof Key for Code Exchange.";
pub const USERINFO_INVALID: &str = "The access token is invalid";
pub const USERINFO_SCOPE: &str = "The access token must provide access to at least one of these scopes - profile, email, address or phone";
pub const LOGOUT_URI: &str = "The 'post_logout_redirect_uri' parameter must be a Logout redirect URI in the client app settings.";
pub const LOGOUT_MISMATCH: &str = "The ID token subject does not match the current session's user.";
/// Okta's 429 summary (E0000047), also the OAuth catalog's `invalid_grant` text for the per-user limit.
pub const RATE_LIMITED: &str = "API call exceeded rate limit due to too many requests.";

pub fn missing_param(name: &str) -> String {
    format!("The required parameter '{name}' is missing.")
}

pub fn redirect_uri_not_registered(admin_url: &str) -> String {
    format!("The 'redirect_uri' parameter must be a Login redirect URI in the client app settings: {admin_url}")
}

pub fn unsupported_response_type(configured: &[String]) -> String {
    format!("The response type is not supported by the authorization server. Configured response types: [{}].", configured.join(", "))
}

pub fn unsupported_grant_type(configured: &[String]) -> String {
    format!(
        "The authorization grant type is not supported by the authorization server. Configured grant types: [{}].",
        configured.join(", ")
    )
}

pub fn unauthorized_client(configured: &[String]) -> String {
    format!("The client is not authorized to use the provided grant type. Configured grant types: [{}].", configured.join(", "))
}

pub fn grant_type_required(valid: &[&str]) -> String {
    format!("The token request must specify a 'grant_type'. Valid values: [{}]", valid.join(", "))
}

pub fn refresh_scopes_denied(denied: &[String]) -> String {
    format!(
        "Some of the scopes requested for the refresh request were not granted in the original authorize request. Denied scopes: {}.",
        denied.join(", ")
    )
}

pub fn invalid_prompt(supported: &str) -> String {
    format!("Invalid value for 'prompt' parameter. Supported values: [{supported}]")
}
