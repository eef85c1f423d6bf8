//! The suite's own tools, tested: the proxy forwards every framing byte for byte, carries the
//! SDK's `aws-chunked` uploads intact, and the checker reports each kind of damage it claims
//! to catch (so a green run of the fault suite means something).

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter, ObjectLockLegalHold, ObjectLockLegalHoldStatus, Tag, Tagging,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::checker::{FOREIGN_RULE_ID, RETENTION_TAG};
use super::model::{HoldDef, Reason, RequestDef};
use super::proxy::{FaultProxy, object_key, shift_date};
use super::rng::Rng;
use super::world::{ObjSpec, Options, Scenario, endpoint};

/// An upstream that, for each connection in turn, reads exactly the expected number of bytes,
/// answers with canned bytes, and keeps what it read and anything after it.
async fn recording_upstream(
    exchanges: Vec<(usize, Vec<u8>)>,
) -> (String, tokio::task::JoinHandle<Vec<(Vec<u8>, Vec<u8>)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let addr = listener.local_addr().expect("address").to_string();
    let task = tokio::spawn(async move {
        let mut got = Vec::new();
        for (len, response) in exchanges {
            let (mut c, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; len];
            c.read_exact(&mut request).await.expect("the whole request");
            c.write_all(&response).await.expect("respond");
            let mut extra = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut extra)).await;
            got.push((request, extra));
        }
        got
    });
    (addr, task)
}

async fn read_exactly(c: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut buf))
        .await
        .expect("answered in time")
        .expect("answer");
    buf
}

/// The date shift moves the `Date` header of an answer and nothing else (not `Last-Modified`,
/// not the body); the key the fault plans and pause triggers see is the percent-decoded object
/// key of the path-style target.
#[test]
fn the_proxy_moves_only_the_date_header_and_reads_keys_from_targets() {
    let answer = |date: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nLast-Modified: Wed, 25 Nov 2026 19:00:00 GMT\r\ndate: {date}\r\nContent-Length: 35\r\n\r\nDate: Wed, 25 Nov 2026 19:00:00 GMT"
        )
        .into_bytes()
    };
    let mut raw = answer("Wed, 25 Nov 2026 19:00:00 GMT");
    assert!(shift_date(&mut raw, chrono::TimeDelta::minutes(10)));
    assert_eq!(
        String::from_utf8_lossy(&raw),
        String::from_utf8_lossy(&answer("Wed, 25 Nov 2026 19:10:00 GMT"))
            .replace("date: Wed", "Date: Wed")
    );
    let mut raw = answer("Wed, 25 Nov 2026 00:05:00 GMT");
    assert!(shift_date(&mut raw, chrono::TimeDelta::minutes(-10)));
    assert!(
        String::from_utf8_lossy(&raw).contains("\r\nDate: Tue, 24 Nov 2026 23:55:00 GMT\r\n"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let mut none = b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n".to_vec();
    let before = none.clone();
    assert!(!shift_date(&mut none, chrono::TimeDelta::minutes(10)));
    assert_eq!(none, before, "an answer without Date is left as it is");

    assert_eq!(
        object_key("/bucket/calls/r7%010/audio%20x.wav?tagging&versionId=a"),
        "calls/r7\u{1}0/audio x.wav"
    );
    assert_eq!(
        object_key("/bucket/calls/r1/audio.wav"),
        "calls/r1/audio.wav"
    );
    assert_eq!(object_key("/bucket?delete"), "");
    assert_eq!(object_key("/bucket"), "");
}

/// Chunked (with `aws-chunked` signatures and a trailer), sized, `Expect: 100-continue` and
/// HEAD exchanges on one client connection: the upstream gets every byte the client sent and
/// nothing more, and the client gets every byte the upstream answered (an interim 100 from
/// the upstream is not passed on twice; a HEAD answer's Content-Length announces no body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_forwards_chunked_sized_continued_and_head_exchanges_byte_for_byte() {
    let mut big = Vec::new();
    let mut rng = Rng::new(7);
    for _ in 0..70_000 {
        big.push(b'a' + (rng.below(26) as u8));
    }
    let mut chunked = b"PUT /b/audio.wav HTTP/1.1\r\nHost: s3\r\nContent-Encoding: aws-chunked\r\nTransfer-Encoding: chunked\r\nx-amz-trailer: x-amz-checksum-crc32\r\n\r\n".to_vec();
    chunked.extend_from_slice(format!("{:x};chunk-signature=abc\r\n", big.len()).as_bytes());
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    let chunked_answer =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n".to_vec();
    let sized =
        b"POST /b?delete HTTP/1.1\r\nHost: s3\r\nContent-Length: 11\r\n\r\n<Delete/>\r\n".to_vec();
    let sized_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes".to_vec();
    let continued_head =
        b"PUT /b/k2 HTTP/1.1\r\nHost: s3\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
            .to_vec();
    let continued_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
    let mut upstream_continued = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    upstream_continued.extend_from_slice(&continued_answer);
    let head = b"HEAD /b/audio.wav HTTP/1.1\r\nHost: s3\r\n\r\n".to_vec();
    let head_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"x\"\r\n\r\n".to_vec();

    let (addr, upstream) = recording_upstream(vec![
        (chunked.len(), chunked_answer.clone()),
        (sized.len(), sized_answer.clone()),
        (continued_head.len() + 4, upstream_continued),
        (head.len(), head_answer.clone()),
    ])
    .await;
    let proxy = FaultProxy::start(&addr, 1).await;
    let mut c = TcpStream::connect(proxy.endpoint().trim_start_matches("http://"))
        .await
        .expect("connect to the proxy");
    // Chunked body written in pieces, as a streaming client would.
    for piece in chunked.chunks(4096) {
        c.write_all(piece).await.expect("send");
    }
    assert_eq!(
        read_exactly(&mut c, chunked_answer.len()).await,
        chunked_answer
    );
    c.write_all(&sized).await.expect("send");
    assert_eq!(read_exactly(&mut c, sized_answer.len()).await, sized_answer);
    c.write_all(&continued_head).await.expect("send");
    assert_eq!(
        read_exactly(&mut c, 25).await,
        b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()
    );
    c.write_all(b"data").await.expect("send");
    assert_eq!(
        read_exactly(&mut c, continued_answer.len()).await,
        continued_answer
    );
    c.write_all(&head).await.expect("send");
    assert_eq!(read_exactly(&mut c, head_answer.len()).await, head_answer);
    drop(c);

    let got = upstream.await.expect("upstream");
    let mut continued = continued_head.clone();
    continued.extend_from_slice(b"data");
    let sent = [chunked, sized, continued, head];
    assert_eq!(got.len(), sent.len());
    for (i, ((request, extra), want)) in got.iter().zip(&sent).enumerate() {
        assert!(
            request == want,
            "exchange {i}: the upstream got other bytes"
        );
        assert!(
            extra.is_empty(),
            "exchange {i}: {} bytes too many",
            extra.len()
        );
    }
    assert_eq!(proxy.stats().requests, 4);
}

