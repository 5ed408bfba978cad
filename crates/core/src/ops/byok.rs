//! Guide §9 — BYOK: the tenant's own KMS key wraps its data keys. `byok.configure` names the
//! key, `byok.verify` proves tenantops can use it (and activates it), `byok.rotate` moves to a
//! new key or key version, `byok.revoke` makes the tenant's data unreadable at once, and
//! `byok.disable` goes back to the platform key. Every KMS call happens in `prepare`, outside
//! the transaction; the re-wrap after an activation or a rotation is the vault's background
//! work ([`crate::vault::rewrap`]).

use crate::Env;
use crate::Event;
use crate::clock::{ms_to_rfc3339, to_millis};
use crate::error::{Error, Result};
use crate::ids::TenantId;
use crate::kms::{KeyProvider, KeyRef, KmsError, Provider};
use crate::operation::{OpCtx, Operation, Risk};
use crate::ops::members::NoInput;
use crate::scope::Scope;
use crate::store::vault::{self as db, ByokRow};
use crate::vault::rewrap::{self, Progress};
use crate::vault::{PLATFORM_KEK, kek_name, kms_context};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// One check of a verification.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    /// `credentials`, `describe`, `generate_data_key`, `encrypt` or `decrypt`.
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// What the KMS said, when it failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The console step that fixes it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fix: Option<String>,
}

impl Check {
    fn passed(check: &str) -> Self {
        Self {
            check: check.into(),
            ok: true,
            error: None,
            fix: None,
        }
    }

    fn failed(check: &str, err: &KmsError, provider: Provider) -> Self {
        Self {
            check: check.into(),
            ok: false,
            error: Some(err.to_string()),
            fix: Some(err.fix(provider)),
        }
    }
}

/// The last verification.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LastVerify {
    /// When (RFC 3339).
    pub at: String,
    /// Green or red.
    pub ok: bool,
    /// Each check.
    pub checks: Vec<Check>,
}

/// While the KMS refuses or is out of reach.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Unreachable {
    /// Since when (RFC 3339).
    pub since: String,
    /// What failed and how to fix it.
    pub detail: String,
}

/// One data key of the tenant.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DataKeyView {
    /// Its epoch; the newest seals.
    pub epoch: u32,
    /// What wraps it: `platform`, or `<provider>:<key>`.
    pub wrapped_by: String,
    /// Created at (RFC 3339).
    pub created_at: String,
}

/// Output of `byok.status`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ByokStatus {
    /// `off`, `pending_verify`, `active`, `rotating`, `revoked` or `unreachable`.
    pub state: String,
    /// Whether the tenant's sealed data can be read now.
    pub healthy: bool,
    /// The KMS.
    pub provider: Option<Provider>,
    /// The key's ARN, resource name or URI.
    pub key: Option<String>,
    /// When the configuration last changed (RFC 3339).
    pub changed_at: Option<String>,
    /// The last verification.
    pub last_verify: Option<LastVerify>,
    /// Set while the KMS refuses or is out of reach.
    pub unreachable: Option<Unreachable>,
    /// How far the tenant's values are under the newest key.
    pub rewrap: Progress,
    /// Values moved by the running (or last) re-wrap.
    pub rewrapped: u64,
    /// The tenant's data keys.
    pub data_keys: Vec<DataKeyView>,
    /// How long a replica keeps an unwrapped key: a grant removed upstream stops reads within it.
    pub key_cache_ttl_seconds: u64,
    /// What to do next, when something is to be done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

fn state_of(row: Option<&ByokRow>) -> &str {
    match row {
        None => "off",
        Some(r) if r.state == "revoked" => "revoked",
        Some(r) if r.unreachable_since.is_some() => "unreachable",
        Some(r) => r.state.as_str(),
    }
}

