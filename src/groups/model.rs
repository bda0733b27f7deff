//! A group as the store keeps it, and the views the API and events show of it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{ContactId, GroupId, InviteCode};

/// At most this many participants, as WhatsApp.
pub const MAX_PARTICIPANTS: usize = 1024;
pub const MAX_SUBJECT_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Participant,
    Admin,
    Superadmin,
}

impl Role {
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Admin | Role::Superadmin)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: ContactId,
    pub role: Role,
    /// Unix seconds; with the member's position it says who stands longest.
    pub joined_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub requester: ContactId,
    pub added_by: Option<ContactId>,
    pub method: JoinMethod,
    pub timestamp: u64,
}

/// How a join request came about; stored, and shown in events and the API, as WAHA names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinMethod {
    /// `invite_link`: the requester followed the invite link while approval is required.
    InviteLink,
    /// `non_admin_add`: a member who is not an admin added the requester.
    NonAdminAdd,
}

impl JoinMethod {
    /// The name as it is stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JoinMethod::InviteLink => "invite_link",
            JoinMethod::NonAdminAdd => "non_admin_add",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Picture {
    /// An external URL, kept as given.
    Url(String),
    /// The base64 bytes inside the group record, as stores written before the `File` form hold
    /// them: still served; the group's next change moves them out (`picture::move_inline`).
    Stored { mimetype: String, data_b64: String },
    /// Bytes served by the gateway, kept in each member session's `pictures` tree under the
    /// group id, so that a change of the group copies only this reference, not the picture.
    File {
        mimetype: String,
        size: u64,
        /// Hex sha256 of the bytes: tells a new picture from the one a member already holds.
        digest: String,
    },
}

/// Picture bytes as every member's share of a change holds them: one copy, shared.
pub type PictureBytes = Arc<[u8]>;

/// A picture as a client sets it.
#[derive(Clone, PartialEq, Eq)]
pub enum NewPicture {
    Url(String),
    Bytes {
        mimetype: String,
        bytes: PictureBytes,
    },
}

impl NewPicture {
    /// What the group record keeps of it.
    pub fn reference(&self) -> Picture {
        match self {
            NewPicture::Url(u) => Picture::Url(u.clone()),
            NewPicture::Bytes { mimetype, bytes } => Picture::file(mimetype, bytes),
        }
    }
}

impl std::fmt::Debug for NewPicture {
    /// The bytes' size only: a debug line must not carry half a megabyte.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NewPicture::Url(u) => f.debug_tuple("Url").field(u).finish(),
            NewPicture::Bytes { mimetype, bytes } => f
                .debug_struct("Bytes")
                .field("mimetype", mimetype)
                .field("size", &bytes.len())
                .finish(),
        }
    }
}

impl Picture {
    /// The reference the group record keeps for `bytes`.
    pub fn file(mimetype: &str, bytes: &[u8]) -> Picture {
        Picture::File {
            mimetype: mimetype.to_owned(),
            size: bytes.len() as u64,
            digest: Self::digest(bytes),
        }
    }

    /// The hex sha256 a `File` reference keeps of its bytes.
    pub fn digest(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub info_admin_only: bool,
    pub messages_admin_only: bool,
    pub members_can_add: bool,
    pub approval_required: bool,
    /// Whether members (not only admins) may share the message history with new members
    /// (WAHA 2026.9). Stores written before it existed hold none: off, WhatsApp's default.
    #[serde(default)]
    pub members_can_share_history: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub subject: String,
    pub description: String,
    pub owner: ContactId,
    /// Unix seconds.
    pub creation: u64,
    /// In the order they joined: the first non-admin is the longest-standing.
    pub participants: Vec<Member>,
    pub settings: Settings,
    pub invite: InviteCode,
    pub picture: Option<Picture>,
    pub join_requests: Vec<JoinRequest>,
    /// Grows by one per change; fan-out to other sessions is idempotent by it.
    pub version: u64,
    /// The community this group is linked to. Left out of the record when none, so that
    /// records of unlinked groups keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<GroupId>,
    /// The community this group is the announcement group of: its participants follow the
    /// community's, and nobody joins, leaves or is added to it on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announces: Option<GroupId>,
    /// Set when this record is a community (a parent group): what it links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<Community>,
}

/// At most this many groups linked to one community, as WhatsApp.
pub const MAX_LINKED_GROUPS: usize = 100;

/// What a community record holds beyond a group's fields. Its participants are derived: its
/// own members (`own`: its creator, those it was created with, its admins) and the members of
/// every linked group, kept here per link so that no other group has to be read to know them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Community {
    pub announcement: GroupId,
    pub own: Vec<ContactId>,
    pub links: Vec<Link>,
}

/// A group linked to a community, as the community keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: GroupId,
    pub subject: String,
    pub members: Vec<ContactId>,
}

