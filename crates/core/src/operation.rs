//! Operations: every tenant-admin operation is one type implementing [`Operation`],
//! declaring its name, help, input and output schemas, scope and risk beside its `execute`.
//! Surfaces never list operations themselves; they read the catalogue (`ops::registry`), so a new operation
//! appears in the CLI, MCP tools and chat commands with no surface code.

use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::notify::Notification;
use crate::principal::Principal;
use crate::refs::RefPath;
use crate::scope::Scope;
use crate::vault::keys::TenantKeys;
use crate::{Env, Event, store::Tx};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;

/// How dangerous an operation is; decides MCP annotations and whether two people are needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Reads only.
    Read,
    /// Changes state, reversibly or within the caller's authority.
    Write,
    /// Irreversible or data-exposing: never runs on one person's word.
    Destructive,
}

/// What an operation runs with: its transaction, its caller, the time, and the core's services.
pub struct OpCtx {
    /// The operation's transaction; its audit entry is appended to it before commit.
    pub tx: Tx,
    /// The caller.
    pub principal: Principal,
    /// The time of the call (one instant for the whole operation).
    pub now: DateTime<Utc>,
    /// Shared services and configuration.
    pub env: Arc<Env>,
    /// Every operation (the catalogue), for operations about operations (routes, break-glass).
    specs: &'static [OpSpec],
    /// What the input's references resolved to, by field (`persona` → `ci-bot`): the names
    /// people read in approval requests, since the input itself now carries ids.
    pub names: Map<String, Value>,
    detail: Map<String, Value>,
    effects: Effects,
    /// The tenant's data keys, loaded before the transaction for operations that declare
    /// [`Operation::KEYS`].
    pub(crate) keys: Option<Arc<TenantKeys>>,
    /// Whether `keys` were checked to still be the newest inside this transaction.
    keys_checked: bool,
    /// What [`Operation::prepare`] found, outside any transaction.
    pub(crate) prepared: Value,
}

/// What an operation asks to happen once its transaction has committed.
#[derive(Debug, Default)]
pub struct Effects {
    /// Events for connection-holding surfaces and the approval executor.
    pub events: Vec<Event>,
    /// Notifications for people.
    pub notifications: Vec<Notification>,
}

impl OpCtx {
    pub(crate) fn new(
        tx: Tx,
        principal: Principal,
        now: DateTime<Utc>,
        env: Arc<Env>,
        specs: &'static [OpSpec],
    ) -> Self {
        Self {
            tx,
            principal,
            now,
            env,
            specs,
            names: Map::new(),
            detail: Map::new(),
            effects: Effects::default(),
            keys: None,
            keys_checked: false,
            prepared: Value::Null,
        }
    }

    /// The tenant's data keys, for opening its sealed values.
    pub fn keys(&self) -> Result<Arc<TenantKeys>> {
        self.keys.clone().ok_or_else(|| {
            Error::Internal("an operation used sealed values without declaring KEYS".into())
        })
    }

    /// The tenant's data keys for sealing new values: checked, once per operation, to still be
    /// the newest inside this transaction (a rotation may have committed since they loaded).
    pub async fn sealing_keys(&mut self) -> Result<Arc<TenantKeys>> {
        if !self.keys_checked {
            let keys = self.keys.clone().ok_or_else(|| {
                Error::Internal("an operation sealed values without declaring KEYS".into())
            })?;
            crate::vault::rewrap::check_newest(&mut self.tx, &keys).await?;
            self.keys_checked = true;
        }
        self.keys()
    }

    /// What [`Operation::prepare`] returned (`null` when the operation prepares nothing).
    pub fn prepared(&self) -> &Value {
        &self.prepared
    }

