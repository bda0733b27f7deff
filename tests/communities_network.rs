//! Communities across the sessions of the local network (contract §6): each member session sees
//! the community and its groups with its own role and gets its own events, all of it persisted;
//! and a link's community and group change land together or not at all.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};
use wagate::store::{FaultKind, Faults};

use common::communities::{assert_403, community, id_of, link, members, roles, unlink};
use common::local_network::{group_of, payloads, A, B, C};
use common::Gateway;

/// The ids the scenario made: the community, its announcement group, two linked groups.
struct Ids {
    community: String,
    announcement: String,
    party: String,
    garden: String,
}

/// A gateway on `dir` with sessions a, b, c acting as A, B, C.
async fn three_in(dir: tempfile::TempDir) -> Gateway {
    let gw = common::gateway_in(dir, |_| {}).await;
    gw.session("a", Some(A), None).await;
    gw.session("b", Some(B), None).await;
    gw.session("c", Some(C), None).await;
    gw
}

/// Drops the gateway and opens its data dir again.
async fn restart(gw: Gateway) -> Gateway {
    reopen(gw, Faults::default()).await
}

/// The gateway dropped and opened again on its dir. A store that had a failed flush may still
/// be held for a moment by the committer's recovery (it retries every 200 ms): wait, at most
/// 5 s, until sled's lock on its files is free.
async fn reopen(gw: Gateway, faults: Faults) -> Gateway {
    let Gateway { dir, state, router } = gw;
    drop(router);
    drop(state);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut config = wagate::Config::for_dir(dir.path());
        config.faults = faults.clone();
        match wagate::open(&config).await {
            Ok((state, _)) => {
                let router = wagate::app(state.clone());
                return Gateway { dir, state, router };
            }
            Err(e) if e.to_string().contains("could not acquire lock") => {
                assert!(tokio::time::Instant::now() < deadline, "still locked: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("gateway opens: {e}"),
        }
    }
}

#[tokio::test]
async fn three_sessions_build_a_community_join_by_invite_unlink_and_leave_and_it_all_survives_a_restart(
) {
    let gw = three_in(tempfile::tempdir().expect("temp dir")).await;
    let info = community(&gw, "a", "Street", &[B]).await;
    let ids = Ids {
        community: id_of(&info),
        announcement: id_of(&info["announcementGroup"]),
        party: id_of(&gw.group("a", "Party", &[B]).await),
        garden: id_of(&gw.group("a", "Garden", &[B]).await),
    };
    let cid = ids.community.as_str();
    let (s, results) = link(&gw, "a", cid, &[&ids.party, &ids.garden]).await;
    assert_eq!(s, StatusCode::OK, "{results}");

    // C joins the party by invite: it is in the community and its announcement group now.
    let (_, code) = gw
        .get(&format!("/api/a/groups/{}/invite-code", ids.party))
        .await;
    let (s, body) = gw.post("/api/c/groups/join", json!({"code": code})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let want = roles(&[(A, "superadmin"), (B, "participant"), (C, "participant")]);
    for session in ["a", "b", "c"] {
        assert_eq!(members(&gw, session, cid).await, want, "{session}");
    }
    let (s, ann) = group_of(&gw, "c", &ids.announcement).await;
    assert_eq!(s, StatusCode::OK, "{ann}");
    assert_eq!(ann["size"], 3);
    let joins = payloads(&gw, "c", "group.v2.join").await;
    let joined: Vec<&Value> = joins.iter().map(|p| &p["group"]["id"]).collect();
    assert_eq!(joined, [&json!(ids.party), &json!(ids.announcement)]);
    let to_a = payloads(&gw, "a", "group.v2.participants").await;
    let ann_join = to_a
        .iter()
        .find(|p| p["group"]["id"] == ids.announcement.as_str());
    let ann_join = ann_join.expect("a hears C join the announcement group");
    assert_eq!(ann_join["type"], "join");
    assert_eq!(
        ann_join["participants"],
        json!([{"id": C, "pn": C, "role": "participant"}])
    );

    // B is no community admin: it cannot link its own group.
    let mine = id_of(&gw.group("b", "Mine", &[]).await);
    let (s, body) = link(&gw, "b", cid, &[&mine]).await;
    assert_403(
        s,
        &body,
        "not_community_admin",
        "only community admins can link groups",
    );

    // A unlinks the garden: its members hear that it has no parent any more.
    let (s, results) = unlink(&gw, "a", cid, &[&ids.garden]).await;
    assert_eq!(s, StatusCode::OK, "{results}");
    let updates = payloads(&gw, "b", "group.v2.update").await;
    let last = updates.last().expect("b hears the unlink");
    assert_eq!(
        last["group"],
        json!({"id": ids.garden, "parentGroupId": null})
    );
    assert_eq!(last["by"], A);

    // B leaves the community, and with it the party and the announcement group.
    let (s, body) = gw
        .post(&format!("/api/b/communities/{cid}/leave"), json!({}))
        .await;
    assert_eq!((s, body), (StatusCode::OK, json!({"success": true})));

    assert_scenario_end(&gw, &ids).await;
    let logs = event_logs(&gw).await;
    let gw = restart(gw).await;
    assert_scenario_end(&gw, &ids).await;
    assert_eq!(event_logs(&gw).await, logs, "every event log is as it was");
}

/// Every session's event log.
async fn event_logs(gw: &Gateway) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for s in ["a", "b", "c"] {
        out.push(gw.events(s).await);
    }
    out
}

/// What each session holds once B left the community.
async fn assert_scenario_end(gw: &Gateway, ids: &Ids) {
    let cid = ids.community.as_str();
    let want = roles(&[(A, "superadmin"), (C, "participant")]);
    for session in ["a", "c"] {
        assert_eq!(members(gw, session, cid).await, want, "{session}");
        let (s, info) = gw.get(&format!("/api/{session}/communities/{cid}")).await;
        assert_eq!(s, StatusCode::OK, "{info}");
        assert_eq!(
            info["groups"],
            json!([{"id": ids.party, "subject": "Party"}])
        );
        assert_eq!(info["size"], 2);
        let (_, party) = group_of(gw, session, &ids.party).await;
        assert_eq!(party["parentGroupId"], cid, "{session}");
        let (s, ann) = group_of(gw, session, &ids.announcement).await;
        assert_eq!(
            (s, ann["size"].clone()),
            (StatusCode::OK, json!(2)),
            "{session}"
        );
    }
    let (_, c_list) = gw.get("/api/c/communities").await;
    assert_eq!(c_list.as_array().map(Vec::len), Some(1));
    for gid in [cid, ids.announcement.as_str(), ids.party.as_str()] {
        let (s, _) = group_of(gw, "b", gid).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "b is gone from {gid}");
    }
    let (s, body) = gw.get(&format!("/api/b/communities/{cid}")).await;
    assert_eq!(
        (s, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("community_not_found"))
    );
    let (s, garden) = group_of(gw, "b", &ids.garden).await;
    assert_eq!(s, StatusCode::OK, "the unlinked garden keeps b");
    assert!(garden.get("parentGroupId").is_none(), "{garden}");
    let (_, party) = group_of(gw, "a", &ids.party).await;
    assert_eq!(party["size"], 2, "A and C");
    let b_leaves = payloads(gw, "b", "group.v2.leave").await;
    let left: Vec<&Value> = b_leaves.iter().map(|p| &p["group"]["id"]).collect();
    assert!(left.contains(&&json!(ids.party)), "{b_leaves:?}");
    assert!(left.contains(&&json!(ids.announcement)), "{b_leaves:?}");
}

