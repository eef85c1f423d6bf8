//! `gallring report` (issue 11 item 3) on the real binary and the real store, opened in a real
//! headless browser: after a pass that deletes recordings past their deadline and holds one
//! under a complaint, the page carries its charts (the deletions per day by gallring, objects
//! per kind and purpose, upcoming deadlines, the hold's reason and age, late deletions) and
//! the deleted key, and it renders fully in Chromium with the network cut off, asking for
//! nothing outside the file.
//!
//! Chromium comes from Debian (`apt-get install chromium`; `.ci/run` installs it). Without it
//! the test fails and says so: a report never checked in a browser is not checked.
//! `GALLRING_CHROMIUM` names another binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::cases::{OLD, call, clean, key};
use super::model::{HoldDef, Reason};
use super::world::Scenario;

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("GALLRING_CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            return found;
        }
    }
    panic!(
        "the report test needs a headless browser and found none on PATH (chromium, \
         chromium-browser, google-chrome): install Debian's with \
         `apt-get install -y --no-install-recommends chromium` (as .ci/run does), or set \
         GALLRING_CHROMIUM"
    );
}

/// Runs the browser on `page` with the network unusable: every host name fails to resolve and
/// every connection goes to a closed port. Returns its output and the net log's path.
fn browse(page: &Path, work: &Path, run: &str, extra: &[&str]) -> (Output, PathBuf) {
    let profile = work.join(format!("profile-{run}"));
    let net_log = work.join(format!("net-{run}.json"));
    let _ = std::fs::remove_file(&net_log);
    let url = format!("file://{}", page.display());
    let mut child = Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--enable-logging=stderr",
            "--window-size=1280,4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--log-net-log={}", net_log.display()))
        .args(extra)
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium().display()));
    // A browser that hangs must not hang the suite.
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > Duration::from_secs(120) => {
                let _ = child.kill();
                panic!("chromium did not finish within 120 s on {url}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("waiting for chromium: {e}"),
        }
    }
    let out = child.wait_with_output().expect("chromium output");
    (out, net_log)
}

/// URLs the page itself asked for beyond the file: requests whose network isolation key is the
/// file's (the browser's own background requests, e.g. update checks, carry another one).
fn page_requests(net_log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(net_log)
        .unwrap_or_else(|e| panic!("no net log at {}: {e}", net_log.display()));
    let log: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .unwrap_or_else(|e| panic!("net log {} is not JSON: {e}", net_log.display()));
    let events = log["events"].as_array().cloned().unwrap_or_default();
    let mut urls: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let p = &e["params"];
            let url = p["url"].as_str()?;
            let nik = p["network_isolation_key"].as_str().unwrap_or_default();
            let own = nik.starts_with("file://");
            (own && !url.starts_with("file:") && !url.starts_with("data:")).then(|| url.to_string())
        })
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

