//! The router against its own table and OpenAPI document, in process over a SQLite store.

use super::{Method, PREFIX, router, routes};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use castellan_store::admin::TokenScope;
use castellan_store::testkit;
use serde_json::Value;
use tower::ServiceExt;

/// A concrete path for a templated one (path parameters get a value of the right shape).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{id}" => "1",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(app: &axum::Router, method: &str, path: &str, token: Option<&str>) -> (StatusCode, Value, bool) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app.clone().oneshot(request.body(Body::from("{}")).expect("request")).await.expect("response");
    let status = response.status();
    let challenge = response.headers().contains_key(header::WWW_AUTHENTICATE);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), challenge)
}

#[test]
fn the_document_lists_exactly_the_table() {
    let document = super::openapi::document();
    let paths = document["paths"].as_object().expect("paths");
    let mut documented = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            documented += 1;
            let route = routes()
                .into_iter()
                .find(|r| format!("{PREFIX}{}", r.path) == *path && r.method.as_str().eq_ignore_ascii_case(method))
                .unwrap_or_else(|| panic!("{method} {path} is documented but not routed"));
            let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, route.scope.is_some(), "{method} {path}");
        }
    }
    assert_eq!(documented, routes().len(), "every row is documented once");
    let ids: std::collections::HashSet<_> = paths
        .values()
        .flat_map(|i| i.as_object().into_iter().flatten())
        .map(|(_, op)| op["operationId"].clone())
        .collect();
    assert_eq!(ids.len(), routes().len(), "operation ids are unique");
}

#[tokio::test]
async fn every_secured_operation_demands_a_token_of_its_scope() {
    let test = testkit::sqlite().await;
    let store = test.store.clone();
    let (_, read) = store.create_token("reader", TokenScope::Read, "test").await.expect("token");
    let (_, admin) = store.create_token("admin", TokenScope::Admin, "test").await.expect("token");
    let app = router(castellan_authority::Operator::new(store));
    for route in routes() {
        let (method, path) = (route.method.as_str(), format!("{PREFIX}{}", concrete(route.path)));
        let Some(scope) = route.scope else {
            let (status, body, _) = send(&app, method, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{method} {path}");
            assert_eq!(body["openapi"], "3.0.3");
            continue;
        };
        for token in [None, Some("cst_wrong"), Some("not-a-token")] {
            let (status, body, challenge) = send(&app, method, &path, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {token:?}");
            assert!(challenge, "{method} {path}: WWW-Authenticate");
            assert_eq!(body["status"], 401, "{method} {path}: {body}");
        }
        let (status, _, _) = send(&app, method, &path, Some(&read)).await;
        if scope == TokenScope::Admin {
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with a read token");
        } else {
            assert!(status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN, "{method} {path}");
        }
        if route.method != Method::Delete || !route.path.starts_with("/tokens") {
            let (status, body, _) = send(&app, method, &path, Some(&admin)).await;
            assert!(status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN, "{method} {path}: {body}");
        }
    }
}

#[tokio::test]
async fn nothing_is_routed_outside_the_table() {
    let test = testkit::sqlite().await;
    let (_, admin) = test.store.create_token("admin", TokenScope::Admin, "test").await.expect("token");
    let app = router(castellan_authority::Operator::new(test.store.clone()));
    let (status, body, _) = send(&app, "GET", "/admin/nothing", Some(&admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["status"], 404);
    // A documented path with a method the table does not give it.
    let (status, _, _) = send(&app, "PATCH", "/admin/groups", Some(&admin)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _, _) = send(&app, "DELETE", "/admin/openapi.json", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}
