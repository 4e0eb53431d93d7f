//! The stub's HTML pages. Every reflected value goes through [`esc`]; elements that tests and scenarios read
//! carry stable ids (`#username`, `#error`, `#error-description`, …).

use super::config::SsoSettings;
use super::store::{BsrUser, UserState};

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const STYLE: &str = r##"
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Arial,sans-serif;background:#f7f7f9;color:#151515}
header{background:#0e5df5;color:#fff;padding:12px 24px;font-weight:600}
main{max-width:720px;margin:32px auto;background:#fff;border:1px solid #ddd;border-radius:6px;padding:24px 32px}
h1{font-size:20px;margin:0 0 16px}
label{display:block;font-weight:600;margin:14px 0 4px;font-size:14px}
input[type=text],input[type=password],input[type=url],select{width:100%;padding:8px;font-size:14px;border:1px solid #999;border-radius:4px;box-sizing:border-box}
button{margin-top:18px;padding:8px 16px;font-size:14px;font-weight:600;color:#fff;background:#0e5df5;border:0;border-radius:4px;cursor:pointer}
.error{background:#fff0f0;border:1px solid #d33;color:#a11;padding:10px 12px;border-radius:4px}
.ok{background:#effaf0;border:1px solid #2a2;color:#161;padding:10px 12px;border-radius:4px}
table{border-collapse:collapse;width:100%;font-size:14px}td,th{border-bottom:1px solid #eee;padding:6px;text-align:left}
code{background:#f0f0f3;padding:1px 4px;border-radius:3px}
"##;

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{} · Buf Schema Registry (stub)</title><style>{STYLE}</style></head><body><header>Buf Schema Registry <small>(stub)</small></header>\
<main>{body}</main></body></html>",
        esc(title)
    )
}

pub fn home_signed_out(settings_path: &str) -> String {
    shell(
        "Welcome",
        &format!(
            "<h1>Welcome</h1><p id=\"signed-out\">You are not signed in.</p><p><a id=\"sign-in\" href=\"/login\">Sign in with single sign-on</a></p>\
<p><small>Administrators: <a href=\"{}\">SSO settings</a> · <a href=\"/admin/users\">users</a></small></p>",
            esc(settings_path)
        ),
    )
}

pub fn home_signed_in(u: &BsrUser) -> String {
    shell(
        "Home",
        &format!(
            "<h1>Signed in as <span id=\"username\">{}</span></h1><dl>\
<dt>Email</dt><dd id=\"email\">{}</dd><dt>Name</dt><dd id=\"name\">{}</dd><dt>IdP subject</dt><dd id=\"idp-subject\">{}</dd></dl>\
<form method=\"post\" action=\"/logout\"><button id=\"sign-out\" type=\"submit\">Sign out</button></form>",
            esc(&u.username),
            esc(&u.email),
            esc(u.name.as_deref().unwrap_or("")),
            esc(&u.idp_subject)
        ),
    )
}

/// An error page: the title, the message naming what failed, and where to go next.
pub fn error(title: &str, message: &str) -> String {
    shell(
        title,
        &format!(
            "<h1>{}</h1><p class=\"error\" id=\"error\" role=\"alert\">{}</p><p><a href=\"/login\">Try signing in again</a> · <a href=\"/\">Home</a></p>",
            esc(title),
            esc(message)
        ),
    )
}

/// The IdP redirected back with an error: its code and description, as it sent them.
pub fn idp_error(error: &str, description: Option<&str>) -> String {
    let title = "The identity provider refused the sign-in";
    shell(
        title,
        &format!(
            "<h1>{}</h1><div class=\"error\" id=\"error\" role=\"alert\"><p>Error: <code id=\"error-code\">{}</code></p>\
<p id=\"error-description\">{}</p></div><p>No BSR account was created or changed. <a href=\"/login\">Try again</a> · <a href=\"/\">Home</a></p>",
            esc(title),
            esc(error),
            esc(description.unwrap_or("(the identity provider gave no description)"))
        ),
    )
}

pub fn signed_out(note: Option<&str>) -> String {
    let note = note.map(|n| format!("<p class=\"error\" id=\"error\">{}</p>", esc(n))).unwrap_or_default();
    shell(
        "Signed out",
        &format!("<h1 id=\"signed-out\">You are signed out</h1>{note}<p><a id=\"sign-in\" href=\"/login\">Sign in again</a></p>"),
    )
}

pub fn admin_login(csrf: &str, next: &str, error: Option<&str>) -> String {
    let err = error.map(|e| format!("<p class=\"error\" id=\"error\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default();
    shell(
        "Administrator sign-in",
        &format!(
            "<h1>Administrator sign-in</h1>{err}<form method=\"post\" action=\"/admin/login\" id=\"admin-login\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
<label for=\"username\">Username</label><input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>",
            esc(csrf),
            esc(next)
        ),
    )
}

/// The SSO configuration page, as BSR's `/{organization}/pro-settings`. The client secret is never shown;
/// leaving it empty keeps the stored one.
pub fn settings(org: &str, s: Option<&SsoSettings>, csrf: &str, message: Option<(bool, &str)>) -> String {
    let msg = match message {
        Some((true, m)) => format!("<p class=\"ok\" id=\"message\">{}</p>", esc(m)),
        Some((false, m)) => format!("<p class=\"error\" id=\"error\" role=\"alert\">{}</p>", esc(m)),
        None => String::new(),
    };
    let v = |f: fn(&SsoSettings) -> String| s.map(f).unwrap_or_default();
    let secret_note = if s.is_some() { "stored; leave empty to keep it" } else { "not set" };
    shell(
        "SSO settings",
        &format!(
            "<h1>SSO configuration for <span id=\"organization\">{}</span></h1>{msg}\
<form method=\"post\" id=\"sso-settings\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label for=\"provider\">Provider</label><select id=\"provider\" name=\"provider\"><option value=\"oidc\" selected>OIDC</option></select>\
<label for=\"client_id\">Client ID</label><input type=\"text\" id=\"client_id\" name=\"client_id\" value=\"{}\" required>\
<label for=\"client_secret\">Client secret ({secret_note})</label><input type=\"password\" id=\"client_secret\" name=\"client_secret\" autocomplete=\"off\">\
<label for=\"issuer_url\">Issuer URL</label><input type=\"url\" id=\"issuer_url\" name=\"issuer_url\" value=\"{}\" required>\
<label for=\"logout_url\">Logout URL (optional)</label><input type=\"url\" id=\"logout_url\" name=\"logout_url\" value=\"{}\">\
<button type=\"submit\">Save</button></form>",
            esc(org),
            esc(csrf),
            esc(&v(|s| s.client_id.clone())),
            esc(&v(|s| s.issuer_url.clone())),
            esc(&v(|s| s.logout_url.clone().unwrap_or_default())),
        ),
    )
}

pub fn users(list: &[(BsrUser, usize)], csrf: &str, message: Option<&str>) -> String {
    let msg = message.map(|m| format!("<p class=\"ok\" id=\"message\">{}</p>", esc(m))).unwrap_or_default();
    let rows: String = list
        .iter()
        .map(|(u, sessions)| {
            let (state, action, label) = match u.state {
                UserState::Active => ("ACTIVE", "deactivate", "Deactivate"),
                UserState::Deactivated => ("DEACTIVATED", "activate", "Reactivate"),
            };
            format!(
                "<tr id=\"user-{id}\"><td class=\"username\">{un}</td><td>{em}</td><td>{nm}</td><td class=\"state\">{state}</td><td>{sessions}</td>\
<td><form method=\"post\" action=\"/admin/users/{id}/{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">{label}</button></form></td></tr>",
                id = esc(&u.id),
                un = esc(&u.username),
                em = esc(&u.email),
                nm = esc(u.name.as_deref().unwrap_or("")),
                csrf = esc(csrf),
            )
        })
        .collect();
    shell(
        "Users",
        &format!(
            "<h1>Users</h1>{msg}<table id=\"users\"><thead><tr><th>Username</th><th>Email</th><th>Name</th><th>State</th><th>Sessions</th><th></th></tr></thead>\
<tbody>{rows}</tbody></table>"
        ),
    )
}

pub fn not_found(path: &str) -> String {
    error("Not found", &format!("there is no page at {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reflected_value_is_escaped() {
        let p = idp_error("<script>", Some("\"><img src=x onerror=alert(1)>"));
        assert!(!p.contains("<script>"));
        assert!(!p.contains("<img"));
        assert!(p.contains("&lt;script&gt;"));
        let s = SsoSettings::new("http://x/\"><script>", "<b>", "secret-value");
        let p = settings("<org>", Some(&s), "c\"", None);
        assert!(!p.contains("<script>") && !p.contains("<b>") && !p.contains("<org>"));
        assert!(!p.contains("secret-value"), "the client secret is never shown");
        let u = BsrUser {
            id: "u1".into(),
            username: "<u>".into(),
            email: "<e>".into(),
            name: Some("<n>".into()),
            idp_subject: "<s>".into(),
            state: UserState::Active,
            created_ms: 0,
            last_login_ms: 0,
        };
        let p = home_signed_in(&u) + &users(&[(u, 1)], "<c>", Some("<m>"));
        for bad in ["<u>", "<e>", "<n>", "<s>", "<c>", "<m>"] {
            assert!(!p.contains(bad), "{bad} unescaped");
        }
        assert!(!error("<t>", "<m>").contains("<m>"));
    }
}
