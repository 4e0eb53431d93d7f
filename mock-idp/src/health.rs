//! A container health check without curl: one `GET` over plain HTTP/1.1, 2xx or not.
//!
//! `mock-idp --health-check URL` and `harness health-check URL` use it, so the runtime image needs no HTTP
//! client of its own. It runs next to the server it checks (inside the same container, on its loopback
//! address), so it speaks plain `http://` only and follows no redirects.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long the whole check may take (connect, send, the status line), shorter than docker-compose's
/// health-check `timeout: 2s` so a hung server is reported by the check itself.
pub const TIMEOUT: Duration = Duration::from_millis(1500);

/// `GET url` and the answer's status when it is 2xx; otherwise what went wrong, as one line
/// (`GET {url}: …`).
pub fn check(url: &str, timeout: Duration) -> Result<u16, String> {
    let fail = |why: String| format!("GET {url}: {why}");
    let u = url::Url::parse(url).map_err(|e| fail(format!("not a URL: {e}")))?;
    if u.scheme() != "http" {
        return Err(fail("only http:// URLs can be checked (the check runs next to the server, on its loopback address)".into()));
    }
    let host = u.host_str().ok_or_else(|| fail("the URL has no host".into()))?;
    let port = u.port_or_known_default().unwrap_or(80);
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let addrs: Vec<SocketAddr> = (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut stream = None;
    let mut last = String::from("no address");
    for a in &addrs {
        match TcpStream::connect_timeout(a, left()) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = describe(&e),
        }
    }
    let authority = match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let mut s = stream.ok_or_else(|| fail(format!("cannot connect to {authority}: {last}")))?;
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    let io = |e: std::io::Error| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => fail(format!("no answer within {timeout:?}")),
        _ => fail(describe(&e)),
    };
    s.set_write_timeout(Some(left())).map_err(io)?;
    s.write_all(req.as_bytes()).map_err(io)?;
    // Only the status line is needed.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.contains(&b'\n') {
        s.set_read_timeout(Some(left())).map_err(io)?;
        let n = s.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if Instant::now() >= deadline {
            return Err(fail(format!("no answer within {timeout:?}")));
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let mut words = line.split_whitespace();
    let status = match (words.next(), words.next().and_then(|c| c.parse::<u16>().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => code,
        _ if head.is_empty() => return Err(fail("the connection closed without an answer".into())),
        _ => return Err(fail(format!("not an HTTP answer: {:?}", line.chars().take(80).collect::<String>()))),
    };
    if (200..300).contains(&status) { Ok(status) } else { Err(fail(format!("HTTP {status}, not 2xx"))) }
}

/// An I/O error in words that do not depend on the platform's error texts.
fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timed out".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_are_checked() {
        assert_eq!(
            check("https://127.0.0.1:1/x", TIMEOUT).unwrap_err(),
            "GET https://127.0.0.1:1/x: only http:// URLs can be checked (the check runs next to the server, on its loopback address)"
        );
        assert_eq!(check("nope", TIMEOUT).unwrap_err(), "GET nope: not a URL: relative URL without a base");
    }

    #[test]
    fn statuses_decide() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let answers = ["HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", "hello\r\n"];
        let server = std::thread::spawn(move || {
            for a in answers {
                let (mut s, _) = l.accept().unwrap();
                let mut req = [0u8; 1024];
                let n = s.read(&mut req).unwrap();
                assert!(String::from_utf8_lossy(&req[..n]).starts_with(&format!("GET /h?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n")));
                s.write_all(a.as_bytes()).unwrap();
            }
        });
        let url = format!("http://127.0.0.1:{port}/h?x=1");
        assert_eq!(check(&url, TIMEOUT), Ok(204));
        assert_eq!(check(&url, TIMEOUT), Err(format!("GET {url}: HTTP 503, not 2xx")));
        assert_eq!(check(&url, TIMEOUT), Err(format!("GET {url}: not an HTTP answer: \"hello\"")));
        server.join().unwrap();
    }

    #[test]
    fn a_silent_server_times_out() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        // Accepted by the kernel's backlog, never answered.
        assert_eq!(check(&url, Duration::from_millis(200)), Err(format!("GET {url}: no answer within 200ms")));
        drop(l);
    }
}
