//! Inventory queries with stable cursors.
//!
//! Every filter is optional and they combine with AND. Results come a page at a time by keyset pagination (never
//! OFFSET), so a cursor stays valid while certificates are added: a page starts strictly after the last row of
//! the one before, in one of two orders —
//!
//! - newest first, `id DESC`, for every query without `expiring_within`; the cursor holds the last id;
//! - soonest expiry first, `(not_after, id)`, for "expiring within": live certificates only (active,
//!   expiring_soon, renewing), whose notAfter is between now and now + the window. The `status IN (…)` term is
//!   written exactly as the partial index `certificates_live_by_expiry` declares it, so both backends walk that
//!   index in order and stop after one page. The cursor holds the last (not_after, id).
//!
//! A cursor is opaque to callers: base64url (no padding) of `v1:id:<id>` or `v1:exp:<not_after>:<id>`. A cursor
//! that does not decode, or that came from the other order, is `StoreError::Invalid`.
//!
//! List queries leave out the DER (`certificate_der` is None in their records): fetch one with
//! `Store::certificate`. Name filters go through `certificate_names` in an `IN (subquery)`, so a certificate with
//! several matching names appears once, and a rare name drives the query from its index.

use super::model::{CERTIFICATE_COLUMNS, CertificateRecord, CertificateStatus, certificate_from_row};
use crate::error::{Result, StoreError};
use crate::ids::AccountId;
use crate::{Backend, Store};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::LazyLock;
use std::time::Duration;

/// The partial index's predicate, verbatim: a planner uses a partial index only when the query repeats it.
const LIVE: &str = "status IN ('active', 'expiring_soon', 'renewing')";

/// Every certificate column but the DER, which list queries never need (~1 kB a row).
static LIST_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    let columns = CERTIFICATE_COLUMNS.replace(", certificate_der,", ", NULL AS certificate_der,");
    assert_ne!(columns, CERTIFICATE_COLUMNS, "CERTIFICATE_COLUMNS lost certificate_der");
    columns
});

/// How to match a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameMatch {
    Exact(String),
    /// Names ending in this suffix at a label boundary ("example.com" matches "www.example.com" and itself).
    Suffix(String),
}

/// A search over the inventory; every filter is optional and they combine with AND.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateQuery {
    /// A name in the certificate (case-insensitive; "DNS:", "IP:" or "URI:" in front is allowed and ignored).
    pub name: Option<NameMatch>,
    /// Hex of the serial's content octets (either case; colons allowed).
    pub serial: Option<String>,
    pub spki_sha256: Option<Vec<u8>>,
    pub status: Option<CertificateStatus>,
    pub account_id: Option<AccountId>,
    /// Live certificates whose notAfter falls between now and now + this, soonest first.
    pub expiring_within: Option<Duration>,
    /// Rows per page: 1 to `MAX_LIMIT` (larger is lowered); `DEFAULT_LIMIT` by default.
    pub limit: u32,
    /// The previous page's `next_cursor`, to continue where it stopped.
    pub cursor: Option<String>,
}

impl CertificateQuery {
    /// Rows per page when the query does not say.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// The most rows one page returns; larger limits are lowered to this.
    pub const MAX_LIMIT: u32 = 1000;
}

impl Default for CertificateQuery {
    fn default() -> Self {
        CertificateQuery {
            name: None,
            serial: None,
            spki_sha256: None,
            status: None,
            account_id: None,
            expiring_within: None,
            limit: CertificateQuery::DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// One page of results and the cursor for the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// None on the last page.
    pub next_cursor: Option<String>,
}

/// Where the previous page stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cursor {
    Newest { id: i64 },
    Expiring { not_after: i64, id: i64 },
}

impl Cursor {
    fn encode(self) -> String {
        let plain = match self {
            Cursor::Newest { id } => format!("v1:id:{id}"),
            Cursor::Expiring { not_after, id } => format!("v1:exp:{not_after}:{id}"),
        };
        URL_SAFE_NO_PAD.encode(plain)
    }

