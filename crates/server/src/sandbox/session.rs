//! The sandbox's terminal session: reads lines (a TTY or a pipe), sends slash commands and
//! button presses to the adapter as the person played, and prints what comes back — the
//! immediate reply and whatever reaches the fake Slack later — as text, buttons numbered.

use crate::exit;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use tenantops_core::{Core, Principal};
use tenantops_slack::sandbox::text::{self, Names, Text};
use tenantops_slack::sandbox::{
    self, ButtonAt, Delivery, GENERAL, Place, Sandbox, SandboxError, TEAM, handle_of,
};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// Nothing new for this long: the answers to the last line are all in.
const QUIET: Duration = Duration::from_millis(800);
/// The longest wait for an answer that is sure to come.
const PATIENCE: Duration = Duration::from_secs(30);

const HELP: &str = "\
Type what you would type in Slack, as the person you play:
  /tenant whoami               who you are, your roles and scopes
  /billing                     the finance summary
  /keys help                   every /keys command (also /members, /approvals, /tenant, /billing)
  /members revoke ci-bot       revoke a persona, after one confirm tap
  /tenant export_all reason=\"annual DSAR\"   a request that waits for a second person
Then:
  press N   (or just N)        press button [N]
  as HANDLE                    play another person (linked on first use)
  help                         this text
  quit                         leave (end of input too)";

/// What to wait for after an action.
enum Expect {
    /// Only for things to go quiet.
    Quiet,
    /// For a first delivery, then quiet.
    Any,
    /// For an answer through this `response_url`, then quiet.
    Response(String),
}

/// A modal waiting for answers on the terminal.
struct OpenModal {
    user: String,
    view: Value,
    inputs: Vec<text::Input>,
    answers: Vec<(String, String, String)>,
}

/// One terminal session.
pub struct Session {
    sb: Sandbox,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    core: Core,
    issuer: Option<Principal>,
    handle: String,
    user: String,
    buttons: Vec<ButtonAt>,
    modals: VecDeque<OpenModal>,
    /// `response_url` id → the handle it answers.
    responders: HashMap<String, String>,
    tty: bool,
    prompting: bool,
}

/// Checks a handle as typed (`a-z 0-9 . _ -`, at most 64).
pub fn check_handle(h: &str) -> Result<String, String> {
    let h = h.trim().trim_start_matches('@');
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(h.to_owned())
    } else {
        Err(format!(
            "`{h}` is not a persona handle (1-64 of a-z 0-9 . _ -)"
        ))
    }
}

struct Labels<'a>(&'a Sandbox);

impl Names for Labels<'_> {
    fn channel(&self, id: &str) -> String {
        match self.0.channel_name(id) {
            Some(name) => format!("#{name}"),
            None => format!("#{id}"),
        }
    }

    fn user(&self, id: &str) -> String {
        format!("@{}", handle_of(id).unwrap_or_else(|| id.to_owned()))
    }
}

impl Session {
    /// A session playing `handle` (already linked).
    pub fn new(
        sb: Sandbox,
        deliveries: mpsc::UnboundedReceiver<Delivery>,
        core: Core,
        issuer: Option<Principal>,
        handle: String,
    ) -> Self {
        Self {
            user: sandbox::user_id(&handle),
            sb,
            deliveries,
            core,
            issuer,
            handle,
            buttons: Vec::new(),
            modals: VecDeque::new(),
            responders: HashMap::new(),
            tty: std::io::stdin().is_terminal(),
            prompting: false,
        }
    }

