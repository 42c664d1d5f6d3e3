//! The API contract: the served `/openapi.json` declares every path parameter and states the
//! constraints the handlers enforce, and text PostgreSQL cannot store (U+0000) is a 422 that
//! names the field — never a 500. (schemathesis checks the rest: `scripts/api-contract.sh`.)

use meridian::domain::Role;
use serde_json::{json, Value};

use crate::client::code;
use crate::helpers::{now_ms, point, spawn_app};

#[tokio::test]
async fn the_document_declares_every_path_parameter_as_a_uuid() {
    let app = spawn_app().await;
    let (status, body) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        let names: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for name in &names {
                let p = params
                    .iter()
                    .find(|p| p["name"] == *name && p["in"] == "path")
                    .unwrap_or_else(|| panic!("{method} {path}: {{{name}}} is not declared"));
                assert_eq!(p["required"], true, "{method} {path}: {name}");
                assert_eq!(p["schema"]["format"], "uuid", "{method} {path}: {name}");
                checked += 1;
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status}: no description"
                );
            }
        }
    }
    assert!(checked >= 11, "only {checked} path parameters found");
}

/// schemathesis' examples phase (`scripts/api-contract.sh`) sends the document's examples; an
/// operation without them is skipped there, silently. So every operation that takes input
/// carries an example of each parameter and of its body (of each form, for a `oneOf` body).
#[tokio::test]
async fn every_operation_that_takes_input_carries_examples_of_it() {
    let app = spawn_app().await;
    let doc: Value = serde_json::from_str(&app.get("/openapi.json").await.1).unwrap();
    let schemas = &doc["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(r) => schemas[r.trim_start_matches("#/components/schemas/")].clone(),
            None => schema.clone(),
        }
    };
    let has_examples = |v: &Value| {
        v.get("example").is_some() || v["examples"].as_array().is_some_and(|e| !e.is_empty())
    };
    let (mut parameters, mut bodies, mut missing) = (0, 0, Vec::new());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                parameters += 1;
                if !has_examples(p) && !has_examples(&resolve(&p["schema"])) {
                    missing.push(format!("{method} {path}: parameter {}", p["name"]));
                }
            }
            let Some(media) = op["requestBody"]["content"].as_object() else {
                continue;
            };
            for (media_type, content) in media {
                bodies += 1;
                let schema = resolve(&content["schema"]);
                // An optional body is `oneOf: [the body, null]`: the body needs the example.
                let forms: Vec<Value> = match schema["oneOf"].as_array() {
                    Some(forms) => forms
                        .iter()
                        .filter(|f| f["type"] != "null")
                        .map(&resolve)
                        .collect(),
                    None => vec![schema.clone()],
                };
                let documented = has_examples(content)
                    || has_examples(&schema)
                    || forms.iter().all(&has_examples);
                if !documented {
                    missing.push(format!("{method} {path}: {media_type} body"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no example (add `example = ...` to the parameter, `#[schema(examples(...))]` to the \
         body type): {missing:#?}"
    );
    assert!(
        parameters >= 38 && bodies >= 9,
        "{parameters} parameters, {bodies} bodies"
    );
}

#[tokio::test]
async fn limit_is_documented_as_1_to_1000_and_enforced_so() {
    let app = spawn_app().await;
    let doc: Value = serde_json::from_str(&app.get("/openapi.json").await.1).unwrap();
    let limit = &doc["components"]["schemas"]["Limit"];
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(1000))
    );
    let params = doc["paths"]["/v1/vehicles"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let documented = params.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!(documented["schema"]["$ref"], "#/components/schemas/Limit");

    let desk = app.client(Role::Dispatcher).await;
    for path in ["/v1/vehicles", "/v1/drivers", "/v1/geofences", "/v1/shifts"] {
        for (limit, status) in [(0, 400), (1, 200), (1000, 200), (1001, 400)] {
            let (got, body) = desk.get(&format!("{path}?limit={limit}")).await;
            assert_eq!(got, status, "{path}?limit={limit}: {body}");
        }
    }
}

#[tokio::test]
async fn statuses_are_documented_as_the_enums_the_api_accepts() {
    let app = spawn_app().await;
    let doc: Value = serde_json::from_str(&app.get("/openapi.json").await.1).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["VehicleStatus"]["enum"],
        json!(["active", "maintenance", "inactive", "retired"])
    );
    assert_eq!(
        schemas["DriverStatus"]["enum"],
        json!(["available", "on_job", "on_break", "off_duty", "inactive"])
    );
    let desk = app.client(Role::Dispatcher).await;
    assert_eq!(desk.get("/v1/vehicles?status=maintenance").await.0, 200);
    assert_eq!(desk.get("/v1/vehicles?status=flying").await.0, 400);
    assert_eq!(desk.get("/v1/drivers?status=on_break").await.0, 200);
    assert_eq!(desk.get("/v1/drivers?status=asleep").await.0, 400);
}

#[tokio::test]
async fn text_holding_nul_is_a_422_naming_the_field_on_every_endpoint_that_stores_it() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let (_, driver) = desk.post("/v1/drivers", json!({"name": "Ada"})).await;
    let driver = driver["id"].as_str().unwrap().to_owned();
    let (_, vehicle) = desk
        .post("/v1/vehicles", json!({"external_id": "nul-1"}))
        .await;
    let vehicle = vehicle["id"].as_str().unwrap().to_owned();
    let nul = "a\u{0}b";
    let cases = [
        (
            "POST",
            "/v1/vehicles".to_owned(),
            json!({"external_id": "nul-2", "make": nul}),
            "make",
        ),
        (
            "POST",
            "/v1/vehicles".to_owned(),
            json!({"external_id": "nul-3", "specs": {"a": [1, {"b": nul}]}}),
            "specs.a[1].b",
        ),
        (
            "POST",
            "/v1/vehicles".to_owned(),
            json!({"external_id": "nul-4", "specs": {nul: 1}}),
            "specs (a key)",
        ),
        (
            "PATCH",
            format!("/v1/vehicles/{vehicle}"),
            json!({"plate": nul}),
            "plate",
        ),
        (
            "POST",
            "/v1/vehicles/bulk".to_owned(),
            json!({"items": [{"external_id": "ok"}, {"external_id": "x", "vehicle_type": nul}]}),
            "items[1].vehicle_type",
        ),
        (
            "POST",
            "/v1/drivers".to_owned(),
            json!({"name": nul}),
            "name",
        ),
        (
            "PATCH",
            format!("/v1/drivers/{driver}"),
            json!({"license_number": nul}),
            "license_number",
        ),
        (
            "PATCH",
            format!("/v1/drivers/{driver}"),
            json!({"name": nul}),
            "name",
        ),
        (
            "POST",
            "/v1/geofences".to_owned(),
            json!({"name": nul, "center": [0, 0], "radius_m": 10}),
            "name",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, err) = desk
            .call(method.parse().unwrap(), &path, Some(body.clone()))
            .await;
        assert_eq!(
            (status, code(&err)),
            (422, "invalid"),
            "{method} {path} {body}: {err}"
        );
        let message = err["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}: ")) && message.contains("U+0000"),
            "{method} {path}: {message:?} does not name {field}"
        );
    }
    let (status, err) = desk.get("/v1/vehicles?vehicle_type=a%00b").await;
    assert_eq!((status, code(&err)), (422, "invalid"), "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("vehicle_type: "));
    // Nothing was stored, and the server is fine.
    assert_eq!(app.count("SELECT count(*) FROM vehicles").await, 1);
    assert_eq!(
        desk.get(&format!("/v1/drivers/{driver}")).await.1["name"],
        "Ada"
    );
}

