//! How people use a one-time code on each surface — an install path, a bind command, a link
//! command — as the surfaces themselves register it. The core knows no surface: it returns the
//! facts (a code, its expiry) and renders them through whatever the running binary registered,
//! so a new surface brings its own syntax and the core does not change.

use crate::principal::Platform;

/// What a hint is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// A path on the tenantops server that starts an install (`{code}` is the install state).
    InstallPath,
    /// What someone who manages a workspace types there to bind it with an install code.
    BindCommand,
    /// What a person types in chat to link their account with a link code.
    LinkCommand,
}

/// The registered hints, each a template with `{code}` where the code goes.
#[derive(Clone, Debug, Default)]
pub struct Hints(Vec<(Platform, Use, String)>);

impl Hints {
    /// Registers how `platform` uses a code for `what`.
    pub fn register(&mut self, platform: Platform, what: Use, template: impl Into<String>) {
        self.0.retain(|(p, u, _)| !(*p == platform && *u == what));
        self.0.push((platform, what, template.into()));
    }

    /// `platform`'s hint for `what`, with `code` in it, if one is registered.
    pub fn render(&self, platform: Platform, what: Use, code: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(p, u, _)| *p == platform && *u == what)
            .map(|(_, _, t)| t.replace("{code}", code))
    }

    /// Every platform's hint for `what`, with `code` in it.
    pub fn all(&self, what: Use, code: &str) -> Vec<(Platform, String)> {
        self.0
            .iter()
            .filter(|(_, u, _)| *u == what)
            .map(|(p, _, t)| (*p, t.replace("{code}", code)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_render_the_code_into_what_the_surface_registered() {
        let mut h = Hints::default();
        assert_eq!(h.render(Platform::Slack, Use::LinkCommand, "C"), None);
        h.register(Platform::Slack, Use::LinkCommand, "/x link {code}");
        h.register(Platform::Slack, Use::LinkCommand, "/tenant link {code}");
        h.register(
            Platform::Discord,
            Use::LinkCommand,
            "/tenant link code:{code}",
        );
        assert_eq!(
            h.render(Platform::Slack, Use::LinkCommand, "LINK-1")
                .as_deref(),
            Some("/tenant link LINK-1")
        );
        assert_eq!(h.all(Use::LinkCommand, "C").len(), 2);
        assert!(h.all(Use::InstallPath, "C").is_empty());
    }
}