    /// The operation named `name`, if there is one.
    pub fn find(&self, name: &str) -> Option<&'static OpSpec> {
        self.specs.iter().find(|s| s.name == name)
    }

    /// Every operation.
    pub fn catalogue(&self) -> &'static [OpSpec] {
        self.specs
    }

    /// The caller's tenant: the only tenant an operation may touch.
    pub fn tenant(&self) -> &TenantId {
        &self.principal.tenant
    }

    /// Adds a fact to the operation's audit entry (ids, counts — never a secret).
    pub fn audit(&mut self, key: &str, value: impl Serialize) {
        self.detail.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
    }

    /// Queues an event to publish once the operation's transaction has committed.
    pub fn emit(&mut self, event: Event) {
        self.effects.events.push(event);
    }

    /// Queues a notification to deliver once the operation's transaction has committed.
    pub fn notify(&mut self, notification: Notification) {
        self.effects.notifications.push(notification);
    }

    pub(crate) fn into_parts(self) -> (Tx, Map<String, Value>, Effects) {
        (self.tx, self.detail, self.effects)
    }
}

/// One tenant-admin operation.
pub trait Operation: Send + Sync + 'static {
    /// Stable dotted name, e.g. `keys.issue`. A contract: never renamed.
    const NAME: &'static str;
    /// One line, imperative, for lists and tool titles.
    const SUMMARY: &'static str;
    /// Longer help: when to use it, what it changes, what it returns.
    const HELP: &'static str;
    /// The scope a caller needs; `None` for operations every authenticated caller may run.
    const SCOPE: Option<Scope>;
    /// The risk class.
    const RISK: Risk;
    /// Whether repeating the call with the same input has no further effect.
    const IDEMPOTENT: bool = false;
    /// Example inputs as JSON text, shown in help and used by tests.
    const EXAMPLES: &'static [&'static str];

    /// The input type; its JSON Schema is the contract of every surface.
    type Input: DeserializeOwned + JsonSchema + Send;
    /// The output type.
    type Output: Serialize + JsonSchema + Send;

    /// Whether the audit entry records the input verbatim. Bulk operations (usage ingestion)
    /// record its size and SHA-256 instead, and say what they did through `ctx.audit`.
    const AUDIT_INPUT: bool = true;
    /// The largest input accepted, serialised.
    const MAX_INPUT_BYTES: usize = 64 * 1024;

    /// Whether the output carries a secret shown once (a new API key). Such operations cannot
    /// be put behind an approval route: their result would have to be stored until collected.
    const SECRET_OUTPUT: bool = false;

    /// Runs the operation inside `ctx.tx`. Must touch only rows of `ctx.tenant()`.
    fn execute(
        ctx: &mut OpCtx,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output>> + Send;

    /// Facts about a call, computed read-only before it runs, that approval-route conditions
    /// can test (e.g. `estimated_bytes` of an export). None by default.
    fn facts(
        ctx: &mut OpCtx,
        input: &Self::Input,
    ) -> impl Future<Output = Result<Map<String, Value>>> + Send {
        let _ = (ctx, input);
        async { Ok(Map::new()) }
    }

    /// What the call will do, in one sentence for the person asked to approve it. The input's
    /// references are ids by now; `facts["names"]` holds the names they resolved to.
    fn describe(input: &Self::Input, facts: &Map<String, Value>) -> String {
        let _ = (input, facts);
        Self::SUMMARY.to_owned()
    }

    /// Whether the call needs a second person although the operation is not destructive —
    /// growing or shrinking the set of people who may decide approvals, weakening a control.
    /// Only consulted when [`Operation::GUARDED`] is set. Returns why, in one sentence.
    fn second_person(
        ctx: &mut OpCtx,
        input: &Self::Input,
    ) -> impl Future<Output = Result<Option<String>>> + Send {
        let _ = (ctx, input);
        async { Ok(None) }
    }

    /// Whether [`Operation::second_person`] has something to say for this operation.
    const GUARDED: bool = false;

    /// Whether the operation opens or seals values of the tenant (personal data, secrets):
    /// dispatch then loads the tenant's keys before the transaction, and a tenant whose keys
    /// are unavailable (BYOK revoked or unreachable) gets one clear error naming BYOK.
    const KEYS: bool = false;

    /// Whether the operation records a person's decision (approve, break the glass, review):
    /// made only by a human on their own proof, never through MCP — so MCP never offers it.
    const DECISION: bool = false;

    /// Top-level input fields that carry personal data (an email, a display name): their
    /// values are sealed where they are stored and never enter the audit ledger.
    const PERSONAL: &'static [&'static str] = &[];

    /// Whether [`Operation::prepare`] has work to do.
    const PREPARES: bool = false;

    /// Work that must talk to the outside world (a KMS), done before the operation's
    /// transaction and outside it — never inside the writer. Runs on every call (also the one
    /// that only raises an approval request, as a pre-flight check) and again right before an
    /// approved request executes; its result reaches `execute` as [`OpCtx::prepared`]. Must not
    /// return a secret: the result is not audited, but it is held in memory.
    fn prepare(
        env: Arc<Env>,
        tenant: TenantId,
        input: &Self::Input,
    ) -> impl Future<Output = Result<Value>> + Send {
        let _ = (env, tenant, input);
        async { Ok(Value::Null) }
    }
}

