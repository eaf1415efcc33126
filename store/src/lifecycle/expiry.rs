//! Certificates move along by age: `active → expiring_soon → expired`, for every certificate in the inventory
//! whatever its source; and "what expires within N days" with the renewal state of those Castellan manages.

use super::model::{Expiring, MANAGED_COLUMNS, SweepReport, managed_from_row};
use super::queue::EXPIRING_SOON;
use crate::Store;
use crate::error::Result;
use crate::ids::CertificateId;
use crate::inventory::{CertificateQuery, Page};
use crate::write::Durability;
use std::collections::HashMap;

impl Store {
    /// Moves live certificates past their notAfter to `expired`, and active ones in the last third of their life to
    /// `expiring_soon`.
    pub async fn sweep_certificate_states(&self) -> Result<SweepReport> {
        let mut tx = self.begin_write(Durability::Relaxed).await?;
        let now = tx.now;
        let expired = sqlx::query(
            "UPDATE certificates SET status = 'expired', updated_at = $1 \
             WHERE status IN ('active', 'expiring_soon', 'renewing') AND not_after < $1",
        )
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        let expiring_soon = sqlx::query(&format!(
            "UPDATE certificates SET status = 'expiring_soon', updated_at = $1 WHERE status = 'active' AND {EXPIRING_SOON}"
        ))
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(SweepReport { expiring_soon, expired })
    }

    /// Live certificates expiring within the window, soonest first, each with its managed certificate if
    /// Castellan manages it. `q` is an inventory query with `expiring_within` set.
    pub async fn expiring_certificates(&self, q: &CertificateQuery) -> Result<Page<Expiring>> {
        let page = self.search_certificates(q).await?;
        let ids: Vec<CertificateId> = page.items.iter().map(|c| c.id).collect();
        let mut managed = self.managed_by_certificates(&ids).await?;
        let items = page
            .items
            .into_iter()
            .map(|certificate| Expiring { managed: managed.remove(&certificate.id), certificate })
            .collect();
        Ok(Page { items, next_cursor: page.next_cursor })
    }

    /// The active managed certificates whose current certificate is one of `ids`.
    pub async fn managed_by_certificates(
        &self,
        ids: &[CertificateId],
    ) -> Result<HashMap<CertificateId, super::ManagedRecord>> {
        let mut found = HashMap::new();
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {MANAGED_COLUMNS} FROM managed_certificates WHERE status = 'active' \
                 AND current_certificate_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.pool()).await? {
                let record = managed_from_row(&row)?;
                if let Some(current) = record.current_certificate_id {
                    found.insert(current, record);
                }
            }
        }
        Ok(found)
    }
}
