//! The per-participant operations' loop: each requested id is done or declined on its own, in
//! request order, and the answer has one result per id.

use serde::Serialize;

use crate::groups::model::MAX_PARTICIPANTS;
use crate::ids::{ContactId, GroupId};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ResultError {
    pub code: String,
    pub message: String,
    /// The HTTP-like number WAHA's join-request results carry as their `error` (404: no such
    /// request). Not part of the participants' `{code, message}`.
    #[serde(skip)]
    pub status: u16,
}

/// One per requested id, in request order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParticipantResult {
    pub id: String,
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ResultError>,
}

impl ParticipantResult {
    fn ok(id: &ContactId) -> Self {
        Self {
            id: id.to_string(),
            success: true,
            error: None,
        }
    }

    fn declined(id: &ContactId, why: &Declined) -> Self {
        Self {
            id: id.to_string(),
            success: false,
            error: Some(ResultError {
                code: why.code().to_owned(),
                message: why.message(id),
                status: why.status(),
            }),
        }
    }
}

/// Why one id of a batch was not done; the batch goes on with the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declined {
    NotAMember,
    AlreadyMember,
    SuperadminNotRemovable,
    SuperadminNotDemotable,
    /// The actor named itself in a remove: leaving is its own operation.
    IsSelf,
    AlreadyAdmin,
    NotAnAdmin,
    /// The demote would leave the group without an admin.
    LastAdmin,
    NoJoinRequest,
    JoinRequestPending,
    /// An add past `MAX_PARTICIPANTS`.
    Full,
    /// An approve past `MAX_PARTICIPANTS`; its message names the group.
    GroupFull {
        group: GroupId,
    },
    /// An add of a lid that names no account known here (see `groups::lids`).
    LidNotFound,
}

impl Declined {
    pub fn code(&self) -> &'static str {
        match self {
            Declined::NotAMember => "not_a_member",
            Declined::AlreadyMember => "already_member",
            Declined::SuperadminNotRemovable | Declined::SuperadminNotDemotable => "is_superadmin",
            Declined::IsSelf => "is_self",
            Declined::AlreadyAdmin => "already_admin",
            Declined::NotAnAdmin => "not_an_admin",
            Declined::LastAdmin => "last_admin",
            Declined::NoJoinRequest => "no_join_request",
            Declined::JoinRequestPending => "join_request_pending",
            Declined::Full | Declined::GroupFull { .. } => "group_full",
            Declined::LidNotFound => "lid_not_found",
        }
    }

    /// The number WAHA's join-request results give as `error`: 404 for an id the group has
    /// no such member or request of, 403 for what no one may do, 409 for what the group's
    /// state (already so, full) rules out.
    pub fn status(&self) -> u16 {
        match self {
            Declined::NotAMember | Declined::NoJoinRequest | Declined::LidNotFound => 404,
            Declined::SuperadminNotRemovable
            | Declined::SuperadminNotDemotable
            | Declined::IsSelf
            | Declined::LastAdmin => 403,
            Declined::AlreadyMember
            | Declined::AlreadyAdmin
            | Declined::NotAnAdmin
            | Declined::JoinRequestPending
            | Declined::Full
            | Declined::GroupFull { .. } => 409,
        }
    }

    /// The message for requested id `id`.
    pub fn message(&self, id: &ContactId) -> String {
        match self {
            Declined::NotAMember => format!("{id} is not a member"),
            Declined::AlreadyMember => format!("{id} is already a member"),
            Declined::SuperadminNotRemovable => "the superadmin cannot be removed".into(),
            Declined::SuperadminNotDemotable => "the superadmin cannot be demoted".into(),
            Declined::IsSelf => "use POST /groups/{id}/leave to leave a group".into(),
            Declined::AlreadyAdmin => format!("{id} is already an admin"),
            Declined::NotAnAdmin => format!("{id} is not an admin"),
            Declined::LastAdmin => "a group keeps at least one admin".into(),
            Declined::NoJoinRequest => format!("{id} has no pending join request"),
            Declined::JoinRequestPending => format!("{id} already has a pending join request"),
            Declined::Full => format!("group is full ({MAX_PARTICIPANTS} participants)"),
            Declined::GroupFull { group } => format!("group {group} is full"),
            Declined::LidNotFound => format!(
                "{id} is not the lid of an account known here; add it by its phone number (@c.us)"
            ),
        }
    }
}

/// Runs `one` for each id in request order: one result per id, and what each success did
/// (`None`: done, though nothing changed), in order.
pub(super) fn each<T>(
    ids: &[ContactId],
    mut one: impl FnMut(&ContactId) -> Result<Option<T>, Declined>,
) -> (Vec<T>, Vec<ParticipantResult>) {
    let mut done = Vec::new();
    let results = ids
        .iter()
        .map(|id| match one(id) {
            Ok(did) => {
                done.extend(did);
                ParticipantResult::ok(id)
            }
            Err(why) => ParticipantResult::declined(id, &why),
        })
        .collect();
    (done, results)
}
