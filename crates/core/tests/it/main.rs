//! Integration tests of the core through its public API, with a controllable clock.

mod approvals;
mod billing;
mod byok;
mod insider;
mod isolation;
mod kms_aws;
mod lifecycle;
mod publish;
mod scopes;
mod support;
mod tamper;
