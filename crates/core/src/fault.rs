//! Named crash points for testing exactly-once execution against a real process kill.
//!
//! `TENANTOPS_FAULT=<point>` makes the process abort (no destructors, no further commits — the
//! effect of `kill -9`) when it reaches that point. Nothing else reads the variable; a crash can
//! only lose work that the resume logic must then finish, never skip a check.

/// After an approval decision committed, before the approved operation runs.
pub const AFTER_APPROVAL: &str = "after-approval";

/// Aborts the process if `TENANTOPS_FAULT` names `point`.
pub fn point(point: &str) {
    if std::env::var("TENANTOPS_FAULT").is_ok_and(|v| v == point) {
        eprintln!(
            "tenantops: fault point `{point}` reached; aborting as instructed by TENANTOPS_FAULT"
        );
        std::process::abort();
    }
}