/// The link's part of the session's state: the community's groups, the group's parent, and
/// the `parentGroupId` updates in its event log.
async fn link_state(gw: &Gateway, cid: &str, gid: &str) -> (Value, Value, usize) {
    let (_, info) = gw.get(&format!("/api/a/communities/{cid}")).await;
    let (_, g) = group_of(gw, "a", gid).await;
    let updates = payloads(gw, "a", "group.v2.update").await;
    let linked = updates
        .iter()
        .filter(|u| u["group"].get("parentGroupId").is_some());
    let parent = g.get("parentGroupId").cloned().unwrap_or(Value::Null);
    (info["groups"].clone(), parent, linked.count())
}

#[tokio::test]
async fn a_link_lands_with_its_community_and_its_group_together_or_not_at_all() {
    let faults = Faults::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let gw = common::gateway_in(dir, |c| c.faults = faults.clone()).await;
    gw.session("a", Some(A), None).await;
    let cid = id_of(&community(&gw, "a", "Street", &[]).await);
    let gid = id_of(&gw.group("a", "Party", &[]).await);

    faults.fail_flushes(Some(FaultKind::Io));
    let (s, body) = link(&gw, "a", &cid, &[&gid]).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    faults.fail_flushes(None);
    let none = (json!([]), Value::Null, 0);
    assert_eq!(
        link_state(&gw, &cid, &gid).await,
        none,
        "neither the community nor the group"
    );
    let gw = reopen(gw, faults.clone()).await;
    assert_eq!(
        link_state(&gw, &cid, &gid).await,
        none,
        "nor after a restart"
    );

    let (s, body) = link(&gw, "a", &cid, &[&gid]).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let both = (json!([{"id": gid, "subject": "Party"}]), json!(cid), 1);
    assert_eq!(link_state(&gw, &cid, &gid).await, both);
    let gw = restart(gw).await;
    assert_eq!(
        link_state(&gw, &cid, &gid).await,
        both,
        "both after a restart"
    );
}

