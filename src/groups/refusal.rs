//! Why a change of a group was refused, named by the rule that refused it. The words are the
//! rule's own; the API gives each its status and error code (`api::refusal`).

use std::fmt;

use super::model::{MAX_LINKED_GROUPS, MAX_PARTICIPANTS};
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
    /// The id names a group the session has, but not a community.
    #[error("Community {id} not found in session \"{session}\"")]
    CommunityNotFound { id: GroupId, session: SessionName },
    #[error("only community admins can {action}")]
    NotCommunityAdmin { action: CommunityAction },
    /// A link of a group the acting account does not administer.
    #[error("linking needs admin in the linked group: not an admin of {group}")]
    NotGroupAdmin { group: GroupId },
    /// A link of a group that is already linked to another community.
    #[error("a group is in at most one community: {group} is in {community}")]
    InOtherCommunity { group: GroupId, community: GroupId },
    /// A link that would take the community past `MAX_LINKED_GROUPS`.
    #[error("a community holds at most {MAX_LINKED_GROUPS} linked groups")]
    CommunityFull,
    /// A community, its announcement group or a community's group, for an operation that would
    /// change who is in them other than through the community.
    #[error("{group} belongs to a community: {what}")]
    CommunityManaged { group: GroupId, what: &'static str },
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

/// What only community admins may do, as `Refusal::NotCommunityAdmin` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommunityAction {
    Link,
    Unlink,
    Rename,
    Describe,
    Delete,
}

impl fmt::Display for CommunityAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommunityAction::Link => "link groups",
            CommunityAction::Unlink => "unlink groups",
            CommunityAction::Rename => "rename the community",
            CommunityAction::Describe => "change the community's description",
            CommunityAction::Delete => "delete the community",
        })
    }
}
