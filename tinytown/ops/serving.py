"""Serving a town over HTTP, from the Python API: API keys, the audit of writes, the
address check and the health a load balancer reads. A mixin of `Town` (ops/facade.py),
used by `tt auth` and `tt serve`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinytown import ops
from tinytown.ops.context import TownContext

if TYPE_CHECKING:
    from tinytown.core.apikeys import ApiKey, Scope
    from tinytown.ops.readiness import Health


class ServingApi:
    """API keys, audit and health (`tt auth`, `tt serve`)."""

    context: TownContext

    def add_api_key(self, name: str, scope: str) -> tuple[ApiKey, str]:
        """Record an API key of scope read, write or admin; returns its record and the
        key itself, which is shown this once (the town keeps only its digest)."""
        return ops.access.add_key(self.context, name, scope)

    def api_keys(self) -> list[ApiKey]:
        """The town's API keys (names, scopes, when made and last used; never the keys)."""
        return ops.access.list_keys(self.context)

    def revoke_api_key(self, name: str) -> ApiKey:
        return ops.access.revoke_key(self.context, name)

    def authenticate(self, key: str | None, needed: Scope) -> ApiKey:
        """The key's record when it may do what `needed` allows (KeyRefused, NotPermitted)."""
        return ops.access.authenticate(self.context, key, needed)

    def audit(self, key_name: str, method: str, path: str, status: int) -> None:
        """Append an `api` event: a write made over HTTP with the key named `key_name`."""
        ops.access.audit(self.context, key_name, method, path, status)

    def check_serve_address(self, address: str) -> None:
        """UsageError unless `address` is loopback or the town has an API key."""
        ops.access.check_address(self.context, address)

    def health(self) -> Health:
        """Whether the town's Redis answers and a supervisor leads (see ops.readiness)."""
        return ops.readiness.health(self.context)