async fn status(ctx: &mut OpCtx) -> Result<ByokStatus> {
    let tenant = ctx.tenant().clone();
    let row = db::byok(&mut ctx.tx, &tenant).await?;
    let keys = db::data_keys(&mut ctx.tx, &tenant).await?;
    let newest = keys.last().map_or(1, |k| k.epoch as u32);
    let rewrap = rewrap::progress(&mut ctx.tx, &tenant, newest).await?;
    let state = state_of(row.as_ref()).to_owned();
    let next_step = match state.as_str() {
        "pending_verify" => Some(
            "grant tenantops the Encrypt, Decrypt and GenerateDataKey permissions on the key, \
             then run byok.verify"
                .to_owned(),
        ),
        "revoked" => Some(
            "restore tenantops' grant on the key, then run byok.verify (or byok.disable once \
             readable)"
                .to_owned(),
        ),
        "unreachable" => row.as_ref().and_then(|r| r.unreachable_detail.clone()),
        _ => None,
    };
    Ok(ByokStatus {
        healthy: matches!(
            state.as_str(),
            "off" | "active" | "rotating" | "pending_verify"
        ),
        provider: row.as_ref().and_then(|r| r.provider.parse().ok()),
        key: row.as_ref().map(|r| r.key_id.clone()),
        changed_at: row.as_ref().map(|r| ms_to_rfc3339(r.updated_at)),
        last_verify: row.as_ref().and_then(|r| {
            Some(LastVerify {
                at: ms_to_rfc3339(r.verified_at?),
                ok: r.verify_ok?,
                checks: r
                    .verify_detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or_default(),
            })
        }),
        unreachable: row.as_ref().and_then(|r| {
            Some(Unreachable {
                since: ms_to_rfc3339(r.unreachable_since?),
                detail: r.unreachable_detail.clone().unwrap_or_default(),
            })
        }),
        rewrapped: row.as_ref().map_or(0, |r| r.rewrapped.max(0) as u64),
        rewrap,
        data_keys: keys
            .iter()
            .map(|k| DataKeyView {
                epoch: k.epoch as u32,
                wrapped_by: k.kek.clone(),
                created_at: ms_to_rfc3339(k.created_at),
            })
            .collect(),
        key_cache_ttl_seconds: ctx.env.vault.ttl().as_secs(),
        next_step,
        state,
    })
}

/// `byok.status`.
pub struct Status;

impl Operation for Status {
    const NAME: &'static str = "byok.status";
    const SUMMARY: &'static str =
        "Show BYOK: provider, key, state, last verification and re-wrap progress";
    const HELP: &'static str = "Shows whether your tenant's data keys are wrapped by your own KMS key (BYOK) \
        or the platform key: the provider and key, the state (off, pending_verify, active, rotating, \
        revoked, unreachable), the last verification with each check, and how many sealed values are \
        already under the newest key.";
    const SCOPE: Option<Scope> = Some(Scope::BYOK_READ);
    const RISK: Risk = Risk::Read;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = NoInput;
    type Output = ByokStatus;

    async fn execute(ctx: &mut OpCtx, _: NoInput) -> Result<ByokStatus> {
        status(ctx).await
    }
}

/// Input of `byok.configure`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigureInput {
    /// `aws`, `gcp` or `azure`.
    pub provider: Provider,
    /// AWS key ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`), GCP key resource name
    /// (`projects/P/locations/L/keyRings/R/cryptoKeys/K`) or Azure Key Vault key URI
    /// (`https://VAULT.vault.azure.net/keys/NAME`).
    pub key: String,
}

/// Output of `byok.configure`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ConfigureOutput {
    /// `pending_verify`.
    pub state: String,
    /// The KMS.
    pub provider: Provider,
    /// The key, normalised.
    pub key: String,
    /// The console steps that grant tenantops the key (then run byok.verify).
    pub grant_steps: Vec<String>,
}

/// The provider's console steps granting tenantops Encrypt, Decrypt and GenerateDataKey.
pub fn grant_steps(provider: Provider) -> Vec<String> {
    let steps: &[&str] = match provider {
        Provider::Aws => &[
            "AWS console → KMS → Customer managed keys → your key → Key policy → Edit",
            "add a statement allowing tenantops' IAM principal kms:Encrypt, kms:Decrypt, \
             kms:GenerateDataKey and kms:DescribeKey on this key",
            "make sure the key is Enabled (not Disabled or Pending deletion)",
        ],
        Provider::Gcp => &[
            "Google Cloud console → Security → Key Management → your key ring → your key → \
             Permissions → Grant access",
            "give tenantops' service account the role Cloud KMS CryptoKey Encrypter/Decrypter \
             (roles/cloudkms.cryptoKeyEncrypterDecrypter) and Cloud KMS Viewer",
            "make sure the key's primary version is Enabled",
        ],
        Provider::Azure => &[
            "Azure portal → Key vaults → your vault → Access control (IAM) → Add role assignment",
            "assign tenantops' app registration the role Key Vault Crypto Service Encryption User \
             (wrapKey, unwrapKey, get) — or, with access policies, grant Get, Wrap Key, Unwrap Key",
            "make sure the key is enabled and its permitted operations include wrapKey and unwrapKey",
        ],
    };
    steps.iter().map(|s| (*s).to_owned()).collect()
}

