//! ISO-8601 durations (`P30D`, `P2W`, `P6M`, `P1Y`, `P1Y6M`, `PT12H`) with calendar arithmetic
//! in UTC ([`IsoDuration::add_to`]) or on a policy's local calendar ([`IsoDuration::add_in`]).
//!
//! Years and months are calendar units: `P1M` from 31 January is the last day of February,
//! `P1Y` from 29 February is 28 February. In UTC days are always 24 hours; on a local calendar
//! a day across a daylight-saving change is 23 or 25.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, Months, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// A non-negative ISO-8601 duration made of calendar parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IsoDuration {
    /// Whole calendar months (years are stored as 12 months).
    pub months: u32,
    /// Whole days (weeks are stored as 7 days).
    pub days: u32,
    /// Seconds of the time part (`T…H…M…S`).
    pub seconds: u64,
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration: expected ISO-8601 such as P30D, P6M or P1Y")]
    Empty,
    #[error("`{0}` is not an ISO-8601 duration: it must start with `P` (for example P30D)")]
    MissingP(String),
    #[error("`{0}` is negative: a retention cannot be negative")]
    Negative(String),
    #[error("`{0}` has no parts: write at least one, for example P0D or P30D")]
    NoParts(String),
    #[error("`{input}`: {problem}")]
    Malformed { input: String, problem: String },
    #[error("`{0}` is too large: at most 1000 years can be expressed")]
    TooLarge(String),
}

/// The longest retention gallring accepts; longer values are certainly a typo and would overflow
/// date arithmetic.
const MAX_MONTHS: u64 = 12 * 1000;
const MAX_DAYS: u64 = 366 * 1000;
const MAX_SECONDS: u64 = 86_400 * 366 * 1000;

impl IsoDuration {
    /// The zero duration (`P0D`): the purpose ends at the moment of recording.
    pub const ZERO: IsoDuration = IsoDuration {
        months: 0,
        days: 0,
        seconds: 0,
    };

    pub const fn days(days: u32) -> Self {
        IsoDuration {
            months: 0,
            days,
            seconds: 0,
        }
    }

    pub const fn months(months: u32) -> Self {
        IsoDuration {
            months,
            days: 0,
            seconds: 0,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// The duration as a wait, with calendar months taken as 30 days. Only for timers (scan
    /// intervals, requeues); deadlines always use [`IsoDuration::add_to`].
    pub fn approx_std(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            u64::from(self.months) * 30 * 86_400 + u64::from(self.days) * 86_400 + self.seconds,
        )
    }

    /// `start + self`, calendar-aware. `None` only when the result is beyond chrono's range,
    /// which the parse limits make impossible for realistic starts.
    pub fn add_to(&self, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
        start
            .checked_add_months(Months::new(self.months))?
            .checked_add_signed(TimeDelta::days(i64::from(self.days)))?
            .checked_add_signed(TimeDelta::seconds(i64::try_from(self.seconds).ok()?))
    }

    /// `start + self` on the local calendar of `tz`: months and days move the local date and
    /// keep the local time of day (so a day across a daylight-saving change is 23 or 25 hours),
    /// seconds are added after. A local time that occurs twice is the later instant, one in a
    /// daylight-saving gap the first instant after it: never earlier than the calendar says.
    pub fn add_in(&self, start: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if tz == Tz::UTC {
            return self.add_to(start);
        }
        let local = start
            .with_timezone(&tz)
            .naive_local()
            .checked_add_months(Months::new(self.months))?
            .checked_add_signed(TimeDelta::days(i64::from(self.days)))?;
        local_to_utc(tz, local)?
            .checked_add_signed(TimeDelta::seconds(i64::try_from(self.seconds).ok()?))
    }

    /// `end - self`, calendar-aware (the parts are taken off in the reverse order of
    /// [`IsoDuration::add_to`]: seconds, days, then months). `None` only beyond chrono's range.
    pub fn sub_from(&self, end: DateTime<Utc>) -> Option<DateTime<Utc>> {
        end.checked_sub_signed(TimeDelta::seconds(i64::try_from(self.seconds).ok()?))?
            .checked_sub_signed(TimeDelta::days(i64::from(self.days)))?
            .checked_sub_months(Months::new(self.months))
    }

    /// Parses an ISO-8601 duration. Accepted: `PnYnMnWnDTnHnMnS` with any subset of the parts
    /// in that order, non-negative integers only.
    pub fn parse(input: &str) -> Result<Self, DurationError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        if s.starts_with('-') || s.starts_with("+-") {
            return Err(DurationError::Negative(input.to_string()));
        }
        let rest = s
            .strip_prefix('P')
            .ok_or_else(|| DurationError::MissingP(input.to_string()))?;
        let malformed = |problem: &str| DurationError::Malformed {
            input: input.to_string(),
            problem: problem.to_string(),
        };
        let (date_part, time_part) = match rest.split_once('T') {
            Some((d, t)) => {
                if t.is_empty() {
                    return Err(malformed(
                        "`T` must be followed by hours, minutes or seconds",
                    ));
                }
                (d, Some(t))
            }
            None => (rest, None),
        };
        if date_part.is_empty() && time_part.is_none() {
            return Err(DurationError::NoParts(input.to_string()));
        }

        let mut months: u64 = 0;
        let mut days: u64 = 0;
        let mut seconds: u64 = 0;
        let too_large = || DurationError::TooLarge(input.to_string());

        for (value, unit) in split_parts(date_part, input, "YMWD")? {
            let (slot, factor) = match unit {
                'Y' => (&mut months, 12),
                'M' => (&mut months, 1),
                'W' => (&mut days, 7),
                _ => (&mut days, 1),
            };
            *slot = value
                .checked_mul(factor)
                .and_then(|v| slot.checked_add(v))
                .ok_or_else(too_large)?;
            // Bound each sum so the next part cannot overflow it.
            if months > MAX_MONTHS || days > MAX_DAYS {
                return Err(too_large());
            }
        }
        if let Some(t) = time_part {
            for (value, unit) in split_parts(t, input, "HMS")? {
                let factor = match unit {
                    'H' => 3600,
                    'M' => 60,
                    _ => 1,
                };
                seconds = seconds
                    .checked_add(value.checked_mul(factor).ok_or_else(too_large)?)
                    .ok_or_else(too_large)?;
                if seconds > MAX_SECONDS {
                    return Err(too_large());
                }
            }
        }
        Ok(IsoDuration {
            months: u32::try_from(months).map_err(|_| too_large())?,
            days: u32::try_from(days).map_err(|_| too_large())?,
            seconds,
        })
    }
}

