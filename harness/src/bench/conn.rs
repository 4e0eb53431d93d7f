//! The load generator's HTTP/1.1 client: one keep-alive connection per worker, requests written as bytes
//! built once, answers parsed with `httparse`. A general client (reqwest) spent about 80 µs of CPU per
//! request here (URL parsing, header maps, its pool, a task hand-off per request), about an eighth of what
//! the server spends on a signed token, on the same two cores; this spends little more than the socket's
//! system calls.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where the requests go: the server's address, its `Host` header value and the path the base URL carries
/// (empty, or e.g. `/tenant-a`), which every request path is put under.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub prefix: String,
}

/// A URL for an error message: everything between the scheme and the last `@` (a user and password, which
/// may themselves hold `/`, `?`, `#` or `@`) replaced; the URL need not parse (`http:/u:pw@host`).
pub(crate) fn without_credentials(url: &str) -> String {
    let Some(at) = url.rfind('@') else { return url.to_string() };
    // After `scheme:` and its slashes, when there is a scheme; else from the start.
    let start = match url.find(':') {
        Some(c) if c < at && url[..c].chars().all(|ch| ch.is_ascii_alphanumeric() || "+-.".contains(ch)) && c > 0 => {
            c + 1 + url[c + 1..].chars().take_while(|&ch| ch == '/').count()
        }
        _ => 0,
    };
    if start >= at {
        return url.to_string();
    }
    format!("{}[credentials]{}", &url[..start], &url[at..])
}

/// `--idp-url`'s syntax: plain `http://`, a host, no query, fragment or credentials (errors never repeat a
/// password).
pub fn check_base_url(base: &str) -> anyhow::Result<url::Url> {
    let shown = without_credentials(base);
    let url = url::Url::parse(base).map_err(|e| anyhow::anyhow!("--idp-url {shown:?}: {e}"))?;
    anyhow::ensure!(url.scheme() == "http", "harness bench speaks plain http:// only (got {shown})");
    anyhow::ensure!(
        url.query().is_none() && url.fragment().is_none() && url.username().is_empty() && url.password().is_none(),
        "--idp-url {shown:?}: a base URL without a query, fragment or credentials is needed"
    );
    anyhow::ensure!(url.host_str().is_some_and(|h| !h.is_empty()), "--idp-url {shown:?} has no host");
    Ok(url)
}

