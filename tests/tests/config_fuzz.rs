//! Config and scenario files, fuzzed: proptest mutates the real files — the default tenant, the compose
//! tenant, every scenario under scenarios/, the stub BSR's config shape — by deleting, repeating, swapping,
//! re-indenting and truncating lines and planting odd bytes, unknown keys and wrong scalars, and feeds them
//! to `TenantConfig::parse`, `BsrConfig::parse` and `harness::scenario::load::parse`. None may panic; every
//! error names the file, and its line, column and field whenever serde_yaml knows them.

use std::path::PathBuf;
use std::sync::OnceLock;

use harness::bsr::BsrConfig;
use harness::scenario::model::Scenario;
use mock_idp::TenantConfig;
use mock_idp::config::{ConfigError, DEFAULT_TENANT_YAML};
use proptest::prelude::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn scenarios() -> &'static Vec<(String, String)> {
    static S: OnceLock<Vec<(String, String)>> = OnceLock::new();
    S.get_or_init(|| {
        let files = harness::scenario::load::discover(&[repo().join("scenarios")]).unwrap();
        assert!(files.len() >= 40, "{}", files.len());
        files.iter().map(|p| (p.display().to_string(), std::fs::read_to_string(p).unwrap())).collect()
    })
}

fn tenants() -> Vec<(String, String)> {
    vec![
        ("default-tenant.yaml".into(), DEFAULT_TENANT_YAML.into()),
        ("docker/tenant.yaml".into(), std::fs::read_to_string(repo().join("docker/tenant.yaml")).unwrap()),
    ]
}

const BSR_FILE: &str = "addr: 127.0.0.1:3001\npublic_url: http://localhost:3001\norganization: bufco\nadmin: {username: admin, password: admin-password}\nsso:\n  provider: oidc\n  issuer_url: http://127.0.0.1:8080/\n  client_id: bsr-local\n  client_secret: s3cret\n  logout_url: http://127.0.0.1:8080/oauth2/v1/logout\nswitches:\n  refresh_strategy: naive\n  jwks: startup-only\n  refresh_nonce: strict\n  clock_offset_seconds: -600\n  clock_skew_seconds: 30\n  scopes: [openid, email, offline_access]\n  revoke_on_logout: true\nhttp_timeout_ms: 250\n";

