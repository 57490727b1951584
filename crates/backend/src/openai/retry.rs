//! Retry policy: exponential backoff between attempts, capped, with a server's `Retry-After`
//! taking precedence; and which errors are worth another attempt.

use std::time::Duration;

use crate::BackendError;

/// How often and how patiently requests are retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (≥ 1).
    pub max_attempts: usize,
    /// Delay before the second attempt.
    pub initial_delay: Duration,
    /// Each further delay is the previous one times this (≥ 1).
    pub factor: f64,
    /// No delay (computed or asked for by `Retry-After`) exceeds this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 2 s then ×1.5 (LLM×MapReduce's schedule), at most 60 s apart.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_delay: Duration::from_secs(2),
            factor: 1.5,
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait after failed attempt `failed` (0-based): `initial · factor^failed`, capped.
    pub fn delay(&self, failed: usize) -> Duration {
        let exp = i32::try_from(failed).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * self.factor.max(1.0).powi(exp);
        let cap = self.max_delay.as_secs_f64();
        if !secs.is_finite() || secs >= cap {
            return self.max_delay;
        }
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// The wait after failed attempt `failed`, given the error it failed with: the server's
    /// `Retry-After` when it sent one, else the backoff schedule; capped at `max_delay`.
    pub fn delay_after(&self, failed: usize, err: &BackendError) -> Duration {
        match err {
            BackendError::Http {
                retry_after: Some(r),
                ..
            } => Duration::from_secs(r.0).min(self.max_delay),
            _ => self.delay(failed),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), BackendError> {
        if self.max_attempts == 0 {
            return Err(BackendError::Config(
                "retry max_attempts must be at least 1".into(),
            ));
        }
        if !(self.factor.is_finite() && self.factor >= 1.0) {
            return Err(BackendError::Config(format!(
                "retry factor must be a finite number ≥ 1, got {}",
                self.factor
            )));
        }
        Ok(())
    }
}

/// Whether another attempt may succeed at once ([`BackendError::is_transient`]).
pub fn is_retryable(err: &BackendError) -> bool {
    err.is_transient()
}

/// Whether the error says the endpoint itself is down (so other endpoints should be tried
/// first for a while).
pub fn is_endpoint_down(err: &BackendError) -> bool {
    match err {
        BackendError::Connect { .. } => true,
        BackendError::Io { detail, .. } => !detail.contains("timed out"),
        BackendError::Http { status, .. } => matches!(status, 502..=504),
        _ => false,
    }
}

/// Parses a `Retry-After` value in seconds (the HTTP-date form is ignored).
pub fn parse_retry_after(value: &str) -> Option<u64> {
    value.trim().parse::<u64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetryAfter;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn backoff_grows_geometrically_then_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(100),
            factor: 2.0,
            max_delay: Duration::from_millis(1000),
        };
        let got: Vec<u128> = (0..7).map(|i| ms(p.delay(i))).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(ms(p.delay(usize::MAX)), 1000);
        let d = RetryPolicy::default();
        let got: Vec<u128> = (0..4).map(|i| ms(d.delay(i))).collect();
        assert_eq!(got, [2000, 3000, 4500, 6750]);
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let p = RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(100),
            factor: 2.0,
            max_delay: Duration::from_secs(5),
        };
        let http = |s: Option<u64>| BackendError::Http {
            endpoint: "e".into(),
            status: 429,
            body: String::new(),
            retry_after: s.map(RetryAfter),
        };
        assert_eq!(p.delay_after(0, &http(Some(3))), Duration::from_secs(3));
        assert_eq!(p.delay_after(0, &http(Some(600))), Duration::from_secs(5));
        assert_eq!(p.delay_after(1, &http(None)), Duration::from_millis(200));
        assert_eq!(parse_retry_after(" 7 "), Some(7));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let http = |status| BackendError::Http {
            endpoint: "e".into(),
            status,
            body: String::new(),
            retry_after: None,
        };
        assert!(is_retryable(&http(429)));
        assert!(is_retryable(&http(503)));
        assert!(!is_retryable(&http(400)));
        assert!(!is_retryable(&http(404)));
        let connect = BackendError::Connect {
            endpoint: "e".into(),
            detail: "refused".into(),
        };
        assert!(is_retryable(&connect) && is_endpoint_down(&connect));
        let timeout = BackendError::Io {
            endpoint: "e".into(),
            detail: "read timed out".into(),
        };
        assert!(!is_retryable(&timeout));
        let overflow = BackendError::ContextOverflow {
            endpoint: None,
            message: String::new(),
            needed: None,
            limit: None,
        };
        assert!(!is_retryable(&overflow));
        assert!(RetryPolicy {
            factor: 0.5,
            ..RetryPolicy::default()
        }
        .validate()
        .is_err());
        assert!(RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        }
        .validate()
        .is_err());
    }
}
