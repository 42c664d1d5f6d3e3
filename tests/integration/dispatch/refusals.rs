//! What dispatch refuses, and says why: a named driver who cannot take the job (every 409
//! reason, an unknown driver or job), and every illegal status change with the statuses
//! allowed from where the dispatch is.

use meridian::domain::{DispatchStatus, Role};
use serde_json::{json, Value};

use super::{dispatch, fleet, job, set_status, DEPOT};
use crate::client::{code, Client};
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_named_driver_who_cannot_take_the_job_is_refused_with_the_reason() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let vans = fleet(&app, &desk, "van", 2, "van", DEPOT).await;
    let mut jobs = Vec::new();
    for i in 0..3 {
        jobs.push(job(&desk, &format!("J-{i}"), 5, DEPOT, "van").await);
    }
    let named = |driver: &str| Some(json!({"driver_id": driver}));
    let reason = |body: &Value| {
        body["error"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let (status, body) = dispatch(&desk, &jobs[0], named(&vans[1].id)).await;
    assert_eq!(
        status, 201,
        "a named driver need not be the nearest: {body}"
    );
    assert_eq!(body["dispatch"]["driver_id"], vans[1].id.as_str());
    let (status, body) = dispatch(&desk, &jobs[1], named(&vans[1].id)).await;
    assert_eq!((status, reason(&body)), (409, "busy".into()), "{body}");

    // Off duty.
    let (status, _) = desk
        .patch(
            &format!("/v1/drivers/{}", vans[0].id),
            json!({"status": "off_duty"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = dispatch(&desk, &jobs[1], named(&vans[0].id)).await;
    assert_eq!((status, reason(&body)), (409, "off_duty".into()), "{body}");
    desk.patch(
        &format!("/v1/drivers/{}", vans[0].id),
        json!({"status": "available"}),
    )
    .await;

    // Wrong vehicle type.
    let (status, truck_job) = desk
        .post(
            "/v1/jobs",
            json!({"reference": "J-truck", "pickup": [DEPOT.1, DEPOT.0], "vehicle_type": "truck"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) =
        dispatch(&desk, truck_job["id"].as_str().unwrap(), named(&vans[0].id)).await;
    assert_eq!(
        (status, reason(&body)),
        (409, "wrong_vehicle_type".into()),
        "{body}"
    );

    // Stale position: the vehicle last reported an hour ago.
    app.db
        .execute(
            "UPDATE vehicle_positions SET ts = now() - interval '1 hour' WHERE vehicle_id = $1::text::uuid",
            &[&vans[0].vehicle],
        )
        .await
        .unwrap();
    let (status, body) = dispatch(&desk, &jobs[1], named(&vans[0].id)).await;
    assert_eq!(
        (status, reason(&body)),
        (409, "stale_position".into()),
        "{body}"
    );

    // No shift running.
    let (status, _) = desk
        .post(&format!("/v1/shifts/{}/end", vans[0].shift), json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = dispatch(&desk, &jobs[1], named(&vans[0].id)).await;
    assert_eq!((status, reason(&body)), (409, "no_shift".into()), "{body}");

    // Unknown driver, unknown job.
    let ghost = uuid::Uuid::new_v4().to_string();
    let (status, body) = dispatch(&desk, &jobs[2], named(&ghost)).await;
    assert_eq!((status, code(&body)), (422, "invalid"), "{body}");
    let (status, body) = dispatch(&desk, &ghost, None).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    assert_eq!(
        app.count("SELECT count(*) FROM dispatches").await,
        1,
        "only the one dispatch that succeeded"
    );
}

#[tokio::test]
async fn every_illegal_status_change_is_refused_with_the_allowed_next_statuses() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let vans = fleet(&app, &desk, "van", 1, "van", DEPOT).await;
    let path = [
        DispatchStatus::Dispatched,
        DispatchStatus::EnRoute,
        DispatchStatus::OnSite,
        DispatchStatus::Returning,
    ];
    for (n, from) in path.iter().enumerate() {
        let job_id = job(&desk, &format!("J-{n}"), 5, DEPOT, "van").await;
        let (status, body) = dispatch(&desk, &job_id, Some(json!({"driver_id": vans[0].id}))).await;
        assert_eq!(status, 201, "{body}");
        let id = body["dispatch"]["id"].as_str().unwrap().to_owned();
        for step in &path[1..=n] {
            assert_eq!(set_status(&desk, &id, step.as_str()).await.0, 200);
        }
        refuses_all_but_allowed(&desk, &id, *from).await;
        // Leave through the end states in turn, then nothing more is allowed from them.
        let end = [
            DispatchStatus::Cancelled,
            DispatchStatus::Recalled,
            DispatchStatus::Completed,
        ][n % 3];
        let end = if end == DispatchStatus::Completed && !from.can_become(end) {
            DispatchStatus::Cancelled
        } else {
            end
        };
        let (status, body) = set_status(&desk, &id, end.as_str()).await;
        assert_eq!(status, 200, "{from} -> {end}: {body}");
        refuses_all_but_allowed(&desk, &id, end).await;
        if end == DispatchStatus::Recalled {
            // The recalled job went back to the queue, and the drain gives it the van again.
            let again = format!("/v1/dispatches?job_id={job_id}&status=dispatched");
            app.wait_until("the recalled job is dispatched again", || async {
                desk.get(&again).await.1["items"].as_array().map(Vec::len) == Some(1)
            })
            .await;
            let redo = desk.get(&again).await.1["items"][0]["id"].clone();
            let (status, body) = set_status(&desk, redo.as_str().unwrap(), "cancelled").await;
            assert_eq!(status, 200, "{body}");
        }
    }
    let (status, body) = set_status(&desk, &uuid::Uuid::new_v4().to_string(), "en_route").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = desk
        .patch(
            &format!("/v1/dispatches/{}", uuid::Uuid::new_v4()),
            json!({"status": "teleported"}),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "invalid"), "{body}");
}

/// Every status `from` may not become is refused with 409 naming exactly what it may become.
async fn refuses_all_but_allowed(desk: &Client<'_>, id: &str, from: DispatchStatus) {
    let allowed: Vec<&str> = from.allowed_next().iter().map(|s| s.as_str()).collect();
    for to in DispatchStatus::ALL {
        if from.can_become(*to) {
            continue;
        }
        let (status, body) = set_status(desk, id, to.as_str()).await;
        assert_eq!(status, 409, "{from} -> {to}: {body}");
        assert_eq!(body["error"]["reason"], "illegal_transition");
        assert_eq!(
            body["error"]["allowed_next"],
            json!(allowed),
            "{from} -> {to}"
        );
    }
    let (status, body) = desk.get(&format!("/v1/dispatches/{id}")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some(from.as_str())),
        "unchanged by refusals"
    );
}