/// A recording id with markup, an entity and quotes (no `/`: it is one path segment).
const HOSTILE: &str = "r93<em>&amp;'\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_renders_in_a_browser_offline_with_its_charts() {
    // Fail at once, before a store is set up, when there is no browser.
    let browser = chromium();
    let dir = std::env::temp_dir().join(format!("gallring-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");

    let mut s = Scenario::new("report").await;
    // r90: past its deadline and grace (deleted, late); r91: as old, held under a complaint;
    // r92: a day old, kept with deadlines ahead.
    let mut specs = call("r90", OLD, 0, 0);
    specs.extend(call("r91", OLD, 0, 0));
    specs.extend(call("r92", 24, 0, 0));
    // A key is whatever the uploader chose: markup in it must reach the page as text.
    specs.extend(call(HOSTILE, 24, 0, 0));
    s.seed(specs).await;
    s.add_hold(HoldDef::new("complaint", Reason::Complaint, &["r91"], &[]));
    s.write_manifests();
    assert!(clean(&mut s, "apply").await, "log {}", s.last_log());

    let page = dir.join("report.html");
    let manifests = s.dir.join("manifests");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_gallring"))
        .args(["report", "--manifests"])
        .arg(&manifests)
        .arg("--out")
        .arg(&page)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(&s.dir)
        .output()
        .expect("gallring runs");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}\n{said}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("FAULTS: report written in {:?}: {said}", started.elapsed());
    let html = std::fs::read_to_string(&page).expect("the report");

    // Nothing outside the file: no scripts, no references, no URLs at all.
    for banned in [
        "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import", "http://",
        "https://",
    ] {
        assert!(
            !html.contains(banned),
            "the report contains `{banned}`: it must reference nothing"
        );
    }
    assert!(
        html.contains("Content-Security-Policy\" content=\"default-src 'none'"),
        "the page forbids the browser any fetch"
    );

    let deleted = key("r90", "audio");
    let held = key("r91", "audio");
    let kept = key("r92", "transcript");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();

    // The browser, network off: a DOM, with everything rendered.
    let start = Instant::now();
    let (run, net_log) = browse(&page, &dir, "dom", &["--dump-dom"]);
    let took = start.elapsed();
    let dom = String::from_utf8_lossy(&run.stdout).to_string();
    let log = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(run.status.success(), "{} failed: {log}", browser.display());
    eprintln!("FAULTS: chromium rendered the report in {took:?}");
    assert!(
        dom.contains("<footer id=\"end\""),
        "rendered up to the end: {}",
        &dom[..dom.len().min(2000)]
    );
    assert_eq!(
        dom.matches("<svg").count(),
        html.matches("<svg").count(),
        "every chart is in the DOM"
    );
    assert!(dom.matches("<svg").count() >= 12, "the charts: {dom}");
    let figure = |id: &str| -> String {
        let at = dom
            .find(&format!("<figure id=\"{id}\""))
            .unwrap_or_else(|| panic!("no chart {id} in the DOM"));
        let end = dom[at..].find("</figure>").map_or(dom.len(), |e| at + e);
        dom[at..end].to_string()
    };
    // Deletions per day: today's bar says how many gallring deleted (r90's two artifacts).
    let per_day = figure("chart-deletions");
    assert!(per_day.contains("<svg"), "{per_day}");
    assert!(
        per_day.contains(&format!(
            "<title>{today}: 2 gallring, 0 lifecycle, 0 others</title>"
        )),
        "{per_day}"
    );
    // Kept now, per kind and purpose (r91 held, r92 and r93 kept: an audio and a transcript
    // each).
    let kinds = figure("chart-kind-objects");
    assert!(
        kinds.contains("<title>audio: 3 objects</title>")
            && kinds.contains("<title>transcript: 3 objects</title>"),
        "{kinds}"
    );
    let purposes = figure("chart-purpose-objects");
    assert!(
        purposes.contains("<title>documentation: 6 objects</title>"),
        "{purposes}"
    );
    assert!(figure("chart-kind-bytes").contains("<rect"));
    // Upcoming: the audio (P7D) of r92 and r93 falls in week 1, their transcripts (P14D) in
    // week 2, from day 13 on.
    let weeks = figure("chart-upcoming-weeks");
    let week = |n: usize| {
        let from = (chrono::Utc::now() + chrono::TimeDelta::days(7 * (n as i64 - 1)))
            .format("%Y-%m-%d")
            .to_string();
        format!("<title>week from {from}: 2 objects</title>")
    };
    assert!(
        weeks.contains(&week(1)) && weeks.contains(&week(2)),
        "{weeks}"
    );
    // Holds: the complaint's reason, in objects held and in age.
    let reasons = figure("chart-held-reason");
    assert!(
        reasons.contains("<title>Complaint: 2 objects</title>"),
        "{reasons}"
    );
    let ages = figure("chart-hold-age");
    assert!(
        ages.contains("faults/complaint (Complaint, case FS-COMPLAINT): 0 d since applied"),
        "{ages}"
    );
    // The hold's row: applied today, holding both artifacts of r91.
    let row = dom
        .split("<tr>")
        .find(|r| r.contains("faults/complaint</td>"))
        .unwrap_or_else(|| panic!("no row for the hold in {dom}"));
    assert!(
        row.contains("<td>Complaint</td><td>FS-COMPLAINT</td>")
            && row.contains(&format!("<td>{today}T"))
            && row.contains("<td>0 d</td><td>2</td></tr>"),
        "{row}"
    );
    // Late deletions: r90 went 16 days after deadline + grace.
    let late = figure("chart-late-deletions");
    assert!(
        late.contains(&format!("<title>{today}: 2 late deletions</title>")),
        "{late}"
    );
    // The tables: the deleted key, the held one in the deadlines it is not in, the kept one.
    assert!(dom.contains(&deleted), "{deleted} in the deletions");
    assert!(dom.contains(&kept), "{kept} in the upcoming deadlines");
    let upcoming = &dom[dom.find("id=\"upcoming\"").expect("upcoming")..];
    let upcoming = &upcoming[..upcoming.find("</section>").unwrap_or(upcoming.len())];
    assert!(
        !upcoming.contains(&held),
        "{held} is held: no deadline to show"
    );
    assert!(dom.contains("FS-COMPLAINT"), "the hold's case");
    // The hostile key is text: its markup escaped in the file and in the DOM, no element made.
    assert!(
        html.contains("calls/r93&lt;em&gt;&amp;amp;&#39;&quot;/audio.wav"),
        "escaped in the file"
    );
    assert!(
        dom.contains("calls/r93&lt;em&gt;&amp;amp;'\"/audio.wav"),
        "a text node in the DOM"
    );
    assert!(!dom.contains("<em>"), "markup from a key became an element");
    assert!(
        dom.contains("does not record how many objects were overdue"),
        "the page says what it does not show"
    );

    // Nothing asked for beyond the file, and nothing refused (a fetch the policy blocked).
    let asked = page_requests(&net_log);
    assert!(asked.is_empty(), "the page made requests: {asked:?}");
    assert!(!log.contains("Refused to"), "{log}");

    // The check can fail: the same page with an outside image (and its policy taken out) is
    // caught asking for it.
    let bad = dir.join("bad.html");
    std::fs::write(
        &bad,
        html.replace(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            "",
        )
        .replace(
            "<footer id=\"end\">",
            "<img src=\"https://gallring-report.invalid/pixel.png\"><footer id=\"end\">",
        ),
    )
    .expect("write");
    let (_, bad_log) = browse(&bad, &dir, "bad", &["--dump-dom"]);
    let asked = page_requests(&bad_log);
    assert!(
        asked
            .iter()
            .any(|u| u.contains("gallring-report.invalid/pixel.png")),
        "the net log check misses a page request: {asked:?}"
    );

    // And a picture of it, for a person to look at (kept under the scenario's logs).
    let png = s.dir.join("report.png");
    let shot = format!("--screenshot={}", png.display());
    let (run, _) = browse(&page, &dir, "shot", &[shot.as_str(), "--hide-scrollbars"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "a real screenshot, {} bytes",
        bytes.len()
    );
    let _ = std::fs::copy(&page, s.dir.join("report.html"));
    let _ = std::fs::remove_dir_all(&dir);
}