/// B's view of the link: the party's parent and the community's groups.
async fn b_sees(gw: &Gateway, cid: &str, gid: &str) -> (Value, Value) {
    let (_, party) = group_of(gw, "b", gid).await;
    let (_, info) = gw.get(&format!("/api/b/communities/{cid}")).await;
    let parent = party.get("parentGroupId").cloned().unwrap_or(Value::Null);
    (parent, info["groups"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_share_that_fails_for_a_member_is_applied_in_the_background() {
    let faults = Faults::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let b_store = dir.path().join("sessions").join("b");
    let gw = common::gateway_in(dir, |c| c.faults = faults.clone()).await;
    gw.session("a", Some(A), None).await;
    gw.session("b", Some(B), None).await;
    let cid = id_of(&community(&gw, "a", "Street", &[B]).await);
    let gid = id_of(&gw.group("a", "Party", &[B]).await);

    faults.fail_flushes_under(Some(FaultKind::Io), Some(&b_store));
    let (s, body) = link(&gw, "a", &cid, &[&gid]).await;
    assert_eq!(s, StatusCode::OK, "A's commit is durable: {body}");
    assert_eq!(
        b_sees(&gw, &cid, &gid).await,
        (Value::Null, json!([])),
        "b's copies are behind"
    );
    // A later change of the group waits for b's copy rather than overtake it.
    let (s, body) = gw
        .put(
            &format!("/api/a/groups/{gid}/subject"),
            json!({"subject": "Later"}),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "group_catching_up");

    faults.fail_flushes(None);
    let linked = (json!(cid), json!([{"id": gid, "subject": "Party"}]));
    // The copy is readable once its transaction applies; its events are listed once it is
    // durable (the flush after): wait for both, then check the link was heard once.
    let heard = |u: &Value| u["group"]["parentGroupId"] == json!(cid);
    common::wait_for(10, "b's copies to catch up and be heard", || async {
        let updates = payloads(&gw, "b", "group.v2.update").await;
        b_sees(&gw, &cid, &gid).await == linked && updates.iter().any(heard)
    })
    .await;
    let updates = payloads(&gw, "b", "group.v2.update").await;
    let parents: Vec<&Value> = updates
        .iter()
        .map(|u| &u["group"]["parentGroupId"])
        .collect();
    assert_eq!(parents, [&json!(cid)], "b heard the link once");
    let gw = restart(gw).await;
    assert_eq!(b_sees(&gw, &cid, &gid).await, linked, "after a restart");
}