/// `byok.configure`.
pub struct Configure;

impl Operation for Configure {
    const NAME: &'static str = "byok.configure";
    const SUMMARY: &'static str =
        "Name the KMS key (AWS KMS, GCP Cloud KMS, Azure Key Vault) to bring";
    const HELP: &'static str = "Records your KMS key — an AWS KMS key ARN, a GCP Cloud KMS key resource name \
        or an Azure Key Vault key URI — checked for form, and shows the console steps that grant tenantops \
        Encrypt, Decrypt and GenerateDataKey on it. Nothing changes for your data until byok.verify passes. \
        To move an active BYOK tenant to another key, use byok.rotate.";
    const SCOPE: Option<Scope> = Some(Scope::BYOK_WRITE);
    const RISK: Risk = Risk::Write;
    const IDEMPOTENT: bool = true;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{"provider":"aws","key":"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}"#,
        r#"{"provider":"gcp","key":"projects/acme/locations/europe-west1/keyRings/tenantops/cryptoKeys/data"}"#,
        r#"{"provider":"azure","key":"https://acme-vault.vault.azure.net/keys/tenantops"}"#,
    ];
    type Input = ConfigureInput;
    type Output = ConfigureOutput;

    async fn execute(ctx: &mut OpCtx, input: ConfigureInput) -> Result<ConfigureOutput> {
        let key = parse_key(&ctx.env, input.provider, &input.key, "key")?;
        let tenant = ctx.tenant().clone();
        if let Some(row) = db::byok(&mut ctx.tx, &tenant).await?
            && row.state == "revoked"
        {
            return Err(Error::Conflict(
                "BYOK is revoked; restore the grant and run byok.verify (a second person \
                 approves a restoration) — a new key cannot stand in for the revoked one, which \
                 still wraps the tenant's data"
                    .into(),
            ));
        }
        if let Some(row) = db::byok(&mut ctx.tx, &tenant).await?
            && matches!(row.state.as_str(), "active" | "rotating")
        {
            return Err(Error::Conflict(format!(
                "BYOK is {} with {} key {}; move to another key with byok.rotate, or back to the \
                 platform key with byok.disable",
                row.state, row.provider, row.key_id
            )));
        }
        db::put_byok(
            &mut ctx.tx,
            &tenant,
            key.provider.as_str(),
            &key.id,
            "pending_verify",
            to_millis(ctx.now),
        )
        .await?;
        ctx.audit("provider", key.provider.as_str());
        ctx.audit("key", &key.id);
        Ok(ConfigureOutput {
            state: "pending_verify".into(),
            provider: key.provider,
            grant_steps: grant_steps(key.provider),
            key: key.id,
        })
    }
}

fn parse_key(env: &Env, provider: Provider, text: &str, field: &str) -> Result<KeyRef> {
    KeyRef::parse(provider, text, env.vault.kms().allow_loopback())
        .map_err(|e| Error::bad_input(field, e.to_string()))
}

/// What `prepare` found at the KMS, handed to `execute`: never key material (the data key is
/// only present wrapped).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Prepared {
    provider: Option<Provider>,
    key: String,
    ok: bool,
    checks: Vec<Check>,
    /// The epoch the new data key is for.
    epoch: u32,
    /// The new data key, wrapped by the KMS key (base64).
    wrapped: Option<String>,
}

impl Prepared {
    fn from(ctx: &OpCtx) -> Result<Self> {
        serde_json::from_value(ctx.prepared().clone())
            .map_err(|e| Error::Internal(format!("prepared KMS results unreadable: {e}")))
    }

