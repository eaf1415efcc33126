//! The hash-chained audit log: read a page at a time, and verified end to end.

use super::views::{AuditEntryView, AuditPage, AuditVerificationView};
use super::{Operator, page_limit};
use crate::error::Result;

impl Operator {
    /// Entries after sequence number `after_seq`, oldest first.
    pub async fn audit_page(&self, after_seq: Option<i64>, limit: Option<i64>) -> Result<AuditPage> {
        let limit = page_limit(limit)?;
        let entries = self.store.audit_page(after_seq.unwrap_or(0), limit).await?;
        let next_after_seq = if entries.len() as i64 == limit { entries.last().map(|e| e.seq) } else { None };
        Ok(AuditPage { entries: entries.iter().map(AuditEntryView::of).collect(), next_after_seq })
    }

    /// The newest `limit` entries, newest first.
    pub async fn audit_tail(&self, limit: Option<i64>) -> Result<AuditPage> {
        let entries = self.store.audit_tail(page_limit(limit)?).await?;
        Ok(AuditPage { entries: entries.iter().map(AuditEntryView::of).collect(), next_after_seq: None })
    }

    /// Recomputes the whole chain; reports the first broken link, if any.
    pub async fn audit_verify(&self) -> Result<AuditVerificationView> {
        Ok(AuditVerificationView::of(&self.store.audit_verify().await?))
    }
}
