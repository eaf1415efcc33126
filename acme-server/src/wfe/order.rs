//! Order resources: newOrder, the order, and finalize (RFC 8555 §7.4).

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use castellan_acme_proto::types::{Finalize, NewOrder};
use castellan_store::OrderId;
use castellan_store::acme::{OrderRecord, OrderStatus};
use std::sync::Arc;

use super::request::KeyRule;
use super::urls::BaseUrl;
use super::{Wfe, json_resource, resource_id, views, with_retry_after};
use crate::problem::AcmeError;

fn order_response(wfe: &Wfe, base: &BaseUrl, status: StatusCode, order: &OrderRecord) -> Response {
    let response = json_resource(status, Some(base.order(order.id)), &views::order(base, order));
    match order.status {
        OrderStatus::Processing | OrderStatus::Pending => with_retry_after(response, wfe.config.retry_after_secs),
        _ => response,
    }
}

pub async fn new_order(State(wfe): State<Arc<Wfe>>, base: BaseUrl, request: Request) -> Result<Response, AcmeError> {
    let signed = wfe.verify(&base, request, KeyRule::Kid).await?;
    let payload: NewOrder = signed.payload()?;
    let order = wfe.ra.new_order(signed.account()?, &payload).await?;
    Ok(order_response(&wfe, &base, StatusCode::CREATED, &order))
}

pub async fn order(
    State(wfe): State<Arc<Wfe>>,
    base: BaseUrl,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AcmeError> {
    let id = OrderId(resource_id(&id)?);
    let signed = wfe.verify(&base, request, KeyRule::Kid).await?;
    signed.require_post_as_get()?;
    let order = wfe.ra.order(signed.account()?, id).await?;
    Ok(order_response(&wfe, &base, StatusCode::OK, &order))
}

pub async fn finalize(
    State(wfe): State<Arc<Wfe>>,
    base: BaseUrl,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AcmeError> {
    let id = OrderId(resource_id(&id)?);
    let signed = wfe.verify(&base, request, KeyRule::Kid).await?;
    let payload: Finalize = signed.payload()?;
    let order = wfe.ra.finalize(signed.account()?, id, &payload.csr).await?;
    Ok(order_response(&wfe, &base, StatusCode::OK, &order))
}