#[tokio::test]
async fn a_vehicle_whose_specs_hold_the_largest_double_can_be_read() {
    let app = spawn_app().await;
    let desk = app.client(Role::Dispatcher).await;
    let (_, v) = desk
        .post("/v1/vehicles", json!({"external_id": "big-1"}))
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    // PostgreSQL prints this number as 309 digits; serde_json's default parser rounds that
    // past f64::MAX and refused it, so reading the row panicked (the connection just closed).
    app.db
        .execute(
            "UPDATE vehicles SET specs = '{\"max\": 1.7976931348623157e308}' WHERE external_id = 'big-1'",
            &[],
        )
        .await
        .unwrap();
    let (status, body) = desk.get(&format!("/v1/vehicles/{id}")).await;
    assert_eq!(status, 200, "{body}");
    // Passed through exactly: with float_roundtrip this client parses the 309 digits to f64::MAX too.
    assert_eq!(body["specs"]["max"].as_f64(), Some(f64::MAX), "{body}");
    let (status, page) = desk.get("/v1/vehicles").await;
    assert_eq!(status, 200, "{page}");
    let listed = page["items"].as_array().expect("a page of vehicles");
    let big = listed
        .iter()
        .find(|v| v["id"] == id.as_str())
        .expect("big-1 listed");
    assert_eq!(big["specs"]["max"].as_f64(), Some(f64::MAX), "{page}");
}

#[tokio::test]
async fn external_id_is_limited_to_128_characters_as_documented_not_128_bytes() {
    let app = spawn_app().await;
    let doc: Value = serde_json::from_str(&app.get("/openapi.json").await.1).unwrap();
    let documented = &doc["components"]["schemas"]["NewVehicle"]["properties"]["external_id"];
    assert_eq!(documented["maxLength"], 128);
    let desk = app.client(Role::Dispatcher).await;
    // 'ö' is 2 bytes in UTF-8, '車' 3: 128 characters are 320 bytes.
    let at_limit: String = "ö車".repeat(64);
    let over = format!("{at_limit}ö");
    assert_eq!((at_limit.chars().count(), at_limit.len()), (128, 320));

    let (status, vehicle) = desk
        .post("/v1/vehicles", json!({"external_id": at_limit}))
        .await;
    assert_eq!(status, 201, "{vehicle}");
    assert_eq!(vehicle["external_id"], at_limit.as_str());
    let (status, err) = desk
        .post("/v1/vehicles", json!({"external_id": over}))
        .await;
    assert_eq!((status, code(&err)), (422, "invalid"), "{err}");
    assert_eq!(
        err["error"]["message"],
        "external_id: external id is longer than 128 characters"
    );
    let (status, err) = desk
        .post(
            "/v1/vehicles/bulk",
            json!({"items": [{"external_id": over}]}),
        )
        .await;
    assert_eq!((status, code(&err)), (422, "invalid"), "{err}");
    assert_eq!(app.count("SELECT count(*) FROM vehicles").await, 1);

    // The device publishes under the same id: its topic is accepted and its point stored.
    app.publisher
        .telemetry(&at_limit, point(now_ms() - 1_000, 40.7128, -74.006))
        .await;
    app.wait_settled(1).await;
    let id = vehicle["id"].as_str().unwrap();
    let (status, position) = desk.get(&format!("/v1/vehicles/{id}/position")).await;
    assert_eq!(status, 200, "{position}");
    assert_eq!(position["external_id"], at_limit.as_str());
    assert_eq!(app.count("SELECT count(*) FROM dead_letters").await, 0);
}
