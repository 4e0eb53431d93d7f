//! docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs on these machines).
//!
//! `scripts/check-compose` validates the compose file against the Compose specification and lints the
//! Dockerfile. This file checks what a schema cannot: that the two fit each other and the binaries. Every
//! service runs a program its image contains, and every command, flag and environment variable they use is
//! run for real against the built `mock-idp` and `harness` on loopback. Each process gets the environment a
//! container would: the image stage's `ENV`, then the service's `environment:` (with the compose file's
//! defaults, as if no variable were set). Container addresses become loopback ports, and mounted or copied
//! paths become the repository paths they come from; nothing else is changed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HOST, LOCATION};
use serde_json::Value;
use serde_yaml::Value as Yaml;
use tests::{ADMIN_TOKEN, ALICE, ALICE_ID, APP_ID, Binaries, CLIENT_ID, CLIENT_SECRET, PASSWORD, binaries, url_param};

// ---------------------------------------------------------------------------------------------------
// The repository, the binaries and what they declare.

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate lives in the workspace root").to_path_buf()
}

fn bins() -> &'static Binaries {
    binaries()
}

/// A stdout that is gone (`harness list | head -1`, `mock-idp --print-default-config | head -1`) ends the
/// output, not the program with a panic: the commands run with stdout the write end of a pipe whose read
/// end is already closed, so every write fails with EPIPE.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::os::fd::{FromRawFd, OwnedFd};
    for (program, args) in [(&bins().harness, vec!["list"]), (&bins().mock_idp, vec!["--print-default-config"])] {
        let mut fds = [0; 2];
        // SAFETY: pipe fills two descriptors, which are then owned here (the read end closed at once).
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(read);
        let out = Command::new(program).args(&args).current_dir(repo()).stdout(write).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!((out.status.code(), stderr.as_ref()), (Some(0), ""), "{program:?} {args:?}");
    }
    // A file that cannot be written is not a reader that went away: the default configuration is not
    // silently empty.
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = Command::new(&bins().mock_idp).arg("--print-default-config").stdout(full).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "mock-idp: cannot write the default configuration: No space left on device (os error 28)\n"
    );
}

/// What a program's `--help` declares: its long flags and the environment variables behind them.
#[derive(Debug, Default)]
struct Declared {
    flags: BTreeSet<String>,
    env: BTreeSet<String>,
}

fn declared(program: &Path, subcommand: Option<&str>) -> Declared {
    let out = Command::new(program).args(subcommand).arg("--help").output().expect("--help runs");
    assert!(out.status.success(), "{} {subcommand:?} --help", program.display());
    let text = String::from_utf8(out.stdout).expect("help is UTF-8");
    let mut d = Declared::default();
    for line in text.lines() {
        // Option lines start with the flag: `--addr <ADDR>` or `-q, --quiet`.
        let t = line.trim_start();
        let t = match t.as_bytes() {
            [b'-', c, b',', b' ', ..] if *c != b'-' => &t[4..],
            _ => t,
        };
        if let Some(f) = t.strip_prefix("--") {
            d.flags.insert(format!("--{}", f.split([' ', '=']).next().unwrap_or_default()));
        }
    }
    let mut rest = text.as_str();
    while let Some(i) = rest.find("[env: ") {
        rest = &rest[i + 6..];
        d.env.insert(rest.split(['=', ']']).next().unwrap_or_default().to_string());
    }
    d
}

/// The environment variable each binary reads for its log filter (not a flag, so not in `--help`).
fn log_var(program: &str) -> &'static str {
    match program {
        "mock-idp" => "MOCK_IDP_LOG",
        "harness" => "HARNESS_LOG",
        other => panic!("no log variable for {other}"),
    }
}

/// Programs that Debian packages put on PATH, for the packages the Dockerfile installs.
const PACKAGE_PROGRAMS: &[(&str, &str)] = &[("curl", "curl"), ("chromium-driver", "chromedriver"), ("chromium", "chromium")];

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

// ---------------------------------------------------------------------------------------------------
// docker-compose.yml.

/// Compose's interpolation with no variable set: `${NAME:-default}` and `${NAME-default}` become the
/// default, `$$` a dollar sign. The names are collected so the README can be checked to document them.
fn interpolate(s: &str, names: &mut BTreeSet<String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
            continue;
        }
        let body = after.strip_prefix('{').unwrap_or_else(|| panic!("{s:?}: write ${{NAME:-default}}, not a bare $NAME"));
        let end = body.find('}').unwrap_or_else(|| panic!("{s:?}: unclosed ${{"));
        let expr = &body[..end];
        let (name, default) = expr
            .split_once(":-")
            .or_else(|| expr.split_once('-'))
            .unwrap_or_else(|| panic!("{s:?}: ${{{expr}}} has no default, so the file would not work with no variables set"));
        names.insert(name.to_string());
        out.push_str(default);
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    out
}

fn interpolate_tree(v: &mut Yaml, names: &mut BTreeSet<String>) {
    match v {
        Yaml::String(s) => *s = interpolate(s, names),
        Yaml::Sequence(items) => items.iter_mut().for_each(|i| interpolate_tree(i, names)),
        Yaml::Mapping(m) => m.iter_mut().for_each(|(_, i)| interpolate_tree(i, names)),
        _ => {}
    }
}

#[derive(Debug)]
struct Service {
    name: String,
    context: String,
    target: String,
    command: Vec<String>,
    /// `None`: passed on from where compose runs when set there, absent otherwise.
    env: Vec<(String, Option<String>)>,
    health: Option<Vec<String>>,
    ports: Vec<String>,
    /// (host source, container target).
    volumes: Vec<(String, String)>,
    profiles: Vec<String>,
    depends_on: BTreeMap<String, String>,
}

struct Compose {
    services: BTreeMap<String, Service>,
    /// Every variable the file interpolates or passes on.
    variables: BTreeSet<String>,
}

fn strings(v: &Yaml, what: &str) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("{what}: a list (exec form, so no shell is needed in the image)"))
        .iter()
        .map(|s| match s {
            Yaml::String(s) => s.clone(),
            Yaml::Number(n) => n.to_string(),
            other => panic!("{what}: {other:?} is not a string"),
        })
        .collect()
}

