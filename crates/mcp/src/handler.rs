//! The MCP server handler: tools, prompts, resources and tasks, each answered for the calling
//! credential. The tenant and scopes come only from the credential; every call goes through
//! [`Core::call`], which re-checks the credential, the scope and the approval rules.

use crate::limits::{CallLimiter, Limits};
use crate::{prompts, resources, results, tasks, tools};
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, CreateTaskResult,
    GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult, Implementation,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, Task, TaskStatus,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};
use serde_json::{Value, json};
use std::sync::Arc;
use tenantops_core::{Core, Error, Outcome, Principal};

/// Where a request's caller comes from.
#[derive(Clone)]
pub enum Caller {
    /// One credential for the whole connection (stdio), re-checked on every request.
    Fixed(Principal),
    /// Each HTTP request's own credential, authenticated by the HTTP layer and handed over in
    /// the request's extensions.
    PerRequest,
}

/// The tenantops MCP server for one connection (stdio) or one session (HTTP).
#[derive(Clone)]
pub struct McpServer {
    core: Core,
    caller: Caller,
    limits: Arc<Limits>,
    limiter: Arc<CallLimiter>,
}

const INSTRUCTIONS: &str = "tenantops: the ProjexCloud Tenant Admin console as tools. You see only \
the tools your credential's scopes allow, and you act only in your credential's tenant. Read tools \
are safe to call. Destructive tools (and any the tenant routes through approvals) never run on the \
first call: they return a pending approval request that a second human decides in Slack, Discord, \
the console or the CLI. You cannot approve anything yourself. Follow a pending request with \
approvals.get (or tasks/get if your client supports tasks) until it is final. The prompts walk \
through the guide's workflows.";

impl McpServer {
    /// A server answering for `caller`.
    pub fn new(core: Core, caller: Caller, limits: Limits) -> Self {
        let limiter = Arc::new(CallLimiter::new(&limits));
        Self {
            core,
            caller,
            limits: Arc::new(limits),
            limiter,
        }
    }

    /// A server sharing this one's limits and rate-limit buckets (one per HTTP session).
    pub fn sibling(&self) -> Self {
        self.clone()
    }

