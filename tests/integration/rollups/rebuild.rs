//! `meridian rollup --from --to` rebuilds a range after raw rows were changed by hand, and
//! catches up hours the job had not closed.

use chrono::{TimeDelta, Utc};
use meridian::rollup::rebuild;
use uuid::Uuid;

use super::{app, assert_tables_match, fleet, hour, insert, late::steady, run_until_idle};

#[tokio::test]
async fn a_rebuild_follows_raw_rows_changed_by_hand_and_closes_what_the_job_had_not() {
    let app = app().await;
    let names = fleet(&app, 3).await;
    let ids: Vec<Uuid> = names.iter().map(|(id, _)| *id).collect();
    let end = hour(Utc::now()) - TimeDelta::hours(2);
    let mut points = steady(&ids, end);
    insert(&app.db, &app.db_url, &points).await;

    // Nothing closed yet: the rebuild closes every hour up to its end, in order.
    let mut client = meridian::store::connect(&app.db_url).await.unwrap();
    let done = rebuild::run(&mut client, end - TimeDelta::hours(5), end)
        .await
        .unwrap();
    assert_eq!(done.hours_rebuilt, 0);
    assert!(done.hours_closed >= 5, "{done:?}");
    assert_eq!(done.hours_left, 0);
    assert_tables_match(&app.db, &points).await;

    // Raw rows corrected by hand (no late marks): a vehicle's third hour loses its points and
    // another's fourth hour gets new speeds. The rebuild of that range follows.
    let third = end - TimeDelta::hours(3);
    app.db
        .execute(
            "DELETE FROM vehicle_telemetry WHERE vehicle_id = $1 AND ts >= $2 AND ts < $2 + interval '1 hour'",
            &[&ids[0], &third],
        )
        .await
        .unwrap();
    app.db
        .execute(
            "UPDATE vehicle_telemetry SET speed_kmh = 99 WHERE vehicle_id = $1 AND ts >= $2 AND ts < $2 + interval '1 hour'",
            &[&ids[1], &(third + TimeDelta::hours(1))],
        )
        .await
        .unwrap();
    points.retain(|p| !(p.vehicle == ids[0] && hour(p.ts) == third));
    for p in points
        .iter_mut()
        .filter(|p| p.vehicle == ids[1] && hour(p.ts) == third + TimeDelta::hours(1))
    {
        p.speed = Some(99.0);
    }
    let done = rebuild::run(&mut client, third, third + TimeDelta::hours(2))
        .await
        .unwrap();
    assert_eq!((done.hours_rebuilt, done.hours_closed), (2, 0), "{done:?}");
    assert_tables_match(&app.db, &points).await;
    assert_eq!(run_until_idle(&app.db_url).await.late_pairs, 0);
}

#[test]
fn the_command_refuses_an_empty_or_unreadable_range() {
    let bin = env!("CARGO_BIN_EXE_meridian");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .arg("rollup")
            .args(args)
            .env("DATABASE_URL", crate::helpers::admin_url())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = run(&["--from", "2026-11-02", "--to", "2026-11-01"]);
    assert!(!ok && err.contains("--from must be before --to"), "{err}");
    let (ok, err) = run(&["--from", "yesterday", "--to", "2026-11-01"]);
    assert!(!ok && err.contains("neither a date"), "{err}");
}