fn compose() -> Compose {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).expect("docker-compose.yml");
    let mut doc: Yaml = serde_yaml::from_str(&text).expect("docker-compose.yml is YAML");
    let mut variables = BTreeSet::new();
    interpolate_tree(&mut doc, &mut variables);
    let mut services = BTreeMap::new();
    for (name, s) in doc["services"].as_mapping().expect("services") {
        let name = name.as_str().expect("service names are strings").to_string();
        let what = |field: &str| format!("services.{name}.{field}");
        let env: Vec<(String, Option<String>)> = s["environment"]
            .as_mapping()
            .map(|m| m.iter().map(|(k, v)| (k.as_str().expect("env names").to_string(), v.as_str().map(str::to_string))).collect())
            .unwrap_or_default();
        for (k, v) in &env {
            if v.is_none() {
                variables.insert(k.clone());
            }
        }
        let health = s.get("healthcheck").map(|h| {
            let t = strings(&h["test"], &what("healthcheck.test"));
            assert_eq!(t[0], "CMD", "{}: the CMD form runs without a shell", what("healthcheck.test"));
            t[1..].to_vec()
        });
        let volumes = s
            .get("volumes")
            .map(|v| strings(v, &what("volumes")))
            .unwrap_or_default()
            .iter()
            .map(|v| {
                let mut parts = v.split(':');
                (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string())
            })
            .collect();
        let depends_on = s
            .get("depends_on")
            .and_then(Yaml::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v["condition"].as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let svc = Service {
            name: name.clone(),
            context: s["build"]["context"].as_str().unwrap_or_else(|| panic!("{}", what("build.context"))).to_string(),
            target: s["build"]["target"].as_str().unwrap_or_else(|| panic!("{}", what("build.target"))).to_string(),
            command: strings(&s["command"], &what("command")),
            env,
            health,
            ports: s.get("ports").map(|p| strings(p, &what("ports"))).unwrap_or_default(),
            volumes,
            profiles: s.get("profiles").map(|p| strings(p, &what("profiles"))).unwrap_or_default(),
            depends_on,
        };
        services.insert(name, svc);
    }
    Compose { services, variables }
}

impl Compose {
    fn service(&self, name: &str) -> &Service {
        self.services.get(name).unwrap_or_else(|| panic!("docker-compose.yml has no service {name}"))
    }
}

impl Service {
    fn env(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
    }
}

// ---------------------------------------------------------------------------------------------------
// The Dockerfile.

#[derive(Debug)]
struct Stage {
    name: String,
    from: String,
    /// (instruction, arguments), continuation lines joined.
    body: Vec<(String, String)>,
}

#[derive(Debug)]
struct CopyOp {
    from: Option<String>,
    sources: Vec<String>,
    dest: String,
}

fn dockerfile() -> Vec<Stage> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let mut instructions = Vec::new();
    let mut buf = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            buf.push_str(head);
            buf.push(' ');
            continue;
        }
        buf.push_str(t);
        let (word, rest) = buf.split_once(' ').unwrap_or((&buf, ""));
        instructions.push((word.to_uppercase(), rest.trim().to_string()));
        buf.clear();
    }
    let mut stages: Vec<Stage> = Vec::new();
    for (word, rest) in instructions {
        if word == "FROM" {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let name = match parts.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => name.to_string(),
                _ => stages.len().to_string(),
            };
            stages.push(Stage { name, from: parts[0].to_string(), body: Vec::new() });
        } else if let Some(s) = stages.last_mut() {
            s.body.push((word, rest));
        }
    }
    stages
}

impl Stage {
    fn all<'a>(&'a self, word: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.body.iter().filter(move |(w, _)| w == word).map(|(_, r)| r.as_str())
    }
    fn last<'a>(&'a self, word: &'a str) -> Option<&'a str> {
        self.all(word).last()
    }
    fn copies(&self) -> Vec<CopyOp> {
        self.all("COPY")
            .map(|r| {
                let words: Vec<&str> = r.split_whitespace().collect();
                let from = words.iter().find_map(|w| w.strip_prefix("--from=")).map(str::to_string);
                let plain: Vec<String> = words.iter().filter(|w| !w.starts_with("--")).map(|w| w.to_string()).collect();
                let (dest, sources) = plain.split_last().expect("COPY has a destination");
                CopyOp { from, sources: sources.to_vec(), dest: dest.clone() }
            })
            .collect()
    }
    fn env(&self) -> Vec<(String, String)> {
        self.all("ENV")
            .flat_map(|r| r.split_whitespace())
            .map(|kv| {
                let (k, v) = kv.split_once('=').expect("ENV uses the NAME=value form");
                (k.to_string(), v.to_string())
            })
            .collect()
    }
    /// Debian packages installed with apt-get in this stage.
    fn packages(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for run in self.all("RUN") {
            for seg in run.split("&&") {
                if let Some((_, list)) = seg.split_once("apt-get install") {
                    out.extend(list.split_whitespace().filter(|w| !w.starts_with('-')).map(str::to_string));
                }
            }
        }
        out
    }
    /// The programs this stage's image has: binaries copied to /usr/local/bin and the packages' programs.
    fn programs(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .copies()
            .iter()
            .filter(|c| c.dest.trim_end_matches('/') == "/usr/local/bin")
            .flat_map(|c| c.sources.iter().map(|s| s.rsplit('/').next().unwrap_or_default().to_string()))
            .collect();
        let pk = self.packages();
        out.extend(PACKAGE_PROGRAMS.iter().filter(|(p, _)| pk.contains(*p)).map(|(_, prog)| prog.to_string()));
        out
    }
    fn cmd(&self) -> Vec<String> {
        serde_json::from_str(self.last("CMD").unwrap_or_else(|| panic!("stage {} has no CMD", self.name))).expect("CMD in exec (JSON) form")
    }
}

fn stage<'a>(stages: &'a [Stage], name: &str) -> &'a Stage {
    stages.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("the Dockerfile has no stage {name}"))
}

// ---------------------------------------------------------------------------------------------------
// Running a service's command outside Docker.

/// Substring replacements from container terms (addresses, in-container paths) to loopback terms.
#[derive(Default, Clone)]
struct Map(Vec<(String, String)>);

