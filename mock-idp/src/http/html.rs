//! The pages a person sees: the hosted sign-in page, Okta's error page, the form_post auto-submit page.
//! Every reflected value goes through [`esc`].

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
*{box-sizing:border-box}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;background:#f4f5f7;color:#1d1d21}
.wrap{min-height:100vh;display:flex;flex-direction:column;align-items:center;justify-content:center;padding:24px}
.card{width:100%;max-width:400px;background:#fff;border:1px solid #d7d7dc;border-radius:6px;box-shadow:0 2px 8px rgba(0,0,0,.08);overflow:hidden}
.brand{padding:28px 40px 20px;border-bottom:1px solid #e9e9ed;text-align:center}
.logo{display:inline-flex;align-items:center;gap:10px;font-weight:600;font-size:20px;color:#00297a}
.logo svg{width:32px;height:32px}
.body{padding:24px 40px 32px}
h1{font-size:18px;font-weight:600;margin:0 0 20px;text-align:center}
label{display:block;font-size:14px;font-weight:600;margin:16px 0 6px}
input[type=text],input[type=password]{width:100%;padding:10px 12px;font-size:15px;color:#1d1d21;background:#fff;border:1px solid #8c8c96;border-radius:4px}
input:hover{border-color:#5c5c66}
input:focus{outline:2px solid #1662dd;outline-offset:1px;border-color:#1662dd}
input[aria-invalid=true]{border-color:#d93934}
button{width:100%;margin-top:24px;padding:11px;font-size:15px;font-weight:600;color:#fff;background:#1662dd;border:0;border-radius:4px;cursor:pointer}
button:hover{background:#0f4fb8}
button:focus-visible{outline:2px solid #1662dd;outline-offset:2px}
.error{position:relative;background:#fff0f0;border:1px solid #e34843;border-left-width:4px;color:#a3211c;border-radius:4px;padding:10px 12px 10px 40px;font-size:14px;line-height:20px;margin:0 0 4px}
.error::before{content:"!";position:absolute;left:11px;top:10px;width:20px;height:20px;border-radius:50%;background:#d93934;color:#fff;font-weight:700;font-size:13px;line-height:20px;text-align:center}
.note{font-size:12px;color:#6e6e78;text-align:center;margin-top:20px}
.powered{font-size:12px;color:#6e6e78;text-align:center;margin-top:16px}
dl{font-size:14px}dt{font-weight:600;margin-top:10px}dd{margin:2px 0 0}
"##;

const LOGO: &str =
    r##"<svg viewBox="0 0 32 32" aria-hidden="true"><circle cx="16" cy="16" r="13" fill="none" stroke="#1662dd" stroke-width="6"/></svg>"##;

/// A page in the org's frame: its name over the card, the title as Okta puts it ("{org} - {page}"), and an
/// honest note under the card that this is a test IdP.
fn shell(org_name: &str, title: &str, inner: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"robots\" content=\"noindex,nofollow\"><title>{} - {}</title><style>{STYLE}</style></head><body><div class=\"wrap\">\
<main class=\"card\"><div class=\"brand\"><span class=\"logo\">{LOGO}{}</span></div><div class=\"body\">{inner}</div></main>\
<p class=\"powered\">Powered by mock-idp, an Okta look-alike for testing</p></div></body></html>",
        esc(org_name),
        esc(title),
        esc(org_name),
    )
}

/// The hosted sign-in page. `error` shows between the heading and the fields, is announced to screen
/// readers and describes both fields; `from_uri` and `csrf` ride along as hidden fields. The cursor starts in
/// the username field, or in the password field when the username is already filled in (a login hint, or
/// a retry after a wrong password), so a person can type at once; Enter in either field submits.
pub fn login_page(org_name: &str, from_uri: &str, csrf: &str, username: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<div class=\"error\" role=\"alert\" id=\"signin-error\" aria-live=\"assertive\">{}</div>", esc(e)))
        .unwrap_or_default();
    let described = if error.is_some() { " aria-describedby=\"signin-error\"" } else { "" };
    let (user_focus, password_focus) = if username.is_empty() { (" autofocus", "") } else { ("", " autofocus") };
    // Only a username left empty is marked invalid: after a wrong password Okta does not say which field was
    // wrong, and the password is never sent back, so the page cannot tell whether it was left empty.
    let username_invalid = if error == Some(EMPTY_FIELDS) && username.is_empty() { " aria-invalid=\"true\"" } else { "" };
    let inner = format!(
        "<h1>Sign In</h1>{err}\
<form method=\"post\" action=\"/login/login.htm\" id=\"signin-form\" novalidate>\
<input type=\"hidden\" name=\"fromURI\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label for=\"okta-signin-username\">Username</label>\
<input type=\"text\" id=\"okta-signin-username\" name=\"username\" value=\"{}\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required{user_focus}{described}{username_invalid}>\
<label for=\"okta-signin-password\">Password</label>\
<input type=\"password\" id=\"okta-signin-password\" name=\"password\" autocomplete=\"current-password\" required{password_focus}{described}>\
<button type=\"submit\" id=\"okta-signin-submit\">Sign In</button></form>",
        esc(from_uri),
        esc(csrf),
        esc(username),
    );
    shell(org_name, "Sign In", &inner)
}

/// The message for a submission with an empty username or password.
pub const EMPTY_FIELDS: &str = "Please enter a username and a password.";

/// The frame of pages that are not about one org's sign-in (error pages, the signed-in landing page).
const ORG_FRAME: &str = "Mock Okta";

/// The page shown after signing in without an application to return to.
pub fn signed_in_page(login: &str) -> String {
    shell(
        ORG_FRAME,
        "Signed in",
        &format!(
            "<h1>You are signed in</h1><p style=\"text-align:center\">Signed in as <strong id=\"signed-in-user\">{}</strong>.</p>",
            esc(login)
        ),
    )
}

/// Okta's browser error page.
pub fn error_page(status: u16, code: &str, description: &str) -> String {
    let title = if status == 400 { "400 Bad Request".to_string() } else { format!("{status} Error") };
    let inner = format!(
        "<h1>{}</h1><p>Your request resulted in an error.</p><dl>\
<dt>Identity Provider:</dt><dd>Unknown</dd>\
<dt>Error Code:</dt><dd id=\"error-code\">{}</dd>\
<dt>Description:</dt><dd id=\"error-description\">{}</dd></dl>",
        esc(&title),
        esc(code),
        esc(description)
    );
    shell(ORG_FRAME, &title, &inner)
}

/// `response_mode=form_post`: a page that posts the response parameters to the redirect URI.
pub fn form_post(action: &str, fields: &[(&str, &str)]) -> String {
    let inputs: String = fields.iter().map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v))).collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Submit This Form</title></head>\
<body onload=\"document.forms[0].submit()\"><noscript><p>JavaScript is disabled. Press the button to continue.</p></noscript>\
<form method=\"post\" action=\"{}\">{inputs}<noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
        esc(action)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_script_in_every_reflected_value() {
        let p = login_page("<org>", "\"><script>x</script>", "c\"", "<b>", Some("<img src=x>"));
        assert!(!p.contains("<script>x"));
        assert!(!p.contains("<img src=x>"));
        assert!(p.contains("&lt;b&gt;"));
    }

    #[test]
    fn the_cursor_starts_where_a_person_types_next() {
        let fresh = login_page("Org", "/", "c", "", None);
        assert!(fresh.contains("autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required autofocus>"), "{fresh}");
        assert!(!fresh.contains("aria-describedby"));
        let retry = login_page("Org", "/", "c", "alice@example.com", Some("Unable to sign in"));
        assert!(retry.contains("autocomplete=\"current-password\" required autofocus aria-describedby=\"signin-error\">"), "{retry}");
        assert!(!retry.contains("aria-invalid=\"true\""), "Okta does not say which field was wrong");
        let empty = login_page("Org", "/", "c", "", Some(EMPTY_FIELDS));
        assert!(empty.contains("required autofocus aria-describedby=\"signin-error\" aria-invalid=\"true\">"), "{empty}");
        assert!(fresh.contains("<title>Org - Sign In</title>"));
    }
}