    /// Reads and runs lines until `quit` or the end of input; returns the exit code.
    pub async fn run(mut self) -> u8 {
        say(&format!(
            "tenantops chat — the real Slack adapter against an offline fake Slack (workspace \
             {TEAM}).\nPlaying @{}. Type a slash command such as /tenant whoami, `help`, or \
             `quit`.",
            self.handle
        ));
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        loop {
            self.prompt();
            tokio::select! {
                delivery = self.deliveries.recv() => match delivery {
                    Some(d) => self.show(d),
                    None => break,
                },
                line = lines.next_line() => match line {
                    Ok(Some(line)) => {
                        self.prompting = false;
                        if !self.line(&line).await {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("error: reading input: {e}");
                        return exit::FAILURE;
                    }
                },
            }
        }
        if self.prompting {
            say("");
        }
        self.settle(Expect::Quiet).await;
        exit::OK
    }

    fn prompt(&mut self) {
        if !self.tty || self.prompting {
            return;
        }
        let prompt = match self.modals.front() {
            Some(m) => format!("{}: ", m.inputs[m.answers.len()].label),
            None => format!("{}> ", self.handle),
        };
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{prompt}");
        let _ = out.flush();
        self.prompting = true;
    }

    /// Handles one line; `false` ends the session.
    async fn line(&mut self, line: &str) -> bool {
        let line = line.trim();
        if !self.modals.is_empty() {
            self.answer(line).await;
            return true;
        }
        if !self.tty && !line.is_empty() {
            say(&format!("{}> {line}", self.handle));
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "" => {}
            _ if word.starts_with('#') => {}
            "quit" | "exit" => return false,
            "help" | "?" => say(HELP),
            "as" => self.play(rest.trim()).await,
            "press" => self.press(rest.trim()).await,
            _ if word.parse::<usize>().is_ok() => self.press(word).await,
            _ if word.starts_with('/') => self.command(line).await,
            _ => say(
                "Type a slash command (e.g. /tenant whoami), `press N`, `as HANDLE`, `help` or `quit`.",
            ),
        }
        true
    }

    async fn command(&mut self, line: &str) {
        match self.sb.command(&self.user, line).await {
            Ok(reply) => {
                self.responders
                    .insert(reply.response_id.clone(), self.handle.clone());
                let heading = if reply.content["response_type"] == "in_channel" {
                    "#general".to_owned()
                } else {
                    format!("only @{}", self.handle)
                };
                if reply.content.is_object() {
                    self.print_message(&heading, &reply.content, GENERAL, None);
                } else {
                    say("  (no answer)");
                }
                let expect = if reply.slow {
                    Expect::Response(reply.response_id)
                } else {
                    Expect::Quiet
                };
                self.settle(expect).await;
            }
            Err(e) => refused(&e),
        }
    }

    async fn press(&mut self, which: &str) {
        let Ok(n) = which.parse::<usize>() else {
            return say("Press which button? e.g. `press 1`.");
        };
        // A button still on its way (an approval request being posted) is waited for.
        let deadline = Instant::now() + Duration::from_secs(5);
        while n > self.buttons.len() && Instant::now() < deadline {
            match tokio::time::timeout_at(deadline.into(), self.deliveries.recv()).await {
                Ok(Some(d)) => self.show(d),
                _ => break,
            }
        }
        let Some(button) = n.checked_sub(1).and_then(|i| self.buttons.get(i)).cloned() else {
            return say(&format!(
                "There is no button [{n}] (buttons so far: {}).",
                self.buttons.len()
            ));
        };
        match self.sb.press(&self.user, &button).await {
            Ok(response_id) => {
                self.responders.insert(response_id, self.handle.clone());
                self.settle(Expect::Any).await;
            }
            Err(e) => refused(&e),
        }
    }

    /// Switches to playing `handle`, linking it first if needed.
    async fn play(&mut self, handle: &str) {
        let handle = match check_handle(handle) {
            Ok(h) => h,
            Err(m) => return say(&m),
        };
        match sandbox::link(&self.core, self.issuer.as_ref(), &handle).await {
            Ok(user) => {
                say(&format!("Now playing @{handle}."));
                self.handle = handle;
                self.user = user;
            }
            Err(why) => say(&format!("Cannot play `{handle}`: {why}")),
        }
    }

    /// The next answer to the open modal; submits it once every input is answered, or closes
    /// it on an empty answer.
    async fn answer(&mut self, line: &str) {
        let Some(modal) = self.modals.front_mut() else {
            return;
        };
        let label = modal.inputs[modal.answers.len()].label.clone();
        if !self.tty {
            say(&format!("{label}: {line}"));
        }
        if line.is_empty() {
            self.modals.pop_front();
            return say("  (modal closed; nothing sent)");
        }
        let input = &modal.inputs[modal.answers.len()];
        modal.answers.push((
            input.block_id.clone(),
            input.action_id.clone(),
            line.to_owned(),
        ));
        if modal.answers.len() < modal.inputs.len() {
            return;
        }
        let Some(modal) = self.modals.pop_front() else {
            return;
        };
        match self
            .sb
            .submit(&modal.user, &modal.view, &modal.answers)
            .await
        {
            Ok(answer) if answer["response_action"] == "errors" => {
                for (field, error) in answer["errors"].as_object().into_iter().flatten() {
                    say(&format!(
                        "  {field}: {}",
                        error.as_str().unwrap_or_default()
                    ));
                }
            }
            Ok(_) => self.settle(Expect::Any).await,
            Err(e) => refused(&e),
        }
    }

    /// Prints what arrives until it goes quiet (after what `expect` waits for).
    async fn settle(&mut self, expect: Expect) {
        let deadline = Instant::now() + PATIENCE;
        let mut waiting = expect;
        loop {
            let until = match waiting {
                Expect::Quiet => Instant::now() + QUIET,
                _ => deadline,
            };
            let Ok(Some(d)) = tokio::time::timeout_at(until.into(), self.deliveries.recv()).await
            else {
                return;
            };
            let arrived = match (&waiting, &d) {
                (Expect::Any, _) => true,
                (
                    Expect::Response(id),
                    Delivery::Message {
                        place: Place::Response { id: got, .. },
                        ..
                    },
                ) => got == id,
                _ => false,
            };
            if arrived {
                waiting = Expect::Quiet;
            }
            self.show(d);
        }
    }

    fn show(&mut self, d: Delivery) {
        if self.prompting {
            say("");
            self.prompting = false;
        }
        match d {
            Delivery::Message { place, content } => self.show_message(place, &content),
            Delivery::Modal { view } => {
                let modal = text::modal(&view, &Labels(&self.sb));
                let heading = format!("modal for @{}", self.handle);
                print_text(&heading, &modal.text, &[]);
                if modal.inputs.is_empty() {
                    return;
                }
                say("  (answer below; an empty line closes it)");
                self.modals.push_back(OpenModal {
                    user: self.user.clone(),
                    view,
                    inputs: modal.inputs,
                    answers: Vec::new(),
                });
            }
            Delivery::File {
                channel,
                title,
                filename,
                bytes,
            } => say(&format!(
                "── file in {}: {title} ({filename}, {bytes} bytes) ──",
                self.place(&channel)
            )),
        }
    }

    fn show_message(&mut self, place: Place, content: &Value) {
        match place {
            Place::Channel {
                channel,
                ts,
                thread_ts,
            } => {
                let heading = match thread_ts {
                    Some(_) => format!("{}, in thread", self.place(&channel)),
                    None => self.place(&channel),
                };
                self.print_message(&heading, content, &channel, Some(ts));
            }
            Place::Edited { channel, ts } => {
                let heading = format!("{}, message edited", self.place(&channel));
                self.print_message(&heading, content, &channel, Some(ts));
            }
            Place::Ephemeral { channel, user } => {
                let heading = format!(
                    "{}, only {}",
                    self.place(&channel),
                    Labels(&self.sb).user(&user)
                );
                self.print_message(&heading, content, &channel, None);
            }
            Place::Response {
                id,
                replace_original,
            } => {
                let who = self
                    .responders
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| self.handle.clone());
                let heading = if replace_original {
                    format!("only @{who}, replacing the message with the buttons")
                } else {
                    format!("only @{who}")
                };
                self.print_message(&heading, content, GENERAL, None);
            }
        }
    }