impl Map {
    fn with(mut self, from: &str, to: &str) -> Self {
        self.0.push((from.to_string(), to.to_string()));
        self
    }
    fn apply(&self, s: &str) -> String {
        self.0.iter().fold(s.to_string(), |acc, (f, t)| acc.replace(f, t))
    }
    /// The service's mounts, then the image's working directory, as the repository paths they come from.
    fn paths(mut self, svc: &Service, image: &Stage) -> Self {
        for (src, target) in &svc.volumes {
            self = self.with(target, &repo().join(src.trim_start_matches("./")).display().to_string());
        }
        let workdir = image.last("WORKDIR").expect("the runtime stage sets WORKDIR");
        self.with(workdir, &repo().display().to_string())
    }
}

/// `program args…` with a container's environment: only the stage's ENV, then the service's
/// `environment:` (pass-on variables only when `set` gives them), then `set`, all mapped to loopback.
fn container_command(argv: &[String], svc: &Service, image: &Stage, map: &Map, set: &[(&str, &str)]) -> Command {
    let b = bins();
    let program = match argv[0].as_str() {
        "mock-idp" => b.mock_idp.clone(),
        "harness" => b.harness.clone(),
        other => on_path(other).unwrap_or_else(|| panic!("{other} is not installed on this machine")),
    };
    let mut c = Command::new(program);
    c.args(argv[1..].iter().map(|a| map.apply(a))).env_clear().current_dir(repo());
    for (k, v) in image.env() {
        c.env(k, map.apply(&v));
    }
    for (k, v) in &svc.env {
        if let Some(v) = v {
            c.env(k, map.apply(v));
        }
    }
    for (k, v) in set {
        c.env(k, v);
    }
    c
}

/// A running server: its stdout lines as they come, its stderr collected; killed when dropped, so a failed
/// assertion leaves nothing running.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Proc {
    fn spawn(mut c: Command) -> Proc {
        let mut child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the program starts");
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("piped stdout");
        // The reader drains stdout until the process ends, so a later print never hits a closed pipe.
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut err, sink) = (child.stderr.take().expect("piped stderr"), stderr.clone());
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("stderr lock").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Proc { child, lines, stderr, stderr_reader: Some(stderr_reader) }
    }

    /// The next stdout line, or the process's exit and stderr if it ended first.
    fn line(&mut self) -> Result<String, String> {
        match self.lines.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => Ok(l),
            Err(RecvTimeoutError::Timeout) => Err("no output within 60 s".into()),
            Err(RecvTimeoutError::Disconnected) => {
                let st = self.child.wait().expect("wait");
                // The reader ends at the pipe's end of file, so joining it collects all of stderr.
                if let Some(r) = self.stderr_reader.take() {
                    let _ = r.join();
                }
                Err(format!("exited ({st}) with stderr: {}", self.stderr()))
            }
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// SIGTERM, as `docker stop` sends, and the exit status.
    fn terminate(&mut self) -> ExitStatus {
        let st = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(st.success(), "kill -TERM");
        let status = self.child.wait().expect("wait");
        if let Some(r) = self.stderr_reader.take() {
            let _ = r.join();
        }
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server on a port picked just before (for a public URL that must name the port in advance) and
/// returns it with its first stdout line; retries with another port if that one was taken meanwhile.
fn start_on_free_port(make: impl Fn(u16) -> Command) -> (Proc, u16, String) {
    let mut last = String::new();
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut p = Proc::spawn(make(port));
        match p.line() {
            Ok(l) => return (p, port, l),
            // The port was taken meanwhile (mock-idp: "cannot listen on …", harness bsr: "cannot start on …").
            Err(e) if e.contains("Address already in use") => last = e,
            Err(e) => panic!("did not start: {e}"),
        }
    }
    panic!("no free port after 5 tries: {last}")
}

fn run(mut c: Command) -> std::process::Output {
    c.stdin(Stdio::null()).output().expect("the command runs")
}

fn http() -> reqwest::Client {
    // reqwest is built with rustls and no default crypto provider in this workspace.
    harness::crypto::install();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a reqwest client builds")
}

async fn get_json(url: &str) -> Value {
    let r = http().get(url).send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::OK, "GET {url}");
    r.json().await.expect("JSON")
}

async fn admin_get(base: &str, path: &str) -> Value {
    let r = http().get(format!("{base}{path}")).header(AUTHORIZATION, format!("SSWS {ADMIN_TOKEN}")).send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::OK, "GET {path}");
    r.json().await.expect("JSON")
}

/// Starts the mock-idp service as composed, on a loopback port, with its issuer overridden through the
/// compose file's pass-on variable MOCK_IDP_BASE_URL so that loopback clients can use it.
fn start_composed_idp(c: &Compose, stages: &[Stage]) -> (Proc, String) {
    let svc = c.service("mock-idp");
    let image = stage(stages, &svc.target);
    let (p, port, line) = start_on_free_port(|port| {
        let map = Map::default().with("0.0.0.0:8080", &format!("127.0.0.1:{port}")).paths(svc, image);
        let base = format!("http://127.0.0.1:{port}");
        container_command(&svc.command, svc, image, &map, &[("MOCK_IDP_BASE_URL", &base)])
    });
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(line, format!("mock-idp listening on {base}"));
    (p, base)
}

// ---------------------------------------------------------------------------------------------------
// The files fit each other and the binaries.

