//! The dispatch schema's guarantees (issue 8), checked with direct SQL: what the database itself
//! makes impossible whatever a client, a node or a hand-typed INSERT does; and availability
//! following dispatch all the way to the nearest-driver answer.

use chrono::Duration as ChronoDuration;
use meridian::domain::Role;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::helpers::{now_ms, point, spawn_app, TestApp};
use crate::nearest::{external_ids, nearest, on_shift};

const ACTIVE_DRIVER: &str = "dispatches_one_active_per_driver";

pub struct Crew {
    pub driver: Uuid,
    pub vehicle: Uuid,
    pub shift: Uuid,
}

/// `vehicle` with an available driver (a new one unless `driver` is given) on a shift over
/// `during` (SQL for a tstzrange).
async fn crew(app: &TestApp, vehicle: Uuid, driver: Option<Uuid>, during: &str) -> Crew {
    let driver = match driver {
        Some(d) => d,
        None => app
            .db
            .query_one(
                "INSERT INTO drivers (name, status) VALUES ('d', 'available') RETURNING id",
                &[],
            )
            .await
            .unwrap()
            .get(0),
    };
    let shift = app
        .db
        .query_one(
            &format!(
                "INSERT INTO shifts (driver_id, vehicle_id, during) VALUES ($1, $2, {during}) RETURNING id"
            ),
            &[&driver, &vehicle],
        )
        .await
        .unwrap()
        .get(0);
    Crew {
        driver,
        vehicle,
        shift,
    }
}

const NOW_ON: &str = "tstzrange(now() - interval '1 hour', NULL)";
const EARLIER: &str = "tstzrange(now() - interval '3 hours', now() - interval '2 hours')";

pub async fn job(app: &TestApp, reference: &str) -> Uuid {
    app.db
        .query_one(
            "INSERT INTO jobs (reference, pickup, vehicle_type) \
             VALUES ($1, ST_SetSRID(ST_MakePoint(10.75, 59.91), 4326), 'van') RETURNING id",
            &[&reference],
        )
        .await
        .unwrap()
        .get(0)
}

pub async fn dispatch(app: &TestApp, job: Uuid, c: &Crew) -> Result<Uuid, tokio_postgres::Error> {
    app.db
        .query_one(
            "INSERT INTO dispatches (job_id, driver_id, vehicle_id, shift_id) \
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[&job, &c.driver, &c.vehicle, &c.shift],
        )
        .await
        .map(|r| r.get(0))
}