/// What is known about a call before it runs.
#[derive(Clone, Debug)]
pub struct Plan {
    /// See [`Operation::facts`].
    pub facts: Map<String, Value>,
    /// See [`Operation::describe`].
    pub summary: String,
}

type Runner = for<'a, 'b> fn(&'a mut OpCtx, &'b Value) -> BoxFuture<'a, Result<Value>>;
type Planner = for<'a, 'b> fn(&'a mut OpCtx, &'b Value) -> BoxFuture<'a, Result<Plan>>;
type Guard = for<'a, 'b> fn(&'a mut OpCtx, &'b Value) -> BoxFuture<'a, Result<Option<String>>>;
type Preparer = fn(Arc<Env>, TenantId, &Value) -> BoxFuture<'static, Result<Value>>;

/// The type-erased description of an operation, as every surface sees it.
#[derive(Clone)]
pub struct OpSpec {
    /// See [`Operation::NAME`].
    pub name: &'static str,
    /// See [`Operation::SUMMARY`].
    pub summary: &'static str,
    /// See [`Operation::HELP`].
    pub help: &'static str,
    /// See [`Operation::SCOPE`].
    pub scope: Option<Scope>,
    /// See [`Operation::RISK`].
    pub risk: Risk,
    /// See [`Operation::IDEMPOTENT`].
    pub idempotent: bool,
    /// See [`Operation::EXAMPLES`].
    pub examples: &'static [&'static str],
    /// JSON Schema of the input.
    pub input_schema: Schema,
    /// JSON Schema of the output.
    pub output_schema: Schema,
    /// See [`Operation::SECRET_OUTPUT`].
    pub secret_output: bool,
    /// See [`Operation::AUDIT_INPUT`].
    pub audit_input: bool,
    /// See [`Operation::MAX_INPUT_BYTES`].
    pub max_input_bytes: usize,
    /// Parses an input without running anything: the same check the operation applies.
    pub validate: fn(Value) -> Result<()>,
    /// Where the input names objects of the tenant ([`crate::refs`]): canonicalised to ids
    /// before anything else happens to a call.
    pub refs: Vec<RefPath>,
    pub(crate) run: Runner,
    pub(crate) plan: Planner,
    pub(crate) guard: Option<Guard>,
    /// See [`Operation::KEYS`].
    pub keys: bool,
    /// See [`Operation::PERSONAL`].
    pub personal: &'static [&'static str],
    /// See [`Operation::DECISION`].
    pub decision: bool,
    pub(crate) prepare: Option<Preparer>,
}