#[test]
fn compose_services_run_programs_their_images_have_with_declared_flags_and_variables() {
    let c = compose();
    let stages = dockerfile();
    let b = bins();
    assert_eq!(
        c.services.keys().map(String::as_str).collect::<Vec<_>>(),
        ["browser-runner", "chromedriver", "mock-idp", "runner", "stub-bsr"]
    );
    assert_eq!(stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["build", "chromedriver", "runtime"]);
    // `docker build .` builds the last stage: the runtime image.
    assert_eq!(stages.last().map(|s| s.name.as_str()), Some("runtime"));

    let declared_for = |argv: &[String]| -> Declared {
        match argv[0].as_str() {
            "mock-idp" => declared(&b.mock_idp, None),
            "harness" => declared(&b.harness, Some(&argv[1])),
            other => panic!("{other}: not one of our binaries"),
        }
    };

    for svc in c.services.values() {
        assert_eq!(svc.context, ".", "{}: the build context is the repository", svc.name);
        let image = stage(&stages, &svc.target);
        let programs = image.programs();
        assert!(programs.contains(&svc.command[0]), "{}: {} is not in stage {} ({programs:?})", svc.name, svc.command[0], image.name);
        if let Some(h) = &svc.health {
            assert!(programs.contains(&h[0]), "{}: health check program {} is not in stage {}", svc.name, h[0], image.name);
        }
        assert!(programs.contains(&image.cmd()[0]), "stage {}: CMD {} is not in the image", image.name, image.cmd()[0]);
        if svc.command[0] == "chromedriver" {
            continue;
        }
        let log = log_var(&svc.command[0]);
        let d = declared_for(&svc.command);
        for a in svc.command.iter().filter(|a| a.starts_with("--")) {
            let flag = a.split('=').next().unwrap_or_default();
            assert!(d.flags.contains(flag), "{}: {} {flag} is not a flag of the binary ({:?})", svc.name, svc.command[0], d.flags);
        }
        for (k, _) in &svc.env {
            assert!(d.env.contains(k) || k == log, "{}: {} does not read {k} ({:?})", svc.name, svc.command.join(" "), d.env);
        }
        // Our binaries' health checks: `mock-idp --health-check URL`, `harness health-check URL` (the
        // subcommand's --help runs, so it exists).
        if let Some(h) = svc.health.as_ref().filter(|h| h[0] == "mock-idp" || h[0] == "harness") {
            let d = declared_for(h);
            for a in h.iter().filter(|a| a.starts_with("--")) {
                let flag = a.split('=').next().unwrap_or_default();
                assert!(d.flags.contains(flag), "{}: health check {} {flag} is not a flag of the binary ({:?})", svc.name, h[0], d.flags);
            }
        }
    }

    // The image's own ENV: each variable is read by one of the programs it has.
    let runtime = stage(&stages, "runtime");
    let all: Vec<Declared> = vec![
        declared(&b.mock_idp, None),
        declared(&b.harness, Some("up")),
        declared(&b.harness, Some("bsr")),
        declared(&b.harness, Some("run")),
    ];
    for (k, _) in runtime.env() {
        assert!(all.iter().any(|d| d.env.contains(&k)), "runtime ENV {k} is read by no binary");
    }

    // The build stage builds what the runtime stage copies, from every workspace member, with --locked.
    let build = stage(&stages, "build");
    assert!(build.from.starts_with("rust:"), "{}", build.from);
    let run = build.all("RUN").collect::<Vec<_>>().join("\n");
    assert!(run.contains("cargo build --release -p mock-idp -p harness --locked"), "{run}");
    assert!(run.contains("cp target/release/mock-idp target/release/harness /out/"), "{run}");
    let copied: Vec<_> = runtime.copies().into_iter().filter(|c| c.from.is_some()).collect();
    assert_eq!(copied.len(), 1);
    assert_eq!(copied[0].from.as_deref(), Some("build"));
    assert_eq!(copied[0].sources, ["/out/mock-idp", "/out/harness"]);
    let meta = run_cargo_metadata();
    let sources: BTreeSet<String> = build.copies().iter().flat_map(|c| c.sources.clone()).collect();
    for m in meta["packages"].as_array().expect("packages") {
        let dir = Path::new(m["manifest_path"].as_str().expect("manifest_path")).parent().expect("a folder").to_path_buf();
        let rel = dir.strip_prefix(repo()).expect("members live in the repository").display().to_string();
        assert!(sources.contains(&rel), "the build stage does not COPY workspace member {rel}: cargo would not load the workspace");
        let name = m["name"].as_str().expect("name");
        if name == "mock-idp" || name == "harness" {
            assert!(
                m["targets"].as_array().expect("targets").iter().any(|t| t["name"] == name && t["kind"][0] == "bin"),
                "{name} has a bin"
            );
        }
    }
    for f in ["Cargo.toml", "Cargo.lock"] {
        assert!(sources.contains(f), "the build stage does not COPY {f}");
    }
    assert!(runtime.programs().is_superset(&["mock-idp".into(), "harness".into()].into()));
    // No curl or other HTTP client: the health checks are the binaries' own.
    assert_eq!(runtime.packages(), BTreeSet::from(["ca-certificates".to_string()]));
    for svc in c.services.values().filter(|s| s.target == "runtime") {
        if let Some(h) = &svc.health {
            assert!(h[0] == "mock-idp" || h[0] == "harness", "{}: health check {h:?}", svc.name);
        }
    }
    let no_tools: BTreeSet<String> = ["gcc", "make", "cargo", "rustc", "build-essential"].map(String::from).into();
    assert!(runtime.packages().is_disjoint(&no_tools), "{:?}", runtime.packages());
    assert_eq!(runtime.last("USER"), Some("10001:10001"));
    assert_eq!(runtime.last("EXPOSE"), Some("8080 3000"));
    assert_eq!(stage(&stages, "chromedriver").last("USER"), Some("10001:10001"));
}

fn run_cargo_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--locked", "--no-deps", "--format-version", "1"])
        .current_dir(repo())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata --locked: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata JSON")
}