impl Target {
    /// From a base URL such as `http://127.0.0.1:8080`. Only plain `http` (the benchmark runs on loopback).
    pub async fn resolve(base: &str) -> anyhow::Result<Target> {
        let url = check_base_url(base)?;
        let shown = without_credentials(base);
        let prefix = url.path().trim_end_matches('/').to_string();
        let host = url.host_str().ok_or_else(|| anyhow::anyhow!("--idp-url {shown:?} has no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_start_matches('[').trim_end_matches(']'), port))
            .await
            .map_err(|e| anyhow::anyhow!("resolving {host}: {e}"))?
            .collect();
        anyhow::ensure!(!addrs.is_empty(), "{host} resolves to no address");
        // `localhost` may name ::1 first while the server listens on 127.0.0.1 only: the first address that
        // takes a connection (else the first, and the workers report the error).
        let mut addr = addrs[0];
        for a in &addrs {
            if let Ok(Ok(_)) = tokio::time::timeout(std::time::Duration::from_secs(1), TcpStream::connect(a)).await {
                addr = *a;
                break;
            }
        }
        let host = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        Ok(Target { addr, host, prefix })
    }

    /// The bytes of one request. `headers` are added after `Host`; a body gets its `Content-Length`.
    pub fn request(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut r = Vec::with_capacity(160 + body.len());
        r.extend_from_slice(format!("{method} {}{path_and_query} HTTP/1.1\r\nHost: {}\r\n", self.prefix, self.host).as_bytes());
        for (k, v) in headers {
            r.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        if !body.is_empty() || method == "POST" {
            r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        r.extend_from_slice(body);
        r
    }
}

/// An answer: status, the `Location` header (redirects are not followed) and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// One keep-alive connection, opened on first use and again after the server closes it.
pub struct Conn {
    target: Target,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(target: Target) -> Conn {
        Conn { target, stream: None, buf: Vec::with_capacity(8192) }
    }

    /// Lets the connection go (after an answer that did not come in time): the next request opens a new one.
    pub fn reset(&mut self) {
        self.stream = None;
    }

    /// Sends `request` (from [`Target::request`]) and reads the whole answer. A kept-alive connection the
    /// server closed before answering is opened again and the request sent once more.
    ///
    /// Only a GET is sent again: a POST (a code exchange, a rotating refresh) the server may have carried out
    /// before it closed is reported instead.
    pub async fn send(&mut self, request: &[u8]) -> Result<Answer, String> {
        let reused = self.stream.is_some();
        let idempotent = request.starts_with(b"GET ") || request.starts_with(b"HEAD ");
        match self.exchange(request).await {
            Ok(a) => Ok(a),
            Err(Failure::ClosedBeforeAnswer) if reused && idempotent => {
                self.stream = None;
                self.exchange(request).await.map_err(|e| {
                    self.stream = None;
                    e.to_string()
                })
            }
            Err(e) => {
                self.stream = None;
                let closed = matches!(e, Failure::ClosedBeforeAnswer);
                if closed && !reused {
                    // A server that takes connections and closes them at once: do not spin on the cores either.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                if closed && reused {
                    return Err(format!("{e}; the request was not sent again, as a POST the server may have carried out"));
                }
                Err(e.to_string())
            }
        }
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<Answer, Failure> {
        if self.stream.is_none() {
            let s = match TcpStream::connect(self.target.addr).await {
                Ok(s) => s,
                Err(e) => {
                    // A server that is down refuses at once: pause so the workers do not spin on the cores
                    // they share with it.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    return Err(Failure::Io(format!("connecting to {}: {e}", self.target.addr)));
                }
            };
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else { return Err(Failure::ClosedBeforeAnswer) };
        stream.write_all(request).await.map_err(|_| Failure::ClosedBeforeAnswer)?;
        self.buf.clear();
        let mut got_bytes = false;
        // The head; interim (1xx) answers are skipped.
        let Head { status, location, close, framing, len: head_len } = loop {
            if let Some(h) = parse_head(&mut self.buf)? {
                break h;
            }
            match read_more(stream, &mut self.buf).await {
                // Nothing read yet: a kept-alive connection the server had closed (EOF or a reset).
                Ok(0) | Err(_) if !got_bytes => return Err(Failure::ClosedBeforeAnswer),
                Ok(0) => return Err(Failure::Io("connection closed inside an answer's head".into())),
                Err(e) => return Err(e),
                Ok(_) => got_bytes = true,
            }
        };
        self.buf.drain(..head_len);
        let body = match framing {
            Framing::Length(n) => {
                while self.buf.len() < n {
                    if read_more(stream, &mut self.buf).await? == 0 {
                        return Err(Failure::Io("connection closed inside an answer's body".into()));
                    }
                }
                // Bytes past the answer were not asked for: the connection is out of step, so it goes.
                if self.buf.len() > n {
                    self.stream = None;
                }
                self.buf[..n].to_vec()
            }
            Framing::Chunked => {
                let (body, end) = dechunk(stream, &mut self.buf).await?;
                if self.buf.len() > end {
                    self.stream = None;
                }
                body
            }
            Framing::UntilClose => {
                while read_more(stream, &mut self.buf).await? > 0 {}
                self.stream = None;
                std::mem::take(&mut self.buf)
            }
        };
        if close {
            self.stream = None;
        }
        Ok(Answer { status, location, body })
    }
}

struct Head {
    status: u16,
    location: Option<String>,
    close: bool,
    framing: Framing,
    /// Bytes of `buf` the head takes.
    len: usize,
}

/// The first final answer's head in `buf`, dropping interim (1xx) answers before it; `None` while incomplete.
fn parse_head(buf: &mut Vec<u8>) -> Result<Option<Head>, Failure> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut resp = httparse::Response::new(&mut headers);
        let n = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(Failure::Io(format!("unreadable answer: {e}"))),
        };
        let status = resp.code.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            buf.drain(..n);
            continue;
        }
        let mut location = None;
        let mut close = resp.version == Some(0);
        // The last transfer coding over every Transfer-Encoding header.
        let (mut length, mut last_coding) = (None, None::<String>);
        for h in resp.headers.iter() {
            let v = std::str::from_utf8(h.value).unwrap_or("").trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                length = Some(v.parse::<usize>().map_err(|_| Failure::Io(format!("bad Content-Length {v:?}")))?);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if let Some(c) = v.rsplit(',').next().map(str::trim).filter(|c| !c.is_empty()) {
                    last_coding = Some(c.to_ascii_lowercase());
                }
            } else if h.name.eq_ignore_ascii_case("location") {
                location = Some(v.to_string());
            } else if h.name.eq_ignore_ascii_case("connection") {
                close |= v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"));
            }
        }
        // RFC 9112 §6.3: 204 and 304 carry no body; a Transfer-Encoding wins over a Content-Length, and one
        // whose last coding is not chunked runs until the connection closes.
        let framing = match (status, last_coding.as_deref(), length) {
            (204 | 304, _, _) => Framing::Length(0),
            (_, Some("chunked"), _) => Framing::Chunked,
            (_, Some(_), _) | (_, None, None) => Framing::UntilClose,
            (_, None, Some(n)) => Framing::Length(n),
        };
        return Ok(Some(Head { status, location, close, framing, len: n }));
    }
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Debug)]
enum Failure {
    /// The server closed a connection before a byte of the answer: a kept-alive connection it had let go.
    ClosedBeforeAnswer,
    Io(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::ClosedBeforeAnswer => write!(f, "the server closed the connection without answering"),
            Failure::Io(e) => write!(f, "{e}"),
        }
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, Failure> {
    buf.reserve(8192);
    stream.read_buf(buf).await.map_err(|e| Failure::Io(format!("reading an answer: {e}")))
}

/// A chunked body (RFC 9112 §7.1), chunk extensions and trailers skipped, and where in `buf` it ended;
/// `buf` holds what was read past the head.
async fn dechunk(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(Vec<u8>, usize), Failure> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = loop {
            if let Some(i) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            if read_more(stream, buf).await? == 0 {
                return Err(Failure::Io("connection closed inside a chunked body".into()));
            }
        };
        let size_text = std::str::from_utf8(&buf[pos..line_end]).unwrap_or("");
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        // A chunk of a gigabyte or more is not an answer this benchmark reads.
        let size = Some(size_hex)
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .filter(|n| *n < 1 << 30)
            .ok_or_else(|| Failure::Io(format!("bad chunk size {size_hex:?}")))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                if let Some(i) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                    if i == 0 {
                        return Ok((body, pos + 2));
                    }
                    pos += i + 2;
                    continue;
                }
                if read_more(stream, buf).await? == 0 {
                    return Err(Failure::Io("connection closed inside a chunked body's trailer".into()));
                }
            }
        }
        while buf.len() < pos + size + 2 {
            if read_more(stream, buf).await? == 0 {
                return Err(Failure::Io("connection closed inside a chunk".into()));
            }
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(Failure::Io("a chunk not followed by CRLF".into()));
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request on a connection with the next canned answer, then closes.
    async fn canned(answers: Vec<&'static [u8]>) -> Target {
        serve_canned(answers, false).await
    }

    /// The canned server; with `trickle`, each answer is written a byte at a time, so heads, chunk sizes,
    /// CRLFs and chunk data arrive split across reads.
    async fn serve_canned(answers: Vec<&'static [u8]>, trickle: bool) -> Target {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            for a in answers {
                let mut b = [0u8; 4096];
                let _ = s.read(&mut b).await.unwrap();
                if !trickle {
                    s.write_all(a).await.unwrap();
                    continue;
                }
                for byte in a {
                    s.write_all(&[*byte]).await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        });
        Target { addr, host: addr.to_string(), prefix: String::new() }
    }

    #[tokio::test]
    async fn reads_length_chunked_and_redirect_answers_on_one_connection() {
        let t = canned(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nT: v\r\n\r\n",
            b"HTTP/1.1 302 Found\r\nLocation: http://x/cb?code=abc\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let mut c = Conn::new(t.clone());
        let req = t.request("GET", "/", &[], b"");
        let a = c.send(&req).await.unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"hello"[..]));
        let a = c.send(&req).await.unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"wikipedia"[..]));
        let a = c.send(&req).await.unwrap();
        assert_eq!((a.status, a.location.as_deref()), (302, Some("http://x/cb?code=abc")));
        let a = c.send(&req).await.unwrap();
        assert_eq!((a.status, a.body.len()), (204, 0));
    }

    #[test]
    fn a_request_is_written_with_host_headers_and_length() {
        let t = Target { addr: "127.0.0.1:9".parse().unwrap(), host: "127.0.0.1:9".into(), prefix: String::new() };
        let r = t.request("POST", "/token", &[("Authorization", "Basic eDp5")], b"a=b");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "POST /token HTTP/1.1\r\nHost: 127.0.0.1:9\r\nAuthorization: Basic eDp5\r\nContent-Length: 3\r\n\r\na=b"
        );
    }

    #[tokio::test]
    async fn a_closed_connection_is_an_error_not_a_hang() {
        let t = canned(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"]).await;
        let mut c = Conn::new(t.clone());
        let e =
            tokio::time::timeout(std::time::Duration::from_secs(10), c.send(&t.request("GET", "/", &[], b""))).await.unwrap().unwrap_err();
        assert_eq!(e, "connection closed inside an answer's body");
    }

    /// A server that answers one request per connection and then closes it, with or without saying so.
    async fn one_per_connection(say_close: bool) -> (Target, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut b = [0u8; 4096];
                let _ = s.read(&mut b).await.unwrap();
                let a: &[u8] = if say_close {
                    b"HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 2\r\n\r\nok"
                } else {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                };
                s.write_all(a).await.unwrap();
            }
        });
        (Target { addr, host: addr.to_string(), prefix: String::new() }, accepted)
    }

    /// A connection the server closed (saying `Connection: close`, or silently, as an idle keep-alive
    /// timeout does) is opened again; every request is answered.
    #[tokio::test]
    async fn a_closed_keep_alive_connection_is_opened_again() {
        for say_close in [true, false] {
            let (t, accepted) = one_per_connection(say_close).await;
            let mut c = Conn::new(t.clone());
            let req = t.request("GET", "/", &[], b"");
            for _ in 0..3 {
                let a = c.send(&req).await.unwrap();
                assert_eq!((a.status, a.body.as_slice()), (200, &b"ok"[..]));
            }
            assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3, "say_close {say_close}");
        }
    }

    #[tokio::test]
    async fn interim_answers_are_skipped_and_chunked_wins_over_a_length() {
        let t = canned(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend",
        ])
        .await;
        let mut c = Conn::new(t.clone());
        let req = t.request("GET", "/", &[], b"");
        assert_eq!(c.send(&req).await.unwrap().body, b"ok");
        assert_eq!(c.send(&req).await.unwrap().body, b"hi");
        // Still in step: the third answer is the third request's.
        assert_eq!(c.send(&req).await.unwrap().body, b"end");
    }

    #[tokio::test]
    async fn answers_split_across_reads_are_put_together() {
        let t = serve_canned(
            vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n"],
            true,
        )
        .await;
        let mut c = Conn::new(t.clone());
        let a = tokio::time::timeout(std::time::Duration::from_secs(10), c.send(&t.request("GET", "/", &[], b""))).await.unwrap().unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"abcde"[..]));
    }

    #[tokio::test]
    async fn a_transfer_coding_other_than_chunked_reads_until_close_and_a_misframed_chunk_is_an_error() {
        let t = canned(vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nall of it"]).await;
        let mut c = Conn::new(t.clone());
        assert_eq!(c.send(&t.request("GET", "/", &[], b"")).await.unwrap().body, b"all of it");
        let t = canned(vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n"]).await;
        let mut c = Conn::new(t.clone());
        assert_eq!(c.send(&t.request("GET", "/", &[], b"")).await.unwrap_err(), "a chunk not followed by CRLF");
        let t = canned(vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\nab\r\n0\r\n\r\n"]).await;
        let mut c = Conn::new(t.clone());
        assert_eq!(c.send(&t.request("GET", "/", &[], b"")).await.unwrap_err(), r#"bad chunk size "+2""#);
    }

    /// A POST on a kept-alive connection the server closed is not sent again (it may have been carried out).
    #[tokio::test]
    async fn a_post_is_not_sent_twice() {
        let (t, accepted) = one_per_connection(false).await;
        let mut c = Conn::new(t.clone());
        let post = t.request("POST", "/token", &[], b"a=b");
        assert_eq!(c.send(&post).await.unwrap().status, 200);
        assert_eq!(
            c.send(&post).await.unwrap_err(),
            "the server closed the connection without answering; the request was not sent again, as a POST the server may have carried out"
        );
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The connection is gone: the next request opens a new one.
        assert_eq!(c.send(&post).await.unwrap().status, 200);
    }

    #[tokio::test]
    async fn an_absurd_chunk_size_is_an_error_not_a_panic() {
        let t = canned(vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffe\r\nab\r\n"]).await;
        let mut c = Conn::new(t.clone());
        assert_eq!(c.send(&t.request("GET", "/", &[], b"")).await.unwrap_err(), r#"bad chunk size "fffffffffffffffe""#);
    }

    #[tokio::test]
    async fn a_base_url_path_prefixes_every_request_and_a_query_is_refused() {
        let t = Target::resolve("http://127.0.0.1:9/tenant-a/").await.unwrap();
        let r = String::from_utf8(t.request("GET", "/oauth2/default/v1/keys", &[], b"")).unwrap();
        assert!(r.starts_with("GET /tenant-a/oauth2/default/v1/keys HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"), "{r}");
        for (bad, shown) in [
            ("http://127.0.0.1:9/?x=1", "http://127.0.0.1:9/?x=1"),
            ("http://u:pw-SECRET@127.0.0.1:9/", "http://[credentials]@127.0.0.1:9/"),
            ("http://127.0.0.1:9/#f", "http://127.0.0.1:9/#f"),
        ] {
            let e = Target::resolve(bad).await.unwrap_err().to_string();
            assert_eq!(e, format!("--idp-url {shown:?}: a base URL without a query, fragment or credentials is needed"));
        }
        // Not repeated when the URL does not parse either, or the password holds / ? # @.
        let e = Target::resolve("http://u:pw-SECRET@127.0.0.1:99999/").await.unwrap_err().to_string();
        assert_eq!(e, r#"--idp-url "http://[credentials]@127.0.0.1:99999/": invalid port number"#);
        for (bad, shown) in [
            ("http://u:SE/CRET@127.0.0.1:1", "http://[credentials]@127.0.0.1:1"),
            ("http://u:SE?C#R@ET@127.0.0.1:1/", "http://[credentials]@127.0.0.1:1/"),
            ("http:/u:SECRET@127.0.0.1:1/", "http:/[credentials]@127.0.0.1:1/"),
            ("u:SECRET@127.0.0.1:1", "u:[credentials]@127.0.0.1:1"),
        ] {
            assert_eq!(without_credentials(bad), shown);
        }
    }

    #[tokio::test]
    async fn https_is_refused_with_a_reason() {
        let e = Target::resolve("https://127.0.0.1:1").await.unwrap_err();
        assert_eq!(e.to_string(), "harness bench speaks plain http:// only (got https://127.0.0.1:1)");
    }
}
