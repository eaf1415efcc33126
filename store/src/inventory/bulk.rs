//! Loading many complete certificates at once (imports, discovery sweeps, benchmarks): multi-row INSERTs in one
//! transaction, instead of `insert_certificate`'s three statements and transaction per certificate.

use super::index_name;
use super::model::NewCertificate;
use crate::error::{Result, StoreError};
use crate::write::Durability;
use crate::{Backend, Store};
use sqlx::Row;
use std::collections::{BTreeSet, HashMap};

/// Rows per INSERT: (certificates, with 18 values each; names, with 3). SQLite's are small because sqlx looks each
/// placeholder up by name, in time linear in the statement's placeholder count, so binding a statement costs the
/// square of its size; statements are cheap in-process anyway. PostgreSQL's are large to save round trips.
fn rows_per_statement(backend: Backend) -> (usize, usize) {
    match backend {
        Backend::Sqlite => (20, 100),
        Backend::Postgres => (250, 1000),
    }
}

impl Store {
    /// Inserts complete certificates — `(certificate, DER, SHA-256 of the DER)` — with status `active`, all in
    /// one transaction: either every row is stored or none is. Returns their ids in the order given. A serial
    /// already used by the same issuer key (in the database or twice in `rows`) is a `Conflict`.
    pub async fn insert_certificates_bulk(&self, rows: &[(NewCertificate, Vec<u8>, Vec<u8>)]) -> Result<Vec<i64>> {
        for (cert, _, _) in rows {
            cert.validate()?;
        }
        let now = self.now();
        let (certificates_per_statement, names_per_statement) = rows_per_statement(self.backend());
        let mut ids = vec![0i64; rows.len()];
        let mut tx = self.begin_write(Durability::Durable).await?;
        for (chunk_index, chunk) in rows.chunks(certificates_per_statement).enumerate() {
            let mut sql = String::from(
                "INSERT INTO certificates (created_at, updated_at, status, issuer_id, issuer_key_id, issuer_dn, serial, \
                 source, profile, subject, sans_json, tbs_sha256, cert_sha256, spki_sha256, certificate_der, \
                 not_before, not_after, account_id, owner, replaces_id) VALUES ",
            );
            let mut n = 1;
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str("($1, $1, 'active'");
                for _ in 0..17 {
                    n += 1;
                    sql.push_str(&format!(", ${n}"));
                }
                sql.push(')');
            }
            sql.push_str(" RETURNING id, issuer_key_id, serial");
            let mut query = sqlx::query(&sql).bind(now);
            for (cert, der, sha256) in chunk {
                query = query
                    .bind(cert.issuer_id)
                    .bind(&cert.issuer_key_id)
                    .bind(&cert.issuer_dn)
                    .bind(&cert.serial)
                    .bind(cert.source.as_str())
                    .bind(&cert.profile)
                    .bind(&cert.subject)
                    .bind(serde_json::to_string(&cert.names).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                    .bind(&cert.tbs_sha256)
                    .bind(sha256)
                    .bind(&cert.spki_sha256)
                    .bind(der)
                    .bind(cert.not_before)
                    .bind(cert.not_after)
                    .bind(cert.account_id)
                    .bind(&cert.owner)
                    .bind(cert.replaces_id);
            }
            let returned = query.fetch_all(&mut **tx).await.map_err(|e| {
                if StoreError::is_unique_violation(&e) {
                    StoreError::Conflict { what: "a serial (or certificate) in this batch".into() }
                } else {
                    e.into()
                }
            })?;
            // RETURNING's order is unspecified (SQLite says so): match rows back by (issuer key, serial).
            let offset = chunk_index * certificates_per_statement;
            let position: HashMap<(&[u8], &str), usize> = chunk
                .iter()
                .enumerate()
                .map(|(i, (c, _, _))| ((c.issuer_key_id.as_slice(), c.serial.as_str()), offset + i))
                .collect();
            if returned.len() != chunk.len() {
                return Err(StoreError::Corrupt(format!(
                    "inserted {} of {} certificates",
                    returned.len(),
                    chunk.len()
                )));
            }
            for row in &returned {
                let (id, key_id, serial): (i64, Vec<u8>, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                let at = position
                    .get(&(key_id.as_slice(), serial.as_str()))
                    .ok_or_else(|| StoreError::Corrupt(format!("RETURNING gave an unknown serial {serial}")))?;
                ids[*at] = id;
            }
        }

        let mut names = Vec::new();
        for ((cert, _, _), id) in rows.iter().zip(&ids) {
            let mut seen = BTreeSet::new();
            for typed in &cert.names {
                let (value, reversed) = index_name(typed);
                if seen.insert(value.clone()) {
                    names.push((*id, value, reversed));
                }
            }
        }
        for chunk in names.chunks(names_per_statement) {
            let mut sql = String::from("INSERT INTO certificate_names (certificate_id, name, name_reversed) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3));
            }
            let mut query = sqlx::query(&sql);
            for (id, value, reversed) in chunk {
                query = query.bind(*id).bind(value).bind(reversed);
            }
            query.execute(&mut **tx).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }
}

impl Store {
    /// Refreshes the query planner's statistics; run it after a bulk load. PostgreSQL's autovacuum gets there
    /// on its own after a while; SQLite never does, and its planner guesses without them.
    pub async fn refresh_statistics(&self) -> Result<()> {
        sqlx::query("ANALYZE").execute(self.pool()).await?;
        Ok(())
    }
}