/// Uploads with the SDK's default checksums (a streamed body goes out `aws-chunked` with a
/// trailing checksum) and with gallring's settings, once straight to Ceph and once through the
/// proxy: the proxy is transparent (same outcome, same stored bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_is_transparent_to_sdk_uploads() {
    let direct = gallring::store::s3::S3Store::sdk_client(Some(endpoint())).await;
    let bucket = format!("faults-proxy-{}", chrono::Utc::now().format("%H%M%S%f"));
    direct
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let upstream = endpoint()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let proxy = FaultProxy::start(&upstream, 2).await;
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let default_sdk = |url: String| {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .endpoint_url(url)
                .force_path_style(true)
                .build(),
        )
    };
    let clients = [
        ("default SDK, direct", default_sdk(endpoint())),
        ("default SDK, proxied", default_sdk(proxy.endpoint())),
        ("gallring's, direct", direct.clone()),
        (
            "gallring's, proxied",
            gallring::store::s3::S3Store::sdk_client(Some(proxy.endpoint())).await,
        ),
    ];
    let mut rng = Rng::new(3);
    let body: Vec<u8> = (0..300_000).map(|_| rng.below(256) as u8).collect();
    let path = std::env::temp_dir().join(format!("{bucket}.bin"));
    std::fs::write(&path, &body).expect("temp file");
    let mut outcomes = Vec::new();
    for (i, (name, client)) in clients.iter().enumerate() {
        let key = format!("calls/c{i}/audio.wav");
        let streamed = client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(ByteStream::from_path(&path).await.expect("stream"))
            .send()
            .await;
        let streamed = match streamed {
            Ok(_) => {
                let back = direct
                    .get_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .expect("read back")
                    .body
                    .collect()
                    .await
                    .expect("body")
                    .into_bytes();
                assert!(
                    back.as_ref() == body.as_slice(),
                    "{name}: the object changed"
                );
                "stored intact".to_string()
            }
            Err(e) => format!(
                "refused: {}",
                aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or("?")
            ),
        };
        let small = client
            .put_object()
            .bucket(&bucket)
            .key(format!("calls/c{i}/small.wav"))
            .body(ByteStream::from_static(b"small"))
            .tagging("team=Claims%20Nord")
            .send()
            .await
            .is_ok();
        println!("FAULTS: SDK upload {name}: streamed {streamed}, small with tags ok {small}");
        outcomes.push((streamed, small));
    }
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        outcomes[0], outcomes[1],
        "the proxy changed the default SDK's outcome"
    );
    assert_eq!(
        outcomes[2], outcomes[3],
        "the proxy changed gallring's client's outcome"
    );
    assert_eq!(
        outcomes[3],
        ("stored intact".to_string(), true),
        "gallring's client uploads through the proxy"
    );
    assert!(proxy.stats().requests >= 4);
}

