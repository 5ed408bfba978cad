#!/bin/sh
# Registers tenantops' Discord application commands (every catalogue operation) from the
# environment: TENANTOPS_DISCORD_APPLICATION_ID and TENANTOPS_DISCORD_BOT_TOKEN, and
# DISCORD_GUILD_ID for one server (at once) — unset, the commands are registered globally.
# Run it again after upgrading tenantops: it replaces the set, it does not add to it.
set -eu
: "${TENANTOPS_DISCORD_APPLICATION_ID:?set TENANTOPS_DISCORD_APPLICATION_ID (Developer Portal → General Information)}"
: "${TENANTOPS_DISCORD_BOT_TOKEN:?set TENANTOPS_DISCORD_BOT_TOKEN (Developer Portal → Bot)}"
if [ -n "${DISCORD_GUILD_ID:-}" ]; then
    exec "${TENANTOPS_BIN:-tenantops}" discord register --guild "$DISCORD_GUILD_ID"
else
    exec "${TENANTOPS_BIN:-tenantops}" discord register
fi
