//! Contract §2 through the real router, a group's info: create, get, list and count, subject
//! and description, invite codes and joining, leave and delete; each success path and each
//! refusal.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};

use common::groups::{alpha, assert_400_naming, id_of, msg, participants, BOB, CAROL, ME};

fn is_group_id(id: &str) -> bool {
    id.strip_suffix("@g.us").is_some_and(|d| {
        d.len() == 18 && d.starts_with("120363") && d.bytes().all(|b| b.is_ascii_digit())
    })
}

fn is_invite_code(c: &str) -> bool {
    c.len() == 22 && c.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[tokio::test]
async fn create_answers_201_with_the_exact_group_info() {
    let gw = alpha().await;
    let g = gw
        .group("alpha", "  Team  ", &[BOB, "4433333333333@s.whatsapp.net"])
        .await;
    let id = id_of(&g);
    assert!(is_group_id(&id), "{id}");
    let invite = g["invite"].as_str().unwrap_or_default();
    let code = invite
        .strip_prefix("https://chat.whatsapp.com/")
        .expect("an invite URL");
    assert!(is_invite_code(code), "{invite}");
    let creation = g["creation"].as_u64().expect("creation");
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    assert!(creation <= now_s && creation + 60 > now_s, "unix seconds");
    assert_eq!(
        g,
        json!({
            "id": id, "subject": "Team", "description": "", "invite": invite,
            "membersCanAddNewMember": false, "membersCanSendMessages": true,
            "newMembersApprovalRequired": false, "infoAdminOnly": false,
            "owner": ME, "creation": creation, "size": 3,
            "participants": [
                {"id": ME, "pn": ME, "role": "superadmin"},
                {"id": BOB, "pn": BOB, "role": "participant"},
                {"id": "4433333333333@c.us", "pn": "4433333333333@c.us", "role": "participant"},
            ]
        })
    );
    let keys: Vec<&String> = g.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "subject",
            "description",
            "invite",
            "membersCanAddNewMember",
            "membersCanSendMessages",
            "newMembersApprovalRequired",
            "infoAdminOnly",
            "owner",
            "creation",
            "size",
            "participants"
        ]
    );
    let (status, got) = gw.get(&format!("/api/alpha/groups/{id}")).await;
    assert_eq!((status, got), (StatusCode::OK, g));
}