/// Damage done behind gallring's back, one of each kind: the checker names every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_reports_every_kind_of_damage_it_guards_against() {
    let mut s = Scenario::new("checker_selftest").await;
    s.seed(vec![
        ObjSpec::audio("r01", 600),
        ObjSpec::audio("r02", 72).tags(2).foreign_legal_hold(),
        ObjSpec::transcript("r03", 72),
        ObjSpec::audio("r04", 600),
        ObjSpec::audio("r05", 72),
    ])
    .await;
    s.add_hold(HoldDef::new(
        "dispute",
        Reason::Dispute,
        &["r01", "r04"],
        &[],
    ));
    let version = |k: &str| s.model.obj(k).expect("seeded").version_id.clone();
    let (v1, v2, v4) = (
        version("calls/r01/audio.wav"),
        version("calls/r02/audio.wav"),
        version("calls/r04/audio.wav"),
    );
    let c = &s.s3;
    let b = &s.bucket;
    // A held object deleted; a fresh one deleted; one hidden by a delete marker.
    c.delete_object()
        .bucket(b)
        .key("calls/r01/audio.wav")
        .version_id(&v1)
        .send()
        .await
        .expect("delete");
    c.delete_object()
        .bucket(b)
        .key("calls/r05/audio.wav")
        .version_id(version("calls/r05/audio.wav"))
        .send()
        .await
        .expect("delete");
    c.delete_object()
        .bucket(b)
        .key("calls/r03/transcript.json")
        .send()
        .await
        .expect("delete marker");
    // A foreign legal hold lifted, a foreign tag changed and one added.
    c.put_object_legal_hold()
        .bucket(b)
        .key("calls/r02/audio.wav")
        .version_id(&v2)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::Off)
                .build(),
        )
        .send()
        .await
        .expect("lift");
    let tags = |pairs: &[(&str, &str)]| {
        Tagging::builder()
            .set_tag_set(Some(
                pairs
                    .iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build().expect("tag"))
                    .collect(),
            ))
            .build()
            .expect("tagging")
    };
    c.put_object_tagging()
        .bucket(b)
        .key("calls/r02/audio.wav")
        .version_id(&v2)
        .tagging(tags(&[
            ("subject", "subj-r02"),
            ("team", "Claims Syd"),
            ("extra", "1"),
        ]))
        .send()
        .await
        .expect("tags");
    // A held object made expirable by lifecycle.
    c.put_object_tagging()
        .bucket(b)
        .key("calls/r04/audio.wav")
        .version_id(&v4)
        .tagging(tags(&[(RETENTION_TAG, "expire-7d")]))
        .send()
        .await
        .expect("tags");
    // The foreign rule edited.
    let rule = LifecycleRule::builder()
        .id(FOREIGN_RULE_ID)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("nothing/").build())
        .expiration(LifecycleExpiration::builder().days(3651).build())
        .build()
        .expect("rule");
    c.put_bucket_lifecycle_configuration()
        .bucket(b)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .expect("edit the foreign rule");

    let violations = s.checker.check(&s.s3, &s.bucket, &s.model, "damage").await;
    let all = violations.join("\n");
    for want in [
        "calls/r01/audio.wav: deleted",
        "calls/r05/audio.wav: deleted",
        "calls/r03/transcript.json: hidden by a delete marker",
        "calls/r02/audio.wav: its foreign Object Lock legal hold",
        "calls/r02/audio.wav: foreign tag `team` was `Claims Nord`",
        "calls/r02/audio.wav: a foreign tag `extra` appeared",
        "calls/r04/audio.wav: tagged gallring.io/retention=expire-7d",
        "the foreign lifecycle rule changed",
    ] {
        assert!(all.contains(want), "the checker missed `{want}`:\n{all}");
    }
    assert_eq!(violations.len(), 8, "{all}");
    s.summary("8 kinds of damage reported");
}

