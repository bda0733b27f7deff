//! Validated identifiers: once one of these exists it is well-formed, so handlers never re-check.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Why an identifier was refused; the API layer names the field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdError(pub String);

macro_rules! string_id {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(|e| serde::de::Error::custom(e.0))
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

/// A session name: `^[a-zA-Z0-9_-]{1,54}$`. It becomes a folder name, so nothing else passes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionName(String);
string_id!(SessionName);

impl SessionName {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= 54
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError(format!(
                "invalid session name {:?}: expected 1-54 characters of [a-zA-Z0-9_-]",
                truncate(s)
            )))
        }
    }
}

/// A group id: 18 digits starting with 120363, then `@g.us`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(String);
string_id!(GroupId);

impl GroupId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = s
            .strip_suffix("@g.us")
            .is_some_and(|d| d.len() == 18 && d.starts_with("120363") && all_digits(d));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError(format!(
                "invalid group id {:?}: expected 18 digits starting with 120363, then @g.us",
                truncate(s)
            )))
        }
    }

    /// A fresh random id; the caller checks it is unused in the gateway.
    pub fn random() -> Self {
        let n: u64 = rand::thread_rng().gen_range(0..1_000_000_000_000);
        Self(format!("120363{n:012}@g.us"))
    }
}

/// A contact (account) id: `<5-20 digits>@c.us` or `<digits>@lid`.
/// `<digits>@s.whatsapp.net` is accepted and normalised to `@c.us`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactId(String);
string_id!(ContactId);

impl ContactId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let digits_ok = |d: &str| (5..=20).contains(&d.len()) && all_digits(d);
        if let Some(d) = s.strip_suffix("@c.us").filter(|d| digits_ok(d)) {
            return Ok(Self(format!("{d}@c.us")));
        }
        if let Some(d) = s.strip_suffix("@s.whatsapp.net").filter(|d| digits_ok(d)) {
            return Ok(Self(format!("{d}@c.us")));
        }
        if let Some(d) = s.strip_suffix("@lid").filter(|d| digits_ok(d)) {
            return Ok(Self(format!("{d}@lid")));
        }
        Err(IdError(format!(
            "invalid contact id {:?}: expected <5-20 digits>@c.us, @s.whatsapp.net or @lid",
            truncate(s)
        )))
    }

    /// Whether this is a linked id (`<digits>@lid`) rather than a phone-number id.
    pub fn is_lid(&self) -> bool {
        self.0.ends_with("@lid")
    }

    /// The phone-number id itself, or `None` for a linked id.
    pub fn pn(&self) -> Option<&str> {
        (!self.is_lid()).then_some(self.0.as_str())
    }

    /// The account's linked id: 15 digits from a hash of its number, then `@lid`. A pure function
    /// of the number, so the same account has the same lid on every gateway and after every
    /// restart; `None` for an id that is a lid already (its number is not in it).
    pub fn lid(&self) -> Option<ContactId> {
        use sha2::{Digest, Sha256};
        let digits = self.0.strip_suffix("@c.us")?;
        let h = Sha256::digest(format!("wagate-lid:{digits}").as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[..8]);
        let n = 100_000_000_000_000 + u64::from_be_bytes(b) % 900_000_000_000_000;
        Some(Self(format!("{n}@lid")))
    }

    /// The stable account id of a session that configured none: an 11-digit number from its name.
    pub fn derived_from(name: &SessionName) -> Self {
        use sha2::{Digest, Sha256};
        let h = Sha256::digest(name.as_str().as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[..8]);
        let n = 10_000_000_000 + u64::from_be_bytes(b) % 90_000_000_000;
        Self(format!("{n}@c.us"))
    }
}

/// An invite code: 22 characters of `[A-Za-z0-9]`. Parsing also accepts the invite URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InviteCode(String);
string_id!(InviteCode);

pub const INVITE_URL_PREFIX: &str = "https://chat.whatsapp.com/";

impl InviteCode {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bare = s
            .strip_prefix(INVITE_URL_PREFIX)
            .or_else(|| s.strip_prefix("http://chat.whatsapp.com/"))
            .or_else(|| s.strip_prefix("chat.whatsapp.com/"))
            .unwrap_or(s);
        if bare.len() == 22 && bare.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(bare.to_owned()))
        } else {
            Err(IdError(format!(
                "invalid invite code {:?}: expected 22 characters of [A-Za-z0-9] or {INVITE_URL_PREFIX}<code>",
                truncate(s)
            )))
        }
    }

    pub fn random() -> Self {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = rand::thread_rng();
        let s = (0..22)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        Self(s)
    }

    pub fn url(&self) -> String {
        format!("{INVITE_URL_PREFIX}{}", self.0)
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Echoing a 1 MiB id back in an error helps nobody.
fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_that_could_escape_the_data_folder_are_refused() {
        for bad in [
            "",
            "..",
            "a/b",
            "a%2Fb",
            "a\0b",
            &"x".repeat(55),
            "a b",
            "ü",
        ] {
            assert!(SessionName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(SessionName::parse(&"x".repeat(54)).is_ok());
        assert!(SessionName::parse("default_1-A").is_ok());
    }

    #[test]
    fn contact_ids_are_normalised_to_c_us() {
        let c = ContactId::parse("123456789@s.whatsapp.net").unwrap();
        assert_eq!(c.as_str(), "123456789@c.us");
        assert_eq!(ContactId::parse("12345@lid").unwrap().as_str(), "12345@lid");
        for bad in [
            "1234@c.us",
            "abc@c.us",
            "123456@g.us",
            "123456",
            &format!("{}@c.us", "1".repeat(21)),
        ] {
            assert!(ContactId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_account_ids_are_stable_11_digit_numbers() {
        let a = ContactId::derived_from(&SessionName::parse("default").unwrap());
        let b = ContactId::derived_from(&SessionName::parse("default").unwrap());
        assert_eq!(a, b);
        assert_eq!(a.as_str().len(), 11 + "@c.us".len());
        assert!(ContactId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn a_lid_is_15_digits_derived_from_the_number_alone() {
        let pn = ContactId::parse("11111111111@c.us").unwrap();
        let lid = pn.lid().expect("a number has a lid");
        assert!(lid.is_lid() && !pn.is_lid());
        assert_eq!(lid.as_str().len(), 15 + "@lid".len());
        assert_eq!(ContactId::parse(lid.as_str()), Ok(lid.clone()));
        // Pinned: every gateway, every version, derives the same lid for the same number.
        assert_eq!(lid.as_str(), KNOWN_LID);
        let same = ContactId::parse("11111111111@s.whatsapp.net").unwrap();
        assert_eq!(same.lid(), Some(lid.clone()));
        assert_ne!(
            ContactId::parse("11111111112@c.us").unwrap().lid(),
            Some(lid.clone())
        );
        assert_eq!(lid.lid(), None, "a lid has no lid of its own");
        assert_eq!(lid.pn(), None);
        assert_eq!(pn.pn(), Some("11111111111@c.us"));
    }

    const KNOWN_LID: &str = "540718988944767@lid";

    #[test]
    fn group_ids_and_invite_codes_round_trip() {
        let g = GroupId::random();
        assert_eq!(GroupId::parse(g.as_str()).unwrap(), g);
        assert!(GroupId::parse("123@g.us").is_err());
        let c = InviteCode::random();
        assert_eq!(InviteCode::parse(&c.url()).unwrap(), c);
        assert!(InviteCode::parse("short").is_err());
    }
}