    /// `#name`, or `DM to @handle` for a direct-message channel.
    fn place(&self, channel: &str) -> String {
        match channel.strip_prefix('D').and_then(handle_of) {
            Some(h) => format!("DM to @{h}"),
            None => Labels(&self.sb).channel(channel),
        }
    }

    /// Prints a message under `heading`, numbering its buttons.
    fn print_message(&mut self, heading: &str, content: &Value, channel: &str, ts: Option<String>) {
        let t = text::message(content, &Labels(&self.sb));
        let mut numbers = Vec::new();
        for b in &t.buttons {
            self.buttons.push(ButtonAt {
                action_id: b.action_id.clone(),
                value: b.value.clone(),
                channel: channel.to_owned(),
                message_ts: ts.clone(),
            });
            numbers.push(self.buttons.len());
        }
        print_text(heading, &t, &numbers);
    }
}

fn print_text(heading: &str, t: &Text, numbers: &[usize]) {
    let mut out = vec![format!("── {heading} ──")];
    if let Some(title) = &t.title {
        out.push(title.clone());
    }
    out.extend(t.lines.iter().map(|l| format!("  {l}")));
    if !t.buttons.is_empty() {
        let buttons: Vec<String> = t
            .buttons
            .iter()
            .zip(numbers)
            .map(|(b, n)| format!("[{n}] {}", b.label))
            .collect();
        out.push(format!("  {}", buttons.join("  ")));
    }
    say(&out.join("\n"));
}

fn refused(e: &SandboxError) {
    say(&format!("  ({e})"));
}

/// Writes lines to stdout; a closed pipe ends output quietly.
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}
