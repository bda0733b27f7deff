//! Strict JSON shapes for serde, shared by the API's bodies and the domain's config types:
//! serde alone would read a struct from an array, or refuse `76.0` as an integer.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// For a field holding a struct: refuses anything but an object (or null), because serde
/// would otherwise read a struct from an array.
pub fn object<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    let v = Value::deserialize(d)?;
    if !v.is_object() && !v.is_null() {
        return Err(serde::de::Error::custom("expected an object"));
    }
    T::deserialize(v).map_err(serde::de::Error::custom)
}

/// For an optional whole number: JSON Schema (and so the OpenAPI document) counts `76.0` as an
/// integer, serde does not.
pub fn whole<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let int = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    });
    int.and_then(|i| T::try_from(i).ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!("expected a non-negative integer, got {n}"))
        })
}

/// For a field holding a list of structs: each item must be an object.
pub fn objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    let v = Value::deserialize(d)?;
    if let Some((i, _)) = v
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .find(|(_, item)| !item.is_object())
    {
        return Err(serde::de::Error::custom(format!(
            "item {i}: expected an object"
        )));
    }
    T::deserialize(v).map_err(serde::de::Error::custom)
}
