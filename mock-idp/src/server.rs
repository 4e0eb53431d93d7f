//! The HTTP/1 server loop of mock-idp and the stub BSR, and the limits every request meets before a handler
//! sees it.
//!
//! `axum::serve` cannot time out a client that never finishes its request head, nor cap the head's size, so
//! both servers run this loop instead: hyper's connection builder with a header-read timeout and a hard cap
//! on the head, graceful shutdown through hyper-util, and [`enforce`] as the outermost middleware. The
//! middleware refuses, with a body the caller renders (Okta's error shapes at the IdP):
//!
//! | what | limit (default) | status |
//! |---|---|---|
//! | request target (path and query) | [`Limits::max_uri_bytes`] (16 KiB) | 414 |
//! | header section (names, values, separators) | [`Limits::max_header_bytes`] (32 KiB) | 431 |
//! | body | [`Limits::max_body_bytes`] (64 KiB) | 413 |
//! | body not received within [`Limits::body_read_timeout`] (10 s) | | 408 |
//! | a path whose percent-encoding is not UTF-8 | | 400 |
//!
//! A client that does not send its whole head within [`Limits::header_read_timeout`] (10 s) is disconnected
//! by hyper; heads above [`HARD_HEAD_LIMIT`] (256 KiB), more than [`MAX_HEADERS`] headers, or a target above
//! hyper's 64 KiB are refused by hyper itself with an empty 431 or 414, since they never become a request.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// The size of a request head hyper accepts at all; above it hyper answers an empty 431 and closes.
pub const HARD_HEAD_LIMIT: usize = 256 * 1024;
/// The number of headers hyper accepts (its default is 100, too few to let [`Limits::max_header_bytes`] decide).
pub const MAX_HEADERS: usize = 512;

/// What a request may be. The defaults are what the binaries use; tests shorten the timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
    /// A connection whose next request head is not complete this long after the server started waiting
    /// for it is closed (this also ends idle keep-alive connections).
    pub header_read_timeout: Duration,
    /// The whole body must arrive within this time after the head.
    pub body_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_uri_bytes: 16 * 1024,
            max_header_bytes: 32 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Why [`enforce`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BodyTooLarge {
        limit: usize,
    },
    UriTooLong {
        limit: usize,
    },
    HeadersTooLarge {
        limit: usize,
    },
    BodyTimeout {
        after: Duration,
    },
    /// The body could not be read (the client broke off or sent malformed chunked encoding).
    BodyUnreadable,
    /// The path's percent-encoding does not decode to UTF-8.
    BadPath,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::BodyTooLarge { .. } => 413,
            Refusal::UriTooLong { .. } => 414,
            Refusal::HeadersTooLarge { .. } => 431,
            Refusal::BodyTimeout { .. } => 408,
            Refusal::BodyUnreadable | Refusal::BadPath => 400,
        }
    }

    /// The part of the request at fault, for Okta's `Api validation failed: <field>`.
    pub fn field(self) -> &'static str {
        match self {
            Refusal::BodyTooLarge { .. } | Refusal::BodyTimeout { .. } | Refusal::BodyUnreadable => "body",
            Refusal::UriTooLong { .. } | Refusal::BadPath => "uri",
            Refusal::HeadersTooLarge { .. } => "headers",
        }
    }

    /// A sentence for the error body.
    pub fn message(self) -> String {
        match self {
            Refusal::BodyTooLarge { limit } => format!("The request body is larger than {limit} bytes."),
            Refusal::UriTooLong { limit } => format!("The request URI is longer than {limit} bytes."),
            Refusal::HeadersTooLarge { limit } => format!("The request headers are larger than {limit} bytes in all."),
            Refusal::BodyTimeout { after } => format!("The request body did not arrive within {} ms.", after.as_millis()),
            Refusal::BodyUnreadable => "The request body could not be read.".into(),
            Refusal::BadPath => "The request path is not valid percent-encoded UTF-8.".into(),
        }
    }
}

