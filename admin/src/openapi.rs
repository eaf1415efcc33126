//! The OpenAPI 3.0 description of the admin API, generated from the route table the router is built from.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::sync::LazyLock;

use super::{PREFIX, routes};

/// Built once: the table does not change while the process runs.
static DOCUMENT: LazyLock<Value> = LazyLock::new(document);

pub(super) async fn serve() -> Response {
    Json(&*DOCUMENT).into_response()
}

/// The document: every row of the table under its full path, with its security requirement.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in routes() {
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut responses = Map::new();
        let description = route.success.canonical_reason().unwrap_or("success");
        responses.insert(route.success.as_u16().to_string(), json!({ "description": description }));
        let mut operation = json!({
            "summary": route.summary,
            "operationId": operation_id(route.method.as_str(), route.path),
            "parameters": params,
        });
        match route.scope {
            Some(scope) => {
                operation["security"] = json!([{ "bearerAuth": [] }]);
                operation["x-castellan-scope"] = json!(scope.as_str());
                responses.insert("401".into(), json!({"$ref": "#/components/responses/Unauthorized"}));
                responses.insert("403".into(), json!({"$ref": "#/components/responses/Forbidden"}));
            }
            // An empty list overrides the document's default: no authentication.
            None => operation["security"] = json!([]),
        }
        operation["responses"] = Value::Object(responses);
        let item = paths.entry(format!("{PREFIX}{}", route.path)).or_insert_with(|| json!({}));
        item[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    let problem = json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Castellan admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Groups, policies, EAB credentials, accounts, certificates, the audit log and API \
                tokens. Authenticate with `Authorization: Bearer cst_…`; read-scope tokens may only read.",
        },
        "security": [{ "bearerAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "description": "An API token (cst_…)" },
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                    },
                },
            },
            "responses": {
                "Unauthorized": { "description": "No token, or an unknown or revoked one", "content": problem },
                "Forbidden": { "description": "The token's scope does not allow this", "content": problem },
            },
        },
    })
}

/// `get_groups_name_policy` for GET /groups/{name}/policy: unique, since (method, path) is.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for part in path.split(|c: char| !c.is_ascii_alphanumeric()).filter(|p| !p.is_empty()) {
        id.push('_');
        id.push_str(part);
    }
    id
}
