//! Exit codes: a contract scripts and tests rely on.

/// Done, or pending approval.
pub const OK: u8 = 0;
/// Any other failure (not found, conflict, storage, configuration).
pub const FAILURE: u8 = 1;
/// Bad input: a flag, the input JSON, or a field of it (the message names which).
pub const BAD_INPUT: u8 = 2;
/// Denied: missing scope or refused credential.
pub const DENIED: u8 = 3;
/// `audit verify` found the ledger not intact.
pub const LEDGER_BROKEN: u8 = 4;
