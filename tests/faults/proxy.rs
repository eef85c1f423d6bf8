//! A fault-injecting HTTP/1.1 proxy in front of the S3 store, on 127.0.0.1.
//!
//! Each request is read whole from the client (head, then exactly the body its framing
//! announces: `Content-Length`, or `Transfer-Encoding: chunked`, which carries `aws-chunked`
//! bodies intact; `Expect: 100-continue` is answered by the proxy), then, as decided for its
//! ordinal by the seeded RNG, either forwarded as is over a fresh upstream connection and the
//! response returned, or:
//!
//! - answered `500 InternalError` or `503 ServiceUnavailable` without being forwarded (not
//!   `SlowDown`: the SDK's adaptive retry would throttle the client for tens of seconds, and
//!   the suite must stay bounded in time);
//! - reset (RST) without being forwarded;
//! - delayed, then forwarded (the delay goes on even if the client gives up meanwhile, like a
//!   slow server that already has the request);
//! - **applied then dropped**: forwarded, the store applies it, and the client's connection is
//!   reset instead of getting the response.
//!
//! A hang trigger withholds the response of one chosen request (after the store applied it)
//! until the client goes away: the test kills the process at exactly that point. A pause
//! trigger holds one chosen request *before* it is forwarded until the test resumes it, so the
//! test can change the store in between (the request then sees the change). A date shift moves
//! the `Date` header of every answer, as a store whose clock is off would send it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::rng::{Rng, mix};

/// What the proxy can do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Status500,
    Status503,
    Reset,
    Delay,
    ApplyThenDrop,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Status500,
        Fault::Status503,
        Fault::Reset,
        Fault::Delay,
        Fault::ApplyThenDrop,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Fault::Status500 => "500",
            Fault::Status503 => "503",
            Fault::Reset => "reset",
            Fault::Delay => "delay",
            Fault::ApplyThenDrop => "apply-then-drop",
        }
    }
}

/// One request as the fault plan sees it.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The S3 operation (`PutObjectTagging`, `DeleteObjects`, ...).
    pub op: &'static str,
    /// The object key, percent-decoded (empty for bucket-level requests).
    pub key: String,
    /// A listing from a key on (`start-after`): one range of a listing cut in ranges.
    pub from_key: bool,
}

pub type Filter = Arc<dyn Fn(&RequestInfo) -> bool + Send + Sync>;

/// How often and how requests fail.
#[derive(Clone)]
pub struct FaultPlan {
    /// Probability that an eligible request gets a fault.
    pub rate: f64,
    /// Relative weights of the fault kinds.
    pub weights: Vec<(Fault, u32)>,
    /// Longest injected delay (kept below the client's request timeout).
    pub max_delay: Duration,
    /// Only requests for which this holds are eligible (all when `None`).
    pub only: Option<Filter>,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan {
            rate: 0.0,
            weights: Vec::new(),
            max_delay: Duration::ZERO,
            only: None,
        }
    }

    /// Every kind, equally likely, on `rate` of all requests.
    pub fn random(rate: f64) -> FaultPlan {
        FaultPlan {
            rate,
            weights: Fault::ALL.iter().map(|f| (*f, 1)).collect(),
            max_delay: Duration::from_millis(1500),
            only: None,
        }
    }

    /// Failures (no delays) on `rate` of the requests `only` selects.
    pub fn failing(rate: f64, only: Filter) -> FaultPlan {
        FaultPlan {
            rate,
            weights: vec![
                (Fault::Status500, 1),
                (Fault::Status503, 1),
                (Fault::Reset, 1),
                (Fault::ApplyThenDrop, 1),
            ],
            max_delay: Duration::ZERO,
            only: Some(only),
        }
    }
}

/// Counts kept by the proxy.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub requests: u64,
    pub by_op: BTreeMap<&'static str, u64>,
    pub faults: BTreeMap<&'static str, u64>,
    pub faults_by_op: BTreeMap<(&'static str, &'static str), u64>,
    /// Every fault injected, as (operation, object key), in order.
    pub faulted: Vec<(&'static str, String)>,
    /// Answers whose `Date` header was moved by the date shift.
    pub dates_shifted: u64,
    /// Listings from a key on (`start-after`), and how many of them got a fault.
    pub from_key: u64,
    pub from_key_faulted: u64,
}

