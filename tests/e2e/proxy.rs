//! Two TCP proxies on 127.0.0.1 that give the suite observations independent of the operator:
//!
//! - [`ApiProxy`] stands in front of the API server (TLS passes through untouched, so the
//!   operator still verifies the server certificate) and can be cut: every open connection is
//!   closed and new ones are refused, as when a node loses its network.
//! - [`S3Proxy`] stands in front of the S3 store, reads the HTTP/1.1 request stream, records
//!   each request line (method, path and query, when it was forwarded) and can delay every
//!   request. A RecordingBucket's `spec.s3.endpoint` points at it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

fn listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(256)
}

// -------------------------------------------------------------------------------------------
// API proxy

/// A TCP proxy in front of the API server that can be cut.
pub struct ApiProxy {
    addr: SocketAddr,
    upstream: String,
    /// `true` while cut: connection tasks close, the accept loop drops the listener.
    cut: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ApiProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> ApiProxy {
        let l = listener("127.0.0.1:0".parse().expect("address")).expect("API proxy listens");
        let addr = l.local_addr().expect("local address");
        let (cut, _) = watch::channel(false);
        let p = ApiProxy {
            addr,
            upstream: upstream.to_string(),
            cut,
            task: Mutex::new(None),
        };
        p.serve(l);
        p
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn serve(&self, l: TcpListener) {
        let mut cut_rx = self.cut.subscribe();
        let upstream = self.upstream.clone();
        let cut = self.cut.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cut_rx.wait_for(|c| *c) => return, // drops the listener: refused
                    accepted = l.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        let upstream = upstream.clone();
                        let mut conn_cut = cut.subscribe();
                        tokio::spawn(async move {
                            let Ok(server) = TcpStream::connect(&upstream).await else { return };
                            let (mut client, mut server) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = conn_cut.wait_for(|c| *c) => {}
                            }
                            // Dropping both ends closes them.
                        });
                    }
                }
            }
        });
        if let Some(old) = self.task.lock().expect("lock").replace(task) {
            old.abort();
        }
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        if let Some(t) = self.task.lock().ok().and_then(|mut t| t.take()) {
            t.abort();
        }
    }
}

// -------------------------------------------------------------------------------------------
// S3 proxy

/// One request as it went through the S3 proxy.
#[derive(Debug, Clone)]
pub struct S3Request {
    /// When the proxy forwarded it to the store (after any delay).
    pub at: DateTime<Utc>,
    pub method: String,
    /// Path and query, as sent: `/bucket/key?tagging`.
    pub target: String,
}

impl S3Request {
    /// PUT, POST or DELETE: anything that can change the store.
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "PUT" | "POST" | "DELETE")
    }

    /// A ListObjects(V2) or ListObjectVersions request on a bucket.
    pub fn is_listing(&self) -> bool {
        if self.method != "GET" {
            return false;
        }
        let Some((path, query)) = self.target.split_once('?') else {
            return false;
        };
        // Bucket-level (path style: `/bucket` or `/bucket/`), not an object's sub-resource.
        let bucket_level = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .find('/')
            .is_none();
        bucket_level
            && query
                .split('&')
                .any(|p| p == "list-type=2" || p == "versions" || p.starts_with("versions="))
    }

    /// The `prefix` query parameter, percent-decoded for `/` only (enough for the keys here).
    pub fn prefix(&self) -> Option<String> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .find_map(|p| p.strip_prefix("prefix="))
            .map(|p| p.replace("%2F", "/").replace("%2f", "/"))
    }
}

/// An HTTP/1.1 proxy in front of the S3 store that records and can delay requests.
pub struct S3Proxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<S3Request>>>,
    delay: Arc<Mutex<Duration>>,
    task: JoinHandle<()>,
}

impl S3Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> S3Proxy {
        let l = listener("127.0.0.1:0".parse().expect("address")).expect("S3 proxy listens");
        let addr = l.local_addr().expect("local address");
        let log = Arc::new(Mutex::new(Vec::new()));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let upstream = upstream.to_string();
        let (log2, delay2) = (log.clone(), delay.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = l.accept().await else {
                    continue;
                };
                let (upstream, log, delay) = (upstream.clone(), log2.clone(), delay2.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_r, mut client_w) = client.into_split();
                    let (mut server_r, server_w) = server.into_split();
                    let responses = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut server_r, &mut client_w).await;
                        let _ = client_w.shutdown().await;
                    });
                    let _ = forward_requests(client_r, server_w, &log, &delay).await;
                    let _ = responses.await;
                });
            }
        });
        S3Proxy {
            addr,
            log,
            delay,
            task,
        }
    }

    /// The endpoint to put in `spec.s3.endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Delays every request by this much before forwarding it.
    pub fn set_delay(&self, d: Duration) {
        *self.delay.lock().expect("lock") = d;
    }

    /// Every request so far, in the order forwarded.
    pub fn requests(&self) -> Vec<S3Request> {
        self.log.lock().expect("lock").clone()
    }

    /// Requests on one bucket (path style).
    pub fn requests_on(&self, bucket: &str) -> Vec<S3Request> {
        let exact = format!("/{bucket}");
        let under = format!("/{bucket}/");
        let query = format!("/{bucket}?");
        self.requests()
            .into_iter()
            .filter(|r| {
                r.target == exact || r.target.starts_with(&under) || r.target.starts_with(&query)
            })
            .collect()
    }
}

impl Drop for S3Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads requests from the client, records and forwards them one by one: the head after the
/// delay, then exactly the body its framing announces (Content-Length or chunked).
async fn forward_requests<R, W>(
    client: R,
    mut server: W,
    log: &Mutex<Vec<S3Request>>,
    delay: &Mutex<Duration>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut r = BufReader::new(client);
    loop {
        let mut head = Vec::new();
        // The head: lines up to an empty one.
        loop {
            let n = r.read_until(b'\n', &mut head).await?;
            if n == 0 {
                return Ok(()); // client closed
            }
            if head.ends_with(b"\r\n\r\n") || head == b"\r\n" {
                break;
            }
        }
        if head == b"\r\n" {
            continue;
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut length: u64 = 0;
        let mut chunked = false;
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "content-length" {
                    length = v.parse().unwrap_or(0);
                } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                    chunked = true;
                }
            }
        }
        let d = *delay.lock().expect("lock");
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
        log.lock().expect("lock").push(S3Request {
            at: Utc::now(),
            method,
            target,
        });
        server.write_all(&head).await?;
        if chunked {
            loop {
                let mut size_line = Vec::new();
                if r.read_until(b'\n', &mut size_line).await? == 0 {
                    return Ok(());
                }
                server.write_all(&size_line).await?;
                let size_text = String::from_utf8_lossy(&size_line);
                let size_hex = size_text.trim().split(';').next().unwrap_or("0");
                let size = u64::from_str_radix(size_hex, 16).unwrap_or(0);
                if size == 0 {
                    // Trailers, then an empty line.
                    loop {
                        let mut t = Vec::new();
                        if r.read_until(b'\n', &mut t).await? == 0 {
                            return Ok(());
                        }
                        server.write_all(&t).await?;
                        if t == b"\r\n" {
                            break;
                        }
                    }
                    break;
                }
                // The chunk and its CRLF.
                let mut chunk = (&mut r).take(size + 2);
                tokio::io::copy(&mut chunk, &mut server).await?;
            }
        } else if length > 0 {
            let mut body = (&mut r).take(length);
            tokio::io::copy(&mut body, &mut server).await?;
        }
        server.flush().await?;
    }
}
