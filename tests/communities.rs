//! Communities through the API (contract §6): every endpoint's success, and each refusal with
//! its status and code.

mod common;

use axum::http::StatusCode;
use serde_json::json;

use common::communities::{assert_403, community, id_of, link, members, roles, unlink};
use common::groups::assert_400_naming;
use common::local_network::{group_of, three_sessions, A, B, C};

#[tokio::test]
async fn a_new_community_has_its_creator_as_superadmin_and_an_announcement_group_where_only_admins_send(
) {
    let gw = three_sessions().await;
    let (s, info) = gw
        .post(
            "/api/a/communities",
            json!({"name": "  Street ", "description": "Our street", "participants": [{"id": B}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{info}");
    let cid = id_of(&info);
    let keys: Vec<&str> = common::keys(&info);
    let want = [
        "id",
        "subject",
        "description",
        "owner",
        "creation",
        "announcementGroup",
        "groups",
        "size",
    ];
    assert_eq!(keys, want);
    assert_eq!(info["subject"], "Street");
    assert_eq!(info["description"], "Our street");
    assert_eq!(info["owner"], A);
    assert_eq!(info["groups"], json!([]));
    assert_eq!(info["size"], 2);
    assert_eq!(
        members(&gw, "a", &cid).await,
        roles(&[(A, "superadmin"), (B, "participant")])
    );
    let aid = info["announcementGroup"]["id"]
        .as_str()
        .expect("announcement id")
        .to_owned();
    for session in ["a", "b"] {
        let (s, ann) = group_of(&gw, session, &aid).await;
        assert_eq!(s, StatusCode::OK, "{session}: {ann}");
        assert_eq!(ann["membersCanSendMessages"], false);
        assert_eq!(ann["parentGroupId"], cid.as_str());
        assert_eq!(ann["isCommunityAnnounce"], true);
        assert_eq!(ann["size"], 2);
    }
    let (s, got) = gw.get(&format!("/api/b/communities/{cid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, info, "a member session sees the same community");
    let (s, list) = gw.get("/api/b/communities").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list, json!([info]));
    let (s, list) = gw.get("/api/c/communities").await;
    assert_eq!((s, list), (StatusCode::OK, json!([])));
    let b_joins = common::local_network::payloads(&gw, "b", "group.v2.join").await;
    assert_eq!(b_joins.len(), 1, "b joins the announcement group");
    assert_eq!(b_joins[0]["group"]["id"], aid.as_str());
}

#[tokio::test]
async fn subject_and_description_are_for_community_admins_only() {
    let gw = three_sessions().await;
    let info = community(&gw, "a", "Street", &[B]).await;
    let (cid, ann) = (id_of(&info), id_of(&info["announcementGroup"]));
    let path = |what: &str, s: &str| format!("/api/{s}/communities/{cid}/{what}");
    let (s, body) = gw
        .put(&path("subject", "a"), json!({"subject": "Road"}))
        .await;
    assert_eq!((s, body), (StatusCode::OK, json!(true)));
    let (s, body) = gw
        .put(
            &path("description", "a"),
            json!({"description": "All of it"}),
        )
        .await;
    assert_eq!((s, body), (StatusCode::OK, json!(true)));
    let (_, info) = gw.get(&format!("/api/b/communities/{cid}")).await;
    assert_eq!(
        (info["subject"].clone(), info["description"].clone()),
        (json!("Road"), json!("All of it"))
    );
    let (s, body) = gw
        .put(&path("subject", "b"), json!({"subject": "Mine"}))
        .await;
    assert_403(
        s,
        &body,
        "not_community_admin",
        "only community admins can rename the community",
    );
    let (s, body) = gw
        .put(&path("description", "b"), json!({"description": "x"}))
        .await;
    assert_403(
        s,
        &body,
        "not_community_admin",
        "only community admins can change the community's description",
    );
    let (s, body) = gw
        .put(&path("subject", "a"), json!({"subject": "  "}))
        .await;
    assert_400_naming(s, &body, "subject");
    let updates = common::local_network::payloads(&gw, "b", "group.v2.update").await;
    let groups: Vec<_> = updates.iter().map(|u| u["group"].clone()).collect();
    assert_eq!(
        groups,
        [
            json!({"id": cid, "subject": "Road"}),
            json!({"id": ann, "subject": "Road"}),
            json!({"id": cid, "description": "All of it"}),
        ],
        "the announcement group carries the community's name; the description is the community's"
    );
    let (s, announcement) = group_of(&gw, "b", &ann).await;
    assert_eq!(s, StatusCode::OK, "{announcement}");
    assert_eq!(announcement["subject"], "Road");
    assert_eq!(announcement["description"], "");
}

#[tokio::test]
async fn linking_needs_a_community_admin_who_is_admin_of_the_group_and_shows_the_parent() {
    let gw = three_sessions().await;
    let cid = id_of(&community(&gw, "a", "Street", &[B]).await);
    let g1 = id_of(&gw.group("a", "Party", &[C]).await);
    let g2 = id_of(&gw.group("b", "B's", &[A]).await);
    let (s, body) = link(&gw, "b", &cid, &[&g2]).await;
    assert_403(
        s,
        &body,
        "not_community_admin",
        "only community admins can link groups",
    );
    let (s, body) = link(&gw, "a", &cid, &[&g1, &g2]).await;
    assert_403(
        s,
        &body,
        "not_group_admin",
        "linking needs admin in the linked group",
    );
    let (s, results) = link(&gw, "a", &cid, &[&g1, &g1, "120363999999999999@g.us"]).await;
    assert_eq!(s, StatusCode::OK, "{results}");
    assert_eq!(results[0], json!({"id": g1, "success": true}));
    assert_eq!(results[1]["error"]["code"], "already_linked");
    assert_eq!(results[2]["error"]["code"], "group_not_found");
    let (_, info) = gw.get(&format!("/api/a/communities/{cid}")).await;
    assert_eq!(info["groups"], json!([{"id": g1, "subject": "Party"}]));
    assert_eq!(info["size"], 3, "C came with the group");
    let (_, g) = group_of(&gw, "c", &g1).await;
    assert_eq!(g["parentGroupId"], cid.as_str());
    let (_, g) = group_of(&gw, "a", &g2).await;
    assert!(g.get("parentGroupId").is_none(), "{g}");
    let update = common::local_network::payloads(&gw, "c", "group.v2.update").await;
    assert_eq!(
        update.last().expect("an update")["group"],
        json!({"id": g1, "parentGroupId": cid})
    );
    // A group is in at most one community.
    let other = id_of(&community(&gw, "a", "Other", &[]).await);
    let (s, body) = link(&gw, "a", &other, &[&g1]).await;
    assert_403(
        s,
        &body,
        "in_other_community",
        "a group is in at most one community",
    );
    let (s, body) = link(&gw, "a", &other, &[&cid]).await;
    assert_403(
        s,
        &body,
        "community_managed",
        "a community cannot be linked",
    );
}

#[tokio::test]
async fn a_community_holds_at_most_100_linked_groups() {
    let gw = three_sessions().await;
    let cid = id_of(&community(&gw, "a", "Big", &[]).await);
    let mut ids = Vec::new();
    for n in 0..101 {
        ids.push(id_of(&gw.group("a", &format!("G{n}"), &[]).await));
    }
    let first: Vec<&str> = ids[..100].iter().map(String::as_str).collect();
    let (s, results) = link(&gw, "a", &cid, &first).await;
    assert_eq!(s, StatusCode::OK, "{results}");
    let (s, body) = link(&gw, "a", &cid, &[&ids[100]]).await;
    assert_403(s, &body, "community_full", "at most 100 linked groups");
    let (_, info) = gw.get(&format!("/api/a/communities/{cid}")).await;
    assert_eq!(info["groups"].as_array().map(Vec::len), Some(100));
}

#[tokio::test]
async fn unlinking_leaves_the_group_alive_without_a_parent_and_its_members_leave_the_community() {
    let gw = three_sessions().await;
    let info = community(&gw, "a", "Street", &[]).await;
    let (cid, aid) = (id_of(&info), id_of(&info["announcementGroup"]));
    let g1 = id_of(&gw.group("a", "Party", &[C]).await);
    link(&gw, "a", &cid, &[&g1]).await;
    let (s, body) = unlink(&gw, "c", &cid, &[&g1]).await;
    assert_403(
        s,
        &body,
        "not_community_admin",
        "only community admins can unlink groups",
    );
    let (s, results) = unlink(&gw, "a", &cid, &[&g1, &g1]).await;
    assert_eq!(s, StatusCode::OK, "{results}");
    assert_eq!(results[0], json!({"id": g1, "success": true}));
    assert_eq!(results[1]["error"]["code"], "not_linked");
    let (s, g) = group_of(&gw, "c", &g1).await;
    assert_eq!(s, StatusCode::OK);
    assert!(g.get("parentGroupId").is_none(), "{g}");
    let update = common::local_network::payloads(&gw, "c", "group.v2.update").await;
    assert_eq!(
        update.last().expect("an update")["group"],
        json!({"id": g1, "parentGroupId": null})
    );
    assert_eq!(members(&gw, "a", &cid).await, roles(&[(A, "superadmin")]));
    let (s, _) = group_of(&gw, "c", &aid).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "C left the announcement group");
    let (s, body) = gw.get(&format!("/api/c/communities/{cid}")).await;
    assert_eq!(
        (s, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("community_not_found"))
    );
}

#[tokio::test]
async fn deleting_a_community_unlinks_its_groups_and_deletes_its_announcement_group() {
    let gw = three_sessions().await;
    let info = community(&gw, "a", "Street", &[B]).await;
    let (cid, aid) = (id_of(&info), id_of(&info["announcementGroup"]));
    let g1 = id_of(&gw.group("a", "Party", &[C]).await);
    link(&gw, "a", &cid, &[&g1]).await;
    let (s, body) = gw
        .call("DELETE", &format!("/api/b/communities/{cid}"), None)
        .await;
    assert_403(
        s,
        &body,
        "not_community_admin",
        "only community admins can delete the community",
    );
    let (s, body) = gw
        .call("DELETE", &format!("/api/a/communities/{cid}"), None)
        .await;
    assert_eq!((s, body), (StatusCode::OK, json!({"success": true})));
    for session in ["a", "b", "c"] {
        let (s, _) = gw.get(&format!("/api/{session}/communities/{cid}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{session}");
        let (s, _) = group_of(&gw, session, &aid).await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "{session}: the announcement group is gone"
        );
    }
    let (s, g) = group_of(&gw, "c", &g1).await;
    assert_eq!(s, StatusCode::OK, "the linked group lives on");
    assert!(g.get("parentGroupId").is_none(), "{g}");
    let leaves = common::local_network::payloads(&gw, "b", "group.v2.leave").await;
    assert_eq!(leaves.len(), 1);
    assert_eq!(leaves[0]["group"]["id"], aid.as_str());
}

#[tokio::test]
async fn leaving_a_community_leaves_its_linked_groups_too() {
    let gw = three_sessions().await;
    let cid = id_of(&community(&gw, "a", "Street", &[B]).await);
    let g1 = id_of(&gw.group("a", "Party", &[B, C]).await);
    let g2 = id_of(&gw.group("a", "Other", &[C]).await);
    link(&gw, "a", &cid, &[&g1, &g2]).await;
    let (s, body) = gw
        .post(&format!("/api/b/communities/{cid}/leave"), json!({}))
        .await;
    assert_eq!((s, body), (StatusCode::OK, json!({"success": true})));
    let (s, _) = group_of(&gw, "b", &g1).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "b left the linked group");
    let (_, g) = group_of(&gw, "a", &g1).await;
    assert_eq!(g["size"], 2);
    let want = roles(&[(A, "superadmin"), (C, "participant")]);
    assert_eq!(members(&gw, "a", &cid).await, want);
    let (s, body) = gw
        .post(&format!("/api/b/communities/{cid}/leave"), json!({}))
        .await;
    assert_eq!(
        (s, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("community_not_found"))
    );
}

#[tokio::test]
async fn a_community_and_its_announcement_group_refuse_membership_changes_as_groups() {
    let gw = three_sessions().await;
    let info = community(&gw, "a", "Street", &[B]).await;
    let (cid, aid) = (id_of(&info), id_of(&info["announcementGroup"]));
    for gid in [&cid, &aid] {
        let (s, body) = gw
            .post(
                &format!("/api/a/groups/{gid}/participants/add"),
                json!({"participants": [{"id": C}]}),
            )
            .await;
        assert_403(
            s,
            &body,
            "community_managed",
            "its participants follow the community",
        );
        let (s, body) = gw
            .post(&format!("/api/b/groups/{gid}/leave"), json!({}))
            .await;
        assert_403(s, &body, "community_managed", "belongs to a community");
    }
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_unknown_ids_a_404() {
    let gw = three_sessions().await;
    let (s, body) = gw.post("/api/a/communities", json!({"name": ""})).await;
    assert_400_naming(s, &body, "name");
    let (s, body) = gw
        .post(
            "/api/a/communities",
            json!({"name": "X", "participants": [{"id": "nope"}]}),
        )
        .await;
    assert_400_naming(s, &body, "participants[0].id");
    let long = "d".repeat(2049);
    let (s, body) = gw
        .post(
            "/api/a/communities",
            json!({"name": "X", "description": long}),
        )
        .await;
    assert_400_naming(s, &body, "description");
    let cid = id_of(&community(&gw, "a", "Street", &[]).await);
    let (s, body) = link(&gw, "a", &cid, &["bad"]).await;
    assert_400_naming(s, &body, "groups[0].id");
    let (s, body) = gw
        .post(
            &format!("/api/a/communities/{cid}/groups/link"),
            json!({"groups": []}),
        )
        .await;
    assert_400_naming(s, &body, "groups");
    let (s, body) = gw.get("/api/a/communities/bad").await;
    assert_400_naming(s, &body, "id");
    let g = id_of(&gw.group("a", "Plain", &[]).await);
    for path in [
        format!("/api/a/communities/{g}"),
        "/api/a/communities/120363999999999999@g.us".into(),
    ] {
        let (s, body) = gw.get(&path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["code"], "community_not_found");
    }
    let (s, body) = gw
        .put(
            &format!("/api/a/communities/{g}/subject"),
            json!({"subject": "X"}),
        )
        .await;
    assert_eq!(
        (s, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("community_not_found"))
    );
}
