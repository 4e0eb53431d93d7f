//! What a scenario drives: the in-process stub BSR, or an external relying party described by a target
//! file. The runner reaches either only over HTTP.

use std::path::Path;

use mock_idp::config::ConfigError;
use serde::Deserialize;

/// A real service provider under test (`harness run --target FILE`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    /// A name for reports.
    pub name: String,
    /// Where the service provider is reached, e.g. `http://127.0.0.1:4100`.
    pub base_url: String,
    /// Starts a sign-in (redirects to the IdP).
    #[serde(default = "login")]
    pub login_path: String,
    /// The sign-in redirect URI's path, registered at the IdP for the app.
    #[serde(default = "callback")]
    pub callback_path: String,
    #[serde(default)]
    pub logout: LogoutSpec,
    /// The sign-out redirect URI's path, registered at the IdP for the app (if the app signs out there).
    #[serde(default)]
    pub post_logout_redirect_path: Option<String>,
    pub whoami: Whoami,
    /// The IdP app the service provider uses.
    #[serde(default = "bsr_local")]
    pub client_id: String,
    /// The running mock-idp the service provider is configured against (or `--idp-url`).
    #[serde(default)]
    pub idp_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutSpec {
    #[serde(default = "post")]
    pub method: String,
    #[serde(default = "logout")]
    pub path: String,
}

impl Default for LogoutSpec {
    fn default() -> Self {
        LogoutSpec { method: post(), path: logout() }
    }
}

/// An endpoint that answers 200 with JSON naming the signed-in user, 401 (or a redirect) otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Whoami {
    pub path: String,
    /// JSON pointer to the signed-in user's email, e.g. `/email`.
    #[serde(default = "email")]
    pub email_pointer: String,
}

fn login() -> String {
    "/login".into()
}
fn callback() -> String {
    "/oauth2/callback".into()
}
fn post() -> String {
    "POST".into()
}
fn logout() -> String {
    "/logout".into()
}
fn bsr_local() -> String {
    "bsr-local".into()
}
fn email() -> String {
    "/email".into()
}

impl TargetFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: None,
            column: None,
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&src, &name)
    }

    pub fn parse(src: &str, file: &str) -> Result<Self, ConfigError> {
        let de = serde_yaml::Deserializer::from_str(src);
        let mut t: TargetFile = serde_path_to_error::deserialize(de).map_err(|e| mock_idp::config::yaml_error(e, src, file))?;
        t.base_url = t.base_url.trim_end_matches('/').to_string();
        if url::Url::parse(&t.base_url).is_err() {
            let line = src.lines().position(|l| l.contains("base_url")).map(|i| i + 1);
            return Err(ConfigError {
                file: file.into(),
                line,
                column: None,
                field: "base_url".into(),
                message: format!("not an absolute URL: {}", t.base_url),
            });
        }
        Ok(t)
    }
}

/// The HTTP surface the runner drives, whichever service provider it is.
#[derive(Debug, Clone)]
pub struct Surface {
    pub base_url: String,
    pub login_path: String,
    pub logout_method: String,
    pub logout_path: String,
    pub whoami_path: String,
    pub email_pointer: String,
    pub callback_path: String,
    pub post_logout_path: Option<String>,
    pub client_id: String,
    /// Whether this is the in-process stub (stub-only steps and checks work).
    pub is_stub: bool,
}

impl Surface {
    /// The stub BSR at `base`.
    pub fn stub(base: &str) -> Self {
        Surface {
            base_url: base.to_string(),
            login_path: "/login".into(),
            logout_method: "POST".into(),
            logout_path: "/logout".into(),
            whoami_path: "/api/me".into(),
            email_pointer: "/email".into(),
            callback_path: "/oauth2/callback".into(),
            post_logout_path: Some("/logout".into()),
            client_id: "bsr-local".into(),
            is_stub: true,
        }
    }

    pub fn external(t: &TargetFile) -> Self {
        Surface {
            base_url: t.base_url.clone(),
            login_path: t.login_path.clone(),
            logout_method: t.logout.method.to_uppercase(),
            logout_path: t.logout.path.clone(),
            whoami_path: t.whoami.path.clone(),
            email_pointer: t.whoami.email_pointer.clone(),
            callback_path: t.callback_path.clone(),
            post_logout_path: t.post_logout_redirect_path.clone(),
            client_id: t.client_id.clone(),
            is_stub: false,
        }
    }
}
