-- Identity proof for deciders (issue #12): what each credential proves about who is acting.
--
-- A decision counts only on the decider's own proof: their own sign-in (a console JWT), an API
-- key they issued for themselves from their own proof (`api_keys.proof = 'own'`), or a chat
-- account they linked with a code that reached only them (`chat_links.proof = 'own'`) and that
-- has been linked for at least the tenant's `chat_link_min_age_secs`.

-- `demo`: seeded by `tenantops demo` (the chat sandbox may play anyone there, links count at once).
ALTER TABLE tenants ADD COLUMN demo BOOLEAN NOT NULL DEFAULT FALSE;
-- A chat link younger than this does not count for decisions (default 24 h; demo tenants 0).
ALTER TABLE tenants ADD COLUMN chat_link_min_age_secs BIGINT NOT NULL DEFAULT 86400;

-- 'own': issued by the persona itself through its own proof (or the provisioning key of the
-- first admin); 'delegated': issued by someone else, or through a delegated credential.
ALTER TABLE api_keys ADD COLUMN proof TEXT NOT NULL DEFAULT 'delegated'
    CHECK (proof IN ('own', 'delegated'));
UPDATE api_keys SET proof = 'own' WHERE name = 'provisioning' AND created_by = persona_id;

-- The proof of the credential that asked for a link code, carried into the link it makes.
ALTER TABLE chat_link_codes ADD COLUMN proof TEXT NOT NULL DEFAULT 'delegated'
    CHECK (proof IN ('own', 'delegated'));
-- Links made before codes carried proof may have been made for someone else: 'legacy' links
-- still act, but never decide, until their person links again.
ALTER TABLE chat_links ADD COLUMN proof TEXT NOT NULL DEFAULT 'legacy'
    CHECK (proof IN ('own', 'delegated', 'legacy'));

-- The in-process workspace of `tenantops chat`: its decisions count only on demo tenants.
ALTER TABLE chat_workspaces ADD COLUMN sandbox BOOLEAN NOT NULL DEFAULT FALSE;