impl Stats {
    pub fn faults_total(&self) -> u64 {
        self.faults.values().sum()
    }

    /// Faults on one operation.
    pub fn faults_on(&self, op: &str) -> u64 {
        self.faults_by_op
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, n)| n)
            .sum()
    }

    /// Keys that got a fault on one operation (each once).
    pub fn faulted_keys(&self, op: &str) -> std::collections::BTreeSet<String> {
        self.faulted
            .iter()
            .filter(|(o, _)| *o == op)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// `500=3 503=1 ...` in a fixed order (zeros included).
    pub fn describe_faults(&self) -> String {
        Fault::ALL
            .iter()
            .map(|f| format!("{}={}", f.name(), self.faults.get(f.name()).unwrap_or(&0)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

struct Shared {
    upstream: String,
    seed: u64,
    ordinal: AtomicU64,
    hung: AtomicU64,
    plan: Mutex<FaultPlan>,
    hang: Mutex<Option<Filter>>,
    pause: Mutex<Option<Filter>>,
    paused: AtomicU64,
    resume: tokio::sync::Notify,
    date_shift: Mutex<Option<chrono::TimeDelta>>,
    stats: Mutex<Stats>,
}

/// Longest a paused request waits for [`FaultProxy::resume`] before it goes on by itself.
const PAUSE_LIMIT: Duration = Duration::from_secs(60);

/// The proxy. Dropping it stops accepting connections.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the fault proxy listens");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            seed,
            ordinal: AtomicU64::new(0),
            hung: AtomicU64::new(0),
            plan: Mutex::new(FaultPlan::none()),
            hang: Mutex::new(None),
            pause: Mutex::new(None),
            paused: AtomicU64::new(0),
            resume: tokio::sync::Notify::new(),
            date_shift: Mutex::new(None),
            stats: Mutex::new(Stats::default()),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve_connection(s.clone(), client));
            }
        });
        FaultProxy { addr, shared, task }
    }

    /// The endpoint for `spec.s3.endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        *self.shared.plan.lock().expect("plan") = plan;
    }

    /// Withholds the response of the next request `filter` selects (once).
    pub fn hang_on(&self, filter: Filter) {
        *self.shared.hang.lock().expect("hang") = Some(filter);
    }

    /// Requests whose response was withheld so far.
    pub fn hung(&self) -> u64 {
        self.shared.hung.load(Ordering::SeqCst)
    }

    /// Holds the next request `filter` selects (once) before it is forwarded, until
    /// [`FaultProxy::resume`] (or [`PAUSE_LIMIT`]).
    pub fn pause_on(&self, filter: Filter) {
        *self.shared.pause.lock().expect("pause") = Some(filter);
    }

    /// Requests held by a pause trigger so far.
    pub fn paused(&self) -> u64 {
        self.shared.paused.load(Ordering::SeqCst)
    }

    /// Lets the paused request go on to the store.
    pub fn resume(&self) {
        self.shared.resume.notify_one();
    }

    /// Waits (at most `limit`) until `n` requests have been paused in all; whether they were.
    pub async fn wait_paused(&self, n: u64, limit: Duration) -> bool {
        let start = std::time::Instant::now();
        while self.paused() < n {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }

    /// Moves the `Date` header of every answer from now on by `shift` (`None`: as the store
    /// sent it).
    pub fn shift_dates(&self, shift: Option<chrono::TimeDelta>) {
        *self.shared.date_shift.lock().expect("date shift") = shift;
    }

    /// Requests received so far (faulted or not).
    pub fn seen(&self) -> u64 {
        self.shared.ordinal.load(Ordering::SeqCst)
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().expect("stats").clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    /// The fault for request number `n`, drawn from its own stream of the seed.
    fn decide(&self, n: u64, info: &RequestInfo) -> Option<(Fault, Duration)> {
        let plan = self.plan.lock().expect("plan").clone();
        if plan.rate <= 0.0 || plan.weights.is_empty() {
            return None;
        }
        if let Some(only) = &plan.only
            && !only(info)
        {
            return None;
        }
        let mut rng = Rng::new(mix(self.seed, n));
        if !rng.chance(plan.rate) {
            return None;
        }
        let total: u64 = plan.weights.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = rng.below(total);
        let mut fault = plan.weights[0].0;
        for (f, w) in &plan.weights {
            if x < u64::from(*w) {
                fault = *f;
                break;
            }
            x -= u64::from(*w);
        }
        let delay = if fault == Fault::Delay {
            Duration::from_millis(rng.range(20, plan.max_delay.as_millis().max(20) as u64))
        } else {
            Duration::ZERO
        };
        Some((fault, delay))
    }

    fn record(&self, info: &RequestInfo, fault: Option<Fault>) {
        let mut s = self.stats.lock().expect("stats");
        s.requests += 1;
        *s.by_op.entry(info.op).or_default() += 1;
        s.from_key += u64::from(info.from_key);
        s.from_key_faulted += u64::from(info.from_key && fault.is_some());
        if let Some(f) = fault {
            *s.faults.entry(f.name()).or_default() += 1;
            *s.faults_by_op.entry((info.op, f.name())).or_default() += 1;
            s.faulted.push((info.op, info.key.clone()));
        }
    }

    fn take_pause(&self, info: &RequestInfo) -> bool {
        let mut pause = self.pause.lock().expect("pause");
        if pause.as_ref().is_some_and(|f| f(info)) {
            *pause = None;
            true
        } else {
            false
        }
    }

    /// The answer as the client gets it: its `Date` moved when a shift is set.
    fn dated(&self, mut raw: Vec<u8>) -> Vec<u8> {
        let shift = *self.date_shift.lock().expect("date shift");
        if let Some(shift) = shift
            && shift_date(&mut raw, shift)
        {
            self.stats.lock().expect("stats").dates_shifted += 1;
        }
        raw
    }

    fn take_hang(&self, info: &RequestInfo) -> bool {
        let mut hang = self.hang.lock().expect("hang");
        if hang.as_ref().is_some_and(|f| f(info)) {
            *hang = None;
            true
        } else {
            false
        }
    }
}

/// A request or response as read: its head parsed, its raw bytes kept for forwarding.
struct Message {
    /// Request: method. Response: status code as text.
    first: String,
    /// Request: target.
    second: String,
    raw: Vec<u8>,
    /// The connection ends after this message.
    close: bool,
}

/// Resets the connection (RST, not FIN).
fn reset(stream: TcpStream) {
    // SO_LINGER 0 only blocks nothing: close sends RST at once.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn serve_connection(shared: Arc<Shared>, client: TcpStream) {
    let _ = client.set_nodelay(true);
    let mut client = BufReader::new(client);
    loop {
        let req = match read_request(&mut client).await {
            Ok(Some(r)) => r,
            _ => return,
        };
        let info = RequestInfo {
            op: operation(&req.first, &req.second),
            key: object_key(&req.second),
            from_key: req
                .second
                .split_once('?')
                .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("start-after="))),
        };
        let n = shared.ordinal.fetch_add(1, Ordering::SeqCst);
        let fault = shared.decide(n, &info);
        shared.record(&info, fault.map(|(f, _)| f));
        let head_request = req.first == "HEAD";
        match fault {
            Some((Fault::Status500, _)) => {
                let r = shared.dated(error_response(500, "InternalError", n, head_request));
                if client.get_mut().write_all(&r).await.is_err() {
                    return;
                }
                continue;
            }
            Some((Fault::Status503, _)) => {
                let r = shared.dated(error_response(503, "ServiceUnavailable", n, head_request));
                if client.get_mut().write_all(&r).await.is_err() {
                    return;
                }
                continue;
            }
            Some((Fault::Reset, _)) => {
                reset(client.into_inner());
                return;
            }
            Some((Fault::Delay, d)) => tokio::time::sleep(d).await,
            Some((Fault::ApplyThenDrop, _)) | None => {}
        }
        if shared.take_pause(&info) {
            shared.paused.fetch_add(1, Ordering::SeqCst);
            let _ = tokio::time::timeout(PAUSE_LIMIT, shared.resume.notified()).await;
        }
        let hang = shared.take_hang(&info);
        let resp = match forward(&shared.upstream, &req, head_request).await {
            Ok(r) => r,
            Err(_) => {
                // The store could not be reached or answered garbage: the client sees a reset.
                reset(client.into_inner());
                return;
            }
        };
        if hang {
            shared.hung.fetch_add(1, Ordering::SeqCst);
            // Applied; the answer never comes. Wait until the client is gone.
            let mut buf = [0u8; 1];
            let _ = tokio::time::timeout(Duration::from_secs(120), client.read(&mut buf)).await;
            reset(client.into_inner());
            return;
        }
        if matches!(fault, Some((Fault::ApplyThenDrop, _))) {
            reset(client.into_inner());
            return;
        }
        let close = resp.close;
        if client
            .get_mut()
            .write_all(&shared.dated(resp.raw))
            .await
            .is_err()
        {
            return;
        }
        if close || req.close {
            let _ = client.get_mut().shutdown().await;
            return;
        }
    }
}