#[tokio::test]
async fn create_refuses_bad_input_naming_the_field() {
    let gw = alpha().await;
    let cases = [
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (
            json!({"name": "T", "participants": [{"id": BOB}, {"id": "bob"}]}),
            "participants[1].id",
        ),
        (
            json!({"name": "T", "participants": [{"id": "1234@c.us"}]}),
            "participants[0].id",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = gw.post("/api/alpha/groups", body).await;
        assert_400_naming(status, &answer, field);
    }
    let (status, answer) = gw
        .post("/api/alpha/groups", json!({"participants": []}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(msg(&answer).contains("name"), "{answer}");
    let (status, _) = gw
        .post("/api/alpha/groups", json!({"name": "y".repeat(100)}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "100 characters fit");
    let (_, count) = gw.get("/api/alpha/groups/count").await;
    assert_eq!(count, json!({"count": 1}));
}

#[tokio::test]
async fn list_sorts_pages_and_excludes_participants() {
    let gw = alpha().await;
    let mut made = Vec::new();
    for subject in ["Charlie", "alpha", "Bravo"] {
        made.push(id_of(&gw.group("alpha", subject, &[BOB]).await));
    }
    let subjects = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|g| g["subject"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let ids =
        |v: &Value| -> Vec<String> { v.as_array().expect("array").iter().map(id_of).collect() };
    let mut by_id = made.clone();
    by_id.sort();

    let (status, all) = gw.get("/api/alpha/groups").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&all), by_id, "default order is by id");
    assert!(all[0]["participants"].is_array());
    let (_, asc) = gw.get("/api/alpha/groups?sortBy=subject").await;
    assert_eq!(subjects(&asc), ["Bravo", "Charlie", "alpha"]);
    let (_, desc) = gw
        .get("/api/alpha/groups?sortBy=subject&sortOrder=desc")
        .await;
    assert_eq!(subjects(&desc), ["alpha", "Charlie", "Bravo"]);
    let (_, page) = gw
        .get("/api/alpha/groups?sortBy=subject&limit=1&offset=1")
        .await;
    assert_eq!(subjects(&page), ["Charlie"]);
    let (_, past) = gw.get("/api/alpha/groups?offset=5").await;
    assert_eq!(past, json!([]));
    let (_, by_id_desc) = gw.get("/api/alpha/groups?sortBy=id&sortOrder=desc").await;
    by_id.reverse();
    assert_eq!(ids(&by_id_desc), by_id);
    let (_, lean) = gw.get("/api/alpha/groups?exclude=participants").await;
    for g in lean.as_array().expect("array") {
        assert!(g.get("participants").is_none(), "{g}");
        assert_eq!(g["size"], 2);
    }
    for (query, field) in [
        ("sortBy=name", "sortBy"),
        ("sortOrder=up", "sortOrder"),
        ("limit=-1", "limit"),
        ("offset=x", "offset"),
        ("exclude=subject", "exclude"),
    ] {
        let (status, body) = gw.get(&format!("/api/alpha/groups?{query}")).await;
        assert_400_naming(status, &body, field);
    }
    let (status, count) = gw.get("/api/alpha/groups/count").await;
    assert_eq!((status, count), (StatusCode::OK, json!({"count": 3})));
}

#[tokio::test]
async fn an_unknown_group_is_404_and_a_bad_id_is_400() {
    let gw = alpha().await;
    let unknown = "120363999999999999@g.us";
    let want = json!({"statusCode": 404, "error": "Not Found",
        "message": format!("Group {unknown} not found in session \"alpha\""), "code": "group_not_found"});
    for (method, path, body) in [
        ("GET", format!("/api/alpha/groups/{unknown}"), None),
        ("DELETE", format!("/api/alpha/groups/{unknown}"), None),
        ("POST", format!("/api/alpha/groups/{unknown}/leave"), None),
        (
            "PUT",
            format!("/api/alpha/groups/{unknown}/subject"),
            Some(json!({"subject": "X"})),
        ),
        (
            "GET",
            format!("/api/alpha/groups/{unknown}/participants"),
            None,
        ),
        (
            "POST",
            format!("/api/alpha/groups/{unknown}/participants/add"),
            Some(participants(&[BOB])),
        ),
        (
            "GET",
            format!("/api/alpha/groups/{unknown}/invite-code"),
            None,
        ),
        (
            "GET",
            format!("/api/alpha/groups/{unknown}/settings/security/info-admin-only"),
            None,
        ),
    ] {
        let (status, answer) = gw.call(method, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(answer, want, "{method} {path}");
    }
    for bad in [
        "123@g.us",
        "120363000000000001@c.us",
        "12036300000000000x@g.us",
    ] {
        let (status, body) = gw.get(&format!("/api/alpha/groups/{bad}")).await;
        assert_400_naming(status, &body, "id");
    }
}

#[tokio::test]
async fn subject_is_1_to_100_characters_after_trimming() {
    let gw = alpha().await;
    let id = id_of(&gw.group("alpha", "Team", &[BOB]).await);
    let path = format!("/api/alpha/groups/{id}/subject");
    let (status, body) = gw.put(&path, json!({"subject": "  Renamed "})).await;
    assert_eq!((status, body), (StatusCode::OK, json!(true)));
    let (_, g) = gw.get(&format!("/api/alpha/groups/{id}")).await;
    assert_eq!(g["subject"], "Renamed");
    let (status, _) = gw.put(&path, json!({"subject": "é".repeat(100)})).await;
    assert_eq!(status, StatusCode::OK, "100 characters, not bytes");
    for bad in [
        json!({"subject": " \t "}),
        json!({"subject": "x".repeat(101)}),
    ] {
        let (status, body) = gw.put(&path, bad).await;
        assert_400_naming(status, &body, "subject");
    }
    let (status, body) = gw.put(&path, json!({"title": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(msg(&body).contains("subject"), "{body}");
}

#[tokio::test]
async fn description_is_up_to_2048_characters_and_empty_clears_it() {
    let gw = alpha().await;
    let id = id_of(&gw.group("alpha", "Team", &[]).await);
    let path = format!("/api/alpha/groups/{id}/description");
    let (status, body) = gw
        .put(&path, json!({"description": "d".repeat(2048)}))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!(true)));
    let (_, g) = gw.get(&format!("/api/alpha/groups/{id}")).await;
    assert_eq!(g["description"].as_str().map(str::len), Some(2048));
    let (status, body) = gw
        .put(&path, json!({"description": "d".repeat(2049)}))
        .await;
    assert_400_naming(status, &body, "description");
    let (status, _) = gw.put(&path, json!({"description": ""})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, g) = gw.get(&format!("/api/alpha/groups/{id}")).await;
    assert_eq!(g["description"], "");
}

#[tokio::test]
async fn with_a_render_cache_of_zero_reads_answer_the_same_and_nothing_is_kept() {
    let gw = common::gateway_in(tempfile::tempdir().expect("dir"), |c| c.render_cache_mb = 0).await;
    gw.session("alpha", Some(ME), None).await;
    let created = gw.group("alpha", "Team", &[BOB]).await;
    for _ in 0..2 {
        let (status, g) = gw
            .get(&format!("/api/alpha/groups/{}", id_of(&created)))
            .await;
        assert_eq!((status, &g), (StatusCode::OK, &created));
    }
    assert_eq!(gw.state.rendered.bytes(), 0);
}

#[tokio::test]
async fn invite_code_is_read_by_admins_and_revoke_makes_the_old_one_stop_working() {
    let gw = alpha().await;
    let g = gw.group("alpha", "Team", &[BOB]).await;
    let id = id_of(&g);
    let (status, old) = gw.get(&format!("/api/alpha/groups/{id}/invite-code")).await;
    assert_eq!(status, StatusCode::OK);
    let old = old.as_str().expect("a JSON string").to_owned();
    assert!(is_invite_code(&old));
    assert_eq!(g["invite"], format!("https://chat.whatsapp.com/{old}"));
    let (status, info) = gw
        .get(&format!("/api/alpha/groups/join-info?code={old}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        info,
        json!({"id": id, "subject": "Team", "description": "", "size": 2,
               "participants": [{"id": ME, "pn": ME, "role": "superadmin"}, {"id": BOB, "pn": BOB, "role": "participant"}]})
    );
    let (status, new) = gw
        .post(
            &format!("/api/alpha/groups/{id}/invite-code/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let new = new.as_str().expect("a JSON string").to_owned();
    assert!(is_invite_code(&new) && new != old);
    let (_, current) = gw.get(&format!("/api/alpha/groups/{id}/invite-code")).await;
    assert_eq!(current, json!(new));
    let (status, body) = gw
        .get(&format!("/api/alpha/groups/join-info?code={old}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "invite_not_found");
    let url = format!("https://chat.whatsapp.com/{new}");
    let (status, info) = gw
        .get(&format!("/api/alpha/groups/join-info?code={url}"))
        .await;
    assert_eq!(status, StatusCode::OK, "the URL works as well as the code");
    assert_eq!(info["id"], json!(id));
}

#[tokio::test]
async fn join_info_join_count_and_refresh_take_priority_over_the_id_capture() {
    let gw = alpha().await;
    let (status, body) = gw.get("/api/alpha/groups/count").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"count": 0})));
    let (status, body) = gw.post("/api/alpha/groups/refresh", json!({})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, body) = gw.get("/api/alpha/groups/join-info").await;
    assert_eq!(
        (status, body["message"].clone()),
        (StatusCode::BAD_REQUEST, json!("code: required"))
    );
    let (status, body) = gw.get("/api/alpha/groups/join-info?code=short").await;
    assert_400_naming(status, &body, "code");
    let (status, body) = gw
        .get("/api/alpha/groups/join-info?code=AAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "invite_not_found");
    let (status, body) = gw
        .post("/api/alpha/groups/join", json!({"code": "x"}))
        .await;
    assert_400_naming(status, &body, "code");
    let (status, body) = gw
        .post(
            "/api/alpha/groups/join",
            json!({"code": "AAAAAAAAAAAAAAAAAAAAAA"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("invite_not_found"))
    );
}

#[tokio::test]
async fn leave_drops_the_group_for_me_and_delete_removes_it() {
    let gw = alpha().await;
    let left = id_of(&gw.group("alpha", "Left", &[BOB]).await);
    let gone = id_of(&gw.group("alpha", "Gone", &[BOB]).await);
    let (status, body) = gw
        .post(&format!("/api/alpha/groups/{left}/leave"), json!({}))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, body) = gw.get(&format!("/api/alpha/groups/{left}")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("group_not_found"))
    );
    let (status, body) = gw
        .call("DELETE", &format!("/api/alpha/groups/{gone}"), None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    let (status, _) = gw.get(&format!("/api/alpha/groups/{gone}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = gw.get("/api/alpha/groups").await;
    assert_eq!(list, json!([]));
    let (_, count) = gw.get("/api/alpha/groups/count").await;
    assert_eq!(count, json!({"count": 0}));
}

#[tokio::test]
async fn a_url_encoded_group_id_in_the_path_works_as_the_plain_one() {
    let gw = alpha().await;
    let id = id_of(&gw.group("alpha", "Team", &[BOB]).await);
    let encoded = id.replace('@', "%40");
    let (status, g) = gw.get(&format!("/api/alpha/groups/{encoded}")).await;
    assert_eq!((status, g["id"].clone()), (StatusCode::OK, json!(id)));
    let (status, body) = gw
        .post(
            &format!("/api/alpha/groups/{encoded}/participants/add"),
            participants(&[CAROL]),
        )
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!([{"id": CAROL, "success": true}]))
    );
}
