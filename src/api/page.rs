//! One page type and one page-size parser for every keyset-paginated list: items ordered by
//! id, `after` = the previous page's `next_after`, `limit` 1–1000 (default 100). A list in
//! time order (the audit trail) pages with an `AtCursor` instead: `(at, id)` in one string.

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

/// A page size. Out of range is refused while reading the query (400), before any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(i64);

impl Limit {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 1000;
    pub const DEFAULT: Limit = Limit(100);

    pub fn new(n: i64) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&n).then_some(Limit(n))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        Limit::new(n).ok_or_else(|| {
            D::Error::custom(format!(
                "limit must be between {} and {} (got {n})",
                Limit::MIN,
                Limit::MAX
            ))
        })
    }
}

impl PartialSchema for Limit {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(Limit::MIN))
            .maximum(Some(Limit::MAX))
            .default(Some(Limit::DEFAULT.0.into()))
            .description(Some("Page size: 1–1000, default 100."))
            .into()
    }
}

impl ToSchema for Limit {}

/// A page of a list ordered by id.
#[derive(Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<Uuid>,
}

impl<T: ToSchema> Page<T> {
    /// A page from rows read with `LIMIT limit`: a full page may have a successor.
    pub fn of<R>(
        rows: Vec<R>,
        limit: Limit,
        id: impl Fn(&R) -> Uuid,
        body: impl FnMut(R) -> T,
    ) -> Self {
        Page {
            next_after: next_after(&rows, limit, id),
            items: rows.into_iter().map(body).collect(),
        }
    }
}

/// The id to continue after, when `rows` filled the page.
pub fn next_after<R>(rows: &[R], limit: Limit, id: impl Fn(&R) -> Uuid) -> Option<Uuid> {
    (rows.len() as i64 == limit.get())
        .then(|| rows.last().map(id))
        .flatten()
}

/// Where a list in `(at, id)` order continues: the last item's time (microseconds since the
/// Unix epoch, the database's precision, so no row is skipped or repeated) and id, as
/// `<micros>_<uuid>`. Clients pass it back unchanged; its schema is exactly what `parse` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtCursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl AtCursor {
    const PATTERN: &'static str =
        "^[0-9]{1,16}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
    const EXAMPLE: &'static str = "1767225600123456_0b7e4c1a-2f3d-4e5a-8b6c-7d8e9f0a1b2c";

    /// The cursor after `rows` when they filled the page.
    pub fn next<R>(
        rows: &[R],
        limit: Limit,
        key: impl Fn(&R) -> (DateTime<Utc>, Uuid),
    ) -> Option<Self> {
        (rows.len() as i64 == limit.get())
            .then(|| rows.last().map(key))
            .flatten()
            .map(|(at, id)| AtCursor { at, id })
    }

    fn parse(raw: &str) -> Option<Self> {
        let (micros, id) = raw.split_once('_')?;
        let digits = (1..=16).contains(&micros.len()) && micros.bytes().all(|b| b.is_ascii_digit());
        let at = DateTime::from_timestamp_micros(micros.parse().ok().filter(|_| digits)?)?;
        // Only the lowercase hyphenated form, as the pattern says (`Uuid` would take others).
        let id = Uuid::parse_str(id)
            .ok()
            .filter(|u| u.hyphenated().to_string() == id)?;
        Some(AtCursor { at, id })
    }
}

impl std::fmt::Display for AtCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.at.timestamp_micros(), self.id.hyphenated())
    }
}

impl Serialize for AtCursor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AtCursor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        AtCursor::parse(&raw).ok_or_else(|| {
            D::Error::custom("after must be a `next_after` this list returned (<micros>_<uuid>)")
        })
    }
}

impl PartialSchema for AtCursor {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(Self::PATTERN))
            .examples([Self::EXAMPLE])
            .description(Some(
                "A page cursor: the previous page's `next_after`, passed back unchanged.",
            ))
            .into()
    }
}

impl ToSchema for AtCursor {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_one_to_a_thousand() {
        assert_eq!(Limit::new(0), None);
        assert_eq!(Limit::new(1001), None);
        assert_eq!(Limit::new(1).map(Limit::get), Some(1));
        assert_eq!(Limit::new(1000).map(Limit::get), Some(1000));
        assert_eq!(Limit::default().get(), 100);
    }

    #[test]
    fn only_a_full_page_has_a_successor() {
        let ids = [Uuid::new_v4(), Uuid::new_v4()];
        let two = Limit::new(2).unwrap();
        assert_eq!(next_after(&ids, two, |u| *u), Some(ids[1]));
        assert_eq!(next_after(&ids[..1], two, |u| *u), None);
    }

    #[test]
    fn at_cursors_round_trip_and_take_only_their_pattern() {
        let at = DateTime::from_timestamp_micros(1_767_225_600_123_456).unwrap();
        let cursor = AtCursor {
            at,
            id: Uuid::new_v4(),
        };
        assert_eq!(AtCursor::parse(&cursor.to_string()), Some(cursor));
        assert!(AtCursor::parse(AtCursor::EXAMPLE).is_some());
        let id = "0b7e4c1a-2f3d-4e5a-8b6c-7d8e9f0a1b2c";
        for bad in [
            String::new(),
            id.to_owned(),
            format!("_{id}"),
            format!("-1_{id}"),
            format!("12345678901234567_{id}"),
            format!("1_{}", id.to_uppercase()),
            format!("1_{}", id.replace('-', "")),
            format!("1.5_{id}"),
            "1_x".to_owned(),
        ] {
            assert_eq!(AtCursor::parse(&bad), None, "{bad}");
        }
    }
}
