//! The ledger as the engine uses it: one entry in a transaction of its own, the verifier key,
//! verification and export.

use crate::Core;
use crate::error::Result;
use crate::ids::TenantId;
use crate::ledger::{self, Actor, AuditOutcome};
use crate::principal::Principal;
use serde_json::Value;

impl Core {
    /// Appends one audit entry for a call that wrote nothing else; returns once it is durable.
    pub(crate) async fn record(
        &self,
        principal: &Principal,
        op: &str,
        outcome: AuditOutcome,
        detail: Value,
    ) -> Result<()> {
        self.env
            .audit(&principal.tenant, actor_of(principal), op, outcome, detail)
            .await
    }

    /// The verifier key the master key derives for a tenant: the trust anchor of its ledger.
    pub fn audit_verifier_key(&self, tenant: &TenantId) -> Result<String> {
        Ok(ledger::signer(&self.env.master, tenant)?.verifier_key())
    }

    /// Verifies a tenant's whole ledger in the database: chain, Merkle tree and signatures.
    pub async fn verify_audit(
        &self,
        tenant: &TenantId,
    ) -> Result<std::result::Result<ledger::verify::Report, ledger::verify::Failure>> {
        self.verify_audit_against(tenant, &[]).await
    }

    /// Like [`Core::verify_audit`], and also checks that checkpoints kept from earlier (signed
    /// notes from `audit.checkpoint`) are consistent with the ledger: no rollback, no rewrite.
    pub async fn verify_audit_against(
        &self,
        tenant: &TenantId,
        trusted: &[String],
    ) -> Result<std::result::Result<ledger::verify::Report, ledger::verify::Failure>> {
        let key = self.audit_verifier_key(tenant)?;
        let mut tx = self.env.store.begin_read().await?;
        let verdict = ledger::verify_db(&mut tx, tenant, &key, trusted).await?;
        tx.rollback().await?;
        Ok(verdict)
    }

    /// Exports a tenant's ledger (entries, checkpoints, verifier key) to `dir`.
    pub async fn export_audit(&self, tenant: &TenantId, dir: &std::path::Path) -> Result<u64> {
        let key = self.audit_verifier_key(tenant)?;
        let mut tx = self.env.store.begin_read().await?;
        let written = ledger::export(&mut tx, tenant, &key, dir).await?;
        tx.rollback().await?;
        Ok(written)
    }
}

/// How a principal appears in the ledger.
pub(crate) fn actor_of(p: &Principal) -> Actor {
    Actor {
        persona: Some(p.persona.to_string()),
        kind: Some(p.kind.as_str().to_owned()),
        via: p.via.to_string(),
        surface: p.surface.as_str().to_owned(),
    }
}
