//! An amount of money, exact: whole cents, never a float. On the wire it is a decimal string
//! (`"1249.90"`), because a JSON number is a binary float to most clients and `0.1 + 0.2`
//! has no place on an invoice. The range is the `numeric(12, 2)` columns': 0 to
//! 9,999,999,999.99.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money {
    cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an amount: expected a decimal string of up to 10 digits and at most 2 decimals, such as \"1249.90\"")]
pub struct MoneyError(String);

impl Money {
    /// Digits before the point: `numeric(12, 2)` leaves 10.
    pub const MAX_WHOLE_DIGITS: usize = 10;
    /// The wire form, as a JSON Schema pattern; `from_str` accepts exactly these strings.
    pub const PATTERN: &'static str = r"^[0-9]{1,10}(\.[0-9]{1,2})?$";

    /// 9,999,999,999.99 in cents.
    const MAX_CENTS: i64 = 999_999_999_999;

    pub fn from_cents(cents: i64) -> Option<Self> {
        (0..=Self::MAX_CENTS)
            .contains(&cents)
            .then_some(Money { cents })
    }

    pub fn cents(self) -> i64 {
        self.cents
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, MoneyError> {
        let bad = || MoneyError(s.to_owned());
        let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        let whole_ok = (1..=Self::MAX_WHOLE_DIGITS).contains(&whole.len()) && digits(whole);
        let fraction_ok = if s.contains('.') {
            (1..=2).contains(&fraction.len()) && digits(fraction)
        } else {
            true
        };
        if !whole_ok || !fraction_ok {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
        Money::from_cents(whole * 100 + fraction).ok_or_else(bad)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.cents / 100, self.cents % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_cents_with_two_decimals_out() {
        let cents = |s: &str| s.parse::<Money>().map(Money::cents);
        assert_eq!(cents("0"), Ok(0));
        assert_eq!(cents("1249.9"), Ok(124_990));
        assert_eq!(cents("1249.90"), Ok(124_990));
        assert_eq!(cents("0.07"), Ok(7));
        assert_eq!(cents("007.5"), Ok(750));
        assert_eq!(cents("9999999999.99"), Ok(999_999_999_999));
        assert_eq!("1249.9".parse::<Money>().unwrap().to_string(), "1249.90");
        assert_eq!("0.07".parse::<Money>().unwrap().to_string(), "0.07");
        assert_eq!(Money::from_cents(5).unwrap().to_string(), "0.05");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            ".5",
            "1.",
            "1.234",
            "-1",
            "+1",
            "1e3",
            " 1",
            "1 ",
            "1,50",
            "12345678901",
            "NaN",
            "0x10",
            "١٢",
        ] {
            assert!(bad.parse::<Money>().is_err(), "{bad:?}");
        }
        assert_eq!(Money::from_cents(-1), None);
        assert_eq!(Money::from_cents(1_000_000_000_000), None);
    }
}
