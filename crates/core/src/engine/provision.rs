//! Provisioning: a new tenant, its first admin and that admin's key, by the platform.

use crate::clock::to_millis;
use crate::config::DEFAULT_LINK_MIN_AGE_SECS;
use crate::error::{Error, Result};
use crate::ids::{PersonaId, TenantId};
use crate::ledger::{self, Actor, AuditOutcome, Draft};
use crate::principal::PersonaKind;
use crate::proof::Proof;
use crate::scope::ScopeSet;
use crate::{Core, keys, members, roles};
use serde::Serialize;
use serde_json::json;

/// What `tenant create` hands back, once.
#[derive(Debug, Serialize)]
pub struct TenantCreated {
    /// The new tenant.
    pub tenant_id: TenantId,
    /// Its first admin persona.
    pub persona_id: PersonaId,
    /// That persona's API key: shown exactly once.
    pub api_key: String,
}

impl Core {
    /// Creates a tenant, its first admin persona (human, role `tenant-admin`) and that persona's
    /// API key. A platform action: run by whoever operates the deployment.
    pub async fn create_tenant(
        &self,
        name: &str,
        admin_email: Option<&str>,
    ) -> Result<TenantCreated> {
        self.create_tenant_with(name, admin_email, false).await
    }

    /// [`Core::create_tenant`], for a demo tenant when `demo` is set: the chat sandbox may play
    /// anyone there, and a new chat link counts for decisions at once.
    pub async fn create_tenant_with(
        &self,
        name: &str,
        admin_email: Option<&str>,
        demo: bool,
    ) -> Result<TenantCreated> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(Error::bad_input(
                "name",
                "give the tenant a name of 1 to 200 characters",
            ));
        }
        if let Some(e) = admin_email {
            members::validate_email("admin_email", e)?;
        }
        let env = &self.env;
        let now = env.clock.now();
        let tenant = TenantId::generate();
        let signer = env.signer(&tenant)?;
        let (name, admin_email) = (name.to_owned(), admin_email.map(str::to_owned));
        let (tenant_id, env2) = (tenant.clone(), env.clone());
        let (persona, issued) = env
            .write(move |tx| {
                Box::pin(async move {
                    let (tenant, env, name, admin_email) =
                        (tenant_id, env2, name.as_str(), admin_email.as_deref());
                    crate::store::tenants::insert(
                        tx,
                        &crate::store::tenants::NewTenant {
                            id: &tenant,
                            name,
                            created_at: to_millis(now),
                            audit_verifier: &signer.verifier_key(),
                            demo,
                            chat_link_min_age_secs: if demo {
                                0
                            } else {
                                DEFAULT_LINK_MIN_AGE_SECS
                            },
                        },
                    )
                    .await?;
                    ledger::init(tx, &tenant, &signer).await?;
                    // The tenant's first data key, made with it (under the platform key).
                    let (keys, wrapped) = env.vault.first_keys(&tenant)?;
                    crate::store::vault::insert_data_key(
                        tx,
                        &tenant,
                        1,
                        crate::vault::PLATFORM_KEK,
                        &wrapped,
                        to_millis(now),
                    )
                    .await?;
                    let persona = members::insert_persona(
                        tx,
                        &keys,
                        &tenant,
                        now,
                        members::NewPersona {
                            handle: "admin".into(),
                            kind: PersonaKind::Human,
                            display_name: Some("Tenant administrator".into()),
                            email: admin_email.map(str::to_owned),
                            bu: None,
                            roles: vec![members::ADMIN_ROLE.into()],
                        },
                    )
                    .await?;
                    let scopes: ScopeSet = roles::scopes_of([members::ADMIN_ROLE]);
                    // The first admin's own credential: the platform hands it to them and nobody else.
                    let issued = keys::insert_key(
                        tx,
                        &env,
                        &tenant,
                        &persona,
                        &persona,
                        "provisioning",
                        &scopes,
                        None,
                        now,
                        Proof::Own,
                    )
                    .await?;
                    let actor = Actor {
                        persona: None,
                        kind: None,
                        via: "platform".into(),
                        surface: "cli".into(),
                    };
                    env.record(
                        tx,
                        &tenant,
                        now,
                        Draft {
                            actor,
                            op: "tenant.create".into(),
                            outcome: AuditOutcome::Done,
                            detail: json!({
                                "name": name,
                                "demo": demo,
                                "admin_persona": persona,
                                "admin_email": admin_email.map(|_| crate::engine::dispatch::PERSONAL_MARK),
                                "key_id": issued.key_id,
                            }),
                        },
                    )
                    .await?;
                    Ok((persona, issued))
                })
            })
            .await?;
        tracing::info!(tenant = %tenant, persona = %persona, "tenant created");
        Ok(TenantCreated {
            tenant_id: tenant,
            persona_id: persona,
            api_key: issued.secret.expose().to_owned(),
        })
    }
}
