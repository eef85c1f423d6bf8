//! Leadership as the pass sees it: a deadline on the monotonic clock after which this process
//! must not write to the store. The leader elector extends it on every successful Lease
//! renewal (to the renewal's start + the renew deadline, which is shorter than the Lease
//! duration), so a replica cut off from the API server stops writing before another replica
//! can take the Lease. The standalone host runs unfenced.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A cheap, shared leadership check. `Fence::default()` never expires.
#[derive(Debug, Clone, Default)]
pub struct Fence(Option<Arc<Deadline>>);

#[derive(Debug)]
struct Deadline {
    origin: Instant,
    /// Milliseconds after `origin` until which writes are allowed; 0 = revoked.
    until_ms: AtomicU64,
}

impl Fence {
    /// A fence that allows nothing until [`Fence::extend_to`] is called.
    pub fn closed() -> Self {
        Fence(Some(Arc::new(Deadline {
            origin: Instant::now(),
            until_ms: AtomicU64::new(0),
        })))
    }

    /// Whether writes are allowed at `now` (monotonic).
    pub fn allows_at(&self, now: Instant) -> bool {
        match &self.0 {
            None => true,
            Some(d) => {
                let at = now.saturating_duration_since(d.origin).as_millis();
                u128::from(d.until_ms.load(Ordering::Acquire)) > at
            }
        }
    }

    /// Whether writes are allowed now.
    pub fn allows(&self) -> bool {
        self.allows_at(Instant::now())
    }

    /// Allows writes until `until` (never shortens an existing deadline).
    pub fn extend_to(&self, until: Instant) {
        if let Some(d) = &self.0 {
            let ms = u64::try_from(until.saturating_duration_since(d.origin).as_millis())
                .unwrap_or(u64::MAX);
            d.until_ms.fetch_max(ms, Ordering::AcqRel);
        }
    }

    /// Forbids writes from now on.
    pub fn revoke(&self) {
        if let Some(d) = &self.0 {
            d.until_ms.store(0, Ordering::Release);
        }
    }

    /// Time left before writes stop; `None` when unfenced.
    pub fn remaining(&self) -> Option<Duration> {
        self.0.as_ref().map(|d| {
            let until = d.origin + Duration::from_millis(d.until_ms.load(Ordering::Acquire));
            until.saturating_duration_since(Instant::now())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfenced_pass_may_always_write() {
        assert!(Fence::default().allows());
        assert_eq!(Fence::default().remaining(), None);
    }

    #[test]
    fn a_fence_allows_writes_only_until_its_deadline_and_never_after_revocation() {
        let f = Fence::closed();
        let t0 = Instant::now();
        assert!(!f.allows_at(t0));
        f.extend_to(t0 + Duration::from_secs(10));
        assert!(f.allows_at(t0 + Duration::from_secs(9)));
        assert!(!f.allows_at(t0 + Duration::from_secs(11)));
        // A late, older renewal never shortens the deadline.
        f.extend_to(t0 + Duration::from_secs(5));
        assert!(f.allows_at(t0 + Duration::from_secs(9)));
        // Clones share the deadline.
        let g = f.clone();
        f.revoke();
        assert!(!g.allows_at(t0));
    }
}
