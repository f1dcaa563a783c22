"""The rules about users, tenants, applications, audit events and signing keys that every
surface (admin portal, API, OAuth, CLI, importers) calls; the token core is portal.tokens."""