impl std::fmt::Debug for OpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpSpec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Serialize for OpSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("OpSpec", 9)?;
        st.serialize_field("name", self.name)?;
        st.serialize_field("summary", self.summary)?;
        st.serialize_field("help", self.help)?;
        st.serialize_field("scope", &self.scope)?;
        st.serialize_field("risk", &self.risk)?;
        st.serialize_field("idempotent", &self.idempotent)?;
        let examples: Vec<Value> = self
            .examples
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect();
        st.serialize_field("examples", &examples)?;
        st.serialize_field("input_schema", &self.input_schema)?;
        st.serialize_field("output_schema", &self.output_schema)?;
        st.end()
    }
}

/// Parses an operation's input, naming the offending field on failure.
pub fn parse_input<T: DeserializeOwned>(input: Value) -> Result<T> {
    parse_input_ref(&input)
}

/// [`parse_input`] without taking the input: the caller keeps it (for its audit entry).
pub fn parse_input_ref<T: DeserializeOwned>(input: &Value) -> Result<T> {
    // Untracked first: tracking the path copies every map key it passes, which is most of the
    // work on a large batch. Only an input that fails is parsed again, to name its field.
    T::deserialize(input).or_else(|_| {
        serde_path_to_error::deserialize(input).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "input".to_owned()
            } else {
                path
            };
            Error::bad_input(field, e.into_inner().to_string())
        })
    })
}

fn run<'a, O: Operation>(ctx: &'a mut OpCtx, input: &Value) -> BoxFuture<'a, Result<Value>> {
    let input = parse_input_ref::<O::Input>(input);
    Box::pin(async move {
        let output = O::execute(ctx, input?).await?;
        serde_json::to_value(output).map_err(|e| Error::Internal(format!("serialise output: {e}")))
    })
}

fn plan<'a, O: Operation>(ctx: &'a mut OpCtx, input: &Value) -> BoxFuture<'a, Result<Plan>> {
    let input = parse_input_ref::<O::Input>(input);
    Box::pin(async move {
        let input: O::Input = input?;
        let mut facts = O::facts(ctx, &input).await?;
        if !ctx.names.is_empty() {
            facts.insert("names".into(), Value::Object(ctx.names.clone()));
        }
        let summary = O::describe(&input, &facts);
        Ok(Plan { facts, summary })
    })
}

fn guard<'a, O: Operation>(
    ctx: &'a mut OpCtx,
    input: &Value,
) -> BoxFuture<'a, Result<Option<String>>> {
    let input = parse_input_ref::<O::Input>(input);
    Box::pin(async move { O::second_person(ctx, &input?).await })
}

fn prepare<O: Operation>(
    env: Arc<Env>,
    tenant: TenantId,
    input: &Value,
) -> BoxFuture<'static, Result<Value>> {
    let input = parse_input_ref::<O::Input>(input);
    Box::pin(async move { O::prepare(env, tenant, &input?).await })
}

fn schema_for<T: JsonSchema>() -> Schema {
    let settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.into_generator().into_root_schema_for::<T>()
}

/// Describes operation `O` for the catalogue.
pub fn spec<O: Operation>() -> OpSpec {
    let input_schema = schema_for::<O::Input>();
    OpSpec {
        refs: crate::refs::paths(&input_schema),
        name: O::NAME,
        summary: O::SUMMARY,
        help: O::HELP,
        scope: O::SCOPE,
        risk: O::RISK,
        idempotent: O::IDEMPOTENT,
        examples: O::EXAMPLES,
        input_schema,
        output_schema: schema_for::<O::Output>(),
        secret_output: O::SECRET_OUTPUT,
        audit_input: O::AUDIT_INPUT,
        max_input_bytes: O::MAX_INPUT_BYTES,
        validate: |v| parse_input::<O::Input>(v).map(|_| ()),
        run: run::<O>,
        plan: plan::<O>,
        guard: O::GUARDED.then_some(guard::<O> as Guard),
        keys: O::KEYS,
        personal: O::PERSONAL,
        decision: O::DECISION,
        prepare: O::PREPARES.then_some(prepare::<O> as Preparer),
    }
}
