//! Why a change of a group was refused, named by the rule that refused it. The words are the
//! rule's own; the API gives each its status and error code (`api::refusal`).

use std::fmt;

use super::model::MAX_PARTICIPANTS;
use crate::ids::{ContactId, GroupId, SessionName};

/// A change the rules (or the service, for a group a session does not have) will not make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A new group would hold more than `MAX_PARTICIPANTS`, its creator included.
    #[error(
        "participants: a group holds at most {MAX_PARTICIPANTS} participants including the creator"
    )]
    TooManyParticipants,
    /// The acting account is not a member, so to it the group does not exist. The rules know no
    /// session; the service names the one that asked (`in_session`).
    #[error("Group {group} not found")]
    NotAMember { group: GroupId },
    /// The session does not have the group (or its account is not a member).
    #[error("Group {id} not found in session \"{session}\"")]
    GroupNotFound { id: GroupId, session: SessionName },
    #[error("only admins can {action}")]
    NotAdmin { action: AdminAction },
    /// Subject, description and picture while `infoAdminOnly` is on.
    #[error("only admins can change group info (infoAdminOnly is on)")]
    InfoAdminOnly,
    /// A non-admin's add while `membersCanAddNewMember` is off.
    #[error("only admins can add participants (membersCanAddNewMember is off)")]
    MembersCannotAdd,
    /// No group has this invite code (never had, or it was revoked).
    #[error("invite code not found or revoked")]
    InviteNotFound,
    /// A join by invite of an account that is already in the group.
    #[error("{actor} is already a member of {group}")]
    AlreadyMember { actor: ContactId, group: GroupId },
    /// A join by invite of a group that holds `MAX_PARTICIPANTS`.
    #[error("group {group} is full")]
    GroupFull { group: GroupId },
    /// A new group's participant given by a lid that names no account known here.
    #[error(
        "participants: {id} is not the lid of an account known here; give its phone number (@c.us)"
    )]
    LidNotFound { id: ContactId },
    /// A join by invite of an account whose request to join is still pending.
    #[error("{actor} already asked to join {group}")]
    JoinRequestPending { actor: ContactId, group: GroupId },
}

impl Refusal {
    /// The refusal as the session `session` is told it: a group its account is not in is a
    /// group it does not have.
    pub fn in_session(self, session: &SessionName) -> Self {
        match self {
            Refusal::NotAMember { group } => Refusal::GroupNotFound {
                id: group,
                session: session.clone(),
            },
            other => other,
        }
    }
}

/// What only admins may do, as `Refusal::NotAdmin` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    ChangeSettings,
    RevokeInvite,
    RemoveParticipants,
    PromoteParticipants,
    DemoteAdmins,
    DeleteGroup,
    ApproveRequests,
    RejectRequests,
}

impl fmt::Display for AdminAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdminAction::ChangeSettings => "change group settings",
            AdminAction::RevokeInvite => "revoke the invite code",
            AdminAction::RemoveParticipants => "remove participants",
            AdminAction::PromoteParticipants => "promote participants",
            AdminAction::DemoteAdmins => "demote admins",
            AdminAction::DeleteGroup => "delete the group",
            AdminAction::ApproveRequests => "approve join requests",
            AdminAction::RejectRequests => "reject join requests",
        })
    }
}
