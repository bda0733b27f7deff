//! A group's stored picture across its member sessions. The bytes live in each member's
//! `pictures` tree and the group record keeps only a `Picture::File` reference, so a change of
//! the group (a rename, an add) copies a few dozen bytes into its writes, its fan-out record and
//! the render cache instead of up to 683 KiB of base64. This plans what each member's tree gets
//! from a change and finds the bytes a member new to the group needs.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::model::{Group, Picture, PictureBytes};
use super::service::GroupService;
use crate::error::ApiResult;
use crate::ids::{ContactId, GroupId};
use crate::sessions::Session;
use crate::store::PictureWrite;

/// What a session's `pictures` tree needs from a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Keep,
    /// The bytes of the group's picture after the change.
    Set,
    Delete,
}

/// The plan for a session whose copy of the group had picture `before` and has `after` (`None`:
/// no picture, or the session does not hold the group then).
pub fn plan(before: Option<&Picture>, after: Option<&Picture>) -> Plan {
    match after {
        Some(a @ Picture::File { .. }) if before == Some(a) => Plan::Keep,
        Some(Picture::File { .. }) => Plan::Set,
        _ if matches!(before, Some(Picture::File { .. })) => Plan::Delete,
        _ => Plan::Keep,
    }
}

/// The plan for the session acting as `me`, from the group before and after a change.
pub fn plan_for(me: &ContactId, before: Option<&Group>, after: Option<&Group>) -> Plan {
    plan(held(before, me), held(after, me))
}

/// The picture of `me`'s copy of the group, if it holds one.
fn held<'g>(g: Option<&'g Group>, me: &ContactId) -> Option<&'g Picture> {
    g.filter(|g| g.is_member(me))
        .and_then(|g| g.picture.as_ref())
}

/// The write a plan makes, given the bytes found for `Set`.
pub fn write(plan: Plan, bytes: Option<&PictureBytes>, group: &str) -> Option<PictureWrite> {
    match (plan, bytes) {
        (Plan::Keep, _) => None,
        (Plan::Set, Some(b)) => Some(PictureWrite::Set(b.clone())),
        (Plan::Set, None) => {
            // Only if every holder lost them: the member answers 404 on picture/file, and the
            // group keeps working rather than refusing every later add.
            tracing::warn!(group = %group, "no member holds the group picture's bytes");
            None
        }
        (Plan::Delete, _) => Some(PictureWrite::Delete),
    }
}

/// Moves a picture that an older version kept inside the record out of it: `after` keeps a
/// `File` reference, and the decoded bytes are answered, for every member's tree. Base64 that
/// does not decode stays inline (served as before: the picture file answers 500 as it did).
pub fn move_inline(after: &mut Group) -> Option<PictureBytes> {
    let Some(Picture::Stored { mimetype, data_b64 }) = &after.picture else {
        return None;
    };
    match STANDARD.decode(data_b64.as_bytes()) {
        Ok(bytes) => {
            after.picture = Some(Picture::file(mimetype, &bytes));
            Some(bytes.into())
        }
        Err(e) => {
            tracing::warn!(group = %after.id, "an inline picture does not decode ({e}); it stays inline");
            None
        }
    }
}

/// What `.../picture/file` serves: the type and the bytes.
pub struct Served {
    pub mimetype: String,
    pub bytes: Vec<u8>,
}

impl GroupService {
    /// The bytes of `group`'s stored picture for members new to it: from `acting`'s store, else
    /// from any holder's (a session joining by invite holds nothing yet). Checked against the
    /// digest, so that no other picture is ever handed on.
    pub(super) fn picture_bytes(
        &self,
        acting: &Arc<Session>,
        group: &Group,
    ) -> ApiResult<Option<PictureBytes>> {
        let Some(Picture::File { digest, .. }) = &group.picture else {
            return Ok(None);
        };
        let holders = self.holders(&group.id);
        for s in std::iter::once(acting).chain(&holders) {
            if let Some(bytes) = s.store.picture(group.id.as_str())? {
                if &Picture::digest(&bytes) == digest {
                    return Ok(Some(Arc::from(&bytes[..])));
                }
            }
        }
        Ok(None)
    }

