//! The audit trail read back over HTTP: filters, time ranges, paging through more than a page
//! without gaps or repeats (rows sharing an instant included), the plan the query gets (the
//! entity index, only the months asked for), and who may read it.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use meridian::domain::Role;
use meridian::store::audit::{list_query, Entity, Filter};
use serde_json::{json, Value};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::client::code;
use crate::helpers::{spawn_app, TestApp};

/// `n` audit rows about `entity_id`, a minute apart ending at `end`, in groups of three sharing
/// one `at` (so pages must break ties by id).
async fn audit_history(app: &TestApp, entity_id: Uuid, n: i32, end: &str) {
    app.db
        .execute(
            &format!(
                "INSERT INTO audit_log (at, entity, entity_id, action, after) \
                 SELECT {end} - (i / 3) * interval '1 minute', 'maintenance', $1, \
                        CASE WHEN i % 2 = 0 THEN 'open' ELSE 'close' END, jsonb_build_object('i', i) \
                 FROM generate_series(1, $2) i"
            ),
            &[&entity_id, &n],
        )
        .await
        .unwrap();
}

/// Every audit item the API gives for `query`, following `next_after` page by page.
async fn all_pages(client: &crate::client::Client<'_>, query: &str) -> (Vec<Value>, usize) {
    let (mut items, mut pages) = (Vec::new(), 0);
    let mut path = format!("/v1/audit?{query}");
    loop {
        let (status, page) = client.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        pages += 1;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_str() {
            Some(after) => path = format!("/v1/audit?{query}&after={after}"),
            None => return (items, pages),
        }
    }
}