    fn wrapped(&self) -> Result<Vec<u8>> {
        let w = self
            .wrapped
            .as_deref()
            .ok_or_else(|| Error::Internal("no data key was prepared".into()))?;
        B64.decode(w)
            .map_err(|_| Error::Internal("a prepared data key is not base64".into()))
    }
}

/// Runs the checks of a verification against `key`: metadata, a data key for `epoch`, and an
/// encrypt/decrypt round trip. Green only when all pass.
async fn check_key(env: &Env, tenant: &TenantId, key: &KeyRef, epoch: u32) -> Prepared {
    let mut out = Prepared {
        provider: Some(key.provider),
        key: key.id.clone(),
        epoch,
        ..Default::default()
    };
    let p = key.provider;
    let kms: Arc<dyn KeyProvider> = match env.vault.kms().provider(key) {
        Ok(k) => k,
        Err(e) => {
            out.checks.push(Check::failed("credentials", &e, p));
            return out;
        }
    };
    match kms.describe().await {
        Ok(info) if info.enabled => out.checks.push(Check::passed("describe")),
        Ok(info) => {
            let e = KmsError::KeyDisabled {
                detail: format!("the key's state is {}", info.state),
            };
            out.checks.push(Check::failed("describe", &e, p));
        }
        Err(e) => out.checks.push(Check::failed("describe", &e, p)),
    }
    match kms.generate_data_key(&kms_context(tenant, epoch)).await {
        Ok((_plain, wrapped)) => {
            out.wrapped = Some(B64.encode(wrapped));
            out.checks.push(Check::passed("generate_data_key"));
        }
        Err(e) => out.checks.push(Check::failed("generate_data_key", &e, p)),
    }
    let probe = format!("tenantops/verify/{tenant}");
    let sample: [u8; 32] = rand::random();
    match kms.wrap(&sample, &probe).await {
        Ok(ct) => {
            out.checks.push(Check::passed("encrypt"));
            match kms.unwrap(&ct, &probe).await {
                Ok(pt) if pt.as_slice() == sample => out.checks.push(Check::passed("decrypt")),
                Ok(_) => out.checks.push(Check::failed(
                    "decrypt",
                    &KmsError::Rejected {
                        detail: "decrypt returned other bytes than were encrypted".into(),
                    },
                    p,
                )),
                Err(e) => out.checks.push(Check::failed("decrypt", &e, p)),
            }
        }
        Err(e) => {
            out.checks.push(Check::failed("encrypt", &e, p));
            out.checks.push(Check {
                check: "decrypt".into(),
                ok: false,
                error: Some("not tried: encrypt failed".into()),
                fix: None,
            });
        }
    }
    out.ok = out.checks.iter().all(|c| c.ok);
    if !out.ok {
        out.wrapped = None;
    }
    out
}

async fn config_and_next_epoch(env: &Env, tenant: &TenantId) -> Result<(Option<ByokRow>, u32)> {
    let mut read = env.store.read().await?;
    let row = db::byok(&mut read, tenant).await?;
    let newest = db::newest_epoch(&mut read, tenant).await?.unwrap_or(0);
    let next = u32::try_from(newest + 1)
        .map_err(|_| Error::Internal("data key epochs exhausted".into()))?;
    Ok((row, next))
}

fn to_value(p: &Prepared) -> Result<Value> {
    serde_json::to_value(p).map_err(|e| Error::Internal(e.to_string()))
}

/// Output of `byok.verify`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VerifyOutput {
    /// Green only when every check passed.
    pub ok: bool,
    /// The state after the verification.
    pub state: String,
    /// Each check, with the fix of a failure.
    pub checks: Vec<Check>,
}

/// `byok.verify`.
pub struct Verify;