#[test]
fn addresses_ports_paths_and_the_issuer_agree_across_the_files() {
    let c = compose();
    let stages = dockerfile();
    let runtime = stage(&stages, "runtime");
    let workdir = runtime.last("WORKDIR").expect("WORKDIR");
    let env: BTreeMap<String, String> = runtime.env().into_iter().collect();

    // The image's defaults: listen on every interface, the compose tenant copied where MOCK_IDP_CONFIG says.
    assert_eq!(env["MOCK_IDP_ADDR"], "0.0.0.0:8080");
    assert_eq!(env["HARNESS_BSR_ADDR"], "0.0.0.0:3000");
    let copies = runtime.copies();
    let dest_of = |src: &str| copies.iter().find(|c| c.sources == [src]).map(|c| format!("{workdir}/{}", c.dest)).unwrap_or_default();
    assert_eq!(env["MOCK_IDP_CONFIG"], dest_of("docker/tenant.yaml"));
    assert_eq!(dest_of("scenarios"), format!("{workdir}/scenarios"));

    // Published ports are on the host's loopback only, and reach the port the service listens on.
    let idp = c.service("mock-idp");
    let bsr = c.service("stub-bsr");
    assert_eq!(idp.ports, ["127.0.0.1:8080:8080"]);
    assert_eq!(bsr.ports, ["127.0.0.1:3000:3000"]);
    assert_eq!(idp.env("MOCK_IDP_ADDR"), Some("0.0.0.0:8080"));
    assert_eq!(bsr.env("HARNESS_BSR_ADDR"), Some("0.0.0.0:3000"));
    // Health checks run inside the container, against the port the service listens on.
    assert_eq!(idp.health.as_ref().map(|h| h.last().cloned()), Some(Some("http://127.0.0.1:8080/.well-known/openid-configuration".into())));
    assert_eq!(bsr.health.as_ref().map(|h| h.last().cloned()), Some(Some("http://127.0.0.1:3000/healthz".into())));
    let cd = c.service("chromedriver");
    assert!(cd.command.contains(&"--port=9515".to_string()));
    assert_eq!(cd.health.as_ref().map(|h| h.last().cloned()), Some(Some("http://127.0.0.1:9515/status".into())));

    // The tenant file is mounted where MOCK_IDP_CONFIG points, and exists.
    assert_eq!(idp.volumes, [("./docker/tenant.yaml".to_string(), "/etc/mock-idp/tenant.yaml".to_string())]);
    assert_eq!(idp.env("MOCK_IDP_CONFIG"), Some("/etc/mock-idp/tenant.yaml"));
    assert!(repo().join("docker/tenant.yaml").is_file());
    assert!(idp.env.iter().any(|(k, v)| k == "MOCK_IDP_BASE_URL" && v.is_none()), "MOCK_IDP_BASE_URL is passed on, not set");

    // Start order and profiles.
    assert_eq!(bsr.depends_on, BTreeMap::from([("mock-idp".to_string(), "service_healthy".to_string())]));
    let runner = c.service("runner");
    assert_eq!(runner.depends_on, BTreeMap::from([("mock-idp".to_string(), "service_healthy".to_string())]));
    assert_eq!(runner.profiles, ["run"]);
    assert_eq!(cd.profiles, ["browser"]);
    assert!(idp.profiles.is_empty() && bsr.profiles.is_empty());

    // The runner: the scenario library mounted over the image's copy, and reports in the mounted ./reports.
    assert_eq!(
        runner.command,
        ["harness", "run", "--idp-url", "http://mock-idp:8080", "--junit", "/reports/junit.xml", "--html", "/reports/run.html"]
    );
    assert!(runner.volumes.contains(&("./scenarios".to_string(), format!("{workdir}/scenarios"))));
    assert!(runner.volumes.contains(&("./reports".to_string(), "/reports".to_string())));
    assert_eq!(runner.env("HARNESS_WEBDRIVER_URL"), None, "the plain runner has no browser: browser scenarios are skipped");

    // The browser runner: the same run, with its browser in the chromedriver sidecar (by service name and
    // port), its stubs on every interface and named by the browser runner's service name.
    let br = c.service("browser-runner");
    assert_eq!(br.profiles, ["browser"]);
    assert_eq!(br.command, runner.command);
    assert_eq!(br.volumes, runner.volumes);
    assert_eq!(
        br.depends_on,
        BTreeMap::from([
            ("chromedriver".to_string(), "service_healthy".to_string()),
            ("mock-idp".to_string(), "service_healthy".to_string())
        ])
    );
    let cd_port = cd.command.iter().find_map(|a| a.strip_prefix("--port=")).expect("chromedriver --port");
    assert_eq!(br.env("HARNESS_WEBDRIVER_URL"), Some(format!("http://{}:{cd_port}", cd.name).as_str()));
    assert_eq!(br.env("HARNESS_LISTEN_HOST"), Some("0.0.0.0"));
    assert_eq!(br.env("HARNESS_PUBLIC_HOST"), Some(br.name.as_str()));
    assert!(cd.command.contains(&"--allowed-ips=".to_string()) && cd.command.contains(&"--allowed-origins=*".to_string()));

    // One issuer everywhere: the tenant's base_url, the stub's BSR_ISSUER and the runner's --idp-url are the
    // mock-idp service's name and port, and the stub's client is the tenant's app with its redirect URIs.
    let tenant = mock_idp::TenantConfig::load(&repo().join("docker/tenant.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tenant.base_url.as_deref(), Some("http://mock-idp:8080"));
    assert_eq!(bsr.env("BSR_ISSUER"), Some("http://mock-idp:8080"));
    let app = &tenant.apps[0];
    assert_eq!(bsr.env("BSR_CLIENT_ID"), Some(app.credentials.oauth_client.client_id.as_str()));
    assert_eq!(bsr.env("BSR_CLIENT_SECRET"), app.credentials.oauth_client.client_secret.as_deref());
    let public = bsr.env("BSR_PUBLIC_URL").expect("BSR_PUBLIC_URL");
    assert_eq!(public, "http://localhost:3000");
    let s = &app.settings.oauth_client;
    assert!(s.redirect_uris.contains(&format!("{public}/oauth2/callback")), "{:?}", s.redirect_uris);
    assert!(s.post_logout_redirect_uris.contains(&format!("{public}/logout")), "{:?}", s.post_logout_redirect_uris);
}

#[test]
fn the_compose_tenant_is_the_default_tenant_with_service_names() {
    let out = run({
        let mut c = Command::new(&bins().mock_idp);
        c.arg("--print-default-config");
        c
    });
    assert!(out.status.success());
    let default: Yaml = serde_yaml::from_slice(&out.stdout).expect("the default tenant is YAML");
    let mut compose: Yaml =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("docker/tenant.yaml")).expect("tenant")).expect("YAML");
    let m = compose.as_mapping_mut().expect("a mapping");
    assert_eq!(m.remove("base_url"), Some(Yaml::from("http://mock-idp:8080")));
    let oc = &mut compose["apps"][0]["settings"]["oauthClient"];
    let uris = |v: &Yaml| v.as_sequence().expect("a list").iter().map(|s| s.as_str().unwrap_or_default().to_string()).collect::<Vec<_>>();
    assert_eq!(
        uris(&oc["redirect_uris"]),
        ["http://stub-bsr:3000/oauth2/callback", "http://localhost:3000/oauth2/callback", "http://127.0.0.1:3000/oauth2/callback"]
    );
    assert_eq!(
        uris(&oc["post_logout_redirect_uris"]),
        ["http://stub-bsr:3000/logout", "http://localhost:3000/logout", "http://127.0.0.1:3000/logout"]
    );
    // Everything else is the default tenant, so scenarios written for it hold against the compose IdP.
    let d = &default["apps"][0]["settings"]["oauthClient"];
    oc["redirect_uris"] = d["redirect_uris"].clone();
    oc["post_logout_redirect_uris"] = d["post_logout_redirect_uris"].clone();
    assert!(compose == default, "docker/tenant.yaml no longer follows the default tenant: run scripts/check-compose --update-tenant");
}