#[tokio::test]
async fn audit_pages_in_at_then_id_order_without_gaps_or_repeats_and_filters() {
    let app = spawn_app().await;
    let analyst = app.client(Role::Analyst).await;
    let (subject, other) = (Uuid::new_v4(), Uuid::new_v4());
    audit_history(&app, subject, 100, "now()").await;
    audit_history(&app, other, 20, "now()").await;

    let expected: Vec<String> = app
        .db
        .query(
            "SELECT id::text FROM audit_log WHERE entity_id = $1 ORDER BY at, id",
            &[&subject],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let query = format!("entity=maintenance&entity_id={subject}&limit=7");
    let (items, pages) = all_pages(&analyst, &query).await;
    let got: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(got, expected, "every row once, in (at, id) order");
    assert_eq!(pages, 15, "100 rows in pages of 7");
    let item = &items[0];
    let keys: Vec<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "action",
            "actor",
            "after",
            "at",
            "before",
            "entity",
            "entity_id",
            "id"
        ]
    );
    assert_eq!(
        (item["before"].clone(), item["actor"].clone()),
        (Value::Null, Value::Null)
    );
    assert!(item["after"]["i"].is_i64());

    // The id alone finds the same rows (through the index, with every entity name).
    let (by_id, _) = all_pages(&analyst, &format!("entity_id={subject}&limit=1000")).await;
    assert_eq!(by_id, items);
    let (opens, _) = all_pages(&analyst, &format!("entity_id={subject}&action=open")).await;
    assert_eq!(opens.len(), 50);
    assert!(opens.iter().all(|i| i["action"] == "open"));
    let (everything, _) = all_pages(&analyst, "limit=13").await;
    assert_eq!(everything.len(), 120);

    // A time range: [from, to) holds the minutes it names.
    let at = |i: usize| {
        items[i]["at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
    };
    let (from, to) = (at(10), at(40));
    let range = format!(
        "entity_id={subject}&from={}&to={}&limit=4",
        urlencode(from),
        urlencode(to)
    );
    let (ranged, _) = all_pages(&analyst, &range).await;
    let inside: Vec<&Value> = items
        .iter()
        .filter(|i| {
            let t = i["at"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
            t >= from && t < to
        })
        .collect();
    assert!(!inside.is_empty());
    assert_eq!(ranged.iter().collect::<Vec<_>>(), inside);
}

fn urlencode(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Each table scan of an EXPLAIN (FORMAT JSON) plan: the partition and how it is read (the
/// index name, also through a bitmap scan, or the node type).
fn scans(node: &Value, out: &mut Vec<(String, String)>) {
    if let Some(relation) = node["Relation Name"].as_str() {
        let index = node["Index Name"]
            .as_str()
            .or_else(|| node["Plans"][0]["Index Name"].as_str());
        let how = index.or(node["Node Type"].as_str()).unwrap();
        out.push((relation.to_owned(), how.to_owned()));
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        scans(child, out);
    }
}

#[tokio::test]
async fn audit_queries_use_the_entity_index_and_read_only_the_months_asked_for() {
    let app = spawn_app().await;
    let subject = Uuid::new_v4();
    // History about 200 entities in two months: the last day of last month, and now.
    for i in 0..200 {
        let end = if i % 2 == 0 {
            "now()"
        } else {
            "date_trunc('month', now()) - interval '1 day'"
        };
        let id = if i == 0 { subject } else { Uuid::new_v4() };
        audit_history(&app, id, 30, end).await;
    }
    app.db.batch_execute("ANALYZE audit_log").await.unwrap();
    let plan = |f: Filter| {
        let db = &app.db;
        async move {
            let (sql, params) = list_query(&f);
            let params: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let row = db
                .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &params)
                .await
                .unwrap();
            let mut found = Vec::new();
            scans(&row.get::<_, Value>(0)[0]["Plan"], &mut found);
            found
        }
    };
    let this_month: DateTime<Utc> = app
        .db
        .query_one(
            "SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let partition = |t: DateTime<Utc>| t.format("audit_log_%Y_%m").to_string();
    let (now_part, last_part) = (
        partition(this_month),
        partition(this_month - ChronoDuration::days(1)),
    );
    let one = |entity| Filter {
        entity,
        entity_id: Some(subject),
        limit: 100,
        ..Filter::default()
    };

    // Both months with rows are read through the entity index, with or without `entity`.
    for filter in [one(Some(Entity::Maintenance)), one(None)] {
        let found = plan(filter).await;
        for part in [&now_part, &last_part] {
            let (_, how) = found
                .iter()
                .find(|(r, _)| r == part)
                .expect("both months read");
            assert!(
                how.ends_with("entity_entity_id_at_idx"),
                "{part}: {found:?}"
            );
        }
    }
    // From this month on, last month is not read at all; neither is it after a cursor in this
    // month; and a range before every partition reads none.
    let from_now = plan(Filter {
        from: Some(this_month),
        ..one(Some(Entity::Maintenance))
    })
    .await;
    assert!(from_now.iter().any(|(r, _)| *r == now_part), "{from_now:?}");
    assert!(
        !from_now.iter().any(|(r, _)| *r == last_part),
        "{from_now:?}"
    );
    let after_cursor = plan(Filter {
        after: Some((this_month, Uuid::nil())),
        limit: 100,
        ..Filter::default()
    })
    .await;
    assert!(
        !after_cursor.iter().any(|(r, _)| *r == last_part),
        "{after_cursor:?}"
    );
    let before_all = plan(Filter {
        to: Some(this_month - ChronoDuration::days(62)),
        limit: 100,
        ..Filter::default()
    })
    .await;
    assert_eq!(before_all, vec![], "no partition holds anything that old");
}

#[tokio::test]
async fn analysts_and_admins_read_the_audit_dispatchers_get_403_and_bad_queries_4xx() {
    let app = spawn_app().await;
    let (status, _) = app.client(Role::Analyst).await.get("/v1/audit").await;
    assert_eq!(status, 200);
    let admin = app.client(Role::Admin).await;
    let (status, page) = admin.get("/v1/audit").await;
    assert_eq!(
        (status, page),
        (200, json!({"items": [], "next_after": null}))
    );
    let (status, body) = app.client(Role::Dispatcher).await.get("/v1/audit").await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");

    let (status, body) = admin
        .get("/v1/audit?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z")
        .await;
    assert_eq!((status, code(&body)), (422, "invalid"));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("from") && message.contains("after to"),
        "{message}"
    );
    for query in [
        "entity=vehicle",
        "entity_id=42",
        "from=yesterday",
        "limit=0",
        "after=123",
        "after=1_0B7E4C1A-2F3D-4E5A-8B6C-7D8E9F0A1B2C",
    ] {
        let (status, body) = admin.get(&format!("/v1/audit?{query}")).await;
        assert_eq!(
            (status, code(&body)),
            (400, "bad_request"),
            "{query}: {body}"
        );
    }
    for query in ["action=", "action=%00"] {
        let (status, body) = admin.get(&format!("/v1/audit?{query}")).await;
        assert_eq!((status, code(&body)), (422, "invalid"), "{query}: {body}");
    }
}
