//! Linked ids (`<digits>@lid`). Every account's lid is derived from its number
//! (`ContactId::lid`), so a lid is turned back into its number by looking among the numbers the
//! gateway knows: the numbers asked for with it, the group changed, the session's account and
//! every local session's, then the participants and requesters of the session's other groups. Nothing is kept for it: what is
//! known is in the stores and the registry, so it is the same after a restart.
//!
//! Ids are resolved at the edge of the write path (the service, before a rule runs), so a
//! group keeps numbers and a member given by lid or by number is the same member everywhere.
//! A lid nobody here knows reaches the rules as it is: an add declines it (`lid_not_found`), a
//! create is refused with it, and elsewhere it names no member nor requester.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::model::Group;
use super::rules::{Op, ParticipantResult};
use super::service::GroupService;
use crate::error::ApiResult;
use crate::ids::ContactId;
use crate::sessions::Session;

/// An account as `/lids` shows it (WAHA's `LidToPhoneNumber`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LidToPhoneNumber {
    pub lid: String,
    pub pn: String,
}

/// The numbers a group names: its members, its requesters and who added them.
fn numbers_in(g: &Group) -> impl Iterator<Item = &ContactId> {
    let requests = g.join_requests.iter();
    let requesters = requests.flat_map(|r| std::iter::once(&r.requester).chain(&r.added_by));
    g.participants.iter().map(|m| &m.id).chain(requesters)
}

/// The lids asked for, each with the number found for it so far.
struct Lookup {
    found: HashMap<ContactId, Option<ContactId>>,
    /// How many lids have no number yet.
    open: usize,
}

impl Lookup {
    fn new(ids: &[ContactId]) -> Self {
        let found: HashMap<_, _> = ids
            .iter()
            .filter(|id| id.is_lid())
            .map(|id| (id.clone(), None))
            .collect();
        let open = found.len();
        Self { found, open }
    }

    /// Looks at `numbers`; whether every lid has its number now.
    fn offer<'a>(&mut self, numbers: impl IntoIterator<Item = &'a ContactId>) -> bool {
        for pn in numbers {
            if self.open == 0 {
                break;
            }
            let Some(lid) = pn.lid() else { continue };
            if let Some(slot @ None) = self.found.get_mut(&lid) {
                *slot = Some(pn.clone());
                self.open -= 1;
            }
        }
        self.open == 0
    }

    /// Replaces each lid found in `ids` by its number.
    fn apply(&self, ids: &mut [ContactId]) {
        for id in ids {
            if let Some(Some(pn)) = self.found.get(id) {
                *id = pn.clone();
            }
        }
    }
}

/// The ids a batch operation names, to resolve.
fn ids_of(op: &mut Op) -> Option<&mut Vec<ContactId>> {
    match op {
        Op::Add(ids)
        | Op::Remove(ids)
        | Op::Promote(ids)
        | Op::Demote(ids)
        | Op::Approve(ids)
        | Op::Reject(ids) => Some(ids),
        _ => None,
    }
}

/// Each result names its id as the client asked for it (a lid stays the lid it sent); `asked`
/// is empty when nothing was resolved.
pub(super) fn echo(results: &mut [ParticipantResult], asked: &[ContactId]) {
    for (result, id) in results.iter_mut().zip(asked) {
        result.id = id.to_string();
    }
}

impl GroupService {
    /// Replaces every lid in `ids` whose number the gateway knows by that number: from `group`,
    /// the local sessions' accounts, then `session`'s groups (read only when still needed).
    pub(super) fn resolve(
        &self,
        session: &Session,
        group: Option<&Group>,
        ids: &mut [ContactId],
    ) -> ApiResult<()> {
        let mut lookup = Lookup::new(ids);
        if lookup.open == 0 {
            return Ok(());
        }
        // The numbers asked for with it first: `[X, X's lid]` names one account.
        let asked: Vec<ContactId> = ids.iter().filter(|id| !id.is_lid()).cloned().collect();
        let accounts: Vec<ContactId> = self.registry().list().iter().map(|s| s.me_id()).collect();
        let done = lookup.offer(&asked)
            || lookup.offer(group.into_iter().flat_map(numbers_in))
            || lookup.offer(&accounts);
        if !done {
            for g in self.list(session)? {
                if lookup.offer(numbers_in(&g)) {
                    break;
                }
            }
        }
        lookup.apply(ids);
        Ok(())
    }

    /// `op` with its ids resolved (`resolve`), and the ids as asked when any was a lid.
    pub(super) fn resolve_op(
        &self,
        session: &Session,
        group: &Group,
        mut op: Op,
    ) -> ApiResult<(Op, Vec<ContactId>)> {
        let Some(ids) = ids_of(&mut op).filter(|ids| ids.iter().any(ContactId::is_lid)) else {
            return Ok((op, Vec::new()));
        };
        let asked = ids.clone();
        self.resolve(session, Some(group), ids)?;
        Ok((op, asked))
    }

    /// The accounts `session` knows, in lid order: its own and every participant of its groups.
    pub fn known_lids(&self, session: &Session) -> ApiResult<Vec<LidToPhoneNumber>> {
        let mut by_lid = BTreeMap::new();
        let mut add = |pn: &ContactId| {
            if let Some(lid) = pn.lid() {
                by_lid.insert(lid.to_string(), pn.to_string());
            }
        };
        add(&session.me_id());
        for g in self.list(session)? {
            g.participants.iter().for_each(|m| add(&m.id));
        }
        let entry = |(lid, pn)| LidToPhoneNumber { lid, pn };
        Ok(by_lid.into_iter().map(entry).collect())
    }

    /// The account `session` knows by `id` (its lid or its number), if any.
    pub fn known_account(
        &self,
        session: &Session,
        id: &ContactId,
    ) -> ApiResult<Option<LidToPhoneNumber>> {
        let key = id.as_str();
        let known = self.known_lids(session)?;
        Ok(known.into_iter().find(|e| e.lid == key || e.pn == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> ContactId {
        ContactId::parse(s).expect("contact id")
    }

    #[test]
    fn a_lookup_replaces_the_lids_it_finds_and_keeps_the_rest_as_asked() {
        let (bob, carol) = (c("22222222222@c.us"), c("33333333333@c.us"));
        let bob_lid = bob.lid().expect("lid");
        let unknown = c("123456789012345@lid");
        let mut ids = vec![bob_lid.clone(), carol.clone(), unknown.clone(), bob_lid];
        let mut lookup = Lookup::new(&ids);
        assert_eq!(lookup.open, 2, "each distinct lid is looked for once");
        assert!(!lookup.offer([&carol, &bob]), "the unknown lid stays open");
        lookup.apply(&mut ids);
        assert_eq!(ids, vec![bob.clone(), carol, unknown, bob]);
    }
}
