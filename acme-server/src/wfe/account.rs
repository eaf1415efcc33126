//! Account resources: newAccount, the account itself (update, deactivate), its orders list, and keyChange.

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use castellan_acme_proto::types::{NewAccount, OrdersList};
use castellan_acme_proto::verify_key_change;
use castellan_store::{AccountId, OrderId};
use serde::Deserialize;
use std::sync::Arc;

use super::request::KeyRule;
use super::urls::BaseUrl;
use super::{Wfe, json_resource, resource_id, views};
use crate::problem::AcmeError;
use crate::ra::NewAccountOutcome;

pub async fn new_account(
    State(wfe): State<Arc<Wfe>>,
    base: BaseUrl,
    client: Option<axum::Extension<super::ClientAddr>>,
    request: Request,
) -> Result<Response, AcmeError> {
    let signed = wfe.verify(&base, request, KeyRule::Jwk).await?;
    let payload: NewAccount = signed.payload()?;
    let url = signed.jws.header().url.clone();
    let (status, account) = match wfe.ra.new_account(signed.jws.key(), &payload, &url, client.map(|c| c.0.0)).await? {
        NewAccountOutcome::Created(account) => (StatusCode::CREATED, account),
        NewAccountOutcome::Existing(account) => (StatusCode::OK, account),
    };
    Ok(json_resource(status, Some(base.account(account.id)), &views::account(&base, &account)))
}

/// What a POST to the account URL may change (RFC 8555 §7.3.2, §7.3.6); other fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountUpdate {
    status: Option<String>,
    contact: Option<Vec<String>>,
}

pub async fn account(
    State(wfe): State<Arc<Wfe>>,
    base: BaseUrl,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AcmeError> {
    let id = AccountId(resource_id(&id)?);
    let signed = wfe.verify(&base, request, KeyRule::Kid).await?;
    let account = signed.account()?;
    if account.id != id {
        return Err(AcmeError::unauthorized("the request is signed by another account"));
    }
    let account = if signed.jws.is_post_as_get() {
        account.clone()
    } else {
        let update: AccountUpdate = signed.payload()?;
        match update.status.as_deref() {
            Some("deactivated") => wfe.ra.deactivate_account(account).await?,
            Some(other) => {
                return Err(AcmeError::malformed(format!(
                    "an account's status can only be set to \"deactivated\", not {other:?}"
                )));
            }
            None => match &update.contact {
                Some(contacts) => wfe.ra.update_contacts(account, contacts).await?,
                None => account.clone(),
            },
        }
    };
    Ok(json_resource(StatusCode::OK, Some(base.account(account.id)), &views::account(&base, &account)))
}

#[derive(Deserialize)]
pub struct OrdersCursor {
    cursor: Option<OrderId>,
}

/// The account's orders (RFC 8555 §7.1.2.1), paginated with Link rel="next".
pub async fn orders(
    State(wfe): State<Arc<Wfe>>,
    base: BaseUrl,
    Path(id): Path<String>,
    Query(cursor): Query<OrdersCursor>,
    request: Request,
) -> Result<Response, AcmeError> {
    let id = AccountId(resource_id(&id)?);
    let signed = wfe.verify(&base, request, KeyRule::Kid).await?;
    signed.require_post_as_get()?;
    let account = signed.account()?;
    if account.id != id {
        return Err(AcmeError::unauthorized("the request is signed by another account"));
    }
    let (ids, next) = wfe.ra.account_orders(account, cursor.cursor).await?;
    let list = OrdersList { orders: ids.into_iter().map(|id| base.order(id)).collect() };
    let mut response = json_resource(StatusCode::OK, None, &list);
    if let Some(next) = next {
        let link = format!("<{}?cursor={next}>;rel=\"next\"", base.account_orders(account.id));
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, value);
        }
    }
    Ok(response)
}

/// Key rollover (RFC 8555 §7.3.5).
pub async fn key_change(State(wfe): State<Arc<Wfe>>, base: BaseUrl, request: Request) -> Result<Response, AcmeError> {
    let signed = wfe.verify(&base, request, KeyRule::Kid).await?;
    let account = signed.account()?;
    let change = verify_key_change(&signed.jws)?;
    match wfe.ra.change_key(account, &change).await {
        Ok(account) => {
            Ok(json_resource(StatusCode::OK, Some(base.account(account.id)), &views::account(&base, &account)))
        }
        Err(e) => {
            let location = e.conflicting_account.map(|id| base.account(id));
            let mut response = axum::response::IntoResponse::into_response(e);
            if let Some(location) = location
                && let Ok(value) = HeaderValue::from_str(&location)
            {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Ok(response)
        }
    }
}
