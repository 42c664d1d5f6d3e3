//! The finishing pass over the OpenAPI document, once every module has contributed its routes:
//! the error responses every operation shares are stated here, once, from what the operation
//! has (a key → 401/403, a body → 400/415/422, parameters → 400, a path id → 404; every route
//! may time out → 503), so no handler can forget one; and every response gets a description.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// The document as JSON, with the hand-written schemas of `schema::raw_schemas` in place of
/// their placeholders.
pub fn with_raw_schemas(doc: &OpenApi) -> serde_json::Value {
    let mut json = serde_json::to_value(doc).expect("the document serializes");
    for (name, schema) in super::schema::raw_schemas() {
        json["components"]["schemas"][name] = schema;
    }
    json
}

/// Fills in what the per-handler annotations leave to the whole API.
pub fn finish(doc: &mut OpenApi) {
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            add_shared_errors(op);
            describe_responses(op);
        }
    }
}

fn add_shared_errors(op: &mut Operation) {
    let params = op.parameters.iter().flatten().filter_map(|p| match p {
        RefOr::T(p) => Some(p),
        RefOr::Ref(_) => None,
    });
    let (mut query, mut path) = (false, false);
    for p in params {
        query |= matches!(p.parameter_in, ParameterIn::Query);
        path |= matches!(p.parameter_in, ParameterIn::Path);
    }
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let body = op.request_body.is_some();
    let shared: [(bool, &str, &str); 7] = [
        (
            body || query || path,
            "400",
            "Malformed input: a body that is not JSON, a query or path value of the wrong type or out of range",
        ),
        (secured, "401", "Missing, unknown or revoked API key"),
        (secured, "403", "The key's role may not call this endpoint"),
        (path, "404", "No such resource"),
        (body, "415", "The body is not sent as `application/json`"),
        (
            body || query,
            "422",
            "Well-formed but invalid input (including text holding U+0000); the message names the field",
        ),
        (
            true,
            "503",
            "Not answered in time (30 s) or a dependency is unavailable",
        ),
    ];
    for (applies, status, description) in shared {
        if applies && !op.responses.responses.contains_key(status) {
            op.responses
                .responses
                .insert(status.to_owned(), error_response(description));
        }
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// OpenAPI requires a description on every response; fill the ones a handler left out.
fn describe_responses(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(r) = response {
            if r.description.is_empty() {
                r.description = match status.as_str() {
                    "200" => "OK",
                    "201" => "Created",
                    "204" => "No content",
                    "404" => "Not found",
                    "409" => "Conflict",
                    "422" => "Invalid input; the message names the field",
                    _ => "See the body",
                }
                .to_owned();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use utoipa::openapi::OpenApi;

    #[test]
    fn operation_ids_are_unique_and_every_path_parameter_is_declared() {
        let doc = super::super::api().1;
        let doc: OpenApi = serde_json::from_value(doc).unwrap();
        let mut ids = HashSet::new();
        for (path, item) in &doc.paths.paths {
            let ops = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for op in ops.into_iter().flatten() {
                let id = op.operation_id.clone().unwrap_or_default();
                assert!(ids.insert(id.clone()), "operationId {id} twice");
                let declared: HashSet<&str> = op
                    .parameters
                    .iter()
                    .flatten()
                    .filter_map(|p| match p {
                        utoipa::openapi::RefOr::T(p) => Some(p.name.as_str()),
                        _ => None,
                    })
                    .collect();
                for name in path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                {
                    assert!(
                        declared.contains(name),
                        "{path} {id}: {{{name}}} undeclared"
                    );
                }
            }
        }
    }
}
