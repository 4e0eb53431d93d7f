//! Finding and parsing scenario files. Errors name file, line, column and field.

use std::path::{Path, PathBuf};

use mock_idp::config::ConfigError;

use super::model::{Action, Scenario};

/// A parsed scenario and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub scenario: Scenario,
}

fn locate(src: &str, needle: &str) -> (Option<usize>, Option<usize>) {
    for (i, line) in src.lines().enumerate() {
        if let Some(c) = line.find(needle) {
            return (Some(i + 1), Some(c + 1));
        }
    }
    (None, None)
}

/// Parses scenario YAML; `file` names the source in errors.
pub fn parse(src: &str, file: &str) -> Result<Scenario, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(src);
    let s: Scenario = serde_path_to_error::deserialize(de).map_err(|e| mock_idp::config::yaml_error(e, src, file))?;
    let err = |field: String, needle: &str, message: String| {
        let (line, column) = locate(src, needle);
        ConfigError { file: file.into(), line, column, field, message }
    };
    if s.name.trim().is_empty() {
        return Err(err("name".into(), "name:", "a scenario needs a name".into()));
    }
    if s.steps.is_empty() {
        return Err(err("steps".into(), "steps:", "a scenario needs at least one step".into()));
    }
    for (i, step) in s.steps.iter().enumerate() {
        let actor = match &step.action {
            Action::SignIn(a) => Some(&a.actor),
            Action::Request(a) => Some(&a.actor),
            Action::SignOut(a) => Some(&a.actor),
            Action::IdpLogin(a) => Some(&a.actor),
            Action::IdpRefresh(a) => Some(&a.actor),
            _ => None,
        };
        if let Some(a) = actor
            && !s.actors.is_empty()
            && !s.actors.contains_key(a)
        {
            return Err(err(
                format!("steps[{i}].{}.actor", step.action.name()),
                &format!("actor: {a}"),
                format!("unknown actor {a:?}; declared: {}", s.actors.keys().cloned().collect::<Vec<_>>().join(", ")),
            ));
        }
        if let Action::Check(c) = &step.action {
            for a in c.sessions.keys() {
                if !s.actors.is_empty() && !s.actors.contains_key(a) {
                    return Err(err(format!("steps[{i}].check.sessions.{a}"), a, format!("unknown actor {a:?}")));
                }
            }
        }
    }
    if let Some(l) = &s.level
        && !matches!(l.as_str(), "required" | "recommended")
    {
        return Err(err("level".into(), "level:", format!("level is required or recommended, got {l:?}")));
    }
    for (name, a) in &s.actors {
        if let Some(k) = &a.kind
            && !matches!(k.as_str(), "http" | "browser")
        {
            return Err(err(format!("actors.{name}.kind"), k, format!("kind is http or browser, got {k:?}")));
        }
    }
    const ENDPOINTS: &[&str] =
        &["authorize", "token", "keys", "userinfo", "introspect", "revoke", "logout", "discovery", "authn", "login", "api"];
    for (i, step) in s.steps.iter().enumerate() {
        let f = |x: &str| format!("steps[{i}].{}.{x}", step.action.name());
        match &step.action {
            Action::SignIn(si) => {
                if let Some(v) = &si.via
                    && !matches!(v.as_str(), "form" | "authn" | "browser")
                {
                    return Err(err(f("via"), v, format!("via is form, authn or browser, got {v:?}")));
                }
            }
            Action::Request(r) => {
                if !matches!(r.method.to_uppercase().as_str(), "GET" | "POST" | "PUT" | "DELETE") {
                    return Err(err(f("method"), &r.method, format!("method is GET, POST, PUT or DELETE, got {:?}", r.method)));
                }
                if r.concurrent.is_some_and(|n| n == 0 || n > 256) {
                    return Err(err(f("concurrent"), "concurrent", "concurrent is between 1 and 256".into()));
                }
            }
            Action::IdpRefresh(r) if r.concurrent.is_some_and(|n| n == 0 || n > 256) => {
                return Err(err(f("concurrent"), "concurrent", "concurrent is between 1 and 256".into()));
            }
            Action::WaitFor(w)
                if !(w.step_seconds > 0.0 && w.step_seconds.is_finite() && w.max_seconds >= 0.0 && w.max_seconds.is_finite()) =>
            {
                return Err(err(f("step_seconds"), "wait_for", "step_seconds must be above 0 and max_seconds at least 0".into()));
            }
            Action::Check(c) => {
                for rc in &c.requests {
                    if !ENDPOINTS.contains(&rc.endpoint.as_str()) {
                        return Err(err(
                            f("requests"),
                            &rc.endpoint,
                            format!("unknown endpoint {:?}; one of {}", rc.endpoint, ENDPOINTS.join(", ")),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    for t in s.targets.iter() {
        if !matches!(t.as_str(), "stub" | "external") {
            return Err(err("targets".into(), t, format!("unknown target kind {t:?}: stub or external")));
        }
    }
    for (i, step) in s.steps.iter().enumerate() {
        if let Action::Sleep(sl) = &step.action
            && !(0.0..=30.0).contains(&sl.seconds)
        {
            return Err(err(format!("steps[{i}].sleep.seconds"), "sleep:", format!("between 0 and 30 real seconds, got {}", sl.seconds)));
        }
    }
    // The IdP overrides are checked now, so a bad leeway or an unknown client_id is a file error (exit 2)
    // with a position, not a failure when the scenario runs.
    if let Err(m) = super::runner::tenant_for(&s) {
        let field = m.split(':').next().unwrap_or("idp").to_string();
        let key = field.rsplit('.').next().unwrap_or("idp").to_string();
        let (line, column) = match locate(src, &format!("{key}:")) {
            (Some(l), c) => (Some(l), c),
            _ => locate(src, "idp:"),
        };
        let message = m.split_once(": ").map(|(_, rest)| rest.to_string()).unwrap_or(m.clone());
        return Err(ConfigError { file: file.into(), line, column, field, message });
    }
    for r in s.requires.iter() {
        if !matches!(r.as_str(), "browser" | "node") {
            return Err(err("requires".into(), r, format!("unknown requirement {r:?}: browser or node")));
        }
    }
    Ok(s)
}

/// Reads one file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: name.clone(),
        line: None,
        column: None,
        field: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    Ok(Loaded { path: path.to_path_buf(), scenario: parse(&src, &name)? })
}

/// Every `*.yaml`/`*.yml` under the paths (files are taken as given), sorted by path.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)?.filter_map(Result::ok).map(|e| e.path()).collect();
            entries.sort();
            for e in entries {
                walk(&e, out)?;
            }
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    for p in paths {
        if !p.exists() {
            return Err(format!("{}: no such file or directory", p.display()));
        }
        if p.is_file() {
            out.push(p.clone());
        } else {
            walk(p, &mut out).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
