//! Stored group pictures (contract §2) on the local network: the bytes live in each member
//! session's `pictures` tree, not in the group record, so a change of the group does not copy
//! them; every member serves them, members that join get them, members that go drop them.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::{gateway, gateway_in, wait_for, Gateway};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use wagate::ids::SessionName;
use wagate::sessions::Session;
use wagate::store::{Commit, FaultKind, Faults, GroupWrite, Work};

const A: &str = "11111111111@c.us";
const B: &str = "22222222222@c.us";
const C: &str = "33333333333@c.us";

/// A group record without its picture is a few hundred bytes; this is far below any picture.
const SMALL_RECORD: usize = 4 * 1024;

/// 400 KiB of varied bytes (a real picture does not compress to nothing either).
fn big_picture() -> Vec<u8> {
    (0..400 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// Sessions a, b, c acting as accounts A, B, C, and a group of a's with `others`.
async fn sessions_and_group(others: &[&str]) -> (Gateway, String) {
    let gw = gateway().await;
    for (name, me) in [("a", A), ("b", B), ("c", C)] {
        gw.session(name, Some(me), None).await;
    }
    let gid = gw.group("a", "Team", others).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    (gw, gid)
}

fn session(gw: &Gateway, name: &str) -> Arc<Session> {
    let name = SessionName::parse(name).expect("session name");
    gw.state.registry.get(&name).expect("session exists")
}

/// The group's JSON as `name`'s store holds it.
fn stored_group(gw: &Gateway, name: &str, gid: &str) -> Option<Vec<u8>> {
    let stored = session(gw, name).store.group(gid).expect("store reads");
    stored.map(|v| v.to_vec())
}

/// The picture bytes `name`'s store holds for the group.
fn stored_picture(gw: &Gateway, name: &str, gid: &str) -> Option<Vec<u8>> {
    let stored = session(gw, name).store.picture(gid).expect("store reads");
    stored.map(|v| v.to_vec())
}

/// `GET /api/{name}/groups/{gid}/picture/file`: status, content type, body.
async fn picture_file(
    gw: &Gateway,
    name: &str,
    gid: &str,
) -> (StatusCode, Option<String>, Vec<u8>) {
    let req = Request::builder()
        .uri(format!("/api/{name}/groups/{gid}/picture/file"))
        .body(Body::empty())
        .expect("request");
    let resp = gw.router.clone().oneshot(req).await.expect("answer");
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, ct, bytes.to_vec())
}

async fn assert_serves(gw: &Gateway, name: &str, gid: &str, pic: &[u8], mimetype: &str) {
    let (status, ct, bytes) = picture_file(gw, name, gid).await;
    assert_eq!(status, StatusCode::OK, "{name} serves the picture");
    assert_eq!(ct.as_deref(), Some(mimetype), "{name}'s content type");
    assert!(
        bytes == pic,
        "{name} serves {} bytes, not the picture's {}",
        bytes.len(),
        pic.len()
    );
}

async fn set_picture(gw: &Gateway, name: &str, gid: &str, pic: &[u8], mimetype: &str) {
    let (status, body) = gw
        .put(
            &format!("/api/{name}/groups/{gid}/picture"),
            json!({"file": {"data": STANDARD.encode(pic), "mimetype": mimetype}}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
}

async fn ok(gw: &Gateway, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = gw.call(method, path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{method} {path}: {answer}");
    answer
}

async fn rename(gw: &Gateway, name: &str, gid: &str, subject: &str) {
    let path = format!("/api/{name}/groups/{gid}/subject");
    ok(gw, "PUT", &path, json!({ "subject": subject })).await;
}

async fn subject_of(gw: &Gateway, name: &str, gid: &str) -> String {
    let (status, body) = gw.get(&format!("/api/{name}/groups/{gid}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["subject"].as_str().expect("subject").to_owned()
}

#[tokio::test]
async fn a_stored_picture_stays_out_of_the_group_record_and_reaches_a_member_added_after_a_rename()
{
    let (gw, gid) = sessions_and_group(&[]).await;
    let pic = big_picture();
    set_picture(&gw, "a", &gid, &pic, "image/jpeg").await;
    rename(&gw, "a", &gid, "Renamed").await;
    let add = format!("/api/a/groups/{gid}/participants/add");
    let res = ok(&gw, "POST", &add, json!({"participants": [{"id": B}]})).await;
    assert_eq!(res, json!([{"id": B, "success": true}]));

    for name in ["a", "b"] {
        assert_serves(&gw, name, &gid, &pic, "image/jpeg").await;
        let record = stored_group(&gw, name, &gid).expect("the member holds the group");
        assert!(
            record.len() < SMALL_RECORD,
            "{name}'s group record is {} bytes with a {} byte picture",
            record.len(),
            pic.len()
        );
        assert!(
            stored_picture(&gw, name, &gid).is_some_and(|p| p == pic),
            "{name} keeps the raw bytes in its pictures tree"
        );
        let (_, url) = gw.get(&format!("/api/{name}/groups/{gid}/picture")).await;
        assert_eq!(
            url,
            json!({"url": format!("/api/{name}/groups/{gid}/picture/file")})
        );
    }
    assert_eq!(subject_of(&gw, "b", &gid).await, "Renamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_of_a_group_with_a_picture_fans_out_a_record_without_the_picture() {
    let faults = Faults::default();
    let dir = tempfile::tempdir().expect("dir");
    let b_store = dir.path().join("sessions").join("b");
    let gw = gateway_in(dir, |c| c.faults = faults.clone()).await;
    gw.session("a", Some(A), None).await;
    gw.session("b", Some(B), None).await;
    let gid = gw.group("a", "Team", &[B]).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let pic = big_picture();
    set_picture(&gw, "a", &gid, &pic, "image/png").await;

    // While b's store fails, the rename's fan-out record stays in a's store, where it is measured.
    faults.fail_flushes_under(Some(FaultKind::Io), Some(&b_store));
    rename(&gw, "a", &gid, "Renamed").await;
    let records = session(&gw, "a").store.fanouts().expect("fan-out records");
    assert_eq!(records.len(), 1, "b's share is still pending");
    assert!(
        records[0].1.len() < SMALL_RECORD,
        "the rename's fan-out record is {} bytes",
        records[0].1.len()
    );

    faults.fail_flushes(None);
    wait_for(10, "b's copy to catch up", || async {
        subject_of(&gw, "b", &gid).await == "Renamed"
    })
    .await;
    assert_serves(&gw, "b", &gid, &pic, "image/png").await;
}

#[tokio::test]
async fn removing_the_picture_answers_404_on_picture_file_for_every_member_and_drops_its_bytes() {
    let (gw, gid) = sessions_and_group(&[B]).await;
    let pic = big_picture();
    set_picture(&gw, "b", &gid, &pic, "image/png").await;
    assert_serves(&gw, "a", &gid, &pic, "image/png").await;
    assert_serves(&gw, "b", &gid, &pic, "image/png").await;

    let (status, body) = gw
        .call("DELETE", &format!("/api/a/groups/{gid}/picture"), None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    for name in ["a", "b"] {
        let (status, _, body) = picture_file(&gw, name, &gid).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}");
        let body: Value = serde_json::from_slice(&body).expect("an error body");
        assert_eq!(body["code"], "picture_not_found", "{name}: {body}");
        assert_eq!(
            stored_picture(&gw, name, &gid),
            None,
            "{name} dropped the bytes"
        );
        let (_, url) = gw.get(&format!("/api/{name}/groups/{gid}/picture")).await;
        assert_eq!(url, json!({"url": null}));
    }
}

#[tokio::test]
async fn members_that_leave_or_are_removed_and_a_deleted_group_leave_no_picture_bytes_behind() {
    let (gw, gid) = sessions_and_group(&[B, C]).await;
    let pic = big_picture();
    set_picture(&gw, "a", &gid, &pic, "image/jpeg").await;
    for name in ["a", "b", "c"] {
        assert!(stored_picture(&gw, name, &gid).is_some(), "{name} has it");
    }
    ok(
        &gw,
        "POST",
        &format!("/api/b/groups/{gid}/leave"),
        json!({}),
    )
    .await;
    assert_eq!(stored_picture(&gw, "b", &gid), None, "b left");
    let remove = format!("/api/a/groups/{gid}/participants/remove");
    ok(&gw, "POST", &remove, json!({"participants": [{"id": C}]})).await;
    assert_eq!(stored_picture(&gw, "c", &gid), None, "c was removed");
    assert_serves(&gw, "a", &gid, &pic, "image/jpeg").await;
    let (status, body) = gw
        .call("DELETE", &format!("/api/a/groups/{gid}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(stored_picture(&gw, "a", &gid), None, "the group is gone");
}

#[tokio::test]
async fn sessions_that_join_by_invite_or_are_approved_get_the_picture_from_a_holder() {
    let (gw, gid) = sessions_and_group(&[]).await;
    let pic = big_picture();
    set_picture(&gw, "a", &gid, &pic, "image/png").await;
    let code = gw.get(&format!("/api/a/groups/{gid}/invite-code")).await.1;
    let joined = ok(&gw, "POST", "/api/b/groups/join", json!({ "code": code })).await;
    assert_eq!(joined, json!({ "id": gid }));
    assert_serves(&gw, "b", &gid, &pic, "image/png").await;

    let approval = format!("/api/a/groups/{gid}/settings/security/membership-approval");
    ok(
        &gw,
        "PUT",
        &approval,
        json!({"newMembersApprovalRequired": true}),
    )
    .await;
    ok(&gw, "POST", "/api/c/groups/join", json!({ "code": code })).await;
    assert_eq!(
        stored_picture(&gw, "c", &gid),
        None,
        "a request holds nothing"
    );
    let approve = format!("/api/a/groups/{gid}/participants/join-requests/approve");
    let res = ok(&gw, "POST", &approve, json!({"participants": [{"id": C}]})).await;
    assert_eq!(res, json!([{"requesterId": C, "success": true}]));
    assert_serves(&gw, "c", &gid, &pic, "image/png").await;
    assert!(stored_group(&gw, "c", &gid).is_some_and(|r| r.len() < SMALL_RECORD));
}

/// Rewrites `name`'s copy of the group as the version before this one wrote a picture: its
/// base64 inside the group record, the store's `pictures` tree untouched.
fn write_inline_picture(gw: &Gateway, name: &str, gid: &str, pic: &[u8], mimetype: &str) {
    let record = stored_group(gw, name, gid).expect("held");
    let mut g: Value = serde_json::from_slice(&record).expect("group JSON");
    g["picture"] = json!({"Stored": {"mimetype": mimetype, "data_b64": STANDARD.encode(pic)}});
    let version = g["version"].as_u64().expect("version") + 1;
    g["version"] = json!(version);
    let write = GroupWrite {
        group_id: gid.to_owned(),
        version,
        group: Some(g.to_string()),
        invite_del: None,
        invite_put: None,
        events: Vec::new(),
        picture: None,
    };
    let work = Work::Group {
        write,
        fanout: None,
    };
    let commit = Commit::new(work, &[]);
    session(gw, name)
        .store
        .commit_many(&[commit])
        .expect("written");
}

#[tokio::test]
async fn a_picture_an_older_version_kept_in_the_group_record_is_served_and_moved_out_by_the_next_change(
) {
    let (gw, gid) = sessions_and_group(&[B]).await;
    let pic = big_picture();
    for name in ["a", "b"] {
        write_inline_picture(&gw, name, &gid, &pic, "image/png");
    }
    for name in ["a", "b"] {
        assert_serves(&gw, name, &gid, &pic, "image/png").await;
        let (_, url) = gw.get(&format!("/api/{name}/groups/{gid}/picture")).await;
        assert_eq!(
            url,
            json!({"url": format!("/api/{name}/groups/{gid}/picture/file")})
        );
    }

    rename(&gw, "b", &gid, "Renamed").await;
    for name in ["a", "b"] {
        assert_serves(&gw, name, &gid, &pic, "image/png").await;
        let record = stored_group(&gw, name, &gid).expect("held");
        assert!(
            record.len() < SMALL_RECORD,
            "{name}'s record is {} bytes after the change",
            record.len()
        );
        let g: Value = serde_json::from_slice(&record).expect("group JSON");
        assert_eq!(g["picture"]["File"]["size"], pic.len(), "{name}: {g}");
        assert!(stored_picture(&gw, name, &gid).is_some_and(|p| p == pic));
    }
}

#[tokio::test]
async fn a_group_with_a_large_picture_costs_only_its_record_in_the_render_cache() {
    let (gw, gid) = sessions_and_group(&[B]).await;
    set_picture(&gw, "a", &gid, &big_picture(), "image/jpeg").await;
    for name in ["a", "b"] {
        let (status, info) = gw.get(&format!("/api/{name}/groups/{gid}")).await;
        assert_eq!(status, StatusCode::OK, "{info}");
    }
    let cost = gw.state.rendered.bytes();
    assert!(cost > 0, "the group's rendering is kept");
    assert!(cost < SMALL_RECORD, "the render cache holds {cost} bytes");
}
