//! Contract §5, lids: `/api/{session}/lids...` answers the accounts a session knows, each
//! account's lid is the same on every gateway and after a restart, and a participant given by
//! its lid is the member with its number in every participant operation.

mod common;

use common::life;

use axum::http::StatusCode;
use common::groups::{alpha, assert_400_naming, id_of, participants, BOB, CAROL, ME};
use serde_json::{json, Value};

/// The lids every gateway derives for ME, BOB and CAROL (pinned: they never change).
const ME_LID: &str = "540718988944767@lid";
const BOB_LID: &str = "370002135956940@lid";
const CAROL_LID: &str = "111137063062665@lid";
const DAVE: &str = "44444444444@c.us";
const DAVE_LID: &str = "104731786836851@lid";
const ERIN: &str = "55555555555@c.us";
const ERIN_LID: &str = "395552165618128@lid";
const NOBODY_LID: &str = "123456789012345@lid";

fn entry(lid: &str, pn: &str) -> Value {
    json!({"lid": lid, "pn": pn})
}

/// alpha (ME) with a group of ME, BOB and CAROL; answers the gateway and the group's id.
async fn alpha_with_team() -> (common::Gateway, String) {
    let gw = alpha().await;
    let id = id_of(&gw.group("alpha", "Team", &[BOB, CAROL]).await);
    (gw, id)
}

