//! What the client is told when the group rules refuse a change: the one place a `Refusal`
//! becomes a status and an error code. The message is the refusal's own words.

use crate::error::{ApiError, ErrorCode};
use crate::groups::Refusal;

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let message = refusal.to_string();
        match refusal {
            Refusal::TooManyParticipants => ApiError::bad_request(message),
            Refusal::NotAdmin { .. } | Refusal::MembersCannotAdd => ApiError::Forbidden {
                message,
                code: ErrorCode::NotAdmin.as_str(),
            },
            Refusal::InfoAdminOnly => ApiError::Forbidden {
                message,
                code: ErrorCode::InfoAdminOnly.as_str(),
            },
            // A bare `NotAMember` is one the service did not place in its session: the same
            // 404, without naming one.
            Refusal::NotAMember { .. } | Refusal::GroupNotFound { .. } => {
                ApiError::not_found(ErrorCode::GroupNotFound, message)
            }
            Refusal::InviteNotFound => ApiError::not_found(ErrorCode::InviteNotFound, message),
            Refusal::LidNotFound { .. } => ApiError::not_found(ErrorCode::LidNotFound, message),
            Refusal::AlreadyMember { .. } => ApiError::conflict(ErrorCode::AlreadyMember, message),
            Refusal::GroupFull { .. } => ApiError::conflict(ErrorCode::GroupFull, message),
            Refusal::JoinRequestPending { .. } => {
                ApiError::conflict(ErrorCode::JoinRequestPending, message)
            }
            Refusal::CommunityNotFound { .. } => {
                ApiError::not_found(ErrorCode::CommunityNotFound, message)
            }
            Refusal::NotCommunityAdmin { .. } => {
                ApiError::forbidden_as(ErrorCode::NotCommunityAdmin, message)
            }
            Refusal::NotGroupAdmin { .. } => {
                ApiError::forbidden_as(ErrorCode::NotGroupAdmin, message)
            }
            Refusal::InOtherCommunity { .. } => {
                ApiError::forbidden_as(ErrorCode::InOtherCommunity, message)
            }
            Refusal::CommunityFull => ApiError::forbidden_as(ErrorCode::CommunityFull, message),
            Refusal::CommunityManaged { .. } => {
                ApiError::forbidden_as(ErrorCode::CommunityManaged, message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::groups::refusal::AdminAction;
    use crate::ids::{ContactId, GroupId, SessionName};

    fn body(refusal: Refusal) -> Value {
        ApiError::from(refusal).body()
    }

    fn error(status: u16, reason: &str, code: &str, message: &str) -> Value {
        json!({"statusCode": status, "error": reason, "message": message, "code": code})
    }

    fn gid() -> GroupId {
        GroupId::parse("120363000000000001@g.us").expect("group id")
    }

    fn actor() -> ContactId {
        ContactId::parse("10009@c.us").expect("contact id")
    }

    #[test]
    fn a_refused_creation_is_a_400_naming_the_participants_field() {
        assert_eq!(
            body(Refusal::TooManyParticipants),
            error(
                400,
                "Bad Request",
                "bad_request",
                "participants: a group holds at most 1024 participants including the creator"
            )
        );
    }

    #[test]
    fn rights_refusals_are_403_and_name_the_rule() {
        let cases = [
            (AdminAction::ChangeSettings, "change group settings"),
            (AdminAction::RevokeInvite, "revoke the invite code"),
            (AdminAction::RemoveParticipants, "remove participants"),
            (AdminAction::PromoteParticipants, "promote participants"),
            (AdminAction::DemoteAdmins, "demote admins"),
            (AdminAction::DeleteGroup, "delete the group"),
            (AdminAction::ApproveRequests, "approve join requests"),
            (AdminAction::RejectRequests, "reject join requests"),
        ];
        for (action, words) in cases {
            let message = format!("only admins can {words}");
            let want = error(403, "Forbidden", "not_admin", &message);
            assert_eq!(body(Refusal::NotAdmin { action }), want);
        }
        let message = "only admins can add participants (membersCanAddNewMember is off)";
        let want = error(403, "Forbidden", "not_admin", message);
        assert_eq!(body(Refusal::MembersCannotAdd), want);
        let message = "only admins can change group info (infoAdminOnly is on)";
        let want = error(403, "Forbidden", "info_admin_only", message);
        assert_eq!(body(Refusal::InfoAdminOnly), want);
    }

    #[test]
    fn a_group_the_session_does_not_have_is_a_404_naming_the_session() {
        let session = SessionName::parse("default").expect("session name");
        let refusal = Refusal::NotAMember { group: gid() }.in_session(&session);
        let message = "Group 120363000000000001@g.us not found in session \"default\"";
        let want = error(404, "Not Found", "group_not_found", message);
        assert_eq!(body(refusal), want);
        let message = "invite code not found or revoked";
        let want = error(404, "Not Found", "invite_not_found", message);
        assert_eq!(body(Refusal::InviteNotFound), want);
    }

    #[test]
    fn a_new_groups_participant_given_by_an_unknown_lid_is_a_404_naming_the_field() {
        let id = ContactId::parse("123456789012345@lid").expect("lid");
        let message = "participants: 123456789012345@lid is not the lid of an account known here; give its phone number (@c.us)";
        let want = error(404, "Not Found", "lid_not_found", message);
        assert_eq!(body(Refusal::LidNotFound { id }), want);
    }

    #[test]
    fn joins_that_cannot_be_made_are_409_naming_the_account_and_the_group() {
        let (actor, group) = (actor(), gid());
        let cases = [
            (
                Refusal::AlreadyMember {
                    actor: actor.clone(),
                    group: group.clone(),
                },
                "already_member",
                "10009@c.us is already a member of 120363000000000001@g.us",
            ),
            (
                Refusal::GroupFull {
                    group: group.clone(),
                },
                "group_full",
                "group 120363000000000001@g.us is full",
            ),
            (
                Refusal::JoinRequestPending { actor, group },
                "join_request_pending",
                "10009@c.us already asked to join 120363000000000001@g.us",
            ),
        ];
        for (refusal, code, message) in cases {
            assert_eq!(body(refusal), error(409, "Conflict", code, message));
        }
    }

    #[test]
    fn community_refusals_are_403_naming_the_rule_and_an_unknown_community_a_404() {
        use crate::groups::refusal::CommunityAction;
        let (group, community) = (
            gid(),
            GroupId::parse("120363000000000002@g.us").expect("id"),
        );
        let cases = [
            (
                Refusal::NotCommunityAdmin {
                    action: CommunityAction::Link,
                },
                "not_community_admin",
                "only community admins can link groups".to_owned(),
            ),
            (
                Refusal::NotGroupAdmin {
                    group: group.clone(),
                },
                "not_group_admin",
                format!("linking needs admin in the linked group: not an admin of {group}"),
            ),
            (
                Refusal::InOtherCommunity {
                    group: group.clone(),
                    community: community.clone(),
                },
                "in_other_community",
                format!("a group is in at most one community: {group} is in {community}"),
            ),
            (
                Refusal::CommunityFull,
                "community_full",
                "a community holds at most 100 linked groups".to_owned(),
            ),
        ];
        for (refusal, code, message) in cases {
            assert_eq!(body(refusal), error(403, "Forbidden", code, &message));
        }
        let session = SessionName::parse("default").expect("session name");
        let refusal = Refusal::CommunityNotFound { id: group, session };
        let message = "Community 120363000000000001@g.us not found in session \"default\"";
        let want = error(404, "Not Found", "community_not_found", message);
        assert_eq!(body(refusal), want);
    }
}
