//! Subject, description, picture, settings and invite code.

use super::*;

#[test]
fn any_member_may_change_subject_description_and_picture_while_info_is_open() {
    let g = group();
    let out = ok(&g, 10002, Op::SetSubject("Renamed".into()));
    assert_eq!(
        out.group.as_ref().map(|g| g.subject.as_str()),
        Some("Renamed")
    );
    let mut fields = Map::new();
    fields.insert("subject".into(), "Renamed".into());
    assert_eq!(
        out.changes,
        vec![Change::Updated {
            fields,
            operation: "subject"
        }]
    );
    let g = after(&g, 10003, Op::SetDescription("About".into()));
    assert_eq!(g.description, "About");
    let url = "https://example.com/p.jpg".to_owned();
    let out = ok(
        &g,
        10004,
        Op::SetPicture(Some(NewPicture::Url(url.clone()))),
    );
    assert_eq!(out.changes, vec![Change::PictureChanged]);
    let g = out.group.expect("group");
    assert_eq!(g.picture, Some(Picture::Url(url)));
}

#[test]
fn a_picture_set_from_bytes_leaves_only_its_type_size_and_digest_in_the_group() {
    let bytes: std::sync::Arc<[u8]> = vec![7u8; 300_000].into();
    let pic = NewPicture::Bytes {
        mimetype: "image/png".into(),
        bytes,
    };
    let g = after(&group(), 10002, Op::SetPicture(Some(pic)));
    let Some(Picture::File {
        mimetype,
        size,
        digest,
    }) = &g.picture
    else {
        panic!("a file reference, got {:?}", g.picture);
    };
    assert_eq!((mimetype.as_str(), *size), ("image/png", 300_000));
    assert_eq!(digest.len(), 64, "hex sha256: {digest}");
    let json = serde_json::to_string(&g).expect("json");
    assert!(json.len() < 2048, "the record is {} bytes", json.len());
}

#[test]
fn non_admin_cannot_change_subject_description_or_picture_when_info_is_admin_only() {
    let g = with_setting(&group(), Setting::InfoAdminOnly, true);
    for op in [
        Op::SetSubject("X".into()),
        Op::SetDescription("X".into()),
        Op::SetPicture(None),
    ] {
        let refused = refusal(&g, 10002, op);
        assert_eq!(refused, Refusal::InfoAdminOnly);
        let message = refused.to_string();
        assert!(
            message.contains("only admins can change group info"),
            "{message}"
        );
    }
    let g = with_admin(&g, 10002);
    assert_eq!(after(&g, 10002, Op::SetSubject("X".into())).subject, "X");
}

#[test]
fn only_admins_change_settings_and_the_update_names_the_group_info_field() {
    let g = group();
    for s in [
        Setting::InfoAdminOnly,
        Setting::MessagesAdminOnly,
        Setting::MembersCanAdd,
        Setting::ApprovalRequired,
        Setting::MembersCanShareHistory,
    ] {
        let refused = refusal(&g, 10002, Op::SetSetting(s, true));
        let action = AdminAction::ChangeSettings;
        assert_eq!(refused, Refusal::NotAdmin { action });
        let message = refused.to_string();
        assert!(message.contains("only admins can change group settings"));
        let out = ok(&g, 10001, Op::SetSetting(s, true));
        assert!(s.get(&out.group.expect("group").settings));
        let Change::Updated { fields, operation } = &out.changes[0] else {
            panic!("an update: {:?}", out.changes);
        };
        assert_eq!(*operation, "settings");
        let (field, shown) = fields.iter().next().expect("one field");
        assert_eq!(fields.len(), 1);
        let (want_field, want) = match s {
            Setting::InfoAdminOnly => ("infoAdminOnly", true),
            // messages admin only means members can NOT send: GroupInfo shows the inverse.
            Setting::MessagesAdminOnly => ("membersCanSendMessages", false),
            Setting::MembersCanAdd => ("membersCanAddNewMember", true),
            Setting::ApprovalRequired => ("newMembersApprovalRequired", true),
            // Not in GroupInfo (as WAHA): named as its own body names it.
            Setting::MembersCanShareHistory => ("membersCanShareHistory", true),
        };
        assert_eq!((field.as_str(), shown), (want_field, &Value::Bool(want)));
    }
}

#[test]
fn only_admins_revoke_the_invite_code() {
    let g = group();
    let action = AdminAction::RevokeInvite;
    let refused = refusal(&g, 10002, Op::RevokeInvite(code('B')));
    assert_eq!(refused, Refusal::NotAdmin { action });
    let out = ok(&g, 10001, Op::RevokeInvite(code('B')));
    assert_eq!(out.group.expect("group").invite, code('B'));
    let mut fields = Map::new();
    fields.insert("invite".into(), code('B').url().into());
    assert_eq!(
        out.changes,
        vec![Change::Updated {
            fields,
            operation: "revoke_invite"
        }]
    );
}

#[test]
fn sharing_history_is_off_until_an_admin_turns_it_on() {
    let g = group();
    assert!(!Setting::MembersCanShareHistory.get(&g.settings));
    let on = after(
        &g,
        10001,
        Op::SetSetting(Setting::MembersCanShareHistory, true),
    );
    assert!(Setting::MembersCanShareHistory.get(&on.settings));
    // Only the setting changed: the other three keep their values.
    let mut expected = g.settings.clone();
    expected.members_can_share_history = true;
    assert_eq!(on.settings, expected);
}