/// One change to a YAML text.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    RepeatLine(usize),
    SwapLines(usize, usize),
    Indent(usize, i8),
    Truncate(usize),
    Insert(usize, String),
    UnknownKey(usize),
    ReplaceScalar(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let odd = prop_oneof![
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("{".to_string()),
        Just("]".to_string()),
        Just("\t".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!binary ".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("#".to_string()),
        Just("%YAML 1.2\n".to_string()),
        Just("\u{feff}".to_string()),
        Just("\u{0}".to_string()),
        Just("~".to_string()),
        Just("ü".to_string()),
        any::<String>(),
    ];
    let scalar = prop_oneof![
        Just("-1".to_string()),
        Just("999999999999999999999".to_string()),
        Just("1.5".to_string()),
        Just("null".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("true".to_string()),
        Just("\"\"".to_string()),
        Just("ACTIVE".to_string()),
        Just("not-a-url".to_string()),
        Just("http://x".to_string()),
        "[a-z_]{1,12}",
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::RepeatLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (any::<usize>(), -4i8..4).prop_map(|(a, d)| Mutation::Indent(a, d)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), odd).prop_map(|(a, s)| Mutation::Insert(a, s)),
        any::<usize>().prop_map(Mutation::UnknownKey),
        (any::<usize>(), scalar).prop_map(|(a, s)| Mutation::ReplaceScalar(a, s)),
    ]
}

fn apply(src: &str, ms: &[Mutation]) -> String {
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    for m in ms {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match m {
            Mutation::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Mutation::RepeatLine(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::SwapLines(a, b) => lines.swap(a % n, b % n),
            Mutation::Indent(i, d) => {
                let l = &mut lines[i % n];
                if *d > 0 {
                    *l = format!("{}{l}", " ".repeat(*d as usize));
                } else {
                    let cut = l.len() - l.trim_start().len();
                    *l = l[cut.min((-*d) as usize)..].to_string();
                }
            }
            Mutation::Truncate(i) => {
                let all = lines.join("\n");
                let mut at = i % (all.len() + 1);
                while !all.is_char_boundary(at) {
                    at -= 1;
                }
                lines = all[..at].lines().map(str::to_string).collect();
            }
            Mutation::Insert(i, s) => {
                let l = &mut lines[i % n];
                let mut at = i % (l.len() + 1);
                while !l.is_char_boundary(at) {
                    at -= 1;
                }
                l.insert_str(at, s);
            }
            Mutation::UnknownKey(i) => {
                let indent: String = lines[i % n].chars().take_while(|c| *c == ' ').collect();
                lines.insert(i % n, format!("{indent}bogus_key: 1"));
            }
            Mutation::ReplaceScalar(i, s) => {
                let l = &mut lines[i % n];
                if let Some(p) = l.find(": ") {
                    l.truncate(p + 2);
                    l.push_str(s);
                }
            }
        }
    }
    lines.join("\n") + "\n"
}

/// What serde_yaml itself says about the text for the target type: its position, if any.
fn serde_location<T: serde::de::DeserializeOwned>(src: &str) -> Option<(usize, usize)> {
    match T::deserialize(serde_yaml::Deserializer::from_str(src)) {
        Ok(_) => None,
        Err(e) => e.location().map(|l| (l.line(), l.column())),
    }
}

fn check<T: serde::de::DeserializeOwned>(file: &str, src: &str, result: Result<(), ConfigError>) -> Result<(), TestCaseError> {
    let Err(e) = result else { return Ok(()) };
    prop_assert_eq!(&e.file, file);
    prop_assert!(e.to_string().starts_with(file), "{e}");
    prop_assert!(!e.message.is_empty(), "{e:?}");
    let lines = src.lines().count().max(1);
    if let Some(l) = e.line {
        prop_assert!((1..=lines + 1).contains(&l), "line {l} of {lines}: {e}");
        prop_assert!(e.column.is_some_and(|c| c >= 1), "{e:?}");
    }
    // Where serde_yaml knows the position of its error, the error carries one.
    if serde_location::<T>(src).is_some() {
        prop_assert!(e.line.is_some() && e.column.is_some(), "serde_yaml had a position, the error has none: {e:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_tenant_files_never_panic_and_errors_are_located(which in 0..2usize, ms in proptest::collection::vec(mutation(), 1..4)) {
        let (name, src) = &tenants()[which];
        let text = apply(src, &ms);
        let r = TenantConfig::parse(&text, name).map(|_| ());
        check::<TenantConfig>(name, &text, r)?;
    }

    #[test]
    fn mutated_scenarios_never_panic_and_errors_are_located(which in any::<prop::sample::Index>(), ms in proptest::collection::vec(mutation(), 1..4)) {
        let (name, src) = which.get(scenarios());
        let text = apply(src, &ms);
        let r = harness::scenario::load::parse(&text, name).map(|_| ());
        check::<Scenario>(name, &text, r)?;
    }

    #[test]
    fn mutated_bsr_configs_never_panic_and_errors_are_located(ms in proptest::collection::vec(mutation(), 1..4)) {
        let text = apply(BSR_FILE, &ms);
        let r = BsrConfig::parse(&text, "bsr.yaml").map(|_| ());
        check::<harness::bsr::config::BsrFile>("bsr.yaml", &text, r)?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = TenantConfig::parse(&text, "t.yaml");
        let _ = BsrConfig::parse(&text, "b.yaml");
        let _ = harness::scenario::load::parse(&text, "s.yaml");
    }
}

#[test]
fn the_unmutated_files_parse() {
    for (name, src) in tenants() {
        TenantConfig::parse(&src, &name).unwrap_or_else(|e| panic!("{e}"));
    }
    for (name, src) in scenarios() {
        harness::scenario::load::parse(src, name).unwrap_or_else(|e| panic!("{e}"));
    }
    BsrConfig::parse(BSR_FILE, "bsr.yaml").unwrap();
}

#[test]
fn a_wrong_field_names_file_line_column_and_field() {
    let src = DEFAULT_TENANT_YAML.replacen("lifetime_minutes: 120", "lifetime_minutes: soon", 1);
    let src =
        if src.contains("lifetime_minutes: soon") { src } else { format!("{DEFAULT_TENANT_YAML}session:\n  lifetime_minutes: soon\n") };
    let e = TenantConfig::parse(&src, "tenant.yaml").unwrap_err();
    assert_eq!(e.field, "session.lifetime_minutes");
    let line = src.lines().position(|l| l.contains("lifetime_minutes: soon")).unwrap() + 1;
    assert_eq!((e.line, e.column.is_some()), (Some(line), true), "{e}");
    assert!(e.to_string().starts_with(&format!("tenant.yaml:{line}:")), "{e}");
}

/// A missing field is placed at the mapping that lacks it (serde_yaml put it at the end of a later node, the
/// end of the file even): a sequence item, or a nested key, in block style.
#[test]
fn a_missing_field_names_the_line_of_the_mapping_that_lacks_it() {
    // alice's profile deleted from the default tenant.
    let profile = DEFAULT_TENANT_YAML.lines().find(|l| l.trim_start().starts_with("profile: {login: alice@example.com")).unwrap();
    let src = DEFAULT_TENANT_YAML.replacen(&format!("{profile}\n"), "", 1);
    let e = TenantConfig::parse(&src, "tenant.yaml").unwrap_err();
    let item = src.lines().position(|l| l.trim_start() == "- id: 00u1alice00000000001").unwrap() + 1;
    assert_eq!(e.to_string(), format!("tenant.yaml:{item}:3: field `users[0]`: missing field `profile`"));
    // The second item, and a nested mapping whose sequence sits at its key's indentation.
    let src = "users:\n  - id: 00u1alice00000000001\n    profile: {login: a@example.com, email: a@example.com, firstName: A, lastName: B}\n  - id: 00u1bob0000000000001\n    status: ACTIVE\n";
    assert_eq!(TenantConfig::parse(src, "t.yaml").unwrap_err().to_string(), "t.yaml:4:3: field `users[1]`: missing field `profile`");
    let src = "apps:\n- label: x\n  credentials:\n    oauthClient:\n      client_secret: s\n";
    assert_eq!(
        TenantConfig::parse(src, "t.yaml").unwrap_err().to_string(),
        "t.yaml:4:5: field `apps[0].credentials.oauthClient`: missing field `client_id`"
    );
}
