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
.wrap{min-height:100vh;display:flex;align-items:center;justify-content:center;padding:24px}
.card{width:100%;max-width:400px;background:#fff;border:1px solid #d7d7dc;border-radius:6px;box-shadow:0 2px 8px rgba(0,0,0,.08);overflow:hidden}
.brand{padding:28px 40px 20px;border-bottom:1px solid #e9e9ed;text-align:center}
.logo{display:inline-flex;align-items:center;gap:10px;font-weight:600;font-size:20px;color:#00297a}
.logo svg{width:32px;height:32px}
.body{padding:24px 40px 32px}
h1{font-size:18px;font-weight:600;margin:0 0 20px;text-align:center}
label{display:block;font-size:14px;font-weight:600;margin:16px 0 6px}
input[type=text],input[type=password]{width:100%;padding:10px 12px;font-size:15px;border:1px solid #8c8c96;border-radius:4px}
input:focus{outline:2px solid #1662dd;outline-offset:1px;border-color:#1662dd}
button{width:100%;margin-top:24px;padding:11px;font-size:15px;font-weight:600;color:#fff;background:#1662dd;border:0;border-radius:4px;cursor:pointer}
button:hover{background:#0f4fb8}
.error{display:flex;gap:8px;align-items:flex-start;background:#fff0f0;border:1px solid #e34843;color:#a3211c;border-radius:4px;padding:10px 12px;font-size:14px;margin-bottom:8px}
.note{font-size:12px;color:#6e6e78;text-align:center;margin-top:20px}
dl{font-size:14px}dt{font-weight:600;margin-top:10px}dd{margin:2px 0 0}
"##;

const LOGO: &str =
    r##"<svg viewBox="0 0 32 32" aria-hidden="true"><circle cx="16" cy="16" r="13" fill="none" stroke="#1662dd" stroke-width="6"/></svg>"##;

fn shell(title: &str, inner: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body><div class=\"wrap\"><main class=\"card\"><div class=\"brand\"><span class=\"logo\">{LOGO}{}</span></div>\
<div class=\"body\">{inner}</div></main></div></body></html>",
        esc(title),
        esc("Mock Okta"),
    )
}

/// The hosted sign-in page. `error` shows above the form; `from_uri` and `csrf` ride along as hidden fields.
pub fn login_page(org_name: &str, from_uri: &str, csrf: &str, username: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<div class=\"error\" role=\"alert\" id=\"signin-error\" aria-live=\"assertive\">{}</div>", esc(e)))
        .unwrap_or_default();
    let inner = format!(
        "<h1>Sign In</h1>{err}\
<form method=\"post\" action=\"/login/login.htm\" id=\"signin-form\" novalidate>\
<input type=\"hidden\" name=\"fromURI\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label for=\"okta-signin-username\">Username</label>\
<input type=\"text\" id=\"okta-signin-username\" name=\"username\" value=\"{}\" autocomplete=\"username\" autofocus required{}>\
<label for=\"okta-signin-password\">Password</label>\
<input type=\"password\" id=\"okta-signin-password\" name=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\" id=\"okta-signin-submit\">Sign In</button></form>\
<p class=\"note\">{} &middot; a mock identity provider for testing</p>",
        esc(from_uri),
        esc(csrf),
        esc(username),
        if error.is_some() { " aria-describedby=\"signin-error\"" } else { "" },
        esc(org_name),
    );
    shell("Sign In", &inner)
}

/// The page shown after signing in without an application to return to.
pub fn signed_in_page(login: &str) -> String {
    shell(
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
    shell(&title, &inner)
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
}
