//! Mail domains and email addresses in the store (issue 15), written once for both backends over an [`Executor`].
//!
//! Uniqueness is the database's: a domain is one row per (account, region) (`mail_domains_domain`), an address one
//! row per organization (`email_addresses` primary key), and an address's domain must be registered to its
//! organization (foreign key, which also refuses to deregister a domain that still has addresses). Writes that
//! check a count or the default domain first take a row lock on the user or organization they concern, so
//! concurrent writers from several replicas are serialised where a count or a read decides.

use async_trait::async_trait;

use super::executor::Executor;
use super::sql::*;
use super::{Idempotency, StoreError};
use crate::domain::{Cursor, User};
use crate::mail::{EmailAddress, MailDomain, Verification};

/// The columns [`mail_domain`] decodes, in its order.
macro_rules! domain_columns {
    () => {
        "org_id, account, region, domain_key, is_test_domain, ownership_status, dkim_status, ownership_token, \
         dkim_tokens, created_ms"
    };
}

/// The columns [`email_address`] decodes, in its order.
macro_rules! address_columns {
    () => {
        "org_id, entity_id, address, is_primary, created_ms"
    };
}

fn mail_domain(r: &dyn SqlRow) -> Result<MailDomain, StoreError> {
    Ok(MailDomain {
        org_id: r.text(0)?,
        account: r.text(1)?,
        region: r.text(2)?,
        domain: r.text(3)?,
        is_test_domain: r.flag(4)?,
        ownership: Verification::parse(&r.text(5)?),
        dkim: Verification::parse(&r.text(6)?),
        ownership_token: r.text(7)?,
        dkim_tokens: serde_json::from_str(&r.text(8)?).unwrap_or_default(),
        created_ms: r.int(9)?,
    })
}

fn email_address(r: &dyn SqlRow) -> Result<EmailAddress, StoreError> {
    Ok(EmailAddress {
        org_id: r.text(0)?,
        entity_id: r.text(1)?,
        address: r.text(2)?,
        is_primary: r.flag(3)?,
        created_ms: r.int(4)?,
    })
}

/// Inserts a domain row.
pub fn insert_domain(d: &MailDomain) -> Result<Step, StoreError> {
    let insert = stmt!(concat!(
        "INSERT INTO mail_domains (",
        domain_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ));
    let args = args![
        &d.org_id,
        &d.account,
        &d.region,
        &d.domain,
        d.is_test_domain,
        d.ownership.as_str(),
        d.dkim.as_str(),
        &d.ownership_token,
        json(&d.dkim_tokens)?,
        d.created_ms,
    ];
    Ok((insert, args))
}

/// Inserts an address row.
pub fn insert_address(a: &EmailAddress) -> Step {
    let insert = stmt!(
        "INSERT INTO email_addresses (org_id, address_key, address, domain_key, entity_id, is_primary, created_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    );
    let args = args![
        &a.org_id,
        a.key(),
        &a.address,
        a.domain_key(),
        &a.entity_id,
        a.is_primary,
        a.created_ms,
    ];
    (insert, args)
}

/// Inserts a written user's primary address unless its organization is Deleted (a Deleted organization holds no
/// domains and no addresses: DeleteOrganization released them).
pub fn insert_primary_address(a: &EmailAddress) -> Step {
    let insert = stmt!(
        "INSERT INTO email_addresses (org_id, address_key, address, domain_key, entity_id, is_primary, created_ms) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS \
         (SELECT 1 FROM organizations WHERE id = ?1 AND state <> 'Deleted')"
    );
    let args = args![
        &a.org_id,
        a.key(),
        &a.address,
        a.domain_key(),
        &a.entity_id,
        a.is_primary,
        a.created_ms,
    ];
    (insert, args)
}

/// Releases every address of a user (deregistration, deletion).
pub fn release_addresses(user_id: &str) -> Step {
    let release = stmt!("DELETE FROM email_addresses WHERE entity_id = ?1");
    (release, args![user_id])
}

/// Removes an organization's addresses and domains (DeleteOrganization: the domains become free).
pub fn release_organization(org_id: &str) -> Vec<Step> {
    vec![
        (
            stmt!("DELETE FROM email_addresses WHERE org_id = ?1"),
            args![org_id],
        ),
        (
            stmt!("DELETE FROM mail_domains WHERE org_id = ?1"),
            args![org_id],
        ),
    ]
}

/// A lock on the user's row until the transaction ends (PostgreSQL; SQLite has one writer).
fn lock_user(user_id: &str) -> Step {
    let lock =
        stmt!("UPDATE users SET credential_generation = credential_generation WHERE id = ?1");
    (lock, args![user_id])
}

/// A lock on the organization's row until the transaction ends.
fn lock_org(org_id: &str) -> Step {
    let lock =
        stmt!("UPDATE organizations SET default_mail_domain = default_mail_domain WHERE id = ?1");
    (lock, args![org_id])
}

/// The keyset position after `after` (before everything when `None`).
fn position(after: Option<Cursor>) -> (i64, String) {
    after.map_or((i64::MIN, String::new()), |c| (c.created_ms, c.id))
}

/// How a deregistration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deregistered {
    Done,
    /// No such domain of the organization.
    NotRegistered,
    /// The organization's default domain.
    Default,
}

