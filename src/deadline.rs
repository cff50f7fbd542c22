//! Deadlines (issue 15): when a task must be over. A brief asks for one as a duration
//! from its arrival or an RFC 3339 time; a child never gets more than its delegator has
//! left. In the journal a deadline is an RFC 3339 time, UTC, to the millisecond.

use std::time::{Duration, SystemTime};

/// The time `text` names, taken from `now` if it is a duration ("2h", "30m 10s").
pub(crate) fn parse(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Ok(at);
    }
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(now + d),
        _ => Err(
            "expected a duration from now (\"2h\", \"30m\") or an RFC 3339 time \
             (\"2026-12-24T18:00:00Z\")"
                .to_string(),
        ),
    }
}

/// `at` as the journal keeps it.
pub(crate) fn format(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// A deadline as the journal keeps it, read back.
pub(crate) fn read(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(text).ok()
}

/// How long until `at` (zero once it has passed).
pub(crate) fn left(at: SystemTime) -> Duration {
    at.duration_since(SystemTime::now()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_count_from_now_and_times_are_absolute() {
        let now = humantime::parse_rfc3339("2026-12-03T10:00:00Z").unwrap();
        assert_eq!(
            format(parse("2h", now).unwrap()),
            "2026-12-03T12:00:00.000Z"
        );
        assert_eq!(
            format(parse("2026-12-24T18:00:00Z", now).unwrap()),
            "2026-12-24T18:00:00.000Z"
        );
        assert!(parse("soon", now).is_err());
        assert!(parse("0s", now).is_err());
        assert_eq!(read(&format(now)), Some(now));
    }
}
