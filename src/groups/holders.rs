//! The sessions of this gateway that hold one group, for the gateway-wide index: nearly always
//! one or two, so a sorted vector, not a `BTreeSet` (whose first node alone takes some 280 bytes,
//! and start-up indexes every group of every session).

use crate::ids::SessionName;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Holders(Vec<SessionName>);

impl Holders {
    pub(super) fn insert(&mut self, name: SessionName) {
        if let Err(at) = self.0.binary_search(&name) {
            self.0.insert(at, name);
            self.0.shrink_to_fit();
        }
    }

    pub(super) fn remove(&mut self, name: &SessionName) {
        if let Ok(at) = self.0.binary_search(name) {
            self.0.remove(at);
            self.0.shrink_to_fit();
        }
    }

    pub(super) fn contains(&self, name: &SessionName) -> bool {
        self.0.binary_search(name).is_ok()
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Holders {
    type Item = &'a SessionName;
    type IntoIter = std::slice::Iter<'a, SessionName>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> SessionName {
        SessionName::parse(s).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn holders_stay_sorted_and_unique() {
        let mut h = Holders::default();
        for n in ["c", "a", "b", "a"] {
            h.insert(name(n));
        }
        let listed: Vec<&str> = h.into_iter().map(|n| n.as_str()).collect();
        assert_eq!(listed, ["a", "b", "c"]);
        h.remove(&name("b"));
        h.remove(&name("x"));
        assert_eq!(h.len(), 2);
        assert!(h.contains(&name("c")) && !h.contains(&name("b")));
        h.remove(&name("a"));
        h.remove(&name("c"));
        assert!(h.is_empty());
    }
}