    /// The picture `session` serves for group `id`: `None` when the group has none stored (a
    /// URL, no picture, or bytes lost).
    pub fn served_picture(&self, session: &Session, id: &GroupId) -> ApiResult<Option<Served>> {
        let g = self.load(session, id)?;
        match g.picture {
            Some(Picture::File { mimetype, .. }) => {
                Ok(session.store.picture(id.as_str())?.map(|bytes| Served {
                    mimetype,
                    bytes: bytes.to_vec(),
                }))
            }
            Some(Picture::Stored { mimetype, data_b64 }) => {
                let bytes = STANDARD
                    .decode(data_b64.as_bytes())
                    .map_err(crate::error::ApiError::internal)?;
                Ok(Some(Served { mimetype, bytes }))
            }
            Some(Picture::Url(_)) | None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::rules::{self, Actor};
    use crate::ids::InviteCode;

    /// A group of one (its owner) with `picture`.
    fn group(picture: Picture) -> Group {
        let owner = ContactId::parse("11111111111@c.us").expect("id");
        let by = Actor { id: owner, now: 1 };
        let (mut g, _) = rules::create(
            GroupId::random(),
            InviteCode::random(),
            &by,
            "Team".into(),
            &[],
        )
        .expect("created");
        g.picture = Some(picture);
        g
    }

    fn file(digest: &str) -> Picture {
        Picture::File {
            mimetype: "image/png".into(),
            size: 3,
            digest: digest.into(),
        }
    }

    fn inline() -> Picture {
        Picture::Stored {
            mimetype: "image/png".into(),
            data_b64: STANDARD.encode(b"abc"),
        }
    }

    #[test]
    fn a_member_that_already_holds_the_same_picture_gets_no_bytes() {
        assert_eq!(plan(Some(&file("d1")), Some(&file("d1"))), Plan::Keep);
    }

    #[test]
    fn a_new_picture_and_a_member_new_to_the_group_get_the_bytes() {
        assert_eq!(plan(Some(&file("d1")), Some(&file("d2"))), Plan::Set);
        assert_eq!(plan(None, Some(&file("d1"))), Plan::Set);
        let url = Picture::Url("https://e.com/p.jpg".into());
        assert_eq!(plan(Some(&url), Some(&file("d1"))), Plan::Set);
    }

    #[test]
    fn a_picture_moved_out_of_an_old_record_is_written_for_the_member() {
        let mut g = group(inline());
        let before = g.clone();
        let bytes = move_inline(&mut g).expect("decodes");
        assert_eq!(&bytes[..], b"abc");
        assert_eq!(g.picture, Some(Picture::file("image/png", b"abc")));
        let me = &g.owner;
        assert_eq!(plan_for(me, Some(&before), Some(&g)), Plan::Set);
    }

    #[test]
    fn a_removed_or_replaced_by_url_picture_and_a_member_that_stops_holding_drop_the_bytes() {
        assert_eq!(plan(Some(&file("d1")), None), Plan::Delete);
        let url = Picture::Url("https://e.com/p.jpg".into());
        assert_eq!(plan(Some(&file("d1")), Some(&url)), Plan::Delete);
        let g = group(file("d1"));
        let owner = g.owner.clone();
        let mut left = g.clone();
        left.participants.retain(|m| m.id != owner);
        assert_eq!(plan_for(&owner, Some(&g), Some(&left)), Plan::Delete);
        assert_eq!(plan_for(&owner, Some(&g), None), Plan::Delete, "deleted");
    }

    #[test]
    fn pictures_the_gateway_does_not_keep_in_the_tree_write_nothing() {
        let url = Picture::Url("https://e.com/p.jpg".into());
        assert_eq!(plan(None, None), Plan::Keep);
        assert_eq!(plan(None, Some(&url)), Plan::Keep);
        assert_eq!(plan(Some(&inline()), Some(&inline())), Plan::Keep);
        assert_eq!(plan(Some(&inline()), None), Plan::Keep);
    }
}
