//! What the Slack and Discord adapters share, so neither writes it twice: slash commands derived
//! from the operation catalogue, parsing their text against each operation's input schema, help,
//! and a platform-neutral rendering of outcomes, errors and approval requests. No chat-platform
//! dependency lives here.
//!
//! Module map:
//! - [`groups`](mod@groups) — slash commands and their subcommands (`/keys issue`, `/tenant audit list`),
//!   derived from the catalogue, plus the chat-only ones the adapters implement
//!   ([`groups::CHAT_ONLY`]).
//! - [`args`] — `parse("/keys", "issue ci-bot scopes=keys:read expires=90d")` → an operation
//!   and its validated JSON input, or help; errors a person can act on. [`args::chat_only`]
//!   spots the chat-only subcommands, which adapters handle before `parse`.
//! - [`help`] — group and operation help, usage lines, examples in command syntax.
//! - [`schema`](mod@schema) — an operation's arguments and the kind of value each takes
//!   (Discord derives its typed command options from it).
//! - [`approvals`] — keeps approval messages on every bound workspace of a platform in step with
//!   their requests (post, edit in place, reply with what happened, tell the requester); each
//!   adapter supplies the four platform calls ([`approvals::ApprovalChannel`]).
//! - [`digest`](mod@digest) — the scheduled billing digest per bound workspace, for any platform
//!   that can post the summary ([`digest::DigestChannel`]).
//! - [`views`] — what takes several core calls to show: the revoke preview, the finance summary
//!   with its chart; and `clip` for platform text limits.
//! - [`render`] — [`Message`] (text, fields, lists, code, buttons, attachment, visibility) for
//!   outcomes, errors, approval requests and revoke previews; button action ids.
//!
//! An adapter's loop: [`parse`] the command text; on [`Parsed::Call`] run it through
//! `Core::call` as the linked persona and show [`render::outcome`] (or [`render::error`]); on
//! [`Parsed::Help`] show [`help::reply`]; on an [`ArgsError`] show [`render::args_error`].
//! Button presses come back as [`ButtonAction::decode`] of the action id.
//!
//! Adapters unescape platform markup before parsing (Slack sends `&amp;`, `&lt;`, `&gt;` and
//! `<#C123|name>` for channels).

pub mod approvals;
pub mod args;
pub mod digest;
pub mod groups;
pub mod help;
pub mod render;
pub mod schema;
pub mod views;

pub use args::{ArgsError, Parsed, parse};
pub use groups::{ChatCommand, Group, group_of, groups, resolve};
pub use render::{Attachment, Block, Button, ButtonAction, ButtonStyle, Message, Visibility};
