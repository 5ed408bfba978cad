//! Publishing signed checkpoints outside the database and verifying against them: the outbox,
//! the schedule, the spacing, retries, and read-back verification that catches a rollback —
//! through a sink that keeps its messages in memory, the way a chat platform keeps them.

use crate::support::*;
use futures::future::BoxFuture;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenantops_core::chat::Platform;
use tenantops_core::ledger::publish::{CheckpointSink, Destination, PostedText};
use tenantops_core::{Error, Outcome, Principal};

/// A platform that keeps what was posted, newest last; it can be told to refuse posts.
#[derive(Clone, Default)]
struct Memory {
    posted: Arc<Mutex<Vec<(Destination, PostedText)>>>,
    down: Arc<Mutex<bool>>,
}

impl Memory {
    fn texts(&self) -> Vec<String> {
        let posted = self.posted.lock().unwrap();
        posted.iter().map(|(_, m)| m.text.clone()).collect()
    }

    /// Rewrites the text of message `i` in place, as someone holding the bot token could.
    fn edit(&self, i: usize, f: impl FnOnce(&str) -> String) {
        let mut posted = self.posted.lock().unwrap();
        let text = f(&posted[i].1.text);
        posted[i].1.text = text;
    }
}

impl CheckpointSink for Memory {
    fn kind(&self) -> &'static str {
        "slack"
    }

    fn post<'a>(
        &'a self,
        destination: &'a Destination,
        text: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            if *self.down.lock().unwrap() {
                return Err("Slack API chat.postMessage: service_unavailable".into());
            }
            let mut posted = self.posted.lock().unwrap();
            let id = format!("1700000000.{:06}", posted.len() + 1);
            posted.push((
                destination.clone(),
                PostedText {
                    id: id.clone(),
                    text: text.to_owned(),
                },
            ));
            Ok(id)
        })
    }

    fn read_back<'a>(
        &'a self,
        destination: &'a Destination,
        max_messages: usize,
    ) -> BoxFuture<'a, Result<Vec<PostedText>, String>> {
        Box::pin(async move {
            let posted = self.posted.lock().unwrap();
            Ok(posted
                .iter()
                .rev()
                .filter(|(d, _)| d == destination)
                .take(max_messages)
                .map(|(_, m)| m.clone())
                .collect())
        })
    }
}

struct World {
    t: Env,
    admin: Principal,
    tenant: tenantops_core::ids::TenantId,
    sink: Memory,
}

impl World {
    async fn new() -> Self {
        let t = Env::new().await;
        let (created, admin) = t.tenant("acme").await;
        Self {
            t,
            admin,
            tenant: created.tenant_id,
            sink: Memory::default(),
        }
    }

    async fn bind(&self) {
        let link = self
            .t
            .ok(
                &self.admin,
                "tenant.chat_install_link",
                json!({"platform": "slack", "approval_channel": "C0APPROVE"}),
            )
            .await;
        self.t
            .core
            .complete_chat_install(
                Platform::Slack,
                link["state"].as_str().unwrap(),
                "T0ACME",
                Some("Acme"),
                None,
            )
            .await
            .unwrap();
    }

    fn sinks(&self) -> Vec<Arc<dyn CheckpointSink>> {
        vec![Arc::new(self.sink.clone())]
    }

    async fn deliver(&self, gap: Duration) -> tenantops_core::ledger::publish::DeliveryReport {
        self.t
            .core
            .deliver_checkpoint_publications(&self.sinks(), gap)
            .await
            .unwrap()
    }

    async fn work(&self, n: usize) {
        for _ in 0..n {
            self.t.ok(&self.admin, "whoami", json!({})).await;
        }
    }

    async fn verify_published(
        &self,
    ) -> Result<
        (
            Result<tenantops_core::ledger::verify::Report, tenantops_core::ledger::verify::Failure>,
            tenantops_core::ledger::publish::PublishedCheck,
        ),
        Error,
    > {
        self.t
            .core
            .verify_audit_published(&self.tenant, &self.sinks(), 1000, &[])
            .await
    }

