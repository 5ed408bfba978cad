//! The role-template catalogue, as an operation.

use crate::error::Result;
use crate::operation::{OpCtx, Operation, Risk};
use crate::ops::members::NoInput;
use crate::roles::{RoleTemplate, templates};
use crate::scope::Scope;
use schemars::JsonSchema;
use serde::Serialize;

/// Output of `roles.list_templates`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TemplateList {
    /// Every role template with its scopes.
    pub templates: Vec<RoleTemplate>,
}

/// `roles.list_templates`.
pub struct ListTemplates;

impl Operation for ListTemplates {
    const NAME: &'static str = "roles.list_templates";
    const SUMMARY: &'static str = "List role templates and the scopes each grants";
    const HELP: &'static str = "Lists the role-template catalogue set up at onboarding: each role's name, \
        purpose and exact scopes. Assign roles with members.create_persona or members.assign_roles.";
    const SCOPE: Option<Scope> = Some(Scope::MEMBERS_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = NoInput;
    type Output = TemplateList;

    async fn execute(_: &mut OpCtx, _: NoInput) -> Result<TemplateList> {
        Ok(TemplateList {
            templates: templates(),
        })
    }
}
