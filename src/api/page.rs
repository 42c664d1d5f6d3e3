//! One page type and one page-size parser for every keyset-paginated list: items ordered by
//! id, `after` = the previous page's `next_after`, `limit` 1–1000 (default 100).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
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
}