    fn decode(cursor: &str) -> Result<Cursor> {
        let invalid = || StoreError::Invalid { what: "cursor", why: "not a cursor this store issued".into() };
        if cursor.len() > 64 {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let plain = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let int = |s: &str| s.parse::<i64>().map_err(|_| invalid());
        match plain.split(':').collect::<Vec<_>>().as_slice() {
            ["v1", "id", id] => Ok(Cursor::Newest { id: int(id)? }),
            ["v1", "exp", not_after, id] => Ok(Cursor::Expiring { not_after: int(not_after)?, id: int(id)? }),
            _ => Err(invalid()),
        }
    }
}

/// A value to bind, in placeholder order.
enum Value {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

/// WHERE terms and their values; placeholders are numbered as values are added, so in order of first use.
#[derive(Default)]
struct Filter {
    terms: Vec<String>,
    values: Vec<Value>,
}

impl Filter {
    /// Adds a value and returns its placeholder.
    fn value(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }
}

impl Store {
    /// One page of the inventory matching `q`, without DER. See the module documentation for order and cursors.
    pub async fn search_certificates(&self, q: &CertificateQuery) -> Result<Page<CertificateRecord>> {
        if q.limit == 0 {
            return Err(StoreError::Invalid { what: "limit", why: "must be at least 1".into() });
        }
        let limit = q.limit.min(CertificateQuery::MAX_LIMIT);
        let cursor = q.cursor.as_deref().map(Cursor::decode).transpose()?;
        let mut f = Filter::default();

        match &q.name {
            Some(NameMatch::Exact(name)) => {
                let name = normalize_name(name)?;
                let p = f.value(Value::Text(name));
                f.terms.push(format!("id IN (SELECT certificate_id FROM certificate_names WHERE name = {p})"));
            }
            Some(NameMatch::Suffix(suffix)) => {
                let suffix = normalize_name(suffix)?;
                let suffix = suffix.trim_start_matches("*.").trim_start_matches('.');
                if suffix.is_empty() {
                    return Err(StoreError::Invalid { what: "name suffix", why: "empty".into() });
                }
                let reversed: String = suffix.chars().rev().collect();
                // The name itself, or a name ending in "." + suffix: reversed, [r, r + "/") holds both ('/' is the
                // byte after '.'), plus names ending in e.g. "-" + suffix, which the last term drops.
                let col = match self.backend() {
                    Backend::Sqlite => "name_reversed",
                    // The range must be in byte order whatever the database's default collation (en_US, for
                    // one, ignores dots). certificate_names_by_suffix serves it only if it is in "C" too.
                    Backend::Postgres => "name_reversed COLLATE \"C\"",
                };
                let exact = f.value(Value::Text(reversed.clone()));
                let end = f.value(Value::Text(format!("{reversed}/")));
                let below = f.value(Value::Text(format!("{reversed}.")));
                f.terms.push(format!(
                    "id IN (SELECT certificate_id FROM certificate_names WHERE {col} >= {exact} AND {col} < {end} \
                     AND ({col} = {exact} OR {col} >= {below}))"
                ));
            }
            None => {}
        }
        if let Some(serial) = &q.serial {
            let serial = normalize_serial(serial)?;
            let p = f.value(Value::Text(serial));
            f.terms.push(format!("serial = {p}"));
        }
        if let Some(spki) = &q.spki_sha256 {
            if spki.len() != 32 {
                return Err(StoreError::Invalid { what: "SPKI hash", why: "must be SHA-256 (32 bytes)".into() });
            }
            let p = f.value(Value::Bytes(spki.clone()));
            f.terms.push(format!("spki_sha256 = {p}"));
        }
        if let Some(status) = q.status {
            let p = f.value(Value::Text(status.as_str().to_owned()));
            f.terms.push(format!("status = {p}"));
        }
        if let Some(account) = q.account_id {
            let p = f.value(Value::Int(account.get()));
            f.terms.push(format!("account_id = {p}"));
        }

        let order = if let Some(window) = q.expiring_within {
            let now = self.now();
            let until = now.saturating_add(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
            f.terms.push(LIVE.to_owned());
            let (from, to) = (f.value(Value::Int(now)), f.value(Value::Int(until)));
            f.terms.push(format!("not_after >= {from} AND not_after <= {to}"));
            match cursor {
                None => {}
                Some(Cursor::Expiring { not_after, id }) => {
                    let (a, i) = (f.value(Value::Int(not_after)), f.value(Value::Int(id)));
                    f.terms.push(format!("not_after >= {a} AND (not_after > {a} OR id > {i})"));
                }
                Some(Cursor::Newest { .. }) => return Err(wrong_order()),
            }
            "not_after ASC, id ASC"
        } else {
            match cursor {
                None => {}
                Some(Cursor::Newest { id }) => {
                    let p = f.value(Value::Int(id));
                    f.terms.push(format!("id < {p}"));
                }
                Some(Cursor::Expiring { .. }) => return Err(wrong_order()),
            }
            "id DESC"
        };

        // SQLite, without statistics, prefers certificates_by_status for the `status IN (…)` term and then sorts
        // every live certificate in the window; the partial index yields them already in order. (With a name,
        // serial, key or account filter, the planner's choice of that filter's index is the right one.)
        let table = match self.backend() {
            Backend::Sqlite
                if q.expiring_within.is_some()
                    && q.name.is_none()
                    && q.serial.is_none()
                    && q.spki_sha256.is_none()
                    && q.account_id.is_none() =>
            {
                "certificates INDEXED BY certificates_live_by_expiry"
            }
            _ => "certificates",
        };
        let mut sql = format!("SELECT {} FROM {table}", *LIST_COLUMNS);
        if !f.terms.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&f.terms.join(" AND "));
        }
        // One row more than the page, to know whether another page follows.
        let p = f.value(Value::Int(i64::from(limit) + 1));
        sql.push_str(&format!(" ORDER BY {order} LIMIT {p}"));

