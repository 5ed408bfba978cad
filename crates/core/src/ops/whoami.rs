//! `whoami`: the caller as the core sees it.

use crate::error::{Error, Result};
use crate::members::find_persona;
use crate::operation::{OpCtx, Operation, Risk};
use crate::ops::members::NoInput;
use crate::principal::{PersonaKind, Surface, Via};
use crate::scope::Scope;
use schemars::JsonSchema;
use serde::Serialize;

/// Output of `whoami`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WhoAmIOutput {
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant name.
    pub tenant_name: String,
    /// Persona id.
    pub persona_id: String,
    /// Persona handle.
    pub handle: String,
    /// Persona kind.
    pub kind: PersonaKind,
    /// Roles.
    pub roles: Vec<String>,
    /// Effective scopes of this credential.
    pub scopes: Vec<Scope>,
    /// The credential used.
    pub via: Via,
    /// The surface.
    pub surface: Surface,
}

/// `whoami`.
pub struct WhoAmI;

impl Operation for WhoAmI {
    const NAME: &'static str = "whoami";
    const SUMMARY: &'static str = "Show who you are: tenant, persona, roles and effective scopes";
    const HELP: &'static str = "Shows the tenant and persona this credential acts as, the persona's roles, \
        and the effective scopes of this credential (its own scopes ∩ the persona's role scopes). Needs \
        no scope: use it to debug a 401 or a denial.";
    const SCOPE: Option<Scope> = None;
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = NoInput;
    type Output = WhoAmIOutput;

    async fn execute(ctx: &mut OpCtx, _: NoInput) -> Result<WhoAmIOutput> {
        let tenant = ctx.tenant().clone();
        let name = crate::store::tenants::name(&mut ctx.tx, &tenant)
            .await?
            .ok_or_else(|| Error::Internal("caller's tenant vanished".into()))?;
        let persona = find_persona(
            &mut ctx.tx,
            &tenant,
            "persona",
            ctx.principal.persona.as_str(),
        )
        .await?;
        Ok(WhoAmIOutput {
            tenant_id: tenant.to_string(),
            tenant_name: name,
            persona_id: persona.id.to_string(),
            handle: persona.handle,
            kind: persona.kind,
            roles: persona.roles,
            scopes: ctx.principal.scopes.iter().copied().collect(),
            via: ctx.principal.via.clone(),
            surface: ctx.principal.surface,
        })
    }
}