/// Sends the request over a fresh connection and reads the whole response.
async fn forward(upstream: &str, req: &Message, head_request: bool) -> std::io::Result<Message> {
    let stream = TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    let mut up = BufReader::new(stream);
    up.get_mut().write_all(&req.raw).await?;
    up.get_mut().flush().await?;
    tokio::time::timeout(
        Duration::from_secs(120),
        read_response(&mut up, head_request),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "store too slow"))?
}

/// Reads a head (start line and header lines up to the empty line). `None` at a clean EOF.
async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        if head.is_empty() && (line == b"\r\n" || line == b"\n") {
            continue; // stray CRLF between messages
        }
        let end = line == b"\r\n" || line == b"\n";
        head.extend_from_slice(&line);
        if end {
            return Ok(Some(head));
        }
        if head.len() > 256 * 1024 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "head too large",
            ));
        }
    }
}

fn parse_head(head: &[u8]) -> (String, String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let start = lines.next().unwrap_or_default().to_string();
    let mut parts = start.splitn(3, ' ');
    let first = parts.next().unwrap_or_default().to_string();
    let second = parts.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (first, second, headers)
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(headers: &[(String, String)]) -> Option<u64> {
    headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
}

fn wants_close(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(k, v)| k == "connection" && v.to_ascii_lowercase().contains("close"))
}