/// Damage around data-subject requests, one of each kind: objects deleted that a restriction
/// holds, that `bookkeeping` keeps from an erasure, that documentation keeps after a
/// withdrawal, that the erasure does not select; and a journal (a segment written behind
/// gallring's back) that confirms a deletion the store did not see and calls the erasure
/// `Completed` with an erasable object left, a kept one unnamed and an unselected one named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_reports_every_kind_of_request_damage_it_guards_against() {
    let mut s = Scenario::with(
        "checker_requests_selftest",
        Options {
            consent: true,
            legal_obligation: true,
            ..Options::default()
        },
    )
    .await;
    let alice = |id: &str, hours: i64| ObjSpec::audio(id, hours).tag("subject", "alice");
    s.seed(vec![
        alice("x1", 72),
        alice("x2", 240).tag("ledger", "yes"),
        ObjSpec::audio("x3", 72)
            .tag("subject", "bob")
            .tag("consent", "given"),
        ObjSpec::audio("x4", 72).tag("subject", "carol"),
        alice("x5", 72),
        ObjSpec::audio("x6", 72).tag("subject", "bob"),
        alice("x7", 72),
    ])
    .await;
    let received = chrono::Utc::now() - chrono::TimeDelta::hours(36);
    s.add_request(RequestDef::erasure("erase", "alice", received));
    s.add_request(RequestDef::withdrawal(
        "withdraw",
        "bob",
        &["quality"],
        received,
    ));
    s.add_request(RequestDef::restriction("restrict", &["x1", "x7"], received));
    let version = |k: &str| s.model.obj(k).expect("seeded").version_id.clone();
    for id in ["x1", "x2", "x3", "x4"] {
        let k = format!("calls/{id}/audio.wav");
        s.s3.delete_object()
            .bucket(&s.bucket)
            .key(&k)
            .version_id(version(&k))
            .send()
            .await
            .expect("delete");
    }
    let at = chrono::Utc::now().to_rfc3339();
    let records = [
        serde_json::json!({
            "seq": 0, "at": at, "prev": "", "fact": "deletionsConfirmed",
            "objects": [{"key": "calls/x6/audio.wav", "versionId": version("calls/x6/audio.wav")}],
        }),
        serde_json::json!({
            "seq": 1, "at": at, "prev": "", "fact": "subjectRequestOutcome",
            "request": "SubjectRequest/faults/erase", "type": "Erasure", "phase": "Completed",
            "exceptions": [{
                "key": "calls/x4/audio.wav", "versionId": version("calls/x4/audio.wav"),
                "keptBy": "a hold", "reason": "held",
            }],
            "exceptionsTotal": 1,
        }),
    ];
    let body: String = records.iter().map(|r| format!("{r}\n")).collect();
    s.s3.put_object()
        .bucket(&s.bucket)
        .key(".gallring/journal/0000000000000000.jsonl")
        .body(ByteStream::from(body.into_bytes()))
        .send()
        .await
        .expect("a journal segment");

    let violations = s.checker.check(&s.s3, &s.bucket, &s.model, "damage").await;
    let all = violations.join("\n");
    for want in [
        "calls/x1/audio.wav: deleted",
        "calls/x2/audio.wav: deleted",
        "calls/x3/audio.wav: deleted",
        "calls/x4/audio.wav: deleted",
        "calls/x6/audio.wav: the journal confirms the deletion of version",
        "calls/x5/audio.wav: the journal says erasure SubjectRequest/faults/erase is Completed",
        "calls/x7/audio.wav: erasure SubjectRequest/faults/erase is Completed (at",
        "calls/x4/audio.wav: erasure SubjectRequest/faults/erase (at",
    ] {
        assert!(all.contains(want), "the checker missed `{want}`:\n{all}");
    }
    assert_eq!(violations.len(), 8, "{all}");
    s.summary("8 kinds of request damage reported");
}
