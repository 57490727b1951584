//! Spreading requests over several server endpoints (least in-flight first, round robin among
//! ties, endpoints that just failed avoided for a cool-down) and a counting semaphore that
//! bounds concurrent requests across threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::BackendError;

/// One server.
#[derive(Debug)]
pub struct Endpoint {
    /// The OpenAI API base, e.g. `http://host:8000/v1` (no trailing slash).
    pub base: String,
    /// The server root, e.g. `http://host:8000` (where `/tokenize` lives).
    pub root: String,
    in_flight: AtomicUsize,
    down_until: Mutex<Option<Instant>>,
}

impl Endpoint {
    pub fn new(base: &str) -> Endpoint {
        let base = base.trim_end_matches('/').to_string();
        let root = base
            .strip_suffix("/v1")
            .unwrap_or(&base)
            .trim_end_matches('/')
            .to_string();
        Endpoint {
            base,
            root,
            in_flight: AtomicUsize::new(0),
            down_until: Mutex::new(None),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    fn down_until(&self) -> Option<Instant> {
        *lock(&self.down_until)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The endpoints of one backend.
#[derive(Debug)]
pub struct EndpointPool {
    endpoints: Vec<Endpoint>,
    next: AtomicUsize,
    cooldown: Duration,
}

/// Ranks endpoints for [`EndpointPool::pick`], lower first: (failed this request, cooling down
/// until, requests in flight).
type PickKey = (bool, Option<Instant>, usize);

/// An endpoint in use; dropping it ends the request's claim.
#[derive(Debug)]
pub struct Lease<'a> {
    pub index: usize,
    pub endpoint: &'a Endpoint,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EndpointPool {
    pub fn new(bases: &[String], cooldown: Duration) -> EndpointPool {
        EndpointPool {
            endpoints: bases.iter().map(|b| Endpoint::new(b)).collect(),
            next: AtomicUsize::new(0),
            cooldown,
        }
    }

    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Picks an endpoint for an attempt. Preference, in order: not in `avoid` (those that
    /// already failed this request), not cooling down after a failure, fewest requests in
    /// flight; ties go round robin. Every endpoint stays eligible, so a request never finds
    /// the pool empty: when all are down it tries the one that went down first.
    pub fn pick(&self, avoid: &[usize]) -> Option<Lease<'_>> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::SeqCst) % n;
        let now = Instant::now();
        let mut best: Option<(usize, PickKey)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            let e = &self.endpoints[i];
            let down = e.down_until().filter(|&t| t > now);
            let key = (avoid.contains(&i), down, e.in_flight());
            if best.as_ref().is_none_or(|(_, b)| key < *b) {
                best = Some((i, key));
            }
        }
        let (index, _) = best?;
        let endpoint = &self.endpoints[index];
        endpoint.in_flight.fetch_add(1, Ordering::SeqCst);
        Some(Lease { index, endpoint })
    }

    /// Marks an endpoint as failing: others are preferred until the cool-down passes.
    pub fn mark_down(&self, index: usize) {
        if let Some(e) = self.endpoints.get(index) {
            *lock(&e.down_until) = Some(Instant::now() + self.cooldown);
        }
    }

    /// Marks an endpoint as healthy again.
    pub fn mark_up(&self, index: usize) {
        if let Some(e) = self.endpoints.get(index) {
            *lock(&e.down_until) = None;
        }
    }
}

/// A counting semaphore: at most `permits` holders at once, across threads.
#[derive(Debug)]
pub struct Semaphore {
    free: Mutex<usize>,
    cv: Condvar,
}

/// A held permit; dropping it releases it.
#[derive(Debug)]
pub struct Permit<'a>(&'a Semaphore);

impl Semaphore {
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            free: Mutex::new(permits),
            cv: Condvar::new(),
        }
    }

    /// Blocks until a permit is free.
    pub fn acquire(&self) -> Permit<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *lock(&self.0.free) += 1;
        self.0.cv.notify_one();
    }
}

/// Checks an endpoint URL: `http://host[:port][/path]` or `https://…`.
pub fn check_url(url: &str) -> Result<(), BackendError> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if let Some(r) = url.strip_prefix("https://") {
        r
    } else {
        return Err(BackendError::Config(format!(
            "{url}: expected an http:// or https:// URL"
        )));
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(BackendError::Config(format!("{url}: no host")));
    }
    if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']')) {
        if port.parse::<u16>().is_err() {
            return Err(BackendError::Config(format!("{url}: bad port '{port}'")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pool(n: usize) -> EndpointPool {
        let bases: Vec<String> = (0..n).map(|i| format!("http://h{i}:80/v1/")).collect();
        EndpointPool::new(&bases, Duration::from_secs(60))
    }

    #[test]
    fn base_and_root_are_derived() {
        let e = Endpoint::new("http://h:8000/v1/");
        assert_eq!(
            (e.base.as_str(), e.root.as_str()),
            ("http://h:8000/v1", "http://h:8000")
        );
        let e = Endpoint::new("http://h:8080");
        assert_eq!(
            (e.base.as_str(), e.root.as_str()),
            ("http://h:8080", "http://h:8080")
        );
    }

    #[test]
    fn sequential_requests_go_round_robin() {
        let p = pool(3);
        let picks: Vec<usize> = (0..6).map(|_| p.pick(&[]).unwrap().index).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn concurrent_requests_go_to_the_least_loaded() {
        let p = pool(3);
        let a = p.pick(&[]).unwrap();
        let b = p.pick(&[]).unwrap();
        let c = p.pick(&[]).unwrap();
        let mut held = [a.index, b.index, c.index];
        held.sort_unstable();
        assert_eq!(held, [0, 1, 2]);
        drop(b);
        let freed = held
            .iter()
            .find(|&&i| p.endpoints()[i].in_flight() == 0)
            .copied();
        // Whatever the round-robin cursor says, the only idle endpoint wins.
        for _ in 0..3 {
            assert_eq!(Some(p.pick(&[]).unwrap().index), freed);
        }
        drop((a, c));
        assert!(p.endpoints().iter().all(|e| e.in_flight() == 0));
    }

    #[test]
    fn failed_endpoints_are_skipped_until_nothing_else_is_left() {
        let p = pool(2);
        p.mark_down(0);
        for _ in 0..4 {
            assert_eq!(p.pick(&[]).unwrap().index, 1);
        }
        // Both cooling down: the one this request has not tried yet wins.
        p.mark_down(1);
        assert_eq!(p.pick(&[1]).unwrap().index, 0);
        assert_eq!(p.pick(&[0]).unwrap().index, 1);
        p.mark_up(0);
        assert_eq!(p.pick(&[]).unwrap().index, 0);
        assert!(pool(0).pick(&[]).is_none());
    }

    #[test]
    fn semaphore_bounds_concurrency() {
        let sem = Arc::new(Semaphore::new(2));
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (sem, now, peak) = (sem.clone(), now.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _p = sem.acquire();
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }
}