    /// The current caller, re-checked.
    async fn principal(&self, ctx: &RequestContext<RoleServer>) -> Result<Principal, McpError> {
        match &self.caller {
            Caller::Fixed(p) => self.core.refresh(p).await.map_err(|e| match e {
                Error::Unauthenticated(reason) => {
                    McpError::invalid_request(format!("unauthenticated: {reason}"), None)
                }
                other => {
                    tracing::error!(error = %other, "re-checking the MCP credential failed");
                    McpError::internal_error(
                        "could not check your credential; see the server log",
                        None,
                    )
                }
            }),
            Caller::PerRequest => ctx
                .extensions
                .get::<http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Principal>())
                .cloned()
                .ok_or_else(|| {
                    McpError::invalid_request("no authenticated credential on this request", None)
                }),
        }
    }

    /// Runs one catalogue operation for `principal`, within the call timeout.
    async fn run(
        &self,
        principal: &Principal,
        op: &str,
        input: Value,
    ) -> Result<Result<Outcome, Error>, ()> {
        tokio::time::timeout(
            self.limits.call_timeout,
            self.core.call(principal, op, input),
        )
        .await
        .map_err(|_| ())
    }

    fn timed_out(&self, op: &str) -> rmcp::model::CallToolResult {
        results::tool_error(
            "timeout",
            format!(
                "`{op}` did not finish within {} s and was abandoned; if it had already committed, \
                 audit.list shows it. Retry later or with a narrower input.",
                self.limits.call_timeout.as_secs()
            ),
        )
    }

    /// Reads an operation's output for resources and tasks: `Done` or an MCP error.
    pub(crate) async fn read_op(
        &self,
        principal: &Principal,
        op: &str,
        input: Value,
    ) -> Result<Value, McpError> {
        match self.run(principal, op, input).await {
            Err(()) => Err(McpError::internal_error(format!("`{op}` timed out"), None)),
            Ok(Ok(Outcome::Done { output })) => Ok(output),
            Ok(Ok(Outcome::Denied { reason })) => {
                Err(McpError::invalid_params(format!("denied: {reason}"), None))
            }
            Ok(Ok(Outcome::PendingApproval { request_id, .. })) => Err(McpError::invalid_request(
                format!(
                    "reading this waits for approval request {request_id}; use the tool instead"
                ),
                None,
            )),
            Ok(Err(e)) => Err(match results::error(e) {
                Ok(r) => McpError::invalid_params(
                    r.structured_content
                        .as_ref()
                        .and_then(|v| v.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("invalid request")
                        .to_owned(),
                    None,
                ),
                Err(e) => e,
            }),
        }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_tasks()
            .build();
        let mut info = ServerConfig::new(capabilities).with_instructions(INSTRUCTIONS);
        let mut implementation = Implementation::default();
        implementation.name = "tenantops".into();
        implementation.title = Some("tenantops — ProjexCloud tenant admin".into());
        implementation.version = env!("CARGO_PKG_VERSION").into();
        info.server_info = implementation;
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = self.principal(&ctx).await?;
        Ok(ListToolsResult::with_all_items(tools::visible(&principal)))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::all().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let principal = self.principal(&ctx).await?;
        let name = request.name.as_ref();
        if tenantops_core::catalogue::find(name).is_none() {
            return Err(McpError::invalid_params(
                format!("unknown tool `{name}`; tools/list shows the tools you may call"),
                None,
            ));
        }
        if let Err(message) = self.limiter.check(&principal) {
            return Ok(results::tool_error("rate_limited", message).into());
        }
        let input = Value::Object(request.arguments.unwrap_or_default());
        let outcome = match self.run(&principal, name, input).await {
            Err(()) => return Ok(self.timed_out(name).into()),
            Ok(Err(e)) => return results::error(e).map(Into::into),
            Ok(Ok(outcome)) => outcome,
        };
        if let Outcome::PendingApproval {
            request_id,
            summary,
            expires_at,
            ..
        } = &outcome
            && ctx
                .client_capabilities()
                .is_some_and(|c| c.supports_tasks())
        {
            let now = chrono::Utc::now();
            let mut task = Task::new(
                request_id.clone(),
                TaskStatus::Working,
                now.to_rfc3339(),
                now.to_rfc3339(),
            )
            .with_status_message(format!("waiting for approval: {summary}"))
            .with_poll_interval_ms(tasks::POLL_INTERVAL_MS);
            if let Ok(expires) = chrono::DateTime::parse_from_rfc3339(expires_at) {
                task = task.with_ttl_ms(tasks::ttl_ms(now, expires.to_utc()));
            }
            return Ok(CallToolResponse::Task(CreateTaskResult::new(task)));
        }
        Ok(results::outcome(outcome).into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let principal = self.principal(&ctx).await?;
        let view = self
            .read_op(
                &principal,
                "approvals.get",
                json!({ "request_id": request.task_id }),
            )
            .await?;
        Ok(GetTaskResult::new(tasks::detailed(&view)))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let principal = self.principal(&ctx).await?;
        self.read_op(
            &principal,
            "approvals.withdraw",
            json!({ "request_id": request.task_id }),
        )
        .await
        .map(|_| ())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.principal(&ctx).await?;
        let prompts = prompts::list().map_err(|e| {
            tracing::error!(error = %e, "prompt templates are malformed");
            McpError::internal_error("prompt templates are unavailable", None)
        })?;
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.principal(&ctx).await?;
        prompts::get(&request.name, request.arguments.as_ref())
            .map(Into::into)
            .map_err(|e| McpError::invalid_params(e.to_string(), None))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let principal = self.principal(&ctx).await?;
        resources::list(self, &principal).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let principal = self.principal(&ctx).await?;
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(&principal),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let principal = self.principal(&ctx).await?;
        resources::read(self, &principal, &request.uri)
            .await
            .map(Into::into)
    }
}