/// The SQLSTATE and constraint name a refused statement reports.
fn refusal(result: Result<Uuid, tokio_postgres::Error>) -> (SqlState, String) {
    let error = result.expect_err("the database must refuse this");
    let db = error.as_db_error().expect("a database error");
    (
        db.code().clone(),
        db.constraint().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_driver_a_vehicle_and_a_job_each_have_at_most_one_active_dispatch() {
    let app = spawn_app().await;
    let v = app.register(&["v1", "v2", "v3"]).await;
    // One driver on two vehicles at different times; a second driver on the first vehicle later.
    let earlier = crew(&app, v[0], None, EARLIER).await;
    let same_driver = crew(&app, v[1], Some(earlier.driver), NOW_ON).await;
    let same_vehicle = crew(&app, v[0], None, NOW_ON).await;
    let other = crew(&app, v[2], None, NOW_ON).await;
    let (j1, j2, j3) = (
        job(&app, "J-1").await,
        job(&app, "J-2").await,
        job(&app, "J-3").await,
    );

    let first = dispatch(&app, j1, &earlier).await.unwrap();
    let unique = SqlState::UNIQUE_VIOLATION;
    assert_eq!(
        refusal(dispatch(&app, j2, &same_driver).await),
        (unique.clone(), ACTIVE_DRIVER.into())
    );
    assert_eq!(
        refusal(dispatch(&app, j2, &same_vehicle).await),
        (unique.clone(), "dispatches_one_active_per_vehicle".into())
    );
    assert_eq!(
        refusal(dispatch(&app, j1, &other).await),
        (unique, "dispatches_one_active_per_job".into())
    );
    assert!(
        dispatch(&app, j3, &other).await.is_ok(),
        "a free crew, a free job"
    );

    // Once the first dispatch is over, its driver, vehicle and job are free again.
    app.db
        .execute(
            "UPDATE dispatches SET status = 'completed', completed_at = now() WHERE id = $1",
            &[&first],
        )
        .await
        .unwrap();
    assert!(dispatch(&app, j2, &same_driver).await.is_ok());
    assert!(dispatch(&app, j1, &same_vehicle).await.is_ok());
    assert_eq!(
        app.count("SELECT count(*) FROM dispatches WHERE status = 'dispatched'")
            .await,
        3
    );
}

#[tokio::test]
async fn a_vehicle_in_maintenance_or_not_active_cannot_be_dispatched() {
    let app = spawn_app().await;
    let v = app.register(&["m1"]).await;
    let c = crew(&app, v[0], None, NOW_ON).await;
    let j = job(&app, "J-M").await;
    let record: Uuid = app
        .db
        .query_one(
            "INSERT INTO maintenance_records (vehicle_id, kind) VALUES ($1, 'brakes') RETURNING id",
            &[&c.vehicle],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        refusal(dispatch(&app, j, &c).await),
        (
            SqlState::CHECK_VIOLATION,
            "dispatches_vehicle_not_in_maintenance".into()
        )
    );
    app.db
        .execute(
            "UPDATE maintenance_records SET closed_at = now() WHERE id = $1",
            &[&record],
        )
        .await
        .unwrap();
    app.db
        .execute(
            "UPDATE vehicles SET status = 'inactive' WHERE id = $1",
            &[&c.vehicle],
        )
        .await
        .unwrap();
    assert_eq!(
        refusal(dispatch(&app, j, &c).await),
        (
            SqlState::CHECK_VIOLATION,
            "dispatches_vehicle_active".into()
        )
    );
    app.db
        .execute(
            "UPDATE vehicles SET status = 'active' WHERE id = $1",
            &[&c.vehicle],
        )
        .await
        .unwrap();
    assert!(
        dispatch(&app, j, &c).await.is_ok(),
        "closed record, active vehicle"
    );
}

#[tokio::test]
async fn a_dispatch_is_made_of_its_shift_and_its_statuses_carry_their_times() {
    let app = spawn_app().await;
    let v = app.register(&["s1", "s2"]).await;
    let (a, b) = (
        crew(&app, v[0], None, NOW_ON).await,
        crew(&app, v[1], None, NOW_ON).await,
    );
    let j = job(&app, "J-S").await;
    let mixed = Crew {
        driver: b.driver,
        vehicle: a.vehicle,
        shift: a.shift,
    };
    assert_eq!(
        refusal(dispatch(&app, j, &mixed).await).0,
        SqlState::FOREIGN_KEY_VIOLATION,
        "another crew's driver on this shift"
    );
    let completed_without_time = app
        .db
        .query_one(
            "INSERT INTO dispatches (job_id, driver_id, vehicle_id, shift_id, status) \
             VALUES ($1, $2, $3, $4, 'completed') RETURNING id",
            &[&j, &a.driver, &a.vehicle, &a.shift],
        )
        .await
        .map(|r| r.get(0));
    assert_eq!(refusal(completed_without_time).0, SqlState::CHECK_VIOLATION);
    let priority_10 = app
        .db
        .query_one(
            "INSERT INTO jobs (reference, pickup, vehicle_type, priority) \
             VALUES ('J-P', ST_SetSRID(ST_MakePoint(0, 0), 4326), 'van', 10) RETURNING id",
            &[],
        )
        .await
        .map(|r| r.get(0));
    assert_eq!(refusal(priority_10).0, SqlState::CHECK_VIOLATION);
}

#[tokio::test]
async fn the_audit_trail_has_its_coming_months_and_refuses_a_month_it_lacks() {
    let app = spawn_app().await;
    let months = app
        .count(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'audit_log'::regclass \
               AND c.relname >= 'audit_log_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')",
        )
        .await;
    assert!(
        months >= 3,
        "this month and the next two at least: {months}"
    );
    let insert = |offset: &'static str| {
        let sql = format!(
            "INSERT INTO audit_log (at, entity, entity_id, action) \
             VALUES (now() + interval '{offset}', 'job', gen_random_uuid(), 'create') RETURNING id"
        );
        let db = &app.db;
        async move { db.query_one(&sql, &[]).await.map(|r| r.get::<_, Uuid>(0)) }
    };
    assert!(insert("0 days").await.is_ok());
    assert!(insert("50 days").await.is_ok());
    assert_eq!(
        refusal(insert("5 years").await).0,
        SqlState::CHECK_VIOLATION,
        "no partition for that month: loud, not hidden in a default partition"
    );
}

#[tokio::test]
async fn nearest_never_offers_a_driver_with_an_active_dispatch() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let busy = on_shift(&desk, "busy-1", Some("van"), ChronoDuration::zero()).await;
    on_shift(&desk, "free-1", Some("van"), ChronoDuration::zero()).await;
    let now = now_ms();
    app.publisher
        .telemetry("busy-1", point(now - 1000, 59.91, 10.75))
        .await;
    app.publisher
        .telemetry("free-1", point(now - 1000, 59.92, 10.75))
        .await;
    app.wait_settled(2).await;
    let query = "lat=59.91&lon=10.75&limit=10";
    app.wait_until("both offered", || async {
        nearest(&desk, query).await.len() == 2
    })
    .await;
    assert_eq!(
        external_ids(&nearest(&desk, query).await),
        ["busy-1", "free-1"]
    );

    let j = job(&app, "J-N").await;
    let c = Crew {
        driver: busy.id.parse().unwrap(),
        vehicle: busy.vehicle.parse().unwrap(),
        shift: busy.shift.parse().unwrap(),
    };
    let d = dispatch(&app, j, &c).await.unwrap();
    app.wait_until("the dispatched driver is no longer offered", || async {
        external_ids(&nearest(&desk, query).await) == ["free-1"]
    })
    .await;

    app.db
        .execute(
            "UPDATE dispatches SET status = 'cancelled', cancelled_at = now() WHERE id = $1",
            &[&d],
        )
        .await
        .unwrap();
    app.wait_until("offered again once the dispatch is over", || async {
        external_ids(&nearest(&desk, query).await) == ["busy-1", "free-1"]
    })
    .await;
}
