//! Simulated time. The world never reads the wall clock: time is a count of milliseconds since a
//! fixed epoch (2026-01-01T00:00:00Z) and only moves when the world jumps to its next event.

use k8s_openapi::jiff::Timestamp;

/// Milliseconds since the start of a run.
pub type Millis = i64;

/// 2026-01-01T00:00:00Z, in milliseconds since the Unix epoch.
pub const EPOCH_MS: i64 = 1_767_225_600_000;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;

/// The simulated clock. Monotone: `advance_to` never goes back.
#[derive(Debug, Clone)]
pub struct SimClock {
    now: Millis,
}

impl Default for SimClock {
    fn default() -> Self {
        Self::new()
    }
}

impl SimClock {
    pub fn new() -> Self {
        Self { now: 0 }
    }

    /// Milliseconds since the start of the run.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// The current time as a timestamp (what objects and `Env::now` carry).
    pub fn timestamp(&self) -> Timestamp {
        to_timestamp(self.now)
    }

    pub fn advance_to(&mut self, t: Millis) {
        if t > self.now {
            self.now = t;
        }
    }
}

/// A run-relative time as a timestamp.
pub fn to_timestamp(t: Millis) -> Timestamp {
    Timestamp::from_millisecond(EPOCH_MS + t).expect("simulated time stays within jiff's range")
}

/// A timestamp as run-relative milliseconds (negative before the epoch).
pub fn from_timestamp(ts: Timestamp) -> Millis {
    ts.as_millisecond() - EPOCH_MS
}

/// `+mm:ss.mmm` as printed in timelines.
pub fn fmt_offset(t: Millis) -> String {
    let sign = if t < 0 { "-" } else { "+" };
    let t = t.abs();
    format!(
        "{sign}{:02}:{:02}.{:03}",
        t / MINUTE,
        (t % MINUTE) / SECOND,
        t % SECOND
    )
}

/// RFC 3339 with second precision, as Kubernetes and Patroni write times.
pub fn rfc3339(t: Millis) -> String {
    to_timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses the RFC 3339 strings found in objects back into run-relative milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    s.parse::<Timestamp>().ok().map(from_timestamp)
}

/// Parses durations written in scenarios: `500ms`, `30s`, `5m`, `1h`, `1m30s`, or a bare number
/// of seconds.
pub fn parse_duration(s: &str) -> Option<Millis> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = s.parse().ok()?;
        return within_max(secs * 1000.0);
    }
    let mut total: Millis = 0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut saw_unit = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let value: f64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1.0
            }
            'h' => 3_600_000.0,
            'm' => 60_000.0,
            's' => 1_000.0,
            _ => return None,
        };
        total = total.checked_add(within_max(value * unit)?)?;
        saw_unit = true;
    }
    if !num.is_empty() || !saw_unit || total > MAX_DURATION {
        return None;
    }
    Some(total)
}

/// The longest duration a scenario may write (one simulated week): longer ones are typing
/// mistakes, and a run that long would take minutes of wall time.
pub const MAX_DURATION: Millis = 7 * 24 * 3_600_000;

fn within_max(ms: f64) -> Option<Millis> {
    (ms.is_finite() && ms >= 0.0 && ms <= MAX_DURATION as f64).then(|| ms.round() as Millis)
}

/// What a duration may look like, for error messages.
pub const DURATION_FORMS: &str =
    "write a duration such as 500ms, 30s, 5m, 1m30s, 1h or a number of seconds (at most 168h)";

/// Deserializes a duration field written either as a string (`30s`) or as a bare number of
/// seconds (`30`, `1.5`), keeping it as text; it is parsed (and rejected with a message naming
/// the step) by the scenario check.
pub fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::Deserialize;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        S(String),
        U(u64),
        I(i64),
        F(f64),
    }
    Ok(
        match Text::deserialize(d).map_err(|_| {
            serde::de::Error::custom(format!("expected a duration; {DURATION_FORMS}"))
        })? {
            Text::S(s) => s,
            Text::U(n) => n.to_string(),
            Text::I(n) => n.to_string(),
            Text::F(f) => f.to_string(),
        },
    )
}

/// [`duration_text`] for an optional field.
pub fn duration_text_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    duration_text(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_2026() {
        assert_eq!(rfc3339(0), "2026-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("2026-01-01T00:00:10Z"), Some(10_000));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Some(500));
        assert_eq!(parse_duration("30s"), Some(30_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("2"), Some(2_000));
        assert_eq!(parse_duration("1h"), Some(3_600_000));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("5"), Some(5_000));
        assert_eq!(parse_duration("5q"), None);
        assert_eq!(parse_duration("1.5"), Some(1_500));
        // Not durations: signs, exponents, infinities, spaces, more than a week.
        for bad in [
            "-5s",
            "-5",
            "1e3",
            "inf",
            "NaN",
            "30 seconds",
            "169h",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_duration("168h"), Some(MAX_DURATION));
    }

    #[test]
    fn offsets_format() {
        assert_eq!(fmt_offset(12_000), "+00:12.000");
        assert_eq!(fmt_offset(61_005), "+01:01.005");
    }

    #[test]
    fn clock_is_monotone() {
        let mut c = SimClock::new();
        c.advance_to(10);
        c.advance_to(5);
        assert_eq!(c.now(), 10);
    }
}
