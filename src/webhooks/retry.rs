//! The retry schedule of a webhook and `Retry-After`: pure functions of their inputs.

use crate::sessions::config::{RetriesConfig, RetryPolicy, WebhookConfig};

/// No single wait is longer than a day, whatever the policy computes (2ⁿ grows past any use).
pub const MAX_DELAY_MS: u64 = 24 * 3600 * 1000;

/// How one webhook retries: the policy, its base delay D and the retries after the first try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub policy: RetryPolicy,
    pub delay_s: u64,
    pub retries: u32,
}

impl Schedule {
    pub fn of(hook: &WebhookConfig) -> Self {
        let (policy, delay_s, retries) = RetriesConfig::effective(hook.retries.as_ref());
        Self {
            policy,
            delay_s,
            retries,
        }
    }

    /// Tries in all: the first one and the retries.
    pub fn tries(&self) -> u32 {
        self.retries.saturating_add(1)
    }

    /// The wait before retry `n` (1-based), in ms. `jitter` in [0, 1) adds up to 20 % to an
    /// exponential wait, so that receivers coming back up are not hit by every sender at once.
    pub fn delay_ms(&self, n: u32, jitter: f64) -> u64 {
        let d = self.delay_s.saturating_mul(1000);
        let ms = match self.policy {
            RetryPolicy::Constant => d,
            RetryPolicy::Linear => d.saturating_mul(u64::from(n)),
            RetryPolicy::Exponential => {
                let base = d.saturating_mul(1u64.checked_shl(n).unwrap_or(u64::MAX));
                let extra = (base.min(MAX_DELAY_MS) as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as u64;
                base.saturating_add(extra)
            }
        };
        ms.min(MAX_DELAY_MS)
    }

    /// After `tries` failed tries (at least 1): when to try again (unix ms), or `None` when
    /// that was the last one. Never sooner than `retry_after_ms` from now, but never more than
    /// a day ahead either: a job parked in the far future would be neither delivered nor
    /// dead-lettered, and would hold back every later event of its group.
    pub fn next_attempt(
        &self,
        tries: u32,
        now_ms: u64,
        retry_after_ms: Option<u64>,
        jitter: f64,
    ) -> Option<u64> {
        if tries >= self.tries() {
            return None;
        }
        let wait = self
            .delay_ms(tries, jitter)
            .max(retry_after_ms.unwrap_or(0).min(MAX_DELAY_MS));
        Some(now_ms.saturating_add(wait))
    }
}

/// A `Retry-After` value as a wait in ms from `now_ms`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at_s = parse_http_date(value)?;
    Some(at_s.saturating_mul(1000).saturating_sub(now_ms))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, the only form senders may generate) as unix
/// seconds; `None` for anything else, a year beyond what u64 seconds hold included.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let year: i64 = year.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *sec > 60 || year < 1970 {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day as i64)?).ok()?;
    days.checked_mul(86_400)?
        .checked_add(h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm); `None` when
/// the year is too large for the sum (the year comes from the receiver: it may be anything).
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.checked_mul(146_097)?.checked_add(doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(policy: RetryPolicy, delay_s: u64, retries: u32) -> Schedule {
        Schedule {
            policy,
            delay_s,
            retries,
        }
    }

    #[test]
    fn defaults_are_fifteen_constant_retries_two_seconds_apart() {
        let hook = WebhookConfig {
            url: "http://x/".into(),
            events: vec!["*".into()],
            hmac: None,
            retries: None,
            custom_headers: None,
        };
        let s = Schedule::of(&hook);
        assert_eq!(s, schedule(RetryPolicy::Constant, 2, 15));
        assert_eq!(s.tries(), 16);
        assert_eq!(s.next_attempt(1, 1_000, None, 0.0), Some(3_000));
        assert_eq!(s.next_attempt(15, 1_000, None, 0.0), Some(3_000));
        assert_eq!(s.next_attempt(16, 1_000, None, 0.0), None);
    }

    #[test]
    fn linear_waits_n_times_the_delay() {
        let s = schedule(RetryPolicy::Linear, 3, 5);
        let waits: Vec<u64> = (1..=5).map(|n| s.delay_ms(n, 0.9)).collect();
        assert_eq!(waits, [3_000, 6_000, 9_000, 12_000, 15_000]);
    }

    #[test]
    fn exponential_doubles_and_adds_at_most_twenty_percent_jitter() {
        let s = schedule(RetryPolicy::Exponential, 1, 5);
        assert_eq!(s.delay_ms(1, 0.0), 2_000);
        assert_eq!(s.delay_ms(3, 0.0), 8_000);
        assert_eq!(s.delay_ms(3, 0.5), 8_800);
        assert!(s.delay_ms(3, 0.999_999) < 9_600);
        assert_eq!(s.delay_ms(200, 0.0), MAX_DELAY_MS);
    }

    #[test]
    fn no_retries_means_the_first_failure_is_the_last() {
        assert_eq!(
            schedule(RetryPolicy::Constant, 2, 0).next_attempt(1, 0, None, 0.0),
            None
        );
    }

    #[test]
    fn retry_after_postpones_but_never_hastens() {
        let s = schedule(RetryPolicy::Constant, 2, 3);
        assert_eq!(s.next_attempt(1, 10_000, Some(30_000), 0.0), Some(40_000));
        assert_eq!(s.next_attempt(1, 10_000, Some(500), 0.0), Some(12_000));
    }

    #[test]
    fn a_retry_after_far_in_the_future_waits_at_most_a_day() {
        let s = schedule(RetryPolicy::Constant, 2, 3);
        let huge = parse_retry_after("99999999999", 10_000);
        assert_eq!(
            s.next_attempt(1, 10_000, huge, 0.0),
            Some(10_000 + MAX_DELAY_MS)
        );
        let far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 10_000);
        assert_eq!(
            s.next_attempt(1, 10_000, far, 0.0),
            Some(10_000 + MAX_DELAY_MS)
        );
        assert_eq!(
            s.next_attempt(1, 10_000, Some(u64::MAX), 0.0),
            Some(10_000 + MAX_DELAY_MS)
        );
    }

    #[test]
    fn an_unparsable_retry_after_leaves_the_policy_delay() {
        let s = schedule(RetryPolicy::Constant, 2, 3);
        for garbage in ["soon", "-5", "1.5", "", "Fri, 01 Jan 1999 25:00:00 GMT"] {
            let wait = parse_retry_after(garbage, 10_000);
            assert_eq!(wait, None, "{garbage:?}");
            assert_eq!(s.next_attempt(1, 10_000, wait, 0.0), Some(12_000));
        }
    }

    #[test]
    fn an_http_date_with_a_huge_year_is_refused_without_overflow() {
        for huge in [
            "Fri, 01 Jan 999999999999 00:00:00 GMT",
            "Fri, 01 Jan 9223372036854775807 23:59:59 GMT",
        ] {
            assert_eq!(parse_http_date(huge), None, "{huge}");
            assert_eq!(parse_retry_after(huge, 0), None, "{huge}");
        }
        // The largest years that still fit are read, and the wait is capped where it is taken.
        assert!(parse_http_date("Fri, 31 Dec 99999 23:59:59 GMT").is_some());
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after(" 120 ", 0), Some(120_000));
        // 1994-11-06T08:49:37Z is 784111777.
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_770_000),
            Some(7_000)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_780_000),
            Some(0)
        );
        assert_eq!(parse_http_date("2024-01-01T00:00:00Z"), None);
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(1_709_164_800)
        );
    }
}
