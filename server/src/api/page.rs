//! Page sizes of the list endpoints.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// How many items a page holds: 1 to 500, 100 when the query doesn't say. Anything
/// else is a 400 that says so, as the OpenAPI document's bounds promise, rather than
/// a page of another size than asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub const MAX: u32 = 500;
    pub const DEFAULT: Limit = Limit(100);
    pub const INVALID: &'static str = "limit must be a number from 1 to 500";

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit::DEFAULT
    }
}

impl std::str::FromStr for Limit {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.parse::<u32>() {
            Ok(n @ 1..=Limit::MAX) => Ok(Limit(n)),
            _ => Err(Limit::INVALID),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LimitVisitor;
        impl Visitor<'_> for LimitVisitor {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(Limit::INVALID)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Limit, E> {
                text.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Limit, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Limit, E> {
                self.visit_str(&n.to_string())
            }
        }
        d.deserialize_any(LimitVisitor)
    }
}

impl utoipa::PartialSchema for Limit {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(Limit::MAX))
            .default(Some(Limit::DEFAULT.0.into()))
            .into()
    }
}

impl utoipa::ToSchema for Limit {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_one_to_five_hundred_are_refused() {
        assert_eq!("1".parse(), Ok(Limit(1)));
        assert_eq!("500".parse(), Ok(Limit(500)));
        for bad in ["0", "501", "2147483648", "-1", "ten", ""] {
            assert_eq!(bad.parse::<Limit>(), Err(Limit::INVALID), "{bad}");
        }
    }
}