/// Splits `12Y3M` into `[(12,'Y'), (3,'M')]`, requiring units in the order given by `order`,
/// each at most once.
fn split_parts(s: &str, input: &str, order: &str) -> Result<Vec<(u64, char)>, DurationError> {
    let malformed = |problem: String| DurationError::Malformed {
        input: input.to_string(),
        problem,
    };
    let mut out = Vec::new();
    let mut digits = String::new();
    let mut next_allowed = 0usize;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if c == '-' {
            return Err(DurationError::Negative(input.to_string()));
        }
        if c == '.' || c == ',' {
            return Err(malformed(
                "fractions are not supported; use a smaller unit (P36H, not P1.5D)".into(),
            ));
        }
        let Some(pos) = order.find(c) else {
            return Err(malformed(format!(
                "unexpected `{c}`; allowed units here are {}",
                order
                    .chars()
                    .map(String::from)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if pos < next_allowed {
            return Err(malformed(format!(
                "unit `{c}` is repeated or out of order (write years, months, weeks, days)"
            )));
        }
        if digits.is_empty() {
            return Err(malformed(format!("unit `{c}` has no number before it")));
        }
        let value: u64 = digits
            .parse()
            .map_err(|_| DurationError::TooLarge(input.to_string()))?;
        out.push((value, c));
        digits.clear();
        next_allowed = pos + 1;
    }
    if !digits.is_empty() {
        return Err(malformed(format!("number `{digits}` has no unit after it")));
    }
    Ok(out)
}

impl FromStr for IsoDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for IsoDuration {
    /// Canonical form: `P1Y6M`, `P30D`, `PT12H`, `P0D`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("P0D");
        }
        f.write_str("P")?;
        let (y, m) = (self.months / 12, self.months % 12);
        if y > 0 {
            write!(f, "{y}Y")?;
        }
        if m > 0 {
            write!(f, "{m}M")?;
        }
        if self.days > 0 {
            write!(f, "{}D", self.days)?;
        }
        if self.seconds > 0 {
            f.write_str("T")?;
            let (h, rem) = (self.seconds / 3600, self.seconds % 3600);
            let (mi, s) = (rem / 60, rem % 60);
            if h > 0 {
                write!(f, "{h}H")?;
            }
            if mi > 0 {
                write!(f, "{mi}M")?;
            }
            if s > 0 {
                write!(f, "{s}S")?;
            }
        }
        Ok(())
    }
}

/// The instant a local wall-clock time in `tz` denotes, resolved towards later: the later of
/// two (autumn); a time inside a gap (spring) moves forward out of it, in quarter hours.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    (0..=8).find_map(
        |m| match tz.from_local_datetime(&(local + TimeDelta::minutes(15 * m))) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => Some(a.max(b).with_timezone(&Utc)),
            LocalResult::None => None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .single()
            .expect("valid date")
    }

    #[test]
    fn parses_the_forms_the_notices_use() {
        assert_eq!(IsoDuration::parse("P30D"), Ok(IsoDuration::days(30)));
        assert_eq!(IsoDuration::parse("P2W"), Ok(IsoDuration::days(14)));
        assert_eq!(IsoDuration::parse("P6M"), Ok(IsoDuration::months(6)));
        assert_eq!(IsoDuration::parse("P1Y"), Ok(IsoDuration::months(12)));
        assert_eq!(IsoDuration::parse("P18M"), Ok(IsoDuration::months(18)));
        assert_eq!(
            IsoDuration::parse("P1Y2M3DT4H5M6S"),
            Ok(IsoDuration {
                months: 14,
                days: 3,
                seconds: 4 * 3600 + 5 * 60 + 6
            })
        );
        assert_eq!(IsoDuration::parse("P0D"), Ok(IsoDuration::ZERO));
    }

    #[test]
    fn rejects_what_is_not_a_duration_with_a_reason() {
        for bad in [
            "", "30D", "P", "PT", "P-1D", "-P1D", "P1.5D", "P1D1Y", "P1X", "P1", "PD", "P1DT",
            "P1Y1Y",
        ] {
            assert!(
                IsoDuration::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(matches!(
            IsoDuration::parse("P-3D"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            IsoDuration::parse("P99999999999999999999999D"),
            Err(DurationError::TooLarge(_))
        ));
        assert!(matches!(
            IsoDuration::parse("P5000Y"),
            Err(DurationError::TooLarge(_))
        ));
    }

    #[test]
    fn one_month_from_the_31st_of_january_is_the_end_of_february() {
        let d = IsoDuration::months(1);
        assert_eq!(d.add_to(utc(2027, 1, 31)), Some(utc(2027, 2, 28)));
        assert_eq!(d.add_to(utc(2028, 1, 31)), Some(utc(2028, 2, 29)));
        let y = IsoDuration::months(12);
        assert_eq!(y.add_to(utc(2028, 2, 29)), Some(utc(2029, 2, 28)));
    }

    #[test]
    fn days_are_24_hours_in_utc() {
        let start = Utc
            .with_ymd_and_hms(2026, 3, 28, 23, 30, 0)
            .single()
            .expect("valid");
        let end = IsoDuration::days(2).add_to(start).expect("in range");
        assert_eq!(end - start, TimeDelta::hours(48));
    }

    proptest! {
        #[test]
        fn display_round_trips(months in 0u32..12_000, days in 0u32..10_000, seconds in 0u64..1_000_000) {
            let d = IsoDuration { months, days, seconds };
            prop_assert_eq!(IsoDuration::parse(&d.to_string()), Ok(d));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = IsoDuration::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_duration_like_text(s in "[-+P]?[PTYMWDHS0-9.,]{0,30}") {
            let _ = IsoDuration::parse(&s);
        }

        #[test]
        fn adding_is_monotone_in_the_duration(
            start in 0i64..4_000_000_000,
            a in 0u32..600, b in 0u32..600, da in 0u32..4000, db in 0u32..4000,
        ) {
            let start = DateTime::from_timestamp(start, 0).expect("in range");
            let small = IsoDuration { months: a.min(b), days: da.min(db), seconds: 0 };
            let large = IsoDuration { months: a.max(b), days: da.max(db), seconds: 0 };
            prop_assert!(small.add_to(start) <= large.add_to(start));
            prop_assert!(small.add_to(start).expect("in range") >= start);
        }

        #[test]
        fn subtracting_goes_back_no_further_than_adding_goes_forward(
            end in 0i64..4_000_000_000,
            months in 0u32..600, days in 0u32..4000, seconds in 0u64..200_000,
        ) {
            let end = DateTime::from_timestamp(end, 0).expect("in range");
            let d = IsoDuration { months, days, seconds };
            let start = d.sub_from(end).expect("in range");
            prop_assert!(start <= end);
            // Month ends clamp: going back and forth never passes the end.
            prop_assert!(d.add_to(start).expect("in range") <= end);
        }
    }

    #[test]
    fn one_month_before_the_31st_of_march_is_the_end_of_february() {
        let d = IsoDuration::months(1);
        assert_eq!(d.sub_from(utc(2027, 3, 31)), Some(utc(2027, 2, 28)));
        assert_eq!(
            IsoDuration::days(30).sub_from(utc(2027, 3, 31)),
            Some(utc(2027, 3, 1))
        );
    }
}