        let mut query = sqlx::query(&sql);
        for value in f.values {
            query = match value {
                Value::Int(v) => query.bind(v),
                Value::Text(v) => query.bind(v),
                Value::Bytes(v) => query.bind(v),
            };
        }
        let rows = query.fetch_all(self.pool()).await?;
        let mut items = rows.iter().map(certificate_from_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|last| {
                let cursor = if q.expiring_within.is_some() {
                    Cursor::Expiring { not_after: last.not_after, id: last.id.get() }
                } else {
                    Cursor::Newest { id: last.id.get() }
                };
                cursor.encode()
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

fn wrong_order() -> StoreError {
    StoreError::Invalid { what: "cursor", why: "it belongs to a query in another order".into() }
}

/// A name as `certificate_names` stores it: without its type, lower-case.
fn normalize_name(name: &str) -> Result<String> {
    let bare = ["DNS:", "IP:", "URI:"]
        .iter()
        .find_map(|t| name.get(..t.len()).filter(|p| p.eq_ignore_ascii_case(t)).map(|_| &name[t.len()..]))
        .unwrap_or(name);
    if bare.is_empty() {
        return Err(StoreError::Invalid { what: "name", why: "empty".into() });
    }
    Ok(bare.to_ascii_lowercase())
}

/// A serial as the inventory stores it: lower-case hex, no separators.
fn normalize_serial(serial: &str) -> Result<String> {
    let hex: String = serial.chars().filter(|&c| c != ':').collect::<String>().to_ascii_lowercase();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::Invalid { what: "serial", why: "must be hex".into() });
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for c in [Cursor::Newest { id: 42 }, Cursor::Expiring { not_after: -5, id: i64::MAX }] {
            assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        }
        for bad in ["", "!!", "djE6aWQ6", "djI6aWQ6MQ", &URL_SAFE_NO_PAD.encode("v1:id:1:2"), &"A".repeat(100)] {
            assert!(matches!(Cursor::decode(bad), Err(StoreError::Invalid { what: "cursor", .. })), "{bad}");
        }
    }

    #[test]
    fn names_and_serials_are_normalized() {
        assert_eq!(normalize_name("DNS:WWW.Example.COM").unwrap(), "www.example.com");
        assert_eq!(normalize_name("ip:2001:db8::1").unwrap(), "2001:db8::1");
        assert_eq!(normalize_name("2001:db8::1").unwrap(), "2001:db8::1");
        assert!(normalize_name("DNS:").is_err());
        assert_eq!(normalize_serial("0A:bc").unwrap(), "0abc");
        assert!(normalize_serial("xyz").is_err());
        assert_eq!(LIST_COLUMNS.matches("NULL AS certificate_der").count(), 1);
    }
}
