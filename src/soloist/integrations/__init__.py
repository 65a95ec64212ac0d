"""The integration plane: Soloist's connections to the systems a company lives in.

Email, calendars, billing, git repositories and webhooks each become a *connector*
(configured as ``[connectors.NAME]`` in ``soloist.toml``) that offers actions, which run as
tools under the same grants, policies, gates, intents and compensation as every other tool,
and triggers, which put events on the existing event bus.

Whatever a provider sends is mapped to one of a few canonical entities
(:mod:`soloist.integrations.entities`), so a playbook reads a ``Message`` or an ``Invoice``
the same way whichever server it came from. The pure, server-free parts live here first:
the entities, and email's MIME building and parsing (:mod:`soloist.integrations.mail`).

This plane sits above orchestration and below the workspace: it may use the store, the
control plane and execution, and only the workspace composes it into a running system.
"""
