//! The group's info and settings: subject, description and picture (any member, unless
//! `infoAdminOnly`), the settings and the invite code (admins only).

use serde_json::{Map, Value};

use super::{is_admin, next, require_admin, Actor, Change, Outcome};
use crate::groups::model::{Group, NewPicture, Settings};
use crate::groups::refusal::{AdminAction, Refusal};
use crate::ids::InviteCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    InfoAdminOnly,
    MessagesAdminOnly,
    MembersCanAdd,
    ApprovalRequired,
    /// Members may share the message history with new members (not in GroupInfo, as WAHA).
    MembersCanShareHistory,
}

impl Setting {
    fn field(self) -> &'static str {
        match self {
            Setting::InfoAdminOnly => "infoAdminOnly",
            Setting::MessagesAdminOnly => "membersCanSendMessages",
            Setting::MembersCanAdd => "membersCanAddNewMember",
            Setting::ApprovalRequired => "newMembersApprovalRequired",
            Setting::MembersCanShareHistory => "membersCanShareHistory",
        }
    }
    pub fn get(self, s: &Settings) -> bool {
        match self {
            Setting::InfoAdminOnly => s.info_admin_only,
            Setting::MessagesAdminOnly => s.messages_admin_only,
            Setting::MembersCanAdd => s.members_can_add,
            Setting::ApprovalRequired => s.approval_required,
            Setting::MembersCanShareHistory => s.members_can_share_history,
        }
    }
    fn set(self, s: &mut Settings, v: bool) {
        match self {
            Setting::InfoAdminOnly => s.info_admin_only = v,
            Setting::MessagesAdminOnly => s.messages_admin_only = v,
            Setting::MembersCanAdd => s.members_can_add = v,
            Setting::ApprovalRequired => s.approval_required = v,
            Setting::MembersCanShareHistory => s.members_can_share_history = v,
        }
    }
    /// The value as its field shows it (`membersCanSendMessages` is the inverse).
    fn shown(self, v: bool) -> bool {
        if self == Setting::MessagesAdminOnly {
            !v
        } else {
            v
        }
    }
}

/// Any member may change the info, unless `infoAdminOnly` keeps it to admins.
fn require_info_right(g: &Group, by: &Actor) -> Result<(), Refusal> {
    if g.settings.info_admin_only && !is_admin(g, &by.id) {
        Err(Refusal::InfoAdminOnly)
    } else {
        Ok(())
    }
}

/// The update of one field (named as GroupInfo names it, or as the setting's own body does).
fn updated(field: &str, value: Value, operation: &'static str) -> Change {
    let mut fields = Map::new();
    fields.insert(field.to_owned(), value);
    Change::Updated { fields, operation }
}

pub fn set_subject(group: &Group, by: &Actor, subject: String) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    require_info_right(&g, by)?;
    g.subject = subject.clone();
    Ok(Outcome::of(
        g,
        vec![updated("subject", subject.into(), "subject")],
    ))
}

pub fn set_description(group: &Group, by: &Actor, description: String) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    require_info_right(&g, by)?;
    g.description = description.clone();
    let change = updated("description", description.into(), "description");
    Ok(Outcome::of(g, vec![change]))
}

/// Sets the picture, or removes it (`None`). The group keeps only a reference to bytes.
pub fn set_picture(
    group: &Group,
    by: &Actor,
    picture: Option<NewPicture>,
) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    require_info_right(&g, by)?;
    g.picture = picture.as_ref().map(NewPicture::reference);
    Ok(Outcome::of(g, vec![Change::PictureChanged]))
}

pub fn set_setting(
    group: &Group,
    by: &Actor,
    setting: Setting,
    on: bool,
) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    require_admin(&g, by, AdminAction::ChangeSettings)?;
    setting.set(&mut g.settings, on);
    let change = updated(setting.field(), setting.shown(on).into(), "settings");
    Ok(Outcome::of(g, vec![change]))
}

/// Replaces the invite code by `code`: the old one stops leading to the group.
pub fn revoke_invite(group: &Group, by: &Actor, code: InviteCode) -> Result<Outcome, Refusal> {
    let mut g = next(group, by)?;
    require_admin(&g, by, AdminAction::RevokeInvite)?;
    g.invite = code;
    let change = updated("invite", g.invite.url().into(), "revoke_invite");
    Ok(Outcome::of(g, vec![change]))
}