impl Operation for Verify {
    const NAME: &'static str = "byok.verify";
    const SUMMARY: &'static str =
        "Test the BYOK key for real: metadata, data key, encrypt and decrypt";
    const HELP: &'static str = "Runs a real test against your KMS key: reads its metadata (enabled, not \
        scheduled for deletion), generates a data key, and encrypts and decrypts a sample. Green only when \
        all pass; a failure names the missing permission, the disabled key or the unreachable endpoint and \
        the console step that fixes it. The first green verification activates BYOK once a second person \
        approves: new data is sealed under your key at once and existing data is re-wrapped in the background (byok.status shows the \
        progress). After a revocation, a green verification restores access — approved by a second \
        person.";
    const SCOPE: Option<Scope> = Some(Scope::BYOK_WRITE);
    const RISK: Risk = Risk::Write;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = NoInput;
    type Output = VerifyOutput;
    const PREPARES: bool = true;
    const GUARDED: bool = true;

    /// A green verification that changes who controls the tenant's data takes two people once
    /// two may decide: activating BYOK hands it to a KMS key (whoever holds that key can make
    /// the tenant go dark), and restoring access undoes a two-person revocation. A red one
    /// changes nothing.
    async fn second_person(ctx: &mut OpCtx, _: &NoInput) -> Result<Option<String>> {
        let tenant = ctx.tenant().clone();
        let green = Prepared::from(ctx).is_ok_and(|p| p.ok);
        let Some(row) = db::byok(&mut ctx.tx, &tenant).await? else {
            return Ok(None);
        };
        // A tenant with one person who may decide bootstraps alone.
        if !crate::approvals::second_person_exists(&mut ctx.tx, &tenant, ctx.now).await? {
            return Ok(None);
        }
        Ok(match row.state.as_str() {
            "revoked" => {
                Some("it restores access to the data a BYOK revocation made unreadable".to_owned())
            }
            "pending_verify" if green => Some(format!(
                "it puts the tenant's data under the {} key {}: whoever controls that key can \
                 make the tenant go dark",
                row.provider, row.key_id
            )),
            _ => None,
        })
    }

    async fn prepare(env: Arc<Env>, tenant: TenantId, _: &NoInput) -> Result<Value> {
        let (row, next) = config_and_next_epoch(&env, &tenant).await?;
        let row = row.ok_or_else(|| {
            Error::bad_input(
                "input",
                "no BYOK key is configured for this tenant; name one with byok.configure first",
            )
        })?;
        let provider: Provider = row
            .provider
            .parse()
            .map_err(|e: KmsError| Error::Internal(e.to_string()))?;
        let key = parse_key(&env, provider, &row.key_id, "key")?;
        to_value(&check_key(&env, &tenant, &key, next).await)
    }

    async fn execute(ctx: &mut OpCtx, _: NoInput) -> Result<VerifyOutput> {
        let p = Prepared::from(ctx)?;
        let tenant = ctx.tenant().clone();
        let row = db::byok(&mut ctx.tx, &tenant)
            .await?
            .ok_or_else(|| Error::Conflict("BYOK was disabled during the verification".into()))?;
        if row.key_id != p.key {
            return Err(Error::Conflict(
                "the BYOK key changed during the verification; run byok.verify again".into(),
            ));
        }
        let now = to_millis(ctx.now);
        let detail =
            serde_json::to_string(&p.checks).map_err(|e| Error::Internal(e.to_string()))?;
        db::record_verify(&mut ctx.tx, &tenant, p.ok, &detail, now).await?;
        ctx.audit("ok", p.ok);
        ctx.audit("provider", &row.provider);
        ctx.audit("key", &row.key_id);
        ctx.audit("checks", &p.checks);
        let mut state = if p.ok {
            row.state.clone()
        } else {
            state_of(Some(&row)).to_owned()
        };
        if p.ok && matches!(row.state.as_str(), "pending_verify" | "revoked") {
            if row.state == "pending_verify" {
                // Activation: a data key under the tenant's key seals from now on, and the
                // re-wrap moves what the platform key sealed.
                let provider = p
                    .provider
                    .ok_or_else(|| Error::Internal("no provider prepared".into()))?;
                let key = parse_key(&ctx.env, provider, &row.key_id, "key")?;
                add_epoch(ctx, &tenant, p.epoch, &kek_name(&key), &p.wrapped()?).await?;
                ctx.audit("activated_epoch", p.epoch);
            }
            db::set_byok_state(&mut ctx.tx, &tenant, "rotating", now).await?;
            state = "rotating".into();
            ctx.emit(Event::TenantKeysChanged {
                tenant: tenant.clone(),
            });
        } else if p.ok && row.unreachable_since.is_some() {
            ctx.emit(Event::TenantKeysChanged {
                tenant: tenant.clone(),
            });
        }
        Ok(VerifyOutput {
            ok: p.ok,
            state,
            checks: p.checks,
        })
    }
}

