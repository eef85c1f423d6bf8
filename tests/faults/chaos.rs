//! Random faults and random SIGKILLs over a random bucket: apply passes with holds in the
//! manifests, then a release (holds taken out of the manifests), then more passes, then clean
//! passes. The checker runs after every run.

use super::model::{HoldDef, Reason};
use super::proxy::{FaultPlan, RequestInfo};
use super::rng::Rng;
use super::world::{ObjSpec, Options, Outcome, RunOpts, Scenario, age};
use std::sync::Arc;

/// The journal's first-seen times in shards of one entry: a random bucket of 40 objects
/// spans about forty, and a checkpoint comes every 8 changes, so the faults and kills land
/// in shard loads, rewrites and removals too.
fn small_shards() -> Options {
    Options {
        seen_shard_entries: Some(1),
        ..Options::default()
    }
}

/// A random bucket: `recordings` calls (audio + transcript) of random ages, up to 10 foreign
/// tags each, foreign legal holds on some objects that stay protected anyway, and two
/// unclassified objects. Holds: a Dispute (3-year floor) and a Complaint (no floor) that are
/// released, and a Claim that stays.
fn random_bucket(rng: &mut Rng, recordings: usize) -> (Vec<ObjSpec>, Vec<HoldDef>) {
    random_bucket_with(rng, recordings, true)
}

/// `random_bucket`, with foreign legal holds only where `object_lock` (a plain bucket has none).
fn random_bucket_with(
    rng: &mut Rng,
    recordings: usize,
    object_lock: bool,
) -> (Vec<ObjSpec>, Vec<HoldDef>) {
    // Ages by class: 0 fresh, 1 audio due, 2 both due.
    let classes: Vec<(String, u64)> = (0..recordings)
        .map(|i| (format!("r{i:02}"), (i % 3) as u64))
        .collect();
    let mut due: Vec<&str> = classes
        .iter()
        .filter(|(_, c)| *c != 0)
        .map(|(id, _)| id.as_str())
        .collect();
    rng.shuffle(&mut due);
    let fresh: Vec<&str> = classes
        .iter()
        .filter(|(_, c)| *c == 0)
        .map(|(id, _)| id.as_str())
        .collect();
    let key_held = format!("calls/{}/audio.wav", due[3]);
    let holds = vec![
        HoldDef::new("dispute", Reason::Dispute, &due[0..3], &[key_held.as_str()]),
        HoldDef::new("complaint", Reason::Complaint, &due[4..6], &[]),
        HoldDef::new("claim", Reason::Claim, &[due[6], fresh[0]], &[]),
    ];
    let stays_protected = |id: &str| fresh.contains(&id) || due[0..4].contains(&id) || due[6] == id;
    let mut specs = Vec::new();
    for (id, class) in &classes {
        let hours = match class {
            0 => age::fresh(rng),
            1 => age::middle(rng),
            _ => age::old(rng),
        };
        for spec in [ObjSpec::audio(id, hours), ObjSpec::transcript(id, hours)] {
            let tags = match rng.below(20) {
                0..=6 => 0,
                7..=13 => rng.range(1, 3) as usize,
                14..=17 => 9,
                _ => 10,
            };
            let mut spec = spec.tags(tags);
            if object_lock && stays_protected(id) && rng.chance(0.25) {
                spec = spec.foreign_legal_hold();
            }
            specs.push(spec);
        }
    }
    specs.push(ObjSpec::unclassified("calls/r00/notes.txt").tags(2));
    let readme = ObjSpec::unclassified("misc/readme.txt");
    specs.push(if object_lock {
        readme.foreign_legal_hold()
    } else {
        readme.tags(1)
    });
    (specs, holds)
}

/// Two clean passes, then the end-of-scenario figures. The overdue count reported by the last
/// pass must equal the true count when every due object is gone; when some could not be
/// deleted (a legal hold gallring lost track of, see `cases.rs`), the figures are reported
/// only: those failures are pinned by the deterministic tests, not by random ones.
async fn settle(s: &mut Scenario) -> Outcome {
    s.proxy.set_plan(FaultPlan::none());
    s.run(RunOpts::clean(), "clean").await;
    let last = s.run(RunOpts::clean(), "clean").await;
    let reported = last.reported_overdue();
    let truth = s.checker.true_overdue(&s.model);
    let leaked = s.checker.leaked_legal_holds(&s.model);
    let no_room = leaked
        .iter()
        .filter(|k| s.model.obj(k).is_some_and(|o| o.foreign_tags.len() >= 10))
        .count();
    let due = s.checker.due_and_present(&s.model);
    s.summary(&format!(
        "final clean pass exit {:?}, overdue reported {} / true {truth}, legal holds gallring set and never lifted: {} ({no_room} on objects with 10 foreign tags) {:?}, due but still present: {} {:?}",
        last.code,
        reported.map_or("?".into(), |n| n.to_string()),
        leaked.len(),
        leaked,
        due.len(),
        due,
    ));
    if due.is_empty() {
        assert_eq!(
            reported,
            Some(truth),
            "{}: once faults stop, the overdue count must be exact (log {})",
            s.name,
            last.log.display()
        );
    }
    last
}