/// Appends a chunked body (chunks, the last chunk, trailers) to `raw`, byte for byte.
async fn read_chunked<R: AsyncBufRead + Unpin>(
    r: &mut R,
    raw: &mut Vec<u8>,
) -> std::io::Result<()> {
    loop {
        let mut size_line = Vec::new();
        if r.read_until(b'\n', &mut size_line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(&size_line);
        let text = String::from_utf8_lossy(&size_line);
        let hex = text.trim().split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(hex, 16)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            loop {
                let mut t = Vec::new();
                if r.read_until(b'\n', &mut t).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                raw.extend_from_slice(&t);
                if t == b"\r\n" || t == b"\n" {
                    return Ok(());
                }
            }
        }
        // The chunk's data and its CRLF.
        let mut chunk = vec![0u8; (size + 2) as usize];
        r.read_exact(&mut chunk).await?;
        raw.extend_from_slice(&chunk);
    }
}

/// Reads one request from the client. `Expect: 100-continue` is answered here, so the
/// client sends its body before anything is decided.
async fn read_request(client: &mut BufReader<TcpStream>) -> std::io::Result<Option<Message>> {
    let Some(head) = read_head(client).await? else {
        return Ok(None);
    };
    let (first, second, headers) = parse_head(&head);
    let expects_continue = headers
        .iter()
        .any(|(k, v)| k == "expect" && v.eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await?;
    }
    let mut raw = head;
    if is_chunked(&headers) {
        read_chunked(client, &mut raw).await?;
    } else if let Some(len) = content_length(&headers)
        && len > 0
    {
        let mut body = vec![0u8; len as usize];
        client.read_exact(&mut body).await?;
        raw.extend_from_slice(&body);
    }
    let close = wants_close(&headers);
    Ok(Some(Message {
        first,
        second,
        raw,
        close,
    }))
}