    async fn entries(&self, op: &str) -> Vec<serde_json::Value> {
        let list = self
            .t
            .ok(&self.admin, "audit.list", json!({"limit": 200, "op": op}))
            .await;
        list["entries"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn an_on_demand_publication_posts_the_signed_note_and_is_audited() {
    let w = World::new().await;
    // Nowhere to publish yet: said so, nothing queued.
    let refused =
        w.t.call(&w.admin, "audit.publish_checkpoint", json!({}))
            .await;
    assert!(
        matches!(&refused, Err(Error::Conflict(m)) if m.contains("tenant.chat_install_link")),
        "{refused:?}"
    );
    w.bind().await;
    let out =
        w.t.ok(&w.admin, "audit.publish_checkpoint", json!({}))
            .await;
    assert_eq!(out["joined"], false, "{out}");
    assert_eq!(
        out["destinations"],
        json!([{"kind": "slack", "workspace": "T0ACME", "channel": "C0APPROVE"}])
    );
    // Asking again before it went out joins the waiting one.
    let again =
        w.t.ok(&w.admin, "audit.publish_checkpoint", json!({}))
            .await;
    assert_eq!(again["joined"], true);
    assert_eq!(again["publication"], out["publication"]);
    let report = w.deliver(Duration::from_secs(60)).await;
    assert_eq!((report.published, report.failed_posts), (1, 0));
    // The message holds the latest checkpoint at posting time, verbatim.
    let texts = w.sink.texts();
    assert_eq!(texts.len(), 1);
    let head = w.t.ok(&w.admin, "audit.checkpoint", json!({})).await;
    let entries = w.entries("audit.checkpoint_published").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let published = &entries[0]["detail"];
    let size = published["size"].as_u64().unwrap();
    assert!(
        texts[0].contains(&format!("{size} entries")),
        "{}",
        texts[0]
    );
    assert_eq!(published["posted"][0]["message_id"], "1700000000.000001");
    assert_eq!(published["reason"], "on_demand");
    assert_eq!(published["requested_by"], w.admin.persona().to_string());
    // (The head has moved on by the publication's own entry and the audit.list above.)
    assert!(head["size"].as_u64().unwrap() > size);
    // Nothing else waits: another pass posts nothing.
    assert_eq!(w.deliver(Duration::ZERO).await.published, 0);
    // Read back from the platform, the ledger checks out against it.
    let (verdict, check) = w.verify_published().await.unwrap();
    let report = verdict.unwrap();
    assert_eq!(check.checked, 1);
    assert_eq!(check.newest_size, Some(size));
    assert_eq!(check.read[0].checkpoints, 1);
    assert!(report.entries > size);
}

#[tokio::test]
async fn a_rollback_the_database_calls_intact_is_caught_by_what_was_published() {
    let w = World::new().await;
    w.bind().await;
    let early = w.t.ok(&w.admin, "audit.checkpoint", json!({})).await;
    let early_size = early["size"].as_u64().unwrap();
    let early_note = early["checkpoint"].as_str().unwrap().to_owned();
    w.work(3).await;
    w.t.ok(&w.admin, "audit.publish_checkpoint", json!({}))
        .await;
    assert_eq!(w.deliver(Duration::ZERO).await.published, 1);
    // Roll the ledger back to the early, validly signed state.
    let store = w.t.core.store();
    exec(
        store,
        "DELETE FROM audit_entries WHERE tenant_id = $1 AND seq >= $2",
        &[w.tenant.as_str().into(), (early_size as i64).into()],
    )
    .await;
    exec(
        store,
        "UPDATE audit_heads SET checkpoint = $1 WHERE tenant_id = $2",
        &[(&early_note).into(), w.tenant.as_str().into()],
    )
    .await;
    assert!(w.t.core.verify_audit(&w.tenant).await.unwrap().is_ok());
    let (verdict, check) = w.verify_published().await.unwrap();
    let failure = verdict.unwrap_err();
    assert_eq!(failure.seq, Some(early_size), "{failure}");
    assert!(failure.message.contains("deleted"), "{failure}");
    assert!(failure.message.contains("1700000000.000001"), "{failure}");
    assert_eq!(check.checked, 1);
}

#[tokio::test]
async fn a_published_note_altered_on_the_platform_is_refused() {
    let w = World::new().await;
    w.bind().await;
    w.t.ok(&w.admin, "audit.publish_checkpoint", json!({}))
        .await;
    w.deliver(Duration::ZERO).await;
    // The root line changed (one character of the base64 hash).
    w.sink.edit(0, |text| {
        let root_line = text.lines().nth(5).unwrap().to_owned();
        let mut forged = root_line.clone().into_bytes();
        forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
        text.replace(&root_line, std::str::from_utf8(&forged).unwrap())
    });
    let (verdict, _) = w.verify_published().await.unwrap();
    let failure = verdict.unwrap_err();
    assert_eq!(failure.seq, None);
    assert!(failure.message.contains("altered"), "{failure}");
    // A message that names the tenant but lost its note is refused too.
    w.sink
        .edit(0, |text| text.split("```").next().unwrap().to_owned());
    let (verdict, _) = w.verify_published().await.unwrap();
    assert!(verdict.unwrap_err().message.contains("no signed note"));
}

#[tokio::test]
async fn nothing_published_or_nowhere_to_read_is_an_error_not_a_verdict() {
    let w = World::new().await;
    let e = w.verify_published().await.unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("no place")),
        "{e}"
    );
    w.bind().await;
    let e = w.verify_published().await.unwrap_err();
    assert!(
        matches!(&e, Error::NotFound(m) if m.contains("audit.publish_checkpoint")),
        "{e}"
    );
    // A sink for the destination's platform is needed to read it.
    let e =
        w.t.core
            .verify_audit_published(&w.tenant, &[], 10, &[])
            .await
            .unwrap_err();
    assert!(e.to_string().contains("slack is not configured"), "{e}");
}

#[tokio::test]
async fn the_schedule_publishes_only_after_its_period_and_only_when_the_ledger_grew() {
    let w = World::new().await;
    w.bind().await;
    let hour = Duration::from_secs(3600);
    let schedule = || async {
        w.t.core
            .schedule_checkpoint_publications(&["slack"], hour)
            .await
            .unwrap()
    };
    // Binding posts nothing at once.
    assert_eq!(schedule().await, 0);
    w.t.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(schedule().await, 1);
    assert_eq!(schedule().await, 0, "one waits at a time");
    assert_eq!(w.deliver(Duration::from_secs(60)).await.published, 1);
    let entries = w.entries("audit.checkpoint_published").await;
    assert_eq!(entries[0]["detail"]["reason"], "scheduled");
    assert_eq!(entries[0]["actor"]["surface"], "worker");
    // A day later: the audit.list just above is an entry of its own, so something is new.
    w.t.clock.advance(chrono::Duration::days(1));
    assert_eq!(schedule().await, 1, "the audit.list above is new activity");
    assert_eq!(w.deliver(Duration::ZERO).await.published, 1);
    w.t.clock.advance(chrono::Duration::days(1));
    assert_eq!(
        schedule().await,
        0,
        "nothing happened since the last publication"
    );
    w.work(1).await;
    assert_eq!(
        schedule().await,
        1,
        "something happened, long after the last one"
    );
    assert_eq!(w.deliver(Duration::ZERO).await.published, 1);
    w.work(1).await;
    assert_eq!(schedule().await, 0, "not before its period");
    w.t.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(schedule().await, 1);
    // An other platform's schedule does not see a Slack-only tenant; zero is off.
    w.deliver(Duration::ZERO).await;
    w.work(1).await;
    w.t.clock.advance(chrono::Duration::days(1));
    let discord_only =
        w.t.core
            .schedule_checkpoint_publications(&["discord"], hour)
            .await
            .unwrap();
    assert_eq!(discord_only, 0);
    let off =
        w.t.core
            .schedule_checkpoint_publications(&["slack"], Duration::ZERO)
            .await
            .unwrap();
    assert_eq!(off, 0);
}

#[tokio::test]
async fn on_demand_posts_are_spaced_and_a_platform_outage_is_retried_then_given_up() {
    let w = World::new().await;
    w.bind().await;
    let minute = Duration::from_secs(60);
    w.t.ok(&w.admin, "audit.publish_checkpoint", json!({}))
        .await;
    assert_eq!(w.deliver(minute).await.published, 1);
    // A second request within the minute waits for it.
    w.t.ok(&w.admin, "audit.publish_checkpoint", json!({}))
        .await;
    assert_eq!(w.deliver(minute).await.published, 0);
    w.t.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(w.deliver(minute).await.published, 1);
    assert_eq!(w.sink.texts().len(), 2);
    // The platform is down: each attempt fails and waits longer; the fifth gives up, audited.
    *w.sink.down.lock().unwrap() = true;
    w.t.clock.advance(chrono::Duration::seconds(61));
    let out =
        w.t.ok(&w.admin, "audit.publish_checkpoint", json!({}))
            .await;
    assert_eq!(out["joined"], false);
    let mut given_up = 0;
    for _ in 0..5 {
        let r = w.deliver(minute).await;
        assert_eq!(r.published, 0);
        given_up += r.given_up;
        // Not retried before its back-off.
        assert_eq!(w.deliver(minute).await.failed_posts, 0);
        w.t.clock.advance(chrono::Duration::minutes(20));
    }
    assert_eq!(given_up, 1);
    let entries = w.entries("audit.checkpoint_published").await;
    assert_eq!(entries[0]["outcome"], "failed", "{entries:?}");
    assert!(
        entries[0]["detail"]["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("service_unavailable")
    );
    // Once the platform is back, a new request goes out.
    *w.sink.down.lock().unwrap() = false;
    let out =
        w.t.ok(&w.admin, "audit.publish_checkpoint", json!({}))
            .await;
    assert_eq!(out["joined"], false);
    assert_eq!(w.deliver(minute).await.published, 1);
    assert!(matches!(
        w.t.call(&w.admin, "audit.checkpoint", json!({})).await,
        Ok(Outcome::Done { .. })
    ));
}