/// A refused request's body is read and thrown away up to this size before the answer goes out, so a
/// client still sending it gets the answer instead of a broken pipe, and the connection stays usable.
pub const DRAIN_LIMIT: usize = 1024 * 1024;

/// Checks the limits and buffers the body (so no handler ever waits on a slow client); `render` turns a
/// refusal into the server's error shape for the request's path.
pub async fn enforce(limits: &Limits, req: Request, next: Next, render: impl FnOnce(Refusal, &str) -> Response) -> Response {
    let path = req.uri().path().to_string();
    let target = req.uri().path_and_query().map(|pq| pq.as_str().len()).unwrap_or(0);
    // Each header counts as it travels: name, ": ", value, CRLF.
    let header_bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    let declared = req.headers().get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let early = if target > limits.max_uri_bytes {
        Some(Refusal::UriTooLong { limit: limits.max_uri_bytes })
    } else if header_bytes > limits.max_header_bytes {
        Some(Refusal::HeadersTooLarge { limit: limits.max_header_bytes })
    } else if percent_encoding::percent_decode_str(&path).decode_utf8().is_err() {
        Some(Refusal::BadPath)
    } else if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        Some(Refusal::BodyTooLarge { limit: limits.max_body_bytes })
    } else {
        None
    };
    let (parts, body) = req.into_parts();
    if let Some(r) = early {
        let _ = tokio::time::timeout(limits.body_read_timeout, read_body(body, 0)).await;
        return render(r, &path);
    }
    let bytes = match tokio::time::timeout(limits.body_read_timeout, read_body(body, limits.max_body_bytes)).await {
        Err(_) => return render(Refusal::BodyTimeout { after: limits.body_read_timeout }, &path),
        Ok(Err(r)) => return render(r, &path),
        Ok(Ok(b)) => b,
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Reads a whole body, refusing it once it grows past `max`; what is past `max` is read on (and thrown
/// away) up to [`DRAIN_LIMIT`].
async fn read_body(mut body: Body, max: usize) -> Result<Bytes, Refusal> {
    let mut buf: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => break,
            Some(Err(_)) => return Err(Refusal::BodyUnreadable),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    seen = seen.saturating_add(data.len());
                    if seen <= max {
                        buf.extend_from_slice(&data);
                    } else if seen > max.max(DRAIN_LIMIT) {
                        break;
                    }
                }
            }
        }
    }
    if seen > max { Err(Refusal::BodyTooLarge { limit: max }) } else { Ok(Bytes::from(buf)) }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish (idle
/// keep-alive connections close at once) and returns.
pub fn spawn<L>(listener: L, app: Router, limits: &Limits, shutdown: impl Future<Output = ()> + Send + 'static) -> JoinHandle<()>
where
    L: axum::serve::Listener,
    L::Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).max_header_size(HARD_HEAD_LIMIT).max_headers(MAX_HEADERS);
    tokio::spawn(async move {
        let mut listener = listener;
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                (io, _) = listener.accept() => {
                    let app = app.clone();
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        app.clone().oneshot(req.map(Body::new))
                    });
                    let conn = graceful.watch(http.serve_connection(TokioIo::new(io), svc));
                    tokio::spawn(async move {
                        // A connection error (the client went away, a timed-out head) concerns that client only.
                        let _ = conn.await;
                    });
                }
                _ = &mut shutdown => break,
            }
        }
        drop(listener);
        graceful.shutdown().await;
    })
}

/// A TCP listener whose connections have Nagle's algorithm off, as small request/response exchanges want.
pub fn nodelay(listener: tokio::net::TcpListener) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM: how the `mock-idp` and `harness` binaries wait before
/// shutting their servers down gracefully. The handlers are installed when this is called, not when the
/// future is first polled, so call it before announcing the address: a SIGTERM sent right after the
/// "listening" line then shuts down gracefully instead of killing the process (a loaded machine can keep the
/// main task from running for a while after it printed). Needs a tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let (term, int) = (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok());
        async move {
            async fn first(s: Option<Signal>) {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    // Not installable (no such signal here): this one never fires.
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = first(term) => {},
                _ = first(int) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