#[test]
fn the_readme_documents_every_variable_the_compose_file_reads() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme.split("## docker-compose").nth(1).expect("README has a section \"## docker-compose\"");
    let c = compose();
    assert!(!c.variables.is_empty());
    for v in &c.variables {
        assert!(section.contains(&format!("`{v}`")), "README's docker-compose section does not document `{v}`");
    }
}

// ---------------------------------------------------------------------------------------------------
// The commands, run for real.

#[tokio::test]
async fn mock_idp_service_serves_the_compose_issuer_and_its_health_check_tells_up_from_down() {
    let c = compose();
    let stages = dockerfile();
    let svc = c.service("mock-idp");
    let image = stage(&stages, &svc.target);
    // Port 0: the listening line says which port it got. MOCK_IDP_LOG=debug shows the variable is read.
    let map = Map::default().with("0.0.0.0:8080", "127.0.0.1:0").paths(svc, image);
    let mut p = Proc::spawn(container_command(&svc.command, svc, image, &map, &[("MOCK_IDP_LOG", "debug")]));
    let line = p.line().unwrap_or_else(|e| panic!("mock-idp did not start: {e}"));
    let base = line.strip_prefix("mock-idp listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    // The issuer is the tenant file's base_url, whatever address the mock is reached at.
    let doc = get_json(&format!("{base}/.well-known/openid-configuration")).await;
    assert_eq!(doc["issuer"], "http://mock-idp:8080");
    assert_eq!(doc["authorization_endpoint"], "http://mock-idp:8080/oauth2/v1/authorize");
    assert_eq!(doc["jwks_uri"], "http://mock-idp:8080/oauth2/v1/keys");
    let custom = get_json(&format!("{base}/oauth2/default/.well-known/openid-configuration")).await;
    assert_eq!(custom["issuer"], "http://mock-idp:8080/oauth2/default");
    let app = admin_get(&base, &format!("/api/v1/apps/{APP_ID}")).await;
    assert_eq!(
        app["settings"]["oauthClient"]["redirect_uris"],
        serde_json::json!([
            "http://stub-bsr:3000/oauth2/callback",
            "http://localhost:3000/oauth2/callback",
            "http://127.0.0.1:3000/oauth2/callback"
        ])
    );

    // The health check, as composed, from inside the "container".
    let health = svc.health.as_ref().expect("mock-idp has a health check");
    let hmap = Map::default().with("http://127.0.0.1:8080", &base);
    let out = run(container_command(health, svc, image, &hmap, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((out.stdout.len(), out.stderr.len()), (0, 0));
    assert!(p.stderr().contains("/.well-known/openid-configuration"), "MOCK_IDP_LOG=debug logs requests: {}", p.stderr());
    // Its stderr is a pipe here (a container's log, a file), so the log is plain text, without colour codes.
    assert!(!p.stderr().contains('\x1b'), "no ANSI escape codes in a log that is not a terminal: {:?}", p.stderr());

    // Only a 2xx answer is healthy: a path the mock does not serve (404) is not.
    let mut missing = health.clone();
    *missing.last_mut().expect("a URL") = "http://127.0.0.1:8080/nope".into();
    let out = run(container_command(&missing, svc, image, &hmap, &[]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), format!("mock-idp: health check failed: GET {base}/nope: HTTP 404, not 2xx\n"));

    // docker stop: SIGTERM ends it cleanly, and the health check then fails: nothing listens on the port.
    assert!(p.terminate().success());
    let out = run(container_command(health, svc, image, &hmap, &[]));
    assert_eq!(out.status.code(), Some(1));
    let authority = base.trim_start_matches("http://");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "mock-idp: health check failed: GET {base}/.well-known/openid-configuration: cannot connect to {authority}: connection refused\n"
        )
    );
    assert_eq!(out.stdout.len(), 0);
}

#[tokio::test]
async fn mock_idp_flags_and_the_base_url_override() {
    // The command line README.md shows for the compose tenant, in a clean environment.
    let mut c = Command::new(&bins().mock_idp);
    c.args(["--config", "docker/tenant.yaml", "--addr", "127.0.0.1:0", "--base-url", "http://mock-idp:8080"])
        .env_clear()
        .current_dir(repo());
    let mut p = Proc::spawn(c);
    let line = p.line().unwrap_or_else(|e| panic!("mock-idp did not start: {e}"));
    let base = line.strip_prefix("mock-idp listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    assert_eq!(get_json(&format!("{base}/.well-known/openid-configuration")).await["issuer"], "http://mock-idp:8080");
    assert!(p.terminate().success());

    // MOCK_IDP_BASE_URL, which the compose file passes on, overrides the tenant file's base_url.
    let (compose, stages) = (self::compose(), dockerfile());
    let svc = compose.service("mock-idp");
    let image = stage(&stages, &svc.target);
    let map = Map::default().with("0.0.0.0:8080", "127.0.0.1:0").paths(svc, image);
    let mut p = Proc::spawn(container_command(&svc.command, svc, image, &map, &[("MOCK_IDP_BASE_URL", "http://localhost:8080")]));
    let line = p.line().unwrap_or_else(|e| panic!("mock-idp did not start: {e}"));
    let base = line.strip_prefix("mock-idp listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    let doc = get_json(&format!("{base}/.well-known/openid-configuration")).await;
    assert_eq!(doc["issuer"], "http://localhost:8080");
    assert_eq!(doc["token_endpoint"], "http://localhost:8080/oauth2/v1/token");
}

#[tokio::test]
async fn stub_bsr_service_signs_alice_in_through_the_composed_mock_idp() {
    let c = compose();
    let stages = dockerfile();
    let (mut idp, idp_base) = start_composed_idp(&c, &stages);
    let svc = c.service("stub-bsr");
    let image = stage(&stages, &svc.target);
    // Only the addresses change: BSR_PUBLIC_URL (http://localhost:3000), the client id and secret stay as
    // composed. HARNESS_LOG=debug shows the variable is read.
    let (mut bsr, bsr_port, line) = start_on_free_port(|port| {
        let map = Map::default().with("0.0.0.0:3000", &format!("127.0.0.1:{port}")).with("http://mock-idp:8080", &idp_base);
        container_command(&svc.command, svc, image, &map, &[("HARNESS_LOG", "debug")])
    });
    // The bound address and the public URL, which differ in a container.
    assert_eq!(line, format!("stub BSR listening on 127.0.0.1:{bsr_port}, public URL http://localhost:3000"));
    let bsr_base = format!("http://127.0.0.1:{bsr_port}");

    let health = svc.health.as_ref().expect("stub-bsr has a health check");
    let hmap = Map::default().with("http://127.0.0.1:3000", &bsr_base);
    let out = run(container_command(health, svc, image, &hmap, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!((out.stdout.len(), out.stderr.len()), (0, 0));

    // A browser: the stub sends it to the issuer's authorize endpoint with the composed client and public URL.
    let browser = http();
    let r = browser.get(format!("{bsr_base}/login")).send().await.expect("GET /login");
    assert_eq!(r.status(), StatusCode::FOUND);
    let to_idp = r.headers()[LOCATION].to_str().expect("Location").to_string();
    assert!(to_idp.starts_with(&format!("{idp_base}/oauth2/v1/authorize?")), "{to_idp}");
    assert_eq!(url_param(&to_idp, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(url_param(&to_idp, "redirect_uri").as_deref(), Some("http://localhost:3000/oauth2/callback"));
    let state = url_param(&to_idp, "state").expect("state");

    // Alice signs in at the IdP (sessionToken from the authn API); the compose tenant accepts the redirect URI.
    let st = tests::Client::for_base(&idp_base).authn(ALICE, PASSWORD).await;
    let r = browser.get(format!("{to_idp}&sessionToken={st}")).send().await.expect("GET authorize");
    assert_eq!(r.status(), StatusCode::FOUND);
    let back = r.headers()[LOCATION].to_str().expect("Location").to_string();
    assert!(back.starts_with("http://localhost:3000/oauth2/callback?"), "{back}");
    assert_eq!(url_param(&back, "state"), Some(state));
    let code = url_param(&back, "code").expect("code");

    // The callback reaches the stub (on its loopback port), which redeems the code with the composed secret.
    let r = browser.get(back.replace("http://localhost:3000", &bsr_base)).send().await.expect("GET callback");
    assert!(r.status().is_redirection(), "callback: {} {}", r.status(), r.text().await.unwrap_or_default());
    let me = browser.get(format!("{bsr_base}/api/me")).send().await.expect("GET /api/me");
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.expect("JSON");
    assert_eq!(me["email"], ALICE);
    assert_eq!(me["idp_subject"], ALICE_ID);
    let grants = tests::Client::for_base(&idp_base).events("app.oauth2.token.grant.id_token").await;
    assert_eq!(grants.len(), 1);

    assert!(bsr.stderr().contains("/oauth2/callback"), "HARNESS_LOG=debug logs requests: {}", bsr.stderr());
    assert!(!bsr.stderr().contains('\x1b'), "no ANSI escape codes in a log that is not a terminal: {:?}", bsr.stderr());
    assert!(bsr.terminate().success());
    let out = run(container_command(health, svc, image, &hmap, &[]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("harness: health check failed: GET {bsr_base}/healthz: cannot connect to 127.0.0.1:{bsr_port}: connection refused\n")
    );
    assert!(idp.terminate().success());
    for (who, log) in [("stub BSR", bsr.stderr()), ("mock-idp", idp.stderr())] {
        for secret in [CLIENT_SECRET, st.as_str(), code.as_str()] {
            assert!(!log.contains(secret), "the {who}'s log shows a secret: {log}");
        }
    }
}

#[tokio::test]
async fn runner_command_runs_the_scenario_library_against_the_composed_mock_idp_and_writes_the_reports() {
    let c = compose();
    let stages = dockerfile();
    let (_idp, idp_base) = start_composed_idp(&c, &stages);
    let svc = c.service("runner");
    let image = stage(&stages, &svc.target);
    let reports = std::env::temp_dir().join(format!("compose-reports-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&reports);
    let map = Map::default().with("http://mock-idp:8080", &idp_base).with("/reports", &reports.display().to_string()).paths(svc, image);

    // The command exactly as composed: the whole library (the image's working directory holds scenarios/).
    // No PATH, as in the runtime image, which has no Chromium: browser scenarios are skipped.
    let out = run(container_command(&["harness".into(), "list".into()], svc, image, &map, &[]));
    assert!(out.status.success(), "harness list: {}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(listed > 40, "harness list: {listed} scenarios");
    let out = run(container_command(&svc.command, svc, image, &map, &[]));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "the composed runner's run fails\nstdout: {stdout}\nstderr: {stderr}");
    let junit = std::fs::read_to_string(reports.join("junit.xml")).expect("--junit wrote junit.xml");
    assert!(
        junit.contains(&format!("<testsuites name=\"harness\" tests=\"{listed}\" ")),
        "{listed} scenarios: {}",
        &junit[..junit.len().min(300)]
    );
    assert_eq!(junit.matches("<testcase ").count(), listed);
    let html = std::fs::read_to_string(reports.join("run.html")).expect("--html wrote run.html");
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..html.len().min(200)]);
    std::fs::remove_dir_all(&reports).expect("remove the reports");

    // The same command with one scenario: its exact outcome, and proof that it ran against this IdP
    // (--idp-url), not an in-process one: the IdP's System Log has Carol's refusal.
    let mut argv = svc.command.clone();
    argv.push("scenarios/basics/unassigned-user.yaml".into());
    let out = run(container_command(&argv, svc, image, &map, &[]));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.ends_with("\n1 passed, 0 failed, 0 skipped\n"), "{stdout}");
    let junit = std::fs::read_to_string(reports.join("junit.xml")).expect("--junit wrote junit.xml");
    assert!(junit.contains("<testsuites name=\"harness\" tests=\"1\" failures=\"0\" skipped=\"0\" errors=\"0\""), "{junit}");
    assert!(
        junit.contains(
            "<testcase classname=\"basics\" name=\"c21-unassigned-user-is-refused\" file=\"scenarios/basics/unassigned-user.yaml\""
        ),
        "{junit}"
    );
    let html = std::fs::read_to_string(reports.join("run.html")).expect("--html wrote run.html");
    assert!(html.contains("c21-unassigned-user-is-refused"));
    let refused = tests::Client::for_base(&idp_base).logs(r#"eventType eq "app.oauth2.authorize" and outcome.result eq "FAILURE""#).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    std::fs::remove_dir_all(&reports).expect("remove the reports");
}

#[tokio::test]
async fn chromedriver_sidecar_command_accepts_other_containers_by_service_name() {
    let c = compose();
    let stages = dockerfile();
    let svc = c.service("chromedriver");
    let image = stage(&stages, &svc.target);
    if on_path("chromedriver").is_none() {
        // Debian's chromium-driver is not on every machine; the image installs it. Its flags are then only
        // checked by the schema and the structure test above.
        eprintln!("note: chromedriver is not installed here; the chromedriver service's command was not run");
        return;
    }
    let mut p = Proc::spawn(container_command(&svc.command, svc, image, &Map::default().with("--port=9515", "--port=0"), &[]));
    let port = loop {
        let l = p.line().unwrap_or_else(|e| panic!("chromedriver did not start: {e}"));
        if let Some(rest) = l.strip_prefix("ChromeDriver was started successfully on port ") {
            break rest.trim_end_matches('.').parse::<u16>().expect("a port");
        }
    };
    // Other containers connect as http://chromedriver:9515, so that Host header must be accepted.
    let r = http().get(format!("http://127.0.0.1:{port}/status")).header(HOST, "chromedriver:9515").send().await.expect("GET /status");
    assert_eq!(r.status(), StatusCode::OK);
    let status: Value = r.json().await.expect("JSON");
    assert_eq!(status["value"]["ready"], true, "{status}");
    // --allowed-ips= (an empty list): it listens on every interface and accepts any client address, so
    // another container reaches it; this machine's own non-loopback address stands in for that container's.
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    // A UDP connect only picks the route and the source address; nothing is sent (TEST-NET-3, RFC 5737).
    match udp.connect("203.0.113.1:9").and_then(|_| udp.local_addr()).map(|a| a.ip()) {
        Ok(ip) if !ip.is_loopback() && !ip.is_unspecified() => {
            let r = http().get(format!("http://{ip}:{port}/status")).header(HOST, "chromedriver:9515").send().await.expect("GET /status");
            assert_eq!(r.status(), StatusCode::OK, "chromedriver refuses a client at {ip}");
        }
        _ => eprintln!("note: this machine has no non-loopback address; chromedriver's --allowed-ips= was checked on loopback only"),
    }
    let health = svc.health.as_ref().expect("chromedriver has a health check");
    let out =
        run(container_command(health, svc, image, &Map::default().with("http://127.0.0.1:9515", &format!("http://127.0.0.1:{port}")), &[]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The browser runner as composed, with the chromedriver service's command as its sidecar: the browser
/// scenarios pass, their pages on the public host the compose file names (mapped to `localhost`, a name
/// that reaches this machine as `browser-runner` reaches the runner's container).
#[cfg(feature = "browser")]
#[tokio::test]
async fn browser_runner_runs_the_browser_scenarios_in_the_chromedriver_sidecar() {
    let c = compose();
    let stages = dockerfile();
    let (_idp, idp_base) = start_composed_idp(&c, &stages);
    let cd = c.service("chromedriver");
    let mut sidecar =
        Proc::spawn(container_command(&cd.command, cd, stage(&stages, &cd.target), &Map::default().with("--port=9515", "--port=0"), &[]));
    let port = loop {
        let l = sidecar.line().unwrap_or_else(|e| panic!("chromedriver did not start: {e}"));
        if let Some(rest) = l.strip_prefix("ChromeDriver was started successfully on port ") {
            break rest.trim_end_matches('.').parse::<u16>().expect("a port");
        }
    };
    let svc = c.service("browser-runner");
    let image = stage(&stages, &svc.target);
    let reports = std::env::temp_dir().join(format!("compose-browser-reports-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&reports);
    let map = Map::default()
        .with("http://mock-idp:8080", &idp_base)
        .with("http://chromedriver:9515", &format!("http://127.0.0.1:{port}"))
        .with("browser-runner", "localhost")
        .with("/reports", &reports.display().to_string())
        .paths(svc, image);
    let mut argv = svc.command.clone();
    argv.push("scenarios/browser".into());
    let out = run(container_command(&argv, svc, image, &map, &[]));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.ends_with("\n2 passed, 0 failed, 0 skipped\n"), "{stdout}");
    assert!(
        stderr.starts_with(
            "harness: warning: the servers each scenario starts listen on 0.0.0.0, reachable from other machines; they have known test credentials\n"
        ),
        "{stderr}"
    );
    let junit = std::fs::read_to_string(reports.join("junit.xml")).expect("--junit wrote junit.xml");
    assert!(junit.contains("<testsuites name=\"harness\" tests=\"2\" failures=\"0\" skipped=\"0\" errors=\"0\""), "{junit}");
    // The last scenario's stub registered its redirect URI on the public host at the shared IdP.
    let app = admin_get(&idp_base, &format!("/api/v1/apps/{APP_ID}")).await;
    let uris = app["settings"]["oauthClient"]["redirect_uris"].as_array().expect("redirect_uris").clone();
    let last = uris.last().and_then(Value::as_str).expect("a redirect URI");
    assert!(last.starts_with("http://localhost:") && last.ends_with("/oauth2/callback"), "{uris:?}");
    std::fs::remove_dir_all(&reports).expect("remove the reports");
    // The sidecar's Chromium sessions were deleted, and the sidecar runs on.
    let r = http().get(format!("http://127.0.0.1:{port}/status")).header(HOST, "chromedriver:9515").send().await.expect("GET /status");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(sidecar.child.try_wait().expect("try_wait").is_none(), "the sidecar exited");
}