/// Apply passes with the holds in the manifests, the Dispute and Complaint taken out (a
/// release), release passes: all with a quarter of the requests failing (500, 503, reset,
/// delay, applied-then-dropped), retries from one to four attempts, pages of 4 to 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_and_release_under_random_faults_never_delete_early_or_touch_foreign_state() {
    let mut s = Scenario::with("random_faults", small_shards()).await;
    let (specs, holds) = random_bucket(&mut s.rng, 20);
    s.seed(specs).await;
    for h in holds {
        s.add_hold(h);
    }
    s.write_manifests();

    s.proxy.set_plan(FaultPlan::random(0.25));
    for _ in 0..4 {
        let opts = RunOpts::random(&mut s.rng);
        s.run(opts, "apply").await;
    }
    s.until_holds_journaled("apply").await;

    s.release("dispute");
    s.release("complaint");
    s.proxy.set_plan(FaultPlan::random(0.25));
    for _ in 0..5 {
        let opts = RunOpts::random(&mut s.rng);
        s.run(opts, "release").await;
    }
    settle(&mut s).await;
}

/// The same on a plain bucket, where a pass with an index (restored from the snapshot the
/// run before wrote) lists in ranges side by side, each from a `StartAfter` (pages of 4 and 9:
/// many ranges): faults on those listings, too, never make a pass miss an object, delete one
/// early or lose its foreign tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_plain_bucket_listed_in_ranges_random_faults_never_delete_early_or_touch_foreign_state()
 {
    let mut s = Scenario::with(
        "ranges_faults",
        Options {
            unversioned: true,
            ..small_shards()
        },
    )
    .await;
    let (specs, holds) = random_bucket_with(&mut s.rng, 20, false);
    s.seed(specs).await;
    for h in holds {
        s.add_hold(h);
    }
    s.write_manifests();
    // One clean pass first: it writes the index snapshot every later run starts from.
    s.run(RunOpts::clean(), "snapshot").await;
    // Half the listings from a key fail, in pages of 4 (about fourteen ranges a pass); then a
    // quarter of all requests.
    let ranges = || {
        let mut plan = FaultPlan::random(0.5);
        plan.only = Some(Arc::new(|r: &RequestInfo| r.from_key));
        plan
    };
    for phase in ["apply", "release"] {
        if phase == "release" {
            s.release("dispute");
            s.release("complaint");
        }
        s.proxy.set_plan(ranges());
        for _ in 0..2 {
            let mut opts = RunOpts::random(&mut s.rng);
            opts.page_size = 4;
            s.run(opts, phase).await;
        }
        s.proxy.set_plan(FaultPlan::random(0.25));
        for _ in 0..3 {
            let opts = RunOpts::random(&mut s.rng);
            s.run(opts, phase).await;
        }
        if phase == "apply" {
            s.until_holds_journaled("apply").await;
        }
    }
    let stats = s.proxy.stats();
    assert!(
        stats.from_key_faulted > 0,
        "the passes listed {} ranges from a key, none of them faulted: the test did not test that",
        stats.from_key
    );
    settle(&mut s).await;
}

/// `gallring run` (with `--once`, or looping) killed with SIGKILL at random points, by time or
/// by request count, ten times while holds are applied and ten times after they are released,
/// with a tenth of the requests failing; then clean passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_apply_and_release_never_deletes_early() {
    let mut s = Scenario::with("sigkill", small_shards()).await;
    let (specs, holds) = random_bucket(&mut s.rng, 16);
    s.seed(specs).await;
    for h in holds {
        s.add_hold(h);
    }
    s.write_manifests();

    s.proxy.set_plan(FaultPlan::random(0.10));
    for _ in 0..10 {
        s.run_killed("apply-kill").await;
    }
    s.until_holds_journaled("apply-settle").await;

    s.release("dispute");
    s.release("complaint");
    s.proxy.set_plan(FaultPlan::random(0.10));
    for _ in 0..10 {
        s.run_killed("release-kill").await;
    }
    settle(&mut s).await;
}
