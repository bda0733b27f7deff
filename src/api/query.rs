//! Query parameters as typed values (serde enums, bounded numbers), each refused with the message
//! the API has always given.

use std::marker::PhantomData;

use serde::de::value::{Error as ValueError, StrDeserializer};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, ApiResult};

/// A query parameter as sent, read as a `T` when an `Input::check` asks for it: after the
/// session is looked up, and in the handler's order whatever the order of the URL.
pub struct Param<T> {
    text: Option<String>,
    of: PhantomData<fn() -> T>,
}

impl<T> Default for Param<T> {
    fn default() -> Self {
        Self {
            text: None,
            of: PhantomData,
        }
    }
}

impl<'de, T> Deserialize<'de> for Param<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self {
            text: Some(String::deserialize(d)?),
            of: PhantomData,
        })
    }
}

impl<T: QueryValue> Param<T> {
    /// The value, `None` when the parameter is absent; 400 naming `name` when it is not a `T`.
    pub fn value(self, name: &str) -> ApiResult<Option<T>> {
        self.text
            .map(|text| {
                T::parse(&text).ok_or_else(|| ApiError::bad_request(T::refusal(name, &text)))
            })
            .transpose()
    }
}

/// A type a query parameter can hold: how its text is read, and the message that refuses a text
/// that is not one (it names the parameter, `name`).
pub trait QueryValue: Sized {
    fn parse(text: &str) -> Option<Self>;
    fn refusal(name: &str, text: &str) -> String;
}

/// A serde enum of unit variants, read from a parameter by a variant's name; `EXPECTED` lists
/// them for the 400 (`id or subject`).
pub trait Choice: DeserializeOwned {
    const EXPECTED: &'static str;
}

impl<T: Choice> QueryValue for T {
    fn parse(text: &str) -> Option<Self> {
        variant(text)
    }
    fn refusal(name: &str, text: &str) -> String {
        format!("{name}: expected {}, got {text:?}", T::EXPECTED)
    }
}

/// The unit variant of `T` that `text` names, by serde's name for it.
pub fn variant<T: DeserializeOwned>(text: &str) -> Option<T> {
    T::deserialize(StrDeserializer::<ValueError>::new(text)).ok()
}

/// How many items a page of a log holds: 1 to 1000, 100 when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub usize);

impl Default for Limit {
    fn default() -> Self {
        Self(100)
    }
}

impl QueryValue for Limit {
    fn parse(text: &str) -> Option<Self> {
        text.parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .map(Self)
    }
    fn refusal(name: &str, text: &str) -> String {
        format!("{name}: expected an integer from 1 to 1000, got {text:?}")
    }
}

/// How many items of a list to skip: 0 to `i64::MAX` (an OpenAPI `int64`), 0 when not given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offset(pub usize);

impl QueryValue for Offset {
    fn parse(text: &str) -> Option<Self> {
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = text.parse::<i64>().ok()?;
        // Past `usize::MAX` (a 32-bit target) skips everything all the same.
        Some(Self(usize::try_from(n).unwrap_or(usize::MAX)))
    }
    fn refusal(name: &str, text: &str) -> String {
        format!(
            "{name}: expected an integer from 0 to {}, got {text:?}",
            i64::MAX
        )
    }
}

/// `true` (or empty, as in `?all`) or `false`.
impl QueryValue for bool {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "true" | "" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
    fn refusal(name: &str, text: &str) -> String {
        format!("{name}: expected true or false, got {text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Order {
        Asc,
        Desc,
    }

    impl Choice for Order {
        const EXPECTED: &'static str = "asc or desc";
    }

    fn param<T>(text: &str) -> Param<T> {
        Param {
            text: Some(text.to_owned()),
            of: PhantomData,
        }
    }

    fn refusal<T: QueryValue + std::fmt::Debug>(name: &str, text: &str) -> String {
        match param::<T>(text).value(name) {
            Err(e) => e.to_string(),
            Ok(v) => panic!("{text:?} was read as {v:?}"),
        }
    }

    #[test]
    fn a_choice_is_read_by_its_serde_name_and_refused_with_the_names_it_takes() {
        assert_eq!(
            param::<Order>("desc").value("sortOrder").ok(),
            Some(Some(Order::Desc))
        );
        assert_eq!(
            Param::<Order>::default().value("sortOrder").ok(),
            Some(None)
        );
        for bad in ["DESC", "", "up"] {
            assert_eq!(
                refusal::<Order>("sortOrder", bad),
                format!("sortOrder: expected asc or desc, got {bad:?}")
            );
        }
    }

    #[test]
    fn a_limit_is_1_to_1000_as_rust_reads_a_number() {
        assert_eq!(Limit::parse("+7"), Some(Limit(7)));
        assert_eq!(Limit::parse("1000"), Some(Limit(1000)));
        for bad in ["0", "1001", "ten", "", "-1"] {
            assert_eq!(
                refusal::<Limit>("limit", bad),
                format!("limit: expected an integer from 1 to 1000, got {bad:?}")
            );
        }
    }

    #[test]
    fn an_offset_is_a_non_negative_int64() {
        assert_eq!(Offset::parse("0"), Some(Offset(0)));
        let max = i64::MAX.to_string();
        assert_eq!(Offset::parse(&max), Some(Offset(i64::MAX as usize)));
        for bad in ["-1", "", "+1", "one", "9223372036854775808"] {
            assert_eq!(
                refusal::<Offset>("offset", bad),
                format!("offset: expected an integer from 0 to {max}, got {bad:?}")
            );
        }
    }

    #[test]
    fn an_empty_flag_is_true() {
        assert_eq!(bool::parse(""), Some(true));
        assert_eq!(bool::parse("false"), Some(false));
        assert_eq!(
            refusal::<bool>("all", "maybe"),
            "all: expected true or false, got \"maybe\""
        );
    }
}