/// Reads one final response (interim 1xx responses are skipped).
async fn read_response(
    up: &mut BufReader<TcpStream>,
    head_request: bool,
) -> std::io::Result<Message> {
    loop {
        let Some(head) = read_head(up).await? else {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        };
        let (_, status, headers) = parse_head(&head);
        let code: u16 = status.parse().unwrap_or(0);
        if (100..200).contains(&code) {
            continue;
        }
        let mut raw = head;
        let mut close = wants_close(&headers);
        let no_body = head_request || code == 204 || code == 304;
        if !no_body {
            if is_chunked(&headers) {
                read_chunked(up, &mut raw).await?;
            } else if let Some(len) = content_length(&headers) {
                let mut body = vec![0u8; len as usize];
                up.read_exact(&mut body).await?;
                raw.extend_from_slice(&body);
            } else {
                up.read_to_end(&mut raw).await?;
                close = true;
            }
        }
        return Ok(Message {
            first: status,
            second: String::new(),
            raw,
            close,
        });
    }
}

fn error_response(status: u16, code: &str, n: u64, head_only: bool) -> Vec<u8> {
    let reason = match status {
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the gallring fault proxy</Message><RequestId>fault-{n}</RequestId></Error>"
    );
    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT");
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nx-amz-request-id: fault-{n}\r\nDate: {date}\r\n\r\n",
        if head_only { 0 } else { body.len() }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Moves the `Date` header of a response head by `shift`; whether there was one to move.
/// The rest of the answer stays byte for byte.
pub fn shift_date(raw: &mut Vec<u8>, shift: chrono::TimeDelta) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let mut start = 0;
    while start < end {
        let line_end = raw[start..end]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(end, |p| start + p);
        let line = &raw[start..line_end];
        if line.len() > 5 && line[..5].eq_ignore_ascii_case(b"date:") {
            let value = String::from_utf8_lossy(&line[5..]).trim().to_string();
            let Ok(t) = chrono::DateTime::parse_from_rfc2822(&value) else {
                return false;
            };
            let moved = (t.with_timezone(&chrono::Utc) + shift)
                .format("Date: %a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            raw.splice(start..line_end, moved.into_bytes());
            return true;
        }
        start = line_end + 2;
    }
    false
}

/// The object key of a path-style request target (`/bucket/key?query`), percent-decoded;
/// empty for bucket-level requests.
pub fn object_key(target: &str) -> String {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let Some((_, key)) = path.trim_start_matches('/').split_once('/') else {
        return String::new();
    };
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The S3 operation of a path-style request.
pub fn operation(method: &str, target: &str) -> &'static str {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split('=').next().unwrap_or(p))
        .collect();
    let has = |name: &str| params.contains(&name);
    let object_level = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .contains('/');
    match method {
        "GET" if has("tagging") => "GetObjectTagging",
        "PUT" if has("tagging") => "PutObjectTagging",
        "DELETE" if has("tagging") => "DeleteObjectTagging",
        "GET" if has("legal-hold") => "GetObjectLegalHold",
        "PUT" if has("legal-hold") => "PutObjectLegalHold",
        "GET" if has("retention") => "GetObjectRetention",
        "PUT" if has("retention") => "PutObjectRetention",
        "GET" if has("lifecycle") => "GetBucketLifecycle",
        "PUT" if has("lifecycle") => "PutBucketLifecycle",
        "DELETE" if has("lifecycle") => "DeleteBucketLifecycle",
        "GET" if has("object-lock") => "GetObjectLockConfiguration",
        "GET" if has("versioning") => "GetBucketVersioning",
        "POST" if has("delete") => "DeleteObjects",
        "GET" if !object_level && has("versions") => "ListObjectVersions",
        "GET" if !object_level && has("list-type") => "ListObjectsV2",
        "GET" if !object_level => "ListObjects",
        "HEAD" if !object_level => "HeadBucket",
        "HEAD" => "HeadObject",
        "GET" => "GetObject",
        "PUT" if object_level => "PutObject",
        "DELETE" if object_level => "DeleteObject",
        _ => "Other",
    }
}