impl Group {
    /// The picture's URL as the session `session` serves it: an external URL as given, a stored
    /// picture at the session's `.../picture/file`.
    pub fn picture_url(&self, session: &str) -> Option<String> {
        self.picture.as_ref().map(|p| match p {
            Picture::Url(u) => u.clone(),
            Picture::Stored { .. } | Picture::File { .. } => {
                format!("/api/{session}/groups/{}/picture/file", self.id)
            }
        })
    }
    pub fn member(&self, id: &ContactId) -> Option<&Member> {
        self.participants.iter().find(|m| &m.id == id)
    }
    pub fn is_member(&self, id: &ContactId) -> bool {
        self.member(id).is_some()
    }
    pub fn role_of(&self, id: &ContactId) -> Option<Role> {
        self.member(id).map(|m| m.role)
    }
}

/// A participant as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupParticipant {
    pub id: String,
    /// The phone-number id; left out for a member known only by its lid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pn: Option<String>,
    pub role: Role,
}

/// A group as the API shows it (WAHA's GroupInfo, normalised).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    pub id: String,
    pub subject: String,
    pub description: String,
    /// The invite URL; only shown to admins, else left out (WAHA types it as a string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
    pub members_can_add_new_member: bool,
    pub members_can_send_messages: bool,
    pub new_members_approval_required: bool,
    pub info_admin_only: bool,
    pub owner: String,
    /// Unix seconds.
    pub creation: u64,
    pub size: usize,
    /// Left out with `exclude=participants`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<GroupParticipant>>,
    /// The community the group is linked to (or announces for); left out when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_group_id: Option<String>,
    /// Shown (true) only on a community.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_community: bool,
    /// Shown (true) only on a community's announcement group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_community_announce: bool,
}

impl Group {
    pub fn participants_view(&self) -> Vec<GroupParticipant> {
        self.participants
            .iter()
            .map(|m| GroupParticipant {
                id: m.id.to_string(),
                pn: m.id.pn().map(str::to_owned),
                role: m.role,
            })
            .collect()
    }

    /// The group as `viewer` sees it: the invite URL only for admins.
    pub fn info(&self, viewer: &ContactId, with_participants: bool) -> GroupInfo {
        let is_admin = self.role_of(viewer).is_some_and(Role::is_admin);
        GroupInfo {
            id: self.id.to_string(),
            subject: self.subject.clone(),
            description: self.description.clone(),
            invite: is_admin.then(|| self.invite.url()),
            members_can_add_new_member: self.settings.members_can_add,
            members_can_send_messages: !self.settings.messages_admin_only,
            new_members_approval_required: self.settings.approval_required,
            info_admin_only: self.settings.info_admin_only,
            owner: self.owner.to_string(),
            creation: self.creation,
            size: self.participants.len(),
            participants: with_participants.then(|| self.participants_view()),
            parent_group_id: self
                .parent
                .as_ref()
                .or(self.announces.as_ref())
                .map(|p| p.to_string()),
            is_community: self.community.is_some(),
            is_community_announce: self.announces.is_some(),
        }
    }
}

/// A group as a community shows it: its id and subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRef {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// A community as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommunityInfo {
    pub id: String,
    pub subject: String,
    pub description: String,
    pub owner: String,
    /// Unix seconds.
    pub creation: u64,
    pub announcement_group: GroupRef,
    /// The linked groups, in the order they were linked.
    pub groups: Vec<GroupRef>,
    /// Its participants: its own and those of its linked groups.
    pub size: usize,
}

impl Group {
    /// The community as the API shows it; `None` when this group is not one.
    pub fn community_info(&self) -> Option<CommunityInfo> {
        let k = self.community.as_ref()?;
        Some(CommunityInfo {
            id: self.id.to_string(),
            subject: self.subject.clone(),
            description: self.description.clone(),
            owner: self.owner.to_string(),
            creation: self.creation,
            announcement_group: GroupRef {
                id: k.announcement.to_string(),
                subject: None,
            },
            groups: k
                .links
                .iter()
                .map(|l| GroupRef {
                    id: l.id.to_string(),
                    subject: Some(l.subject.clone()),
                })
                .collect(),
            size: self.participants.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_request_stored_by_an_older_version_decodes_and_encodes_the_same() {
        for method in ["invite_link", "non_admin_add"] {
            let stored = format!(
                r#"{{"requester":"10009@c.us","added_by":null,"method":"{method}","timestamp":7}}"#
            );
            let r: JoinRequest = serde_json::from_str(&stored).expect("decodes");
            assert_eq!(r.method.as_str(), method);
            assert_eq!(serde_json::to_string(&r).expect("encodes"), stored);
        }
    }

    #[test]
    fn settings_stored_before_share_history_existed_decode_with_it_off() {
        let stored = r#"{"info_admin_only":true,"messages_admin_only":false,"members_can_add":true,"approval_required":false}"#;
        let s: Settings = serde_json::from_str(stored).expect("decodes");
        assert!(s.info_admin_only && s.members_can_add);
        assert!(!s.members_can_share_history);
    }
}