#[async_trait]
pub trait MailStore: Send + Sync {
    /// Inserts an organization with exactly these domain rows (an import keeps the source's domains, their
    /// verification state and DNS values), in one transaction. `Conflict::MailDomain` when the partition already
    /// has one of them (then nothing is written).
    async fn create_organization_with_domains(
        &self,
        org: crate::domain::Organization,
        domains: Vec<MailDomain>,
    ) -> Result<(), StoreError>;
    /// The domain row of a partition, whichever organization holds it.
    async fn mail_domain_in_partition(
        &self,
        account: &str,
        region: &str,
        domain: &str,
    ) -> Result<Option<MailDomain>, StoreError>;
    /// Registers a domain and, with a ClientToken, remembers the token in the same transaction.
    /// `Conflict::MailDomain` when the partition already has it (then nothing is written).
    async fn insert_mail_domain(
        &self,
        domain: MailDomain,
        idempotency: Option<Idempotency>,
    ) -> Result<(), StoreError>;
    async fn get_mail_domain(
        &self,
        org_id: &str,
        domain: &str,
    ) -> Result<Option<MailDomain>, StoreError>;
    /// The organization's domains after `after` in (created, domain) order, at most `limit`.
    async fn list_mail_domains(
        &self,
        org_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<MailDomain>, StoreError>;
    /// Deregisters a domain that is not the default; `Conflict::Reference` while addresses use it.
    async fn deregister_mail_domain(
        &self,
        org_id: &str,
        domain: &str,
    ) -> Result<Deregistered, StoreError>;
    /// Marks a domain VERIFIED (ownership and DKIM); `false` when the organization has no such domain.
    async fn verify_mail_domain(&self, org_id: &str, domain: &str) -> Result<bool, StoreError>;
    /// Makes a verified domain the default; `false` when it is not (any longer) a verified domain of the organization.
    async fn set_default_mail_domain(&self, org_id: &str, domain: &str)
    -> Result<bool, StoreError>;
    /// The live organizations with this verified domain, at most `limit` (any partition).
    async fn organizations_with_domain(
        &self,
        domain: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Adds an alias while the user has fewer than `max_aliases` and is ENABLED; `false` otherwise.
    /// `Conflict::Email` when the address is taken, `Conflict::Reference` when its domain is not registered.
    async fn create_alias(
        &self,
        address: EmailAddress,
        max_aliases: i64,
    ) -> Result<bool, StoreError>;
    /// Removes an alias of the user (never the primary address); whether one was removed.
    async fn delete_alias(
        &self,
        org_id: &str,
        user_id: &str,
        address: &str,
    ) -> Result<bool, StoreError>;
    /// The user's aliases (not the primary address) after `after` in (created, address) order.
    async fn list_aliases(
        &self,
        user_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<EmailAddress>, StoreError>;
    /// Who holds an address of the organization.
    async fn find_address(
        &self,
        org_id: &str,
        address: &str,
    ) -> Result<Option<EmailAddress>, StoreError>;
    /// Makes `address` the user's primary address; the previous primary becomes an alias (and an alias equal to
    /// the new address stops being one). `Conflict::Email` / `Conflict::Reference` as for [`Self::create_alias`].
    async fn set_primary_address(&self, address: EmailAddress) -> Result<(), StoreError>;
    /// The user an address (primary or alias) of the organization belongs to.
    async fn find_user_by_address(
        &self,
        org_id: &str,
        address: &str,
    ) -> Result<Option<User>, StoreError>;
    /// Whether the address is one of the user's (verification of a login by alias).
    async fn user_has_address(&self, user_id: &str, address: &str) -> Result<bool, StoreError>;
}

#[async_trait]
impl<E: Executor> MailStore for E {
    async fn create_organization_with_domains(
        &self,
        org: crate::domain::Organization,
        domains: Vec<MailDomain>,
    ) -> Result<(), StoreError> {
        let mut steps = vec![insert_org(&org)?];
        for d in &domains {
            steps.push(insert_domain(d)?);
        }
        self.create_org(steps, org, None).await.map(drop)
    }

    async fn mail_domain_in_partition(
        &self,
        account: &str,
        region: &str,
        domain: &str,
    ) -> Result<Option<MailDomain>, StoreError> {
        let get = select!(
            domain_columns,
            "FROM mail_domains WHERE account = ?1 AND region = ?2 AND domain_key = ?3"
        );
        let args = args![account, region, domain.to_ascii_lowercase()];
        self.row(get, args, mail_domain).await
    }

    async fn insert_mail_domain(
        &self,
        d: MailDomain,
        idempotency: Option<Idempotency>,
    ) -> Result<(), StoreError> {
        let mut steps = vec![insert_domain(&d)?];
        if let Some(i) = &idempotency {
            steps.push(claim_client_token(&d.account, &d.region, i));
        }
        self.write(false, steps).await.map(drop)
    }

    async fn get_mail_domain(
        &self,
        org_id: &str,
        domain: &str,
    ) -> Result<Option<MailDomain>, StoreError> {
        let get = select!(
            domain_columns,
            "FROM mail_domains WHERE org_id = ?1 AND domain_key = ?2"
        );
        let args = args![org_id, domain.to_ascii_lowercase()];
        self.row(get, args, mail_domain).await
    }

    async fn list_mail_domains(
        &self,
        org_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<MailDomain>, StoreError> {
        let page = select!(
            domain_columns,
            "FROM mail_domains WHERE org_id = ?1 AND (created_ms, domain_key) > (?2, ?3) \
             ORDER BY created_ms, domain_key LIMIT ?4"
        );
        let (c_ms, c_id) = position(after);
        self.rows(page, args![org_id, c_ms, c_id, limit as i64], mail_domain)
            .await
    }

    async fn deregister_mail_domain(
        &self,
        org_id: &str,
        domain: &str,
    ) -> Result<Deregistered, StoreError> {
        let key = domain.to_ascii_lowercase();
        let delete = stmt!(
            "DELETE FROM mail_domains WHERE org_id = ?1 AND domain_key = ?2 \
             AND domain_key <> (SELECT lower(default_mail_domain) FROM organizations WHERE id = ?1)"
        );
        let steps = vec![lock_org(org_id), (delete, args![org_id, &key])];
        if self.write(true, steps).await? > 0 {
            return Ok(Deregistered::Done);
        }
        Ok(match self.get_mail_domain(org_id, &key).await? {
            Some(_) => Deregistered::Default,
            None => Deregistered::NotRegistered,
        })
    }

    async fn verify_mail_domain(&self, org_id: &str, domain: &str) -> Result<bool, StoreError> {
        let verify = stmt!(
            "UPDATE mail_domains SET ownership_status = 'VERIFIED', dkim_status = 'VERIFIED' \
             WHERE org_id = ?1 AND domain_key = ?2"
        );
        let args = args![org_id, domain.to_ascii_lowercase()];
        Ok(self.write1(true, verify, args).await? > 0)
    }

    async fn set_default_mail_domain(
        &self,
        org_id: &str,
        domain: &str,
    ) -> Result<bool, StoreError> {
        let set = stmt!(
            "UPDATE organizations SET default_mail_domain = ?2 WHERE id = ?1 AND EXISTS \
             (SELECT 1 FROM mail_domains WHERE org_id = ?1 AND domain_key = ?2 AND ownership_status = 'VERIFIED')"
        );
        let args = args![org_id, domain.to_ascii_lowercase()];
        // The organization's row is locked first, so the check below reads after any deregistration that held it.
        Ok(self
            .write(true, vec![lock_org(org_id), (set, args)])
            .await?
            > 0)
    }

    async fn organizations_with_domain(
        &self,
        domain: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let find = stmt!(
            "SELECT d.org_id FROM mail_domains d JOIN organizations o ON o.id = d.org_id \
             WHERE d.domain_key = ?1 AND d.ownership_status = 'VERIFIED' AND o.state = 'Active' \
             ORDER BY d.org_id LIMIT ?2"
        );
        let args = args![domain.to_ascii_lowercase(), limit as i64];
        self.rows(find, args, |r| r.text(0)).await
    }

    async fn create_alias(&self, a: EmailAddress, max_aliases: i64) -> Result<bool, StoreError> {
        let insert = stmt!(
            "INSERT INTO email_addresses (org_id, address_key, address, domain_key, entity_id, is_primary, created_ms) \
             SELECT ?1, ?2, ?3, ?4, ?5, FALSE, ?6 \
             WHERE (SELECT COUNT(*) FROM email_addresses WHERE entity_id = ?5 AND is_primary = FALSE) < ?7 \
             AND EXISTS (SELECT 1 FROM users WHERE id = ?5 AND state = 'ENABLED')"
        );
        let args = args![
            &a.org_id,
            a.key(),
            &a.address,
            a.domain_key(),
            &a.entity_id,
            a.created_ms,
            max_aliases,
        ];
        let steps = vec![lock_user(&a.entity_id), (insert, args)];
        Ok(self.write(false, steps).await? > 0)
    }

    async fn delete_alias(
        &self,
        org_id: &str,
        user_id: &str,
        address: &str,
    ) -> Result<bool, StoreError> {
        let delete = stmt!(
            "DELETE FROM email_addresses WHERE org_id = ?1 AND entity_id = ?2 AND address_key = ?3 \
             AND is_primary = FALSE"
        );
        let args = args![org_id, user_id, address.to_ascii_lowercase()];
        Ok(self.write1(true, delete, args).await? > 0)
    }

    async fn list_aliases(
        &self,
        user_id: &str,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<EmailAddress>, StoreError> {
        let page = select!(
            address_columns,
            "FROM email_addresses WHERE entity_id = ?1 AND is_primary = FALSE \
             AND (created_ms, address_key) > (?2, ?3) ORDER BY created_ms, address_key LIMIT ?4"
        );
        let (c_ms, c_id) = position(after);
        let args = args![user_id, c_ms, c_id, limit as i64];
        self.rows(page, args, email_address).await
    }

    async fn find_address(
        &self,
        org_id: &str,
        address: &str,
    ) -> Result<Option<EmailAddress>, StoreError> {
        let find = select!(
            address_columns,
            "FROM email_addresses WHERE org_id = ?1 AND address_key = ?2"
        );
        let args = args![org_id, address.to_ascii_lowercase()];
        self.row(find, args, email_address).await
    }

    async fn set_primary_address(&self, a: EmailAddress) -> Result<(), StoreError> {
        let demote = stmt!(
            "UPDATE email_addresses SET is_primary = FALSE WHERE entity_id = ?1 AND is_primary = TRUE"
        );
        let drop_alias = stmt!(
            "DELETE FROM email_addresses WHERE org_id = ?1 AND address_key = ?2 AND entity_id = ?3"
        );
        let set_user = stmt!("UPDATE users SET email = ?2, email_key = ?3 WHERE id = ?1");
        let steps = vec![
            lock_user(&a.entity_id),
            (demote, args![&a.entity_id]),
            (drop_alias, args![&a.org_id, a.key(), &a.entity_id]),
            insert_address(&EmailAddress {
                is_primary: true,
                ..a.clone()
            }),
            (set_user, args![&a.entity_id, &a.address, a.key()]),
        ];
        self.write(false, steps).await.map(drop)
    }

    async fn find_user_by_address(
        &self,
        org_id: &str,
        address: &str,
    ) -> Result<Option<User>, StoreError> {
        let find = stmt!(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = (SELECT entity_id FROM email_addresses WHERE org_id = ?1 AND address_key = ?2)"
        ));
        let args = args![org_id, address.to_ascii_lowercase()];
        self.row(find, args, user).await
    }

    async fn user_has_address(&self, user_id: &str, address: &str) -> Result<bool, StoreError> {
        let find = stmt!("SELECT 1 FROM email_addresses WHERE entity_id = ?1 AND address_key = ?2");
        let args = args![user_id, address.to_ascii_lowercase()];
        Ok(self.row(find, args, |r| r.int(0)).await?.is_some())
    }
}