/// Adds the data key of `epoch`, which must be the next one (else a concurrent change won).
async fn add_epoch(
    ctx: &mut OpCtx,
    tenant: &TenantId,
    epoch: u32,
    kek: &str,
    wrapped: &[u8],
) -> Result<()> {
    let newest = db::newest_epoch(&mut ctx.tx, tenant).await?.unwrap_or(0);
    if newest + 1 != i64::from(epoch)
        || !db::insert_data_key(
            &mut ctx.tx,
            tenant,
            i64::from(epoch),
            kek,
            wrapped,
            to_millis(ctx.now),
        )
        .await?
    {
        return Err(Error::Conflict(
            "the tenant's keys changed meanwhile; run it again".into(),
        ));
    }
    Ok(())
}

/// How many sealed values the tenant holds (what a rotation re-wraps).
async fn sealed_values(ctx: &mut OpCtx) -> Result<u64> {
    let tenant = ctx.tenant().clone();
    let newest = db::newest_epoch(&mut ctx.tx, &tenant).await?.unwrap_or(1) as u32;
    Ok(rewrap::progress(&mut ctx.tx, &tenant, newest)
        .await?
        .sealed_values)
}

fn records_fact(facts: &Map<String, Value>) -> u64 {
    facts
        .get("sealed_values")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Input of `byok.rotate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    /// The new key (same forms as byok.configure); omitted: a new data key under the current
    /// key's newest version.
    #[serde(default)]
    pub key: Option<String>,
    /// The new key's provider; omitted: the current one.
    #[serde(default)]
    pub provider: Option<Provider>,
}

/// Output of `byok.rotate`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RotateOutput {
    /// `rotating` until every value is re-wrapped, then `active`.
    pub state: String,
    /// The KMS.
    pub provider: Provider,
    /// The key new writes use.
    pub key: String,
    /// The new data key's epoch.
    pub epoch: u32,
    /// Values the background re-wrap moves (byok.status shows the progress).
    pub to_rewrap: u64,
}

/// `byok.rotate`.
pub struct Rotate;

impl Operation for Rotate {
    const NAME: &'static str = "byok.rotate";
    const SUMMARY: &'static str = "Rotate to a new KMS key or key version (needs approval)";
    const HELP: &'static str = "Moves your tenant's data to a new data key wrapped by a new KMS key, or by the \
        current key's newest version when no key is given. The new key is tested first (a data key and a \
        decrypt). Once approved, new writes use it at once; existing data is re-wrapped lazily when read \
        and by a background job (byok.status shows the progress), after which the old data key is \
        dropped. Destructive: a second person approves.";
    const SCOPE: Option<Scope> = Some(Scope::BYOK_WRITE);
    const RISK: Risk = Risk::Destructive;
    const EXAMPLES: &'static [&'static str] = &[
        r#"{}"#,
        r#"{"key":"arn:aws:kms:eu-west-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321"}"#,
    ];
    type Input = RotateInput;
    type Output = RotateOutput;
    const PREPARES: bool = true;

    async fn prepare(env: Arc<Env>, tenant: TenantId, input: &RotateInput) -> Result<Value> {
        let (row, next) = config_and_next_epoch(&env, &tenant).await?;
        let row = active_row(row)?;
        let provider = match input.provider {
            Some(p) => p,
            None => row
                .provider
                .parse()
                .map_err(|e: KmsError| Error::Internal(e.to_string()))?,
        };
        let text = input.key.as_deref().unwrap_or(&row.key_id);
        let key = parse_key(&env, provider, text, "key")?;
        let checked = check_key(&env, &tenant, &key, next).await;
        if !checked.ok {
            let failed: Vec<String> = checked
                .checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| {
                    format!(
                        "{}: {}{}",
                        c.check,
                        c.error.as_deref().unwrap_or("failed"),
                        c.fix
                            .as_deref()
                            .map(|f| format!(" (fix: {f})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            return Err(Error::bad_input(
                "key",
                format!(
                    "the new key does not work for tenantops yet — {}",
                    failed.join("; ")
                ),
            ));
        }
        to_value(&checked)
    }

    async fn facts(ctx: &mut OpCtx, _: &RotateInput) -> Result<Map<String, Value>> {
        let n = sealed_values(ctx).await?;
        Ok(json!({ "sealed_values": n })
            .as_object()
            .cloned()
            .unwrap_or_default())
    }

    fn describe(input: &RotateInput, facts: &Map<String, Value>) -> String {
        let to = match &input.key {
            Some(k) => format!("the KMS key {k}"),
            None => "a new data key under the current KMS key's newest version".to_owned(),
        };
        format!(
            "Rotate the tenant's encryption to {to}: new writes use it at once, and {} records \
             re-wrapped under it in the background; the old data key is then dropped",
            records_fact(facts)
        )
    }

    async fn execute(ctx: &mut OpCtx, _: RotateInput) -> Result<RotateOutput> {
        let p = Prepared::from(ctx)?;
        let tenant = ctx.tenant().clone();
        active_row(db::byok(&mut ctx.tx, &tenant).await?)?;
        let provider = p
            .provider
            .ok_or_else(|| Error::Internal("no provider prepared".into()))?;
        let key = parse_key(&ctx.env, provider, &p.key, "key")?;
        add_epoch(ctx, &tenant, p.epoch, &kek_name(&key), &p.wrapped()?).await?;
        db::put_byok(
            &mut ctx.tx,
            &tenant,
            provider.as_str(),
            &key.id,
            "rotating",
            to_millis(ctx.now),
        )
        .await?;
        let to_rewrap = sealed_values(ctx).await?;
        ctx.audit("provider", provider.as_str());
        ctx.audit("key", &key.id);
        ctx.audit("epoch", p.epoch);
        ctx.audit("to_rewrap", to_rewrap);
        ctx.emit(Event::TenantKeysChanged {
            tenant: tenant.clone(),
        });
        Ok(RotateOutput {
            state: "rotating".into(),
            provider,
            key: key.id,
            epoch: p.epoch,
            to_rewrap,
        })
    }
}

fn active_row(row: Option<ByokRow>) -> Result<ByokRow> {
    match row {
        None => Err(Error::Conflict(
            "BYOK is off for this tenant; bring a key with byok.configure and byok.verify".into(),
        )),
        Some(r) if r.state == "active" => Ok(r),
        Some(r) if r.state == "rotating" => Err(Error::Conflict(
            "a re-wrap is still running; wait until byok.status shows it at 100 % and the state \
             active"
                .into(),
        )),
        Some(r) => Err(Error::Conflict(format!(
            "BYOK is {}; only an active key can be rotated (run byok.verify)",
            r.state
        ))),
    }
}

/// Input of `byok.revoke`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeInput {
    /// Why (kept in the audit ledger).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Output of `byok.revoke`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RevokeOutput {
    /// `revoked`.
    pub state: String,
    /// Sealed values now unreadable.
    pub unreadable_values: u64,
}

/// `byok.revoke`.
pub struct Revoke;

impl Operation for Revoke {
    const NAME: &'static str = "byok.revoke";
    const SUMMARY: &'static str =
        "Revoke BYOK: the tenant's data becomes unreadable at once (needs approval)";
    const HELP: &'static str = "Stops every use of your tenant's data keys at once: cached keys are dropped on \
        every replica and every operation that needs a sealed value (personal data, stored secrets) fails \
        with an error naming BYOK until the grant is restored and byok.verify passes. Pair it with removing \
        tenantops' grant on your KMS key. Coordinate first: your tenant goes dark. Destructive: a second \
        person approves.";
    const SCOPE: Option<Scope> = Some(Scope::BYOK_WRITE);
    const RISK: Risk = Risk::Destructive;
    const EXAMPLES: &'static [&'static str] = &[r#"{"reason":"key compromise drill"}"#];
    type Input = RevokeInput;
    type Output = RevokeOutput;

    async fn facts(ctx: &mut OpCtx, _: &RevokeInput) -> Result<Map<String, Value>> {
        let n = sealed_values(ctx).await?;
        Ok(json!({ "sealed_values": n })
            .as_object()
            .cloned()
            .unwrap_or_default())
    }

    fn describe(_: &RevokeInput, facts: &Map<String, Value>) -> String {
        format!(
            "Revoke BYOK: {} sealed records become unreadable at once — the tenant goes dark until \
             the grant is restored",
            records_fact(facts)
        )
    }

    async fn execute(ctx: &mut OpCtx, input: RevokeInput) -> Result<RevokeOutput> {
        let tenant = ctx.tenant().clone();
        match db::byok(&mut ctx.tx, &tenant).await? {
            None => {
                return Err(Error::Conflict(
                    "BYOK is off: the tenant's data keys are wrapped by the platform key, which \
                     cannot be revoked from here"
                        .into(),
                ));
            }
            Some(r) if r.state == "revoked" => {
                return Err(Error::Conflict("BYOK is already revoked".into()));
            }
            Some(_) => {}
        }
        db::set_byok_state(&mut ctx.tx, &tenant, "revoked", to_millis(ctx.now)).await?;
        let n = sealed_values(ctx).await?;
        if let Some(reason) = &input.reason {
            ctx.audit("reason", reason);
        }
        ctx.audit("unreadable_values", n);
        ctx.emit(Event::TenantKeysChanged {
            tenant: tenant.clone(),
        });
        Ok(RevokeOutput {
            state: "revoked".into(),
            unreadable_values: n,
        })
    }
}

/// Output of `byok.disable`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DisableOutput {
    /// `off`.
    pub state: String,
    /// Values re-wrapped under the platform key.
    pub rewrapped: u64,
}

/// `byok.disable`.
pub struct Disable;

impl Operation for Disable {
    const NAME: &'static str = "byok.disable";
    const SUMMARY: &'static str =
        "Go back to the platform key, re-wrapping everything first (needs approval)";
    const HELP: &'static str = "Re-wraps every sealed value of your tenant under a new data key wrapped by the \
        platform key, drops the data keys your KMS key wrapped, and turns BYOK off — all in one \
        transaction. Needs your KMS key to still work. Destructive: a second person approves.";
    const SCOPE: Option<Scope> = Some(Scope::BYOK_WRITE);
    const RISK: Risk = Risk::Destructive;
    const EXAMPLES: &'static [&'static str] = &[r#"{}"#];
    type Input = NoInput;
    type Output = DisableOutput;
    const KEYS: bool = true;

    async fn facts(ctx: &mut OpCtx, _: &NoInput) -> Result<Map<String, Value>> {
        let n = sealed_values(ctx).await?;
        Ok(json!({ "sealed_values": n })
            .as_object()
            .cloned()
            .unwrap_or_default())
    }

    fn describe(_: &NoInput, facts: &Map<String, Value>) -> String {
        format!(
            "Disable BYOK: {} records re-wrapped under the platform key first; tenantops can then \
             read the tenant's data without its KMS",
            records_fact(facts)
        )
    }

    async fn execute(ctx: &mut OpCtx, _: NoInput) -> Result<DisableOutput> {
        let tenant = ctx.tenant().clone();
        if db::byok(&mut ctx.tx, &tenant).await?.is_none() {
            return Err(Error::Conflict("BYOK is already off".into()));
        }
        let keys = ctx.sealing_keys().await?;
        let epoch = keys.current_epoch() + 1;
        let (dek, wrapped) = ctx.env.vault.platform_data_key(&tenant, epoch);
        add_epoch(ctx, &tenant, epoch, PLATFORM_KEK, &wrapped).await?;
        let platform = keys.with_epoch(epoch, dek);
        let moved = rewrap::rewrap_all(&mut ctx.tx, &platform).await?;
        let dropped = db::drop_data_keys_before(&mut ctx.tx, &tenant, i64::from(epoch)).await?;
        db::delete_byok(&mut ctx.tx, &tenant).await?;
        ctx.audit("rewrapped", moved);
        ctx.audit("data_keys_dropped", dropped);
        ctx.emit(Event::TenantKeysChanged {
            tenant: tenant.clone(),
        });
        Ok(DisableOutput {
            state: "off".into(),
            rewrapped: moved,
        })
    }
}
