//! Accounts (RFC 8555 §7.3): creation, contacts, deactivation and key rollover.

use castellan_acme_proto::types::NewAccount;
use castellan_acme_proto::{Jwk, VerifiedKeyChange};
use castellan_authority::Actor;
use castellan_store::AccountId;
use castellan_store::StoreError;
use castellan_store::acme::{AccountCreation, AccountRecord, AccountStatus};

use super::{Ra, account_actor};
use crate::problem::{AcmeError, ProblemType};

/// Contacts per account; more is a mistake or abuse.
const MAX_CONTACTS: usize = 10;

/// What newAccount did.
pub enum NewAccountOutcome {
    Created(AccountRecord),
    /// The key already has an account (RFC 8555 §7.3.1: 200 with its URL).
    Existing(AccountRecord),
}

impl Ra {
    /// `url` is the newAccount URL the request was signed for: an external account binding must name it too.
    pub async fn new_account(
        &self,
        key: &Jwk,
        request: &NewAccount,
        url: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<NewAccountOutcome, AcmeError> {
        let thumbprint = key.thumbprint();
        if let Some(existing) = self.store().account_by_thumbprint(&thumbprint).await? {
            return Ok(NewAccountOutcome::Existing(existing));
        }
        if request.only_return_existing == Some(true) {
            return Err(AcmeError::new(ProblemType::AccountDoesNotExist, "no account exists with this key"));
        }
        if self.config.external_account_required && request.external_account_binding.is_none() {
            return Err(AcmeError::new(
                ProblemType::ExternalAccountRequired,
                "this server requires an external account binding (RFC 8555 §7.3.4)",
            ));
        }
        if self.config.terms_of_service.is_some() && request.terms_of_service_agreed != Some(true) {
            return Err(AcmeError::new(
                ProblemType::UserActionRequired,
                "the terms of service must be agreed to (termsOfServiceAgreed: true)",
            ));
        }
        let contacts = check_contacts(request.contact.as_deref().unwrap_or_default())?;
        self.limit_new_account(client).await?;
        // A binding is verified even where none is required: it is how an account joins its group.
        let binding = match &request.external_account_binding {
            Some(binding) => Some(self.verify_eab(binding, key, url).await?),
            None => None,
        };
        let new = castellan_store::acme::NewAccount {
            jwk_json: key.canonical_json(),
            jwk_thumbprint: thumbprint,
            contacts,
            terms_agreed: request.terms_of_service_agreed == Some(true),
            group_id: binding.as_ref().map(|b| b.group_id),
            eab_key_id: binding.map(|b| b.key_id),
        };
        match self.store().create_account(&new, Actor::acme("new-account").as_str()).await {
            Ok(AccountCreation::Created(account)) => Ok(NewAccountOutcome::Created(account)),
            Ok(AccountCreation::Existing(account)) => Ok(NewAccountOutcome::Existing(account)),
            // The credential was used (or deleted) by a concurrent newAccount since it was checked.
            Err(StoreError::Conflict { .. } | StoreError::Invalid { .. }) => Err(AcmeError::unauthorized(
                "external account binding: this key id has already been used to create an account",
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn update_contacts(
        &self,
        account: &AccountRecord,
        contacts: &[String],
    ) -> Result<AccountRecord, AcmeError> {
        let contacts = check_contacts(contacts)?;
        Ok(self.store().update_account_contacts(account.id, &contacts, account_actor(account.id).as_str()).await?)
    }

    pub async fn deactivate_account(&self, account: &AccountRecord) -> Result<AccountRecord, AcmeError> {
        Ok(self.store().deactivate_account(account.id, account_actor(account.id).as_str()).await?)
    }

    /// The account a request's "kid" names (`kid` is the URL, for messages); it must exist and be valid.
    pub async fn valid_account(&self, id: AccountId, kid: &str) -> Result<AccountRecord, AcmeError> {
        let account = match self.store().account(id).await {
            Ok(account) => account,
            Err(StoreError::NotFound { .. }) => {
                return Err(AcmeError::new(ProblemType::AccountDoesNotExist, format!("no account has URL {kid:?}")));
            }
            Err(e) => return Err(e.into()),
        };
        match account.status {
            AccountStatus::Valid => Ok(account),
            status => Err(AcmeError::unauthorized(format!("account {kid} is {}", status.as_str()))),
        }
    }

    /// RFC 8555 §7.3.5, after acme-proto checked the inner JWS: the new key must not be any account's key.
    pub async fn change_key(
        &self,
        account: &AccountRecord,
        change: &VerifiedKeyChange,
    ) -> Result<AccountRecord, AcmeError> {
        let new_thumbprint = change.new_key.thumbprint();
        if let Some(other) = self.store().account_by_thumbprint(&new_thumbprint).await? {
            return Err(AcmeError::new(ProblemType::Malformed, "the new key already belongs to an account".to_owned())
                .with_status(axum::http::StatusCode::CONFLICT)
                .with_location_hint(other.id));
        }
        let result = self
            .store()
            .change_account_key(
                account.id,
                &account.jwk_thumbprint,
                &change.new_key.canonical_json(),
                &new_thumbprint,
                account_actor(account.id).as_str(),
            )
            .await;
        match result {
            Ok(account) => Ok(account),
            Err(StoreError::Conflict { .. }) => {
                Err(AcmeError::new(ProblemType::Malformed, "the new key already belongs to an account")
                    .with_status(axum::http::StatusCode::CONFLICT))
            }
            Err(StoreError::Invalid { why, .. }) => Err(AcmeError::unauthorized(why)),
            Err(e) => Err(e.into()),
        }
    }
}

impl AcmeError {
    /// RFC 8555 §7.3.5 asks for the URL of the account that holds the key in Location; the WFE adds it.
    fn with_location_hint(mut self, account_id: AccountId) -> Self {
        self.conflicting_account = Some(account_id);
        self
    }
}

/// RFC 8555 §7.3: "mailto:" URLs with one address and no header fields; other schemes are unsupported.
fn check_contacts(contacts: &[String]) -> Result<Vec<String>, AcmeError> {
    if contacts.len() > MAX_CONTACTS {
        return Err(AcmeError::new(ProblemType::InvalidContact, format!("at most {MAX_CONTACTS} contacts")));
    }
    contacts
        .iter()
        .map(|contact| {
            let Some(address) = contact.strip_prefix("mailto:") else {
                return Err(AcmeError::new(
                    ProblemType::UnsupportedContact,
                    format!("contact {contact:?}: only mailto: contacts are supported"),
                ));
            };
            let plausible = address.len() <= 254
                && !address.contains(['?', ',', ' ', '<', '>', '\r', '\n'])
                && address.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
                });
            if plausible {
                Ok(contact.clone())
            } else {
                Err(AcmeError::new(
                    ProblemType::InvalidContact,
                    format!("contact {contact:?} is not one email address"),
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_single_mailto_addresses() {
        assert!(check_contacts(&["mailto:ops@example.com".into()]).is_ok());
        let kind = |c: &str| check_contacts(&[c.to_owned()]).unwrap_err().kind_suffix().to_owned();
        assert_eq!(kind("tel:+1555"), "unsupportedContact");
        assert_eq!(kind("mailto:a@b.com,c@d.com"), "invalidContact");
        assert_eq!(kind("mailto:a@b.com?subject=x"), "invalidContact");
        assert_eq!(kind("mailto:nobody"), "invalidContact");
        let many: Vec<String> = (0..11).map(|i| format!("mailto:a{i}@b.com")).collect();
        assert_eq!(check_contacts(&many).unwrap_err().kind_suffix(), "invalidContact");
    }
}
