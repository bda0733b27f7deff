//! GroupInfo JSON already rendered, keyed by the stored bytes it was rendered from, so a read
//! of an unchanged group skips decoding and serialising (the read path's main cost). Every
//! member session stores the same bytes, so one entry serves them all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use crate::error::{ApiError, ApiResult};
use crate::groups::service::{decode, GroupService};
use crate::ids::{ContactId, GroupId};
use crate::sessions::Session;
use crate::store::StoredBytes;

const MAX_RENDERED: usize = 10_000;

/// A group's GroupInfo as JSON, for admins (with the invite URL) and for other members.
struct Rendered {
    stored: StoredBytes,
    admins: Vec<ContactId>,
    as_admin: Bytes,
    as_member: Bytes,
}

#[derive(Default)]
pub struct RenderCache {
    /// A std Mutex: held for a lookup or an insert only.
    entries: Mutex<HashMap<GroupId, Arc<Rendered>>>,
}

impl RenderCache {
    /// The group's GroupInfo JSON as `session`'s account sees it, or 404.
    pub fn info_json(
        &self,
        groups: &GroupService,
        session: &Session,
        id: &GroupId,
    ) -> ApiResult<Bytes> {
        let stored = groups.stored(session, id)?;
        let me = session.me_id();
        let hit = {
            let cache = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            cache.get(id).filter(|r| r.stored == stored).cloned()
        };
        let r = match hit {
            Some(r) => r,
            None => {
                let r = Arc::new(render(stored)?);
                let mut cache = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= MAX_RENDERED {
                    cache.clear();
                }
                cache.insert(id.clone(), r.clone());
                r
            }
        };
        Ok(if r.admins.contains(&me) {
            r.as_admin.clone()
        } else {
            r.as_member.clone()
        })
    }
}

fn render(stored: StoredBytes) -> ApiResult<Rendered> {
    let g = decode(&stored)?;
    // Only the invite URL depends on who looks: admins see it, others get null.
    let render = |as_admin: bool| -> ApiResult<Bytes> {
        let mut info = g.info(&g.owner, true);
        info.invite = as_admin.then(|| g.invite.url());
        Ok(serde_json::to_vec(&info)
            .map_err(ApiError::internal)?
            .into())
    };
    Ok(Rendered {
        admins: g
            .participants
            .iter()
            .filter(|m| m.role.is_admin())
            .map(|m| m.id.clone())
            .collect(),
        as_admin: render(true)?,
        as_member: render(false)?,
        stored,
    })
}