async fn post_ok(gw: &common::Gateway, path: &str, body: Value) -> Value {
    let (status, body) = gw.post(path, body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn the_session_lists_counts_and_finds_its_own_account_and_its_groups_participants() {
    let (gw, _) = alpha_with_team().await;
    let all = [
        entry(CAROL_LID, CAROL),
        entry(BOB_LID, BOB),
        entry(ME_LID, ME),
    ];
    let (status, list) = gw.get("/api/alpha/lids").await;
    assert_eq!((status, list), (StatusCode::OK, json!(all)), "in lid order");
    let (status, count) = gw.get("/api/alpha/lids/count").await;
    assert_eq!((status, count), (StatusCode::OK, json!({"count": 3})));
    let (_, page) = gw.get("/api/alpha/lids?limit=1&offset=1").await;
    assert_eq!(page, json!([all[1]]));
    let (_, past) = gw.get("/api/alpha/lids?offset=3").await;
    assert_eq!(past, json!([]));

    let bare = BOB_LID.trim_end_matches("@lid");
    for lid in [BOB_LID, bare] {
        let (status, found) = gw.get(&format!("/api/alpha/lids/{lid}")).await;
        assert_eq!(
            (status, found),
            (StatusCode::OK, entry(BOB_LID, BOB)),
            "{lid}"
        );
    }
    let digits = BOB.trim_end_matches("@c.us");
    let whatsapp_net = format!("{digits}@s.whatsapp.net");
    for pn in [BOB, digits, &whatsapp_net] {
        let (status, found) = gw.get(&format!("/api/alpha/lids/pn/{pn}")).await;
        assert_eq!(
            (status, found),
            (StatusCode::OK, entry(BOB_LID, BOB)),
            "{pn}"
        );
    }
}

#[tokio::test]
async fn a_session_in_no_group_knows_only_its_own_account() {
    let gw = alpha().await;
    let (_, list) = gw.get("/api/alpha/lids").await;
    assert_eq!(list, json!([entry(ME_LID, ME)]));
    let (_, count) = gw.get("/api/alpha/lids/count").await;
    assert_eq!(count, json!({"count": 1}));
}

#[tokio::test]
async fn an_account_the_session_does_not_know_is_a_404() {
    let (gw, _) = alpha_with_team().await;
    // DAVE is in a group of another session only: alpha does not know him.
    gw.session("zed", Some("66666666666@c.us"), None).await;
    gw.group("zed", "Elsewhere", &[DAVE]).await;
    let (_, dave) = gw.get(&format!("/api/zed/lids/pn/{DAVE}")).await;
    let dave_lid = dave["lid"].as_str().expect("zed knows dave");
    let paths = [
        format!("/api/alpha/lids/{NOBODY_LID}"),
        format!("/api/alpha/lids/{dave_lid}"),
        format!("/api/alpha/lids/pn/{DAVE}"),
        "/api/alpha/lids/pn/99999".to_owned(),
    ];
    for path in paths {
        let (status, body) = gw.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "lid_not_found", "{path}");
        assert_eq!(body["statusCode"], 404);
    }
}

#[tokio::test]
async fn bad_lids_numbers_and_pages_are_400s_naming_the_field() {
    let gw = alpha().await;
    let cases = [
        ("/api/alpha/lids/abc", "lid"),
        ("/api/alpha/lids/1234@lid", "lid"),
        ("/api/alpha/lids/11111111111@c.us", "lid"),
        ("/api/alpha/lids/pn/abc", "phoneNumber"),
        ("/api/alpha/lids/pn/12@c.us", "phoneNumber"),
        ("/api/alpha/lids/pn/540718988944767@lid", "phoneNumber"),
        ("/api/alpha/lids?limit=0", "limit"),
        ("/api/alpha/lids?limit=1001", "limit"),
        ("/api/alpha/lids?offset=-1", "offset"),
        ("/api/alpha/lids?offset=one", "offset"),
        ("/api/alpha/lids?offset=9223372036854775808", "offset"),
        ("/api/bad%20name/lids", "session"),
    ];
    for (path, field) in cases {
        let (status, body) = gw.get(path).await;
        assert_400_naming(status, &body, field);
    }
}

#[tokio::test]
async fn the_lids_routes_need_a_working_session() {
    let gw = alpha().await;
    gw.post("/api/sessions/alpha/stop", json!({})).await;
    for path in [
        "lids",
        "lids/count",
        "lids/540718988944767@lid",
        "lids/pn/11111111111",
    ] {
        let (status, body) = gw.get(&format!("/api/alpha/{path}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(body["code"], "session_not_working", "{path}");
        let (status, body) = gw.get(&format!("/api/nobody/{path}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(body["code"], "session_not_found", "{path}");
    }
}

#[tokio::test]
async fn participants_show_their_phone_number_everywhere_they_are_listed() {
    let (gw, id) = alpha_with_team().await;
    let want = json!([
        {"id": ME, "pn": ME, "role": "superadmin"},
        {"id": BOB, "pn": BOB, "role": "participant"},
        {"id": CAROL, "pn": CAROL, "role": "participant"},
    ]);
    let (_, g) = gw.get(&format!("/api/alpha/groups/{id}")).await;
    assert_eq!(g["participants"], want);
    let (_, list) = gw.get("/api/alpha/groups").await;
    assert_eq!(list[0]["participants"], want);
    for v in ["", "/v2"] {
        let (_, parts) = gw
            .get(&format!("/api/alpha/groups/{id}/participants{v}"))
            .await;
        assert_eq!(parts, want, "participants{v}");
    }
    let (_, code) = gw.get(&format!("/api/alpha/groups/{id}/invite-code")).await;
    let code = code.as_str().expect("code");
    let (_, info) = gw
        .get(&format!("/api/alpha/groups/join-info?code={code}"))
        .await;
    assert_eq!(info["participants"], want);
}

#[tokio::test]
async fn adding_the_lid_of_a_member_is_already_a_member_and_adds_no_one() {
    let (gw, id) = alpha_with_team().await;
    let add = format!("/api/alpha/groups/{id}/participants/add");
    let res = post_ok(&gw, &add, participants(&[BOB_LID, NOBODY_LID])).await;
    assert_eq!(
        res,
        json!([
            {"id": BOB_LID, "success": false, "error": {"code": "already_member", "message": format!("{BOB} is already a member")}},
            {"id": NOBODY_LID, "success": false, "error": {"code": "lid_not_found", "message": format!("{NOBODY_LID} is not the lid of an account known here; add it by its phone number (@c.us)")}},
        ])
    );
    let (_, g) = gw.get(&format!("/api/alpha/groups/{id}")).await;
    assert_eq!(g["size"], 3, "neither a second BOB nor an unknown lid");
    // The lid and the number of one account in one batch: one member.
    let res = post_ok(&gw, &add, participants(&[DAVE, DAVE_LID])).await;
    assert_eq!(res[0], json!({"id": DAVE, "success": true}));
    assert_eq!(res[1]["error"]["code"], "already_member");
}

#[tokio::test]
async fn remove_promote_and_demote_by_lid_act_on_the_member_with_that_number() {
    let (gw, id) = alpha_with_team().await;
    let at = |op: &str| format!("/api/alpha/groups/{id}{op}");
    let res = post_ok(&gw, &at("/admin/promote"), participants(&[BOB_LID])).await;
    assert_eq!(res, json!([{"id": BOB_LID, "success": true}]));
    let (_, g) = gw.get(&at("")).await;
    assert_eq!(
        g["participants"][1],
        json!({"id": BOB, "pn": BOB, "role": "admin"})
    );
    let res = post_ok(&gw, &at("/admin/demote"), participants(&[BOB_LID])).await;
    assert_eq!(res, json!([{"id": BOB_LID, "success": true}]));
    let res = post_ok(
        &gw,
        &at("/participants/remove"),
        participants(&[CAROL_LID, NOBODY_LID]),
    )
    .await;
    assert_eq!(res[0], json!({"id": CAROL_LID, "success": true}));
    assert_eq!(
        res[1]["error"]["code"], "not_a_member",
        "an unknown lid names no member"
    );
    let (_, g) = gw.get(&at("")).await;
    assert_eq!(
        g["participants"],
        json!([{"id": ME, "pn": ME, "role": "superadmin"}, {"id": BOB, "pn": BOB, "role": "participant"}])
    );
}

#[tokio::test]
async fn join_requests_made_approved_and_rejected_by_lid_are_the_requesters_with_numbers() {
    let gw = alpha().await;
    gw.session("bob", Some(BOB), None).await;
    // bob knows DAVE and ERIN from a group of his own; alpha knows them from their requests.
    gw.group("bob", "Friends", &[DAVE, ERIN]).await;
    let id = id_of(&gw.group("alpha", "Team", &[BOB]).await);
    let at = |op: &str| format!("/api/alpha/groups/{id}{op}");
    for (setting, body) in [
        ("member-add-mode", json!({"membersCanAddNewMember": true})),
        (
            "membership-approval",
            json!({"newMembersApprovalRequired": true}),
        ),
    ] {
        let (status, _) = gw
            .put(&at(&format!("/settings/security/{setting}")), body)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (dave_lid, erin_lid) = (DAVE_LID, ERIN_LID);
    let add = format!("/api/bob/groups/{id}/participants/add");
    let res = post_ok(&gw, &add, participants(&[dave_lid, erin_lid])).await;
    assert_eq!(
        res,
        json!([{"id": dave_lid, "success": true}, {"id": erin_lid, "success": true}])
    );
    let res = post_ok(&gw, &add, participants(&[DAVE])).await;
    assert_eq!(
        res[0]["error"]["code"], "join_request_pending",
        "the lid's request is the number's"
    );

    let (status, list) = gw.get(&at("/participants/join-requests")).await;
    assert_eq!(status, StatusCode::OK);
    let ts = list[0]["timestamp"].as_u64().expect("timestamp");
    let request = |pn: &str| json!({"requesterId": pn, "requesterPn": pn, "addedById": BOB, "parentGroupId": null, "requestMethod": "non_admin_add", "timestamp": ts});
    assert_eq!(list, json!([request(DAVE), request(ERIN)]));
    let created =
        common::local_network::payloads(&gw, "alpha", "group.v2.participants.join-request").await;
    assert_eq!(created.len(), 2);
    assert_eq!(
        (&created[0]["requesterId"], &created[0]["requesterPn"]),
        (&json!(DAVE), &json!(DAVE))
    );

    let res = post_ok(
        &gw,
        &at("/participants/join-requests/approve"),
        participants(&[dave_lid]),
    )
    .await;
    assert_eq!(res, json!([{"requesterId": dave_lid, "success": true}]));
    let res = post_ok(
        &gw,
        &at("/participants/join-requests/reject"),
        participants(&[erin_lid]),
    )
    .await;
    assert_eq!(res, json!([{"requesterId": erin_lid, "success": true}]));
    let rejected =
        common::local_network::payloads(&gw, "alpha", "group.v2.participants.join-request").await;
    assert_eq!(rejected[2]["action"], "rejected");
    assert_eq!(rejected[2]["requesterPn"], ERIN);
    let (_, g) = gw.get(&at("")).await;
    let ids: Vec<&str> = g["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [ME, BOB, DAVE],
        "DAVE joined by his number; ERIN's request is gone"
    );
    let (_, list) = gw.get(&at("/participants/join-requests")).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn adding_the_lid_of_another_sessions_account_makes_that_session_a_member() {
    let gw = alpha().await;
    gw.session("bob", Some(BOB), None).await;
    gw.session("carol", Some(CAROL), None).await;
    // Created with CAROL by her lid, then BOB added by his.
    let g = gw.group("alpha", "Team", &[CAROL_LID]).await;
    let id = id_of(&g);
    assert_eq!(
        g["participants"][1],
        json!({"id": CAROL, "pn": CAROL, "role": "participant"})
    );
    let res = post_ok(
        &gw,
        &format!("/api/alpha/groups/{id}/participants/add"),
        participants(&[BOB_LID]),
    )
    .await;
    assert_eq!(res, json!([{"id": BOB_LID, "success": true}]));
    for session in ["bob", "carol"] {
        let (status, seen) = gw.get(&format!("/api/{session}/groups/{id}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{session} is a member and sees the group"
        );
        assert_eq!(seen["size"], 3);
        let joined = common::local_network::payloads(&gw, session, "group.v2.join").await;
        assert_eq!(joined.len(), 1, "{session} was told it joined");
    }
    let (_, known) = gw.get("/api/bob/lids/count").await;
    assert_eq!(
        known,
        json!({"count": 3}),
        "bob knows the group's accounts now"
    );
}

#[tokio::test]
async fn a_group_is_not_created_with_a_lid_nobody_knows() {
    let gw = alpha().await;
    let (status, body) = gw
        .post(
            "/api/alpha/groups",
            json!({"name": "T", "participants": [{"id": BOB}, {"id": NOBODY_LID}]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "lid_not_found");
    assert!(
        common::groups::msg(&body).starts_with("participants:"),
        "{body}"
    );
    let (_, count) = gw.get("/api/alpha/groups/count").await;
    assert_eq!(count, json!({"count": 0}));
}

#[tokio::test]
async fn a_sessions_account_is_given_by_its_number_not_its_lid() {
    let gw = common::gateway().await;
    let config = json!({"local": {"me": {"id": ME_LID}}});
    let (status, body) = gw
        .post("/api/sessions", json!({"name": "alpha", "config": config}))
        .await;
    assert_400_naming(status, &body, "config.local.me.id");
}

#[test]
fn the_same_accounts_have_the_same_lids_after_a_restart_and_are_still_resolved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (dir, (before, id)) = life(dir, |gw| async move {
        gw.session("alpha", Some(ME), None).await;
        gw.group("alpha", "Friends", &[DAVE]).await;
        let id = id_of(&gw.group("alpha", "Team", &[BOB, CAROL]).await);
        let (_, list) = gw.get("/api/alpha/lids").await;
        (gw, (list, id))
    });
    let (_, ()) = life(dir, |gw| async move {
        let (status, list) = gw.get("/api/alpha/lids").await;
        assert_eq!((status, &list), (StatusCode::OK, &before));
        assert_eq!(list.as_array().map(Vec::len), Some(4));
        // DAVE is resolved from the other group after the restart too.
        let add = format!("/api/alpha/groups/{id}/participants/add");
        let res = post_ok(&gw, &add, participants(&[DAVE_LID, BOB_LID])).await;
        assert_eq!(res[0], json!({"id": DAVE_LID, "success": true}));
        assert_eq!(res[1]["error"]["code"], "already_member");
        let (_, g) = gw.get(&format!("/api/alpha/groups/{id}")).await;
        assert_eq!(
            g["participants"][3],
            json!({"id": DAVE, "pn": DAVE, "role": "participant"})
        );
        (gw, ())
    });
}
