"""API keys and who may serve where: `tt auth`, and the checks `tt serve` makes.

A request's key is looked up on every request (one HGET), so a revoked key is refused
at once by every `tt serve` of the town. Each write made with a key is audited in the
town's event stream (an `api` event naming the key, never the key itself).
"""

from __future__ import annotations

import ipaddress
import threading
import time

from tinytown.core import apikeys
from tinytown.core.apikeys import ApiKey, Scope
from tinytown.core.errors import KeyRefused, Refused
from tinytown.core.models import utcnow
from tinytown.db import apikey_store
from tinytown.ops.context import TownContext

TOUCH_EVERY_SECS = 60.0  # "last used" is written at most this often per key and process
_touched: dict[tuple[str, str], float] = {}
_touched_lock = threading.Lock()


def add_key(town: TownContext, name: str, scope: str) -> tuple[ApiKey, str]:
    """Record a new key; returns its record and the key itself, which nobody sees again."""
    record = ApiKey(name=apikeys.validate_key_name(name), scope=apikeys.parse_scope(scope))
    key = apikeys.mint()
    apikey_store.add(town.store, record, apikeys.digest(key))
    return record, key


def list_keys(town: TownContext) -> list[ApiKey]:
    return apikey_store.all_keys(town.store)


def revoke_key(town: TownContext, name: str) -> ApiKey:
    return apikey_store.revoke(town.store, name)


def authenticate(town: TownContext, key: str | None, needed: Scope) -> ApiKey:
    """The key's record if it is the town's and its scope allows `needed`: KeyRefused
    (no key, or an unknown or revoked one) or NotPermitted otherwise."""
    if not key:
        raise KeyRefused("this needs an API key: send `Authorization: Bearer <key>`"
                         " (`tt auth add NAME --scope read` makes one)")
    record = (apikey_store.find(town.store, apikeys.digest(key)) if apikeys.well_formed(key)
              else None)
    if record is None:
        raise KeyRefused("the API key is not valid (unknown or revoked)")
    _touch(town, record.name)
    record.require(needed)
    return record


def _touch(town: TownContext, name: str) -> None:
    now = time.monotonic()
    with _touched_lock:
        last = _touched.get((town.name, name))
        if last is not None and now - last < TOUCH_EVERY_SECS:
            return
        _touched[(town.name, name)] = now
    apikey_store.touch(town.store, name, utcnow())


def audit(town: TownContext, key_name: str, method: str, path: str, status: int) -> None:
    """An `api` event: which key wrote what (method, path) and how it went (status)."""
    town.store.add_event("api", None, key_name=key_name, method=method, path=path,
                         status=status)


def check_address(town: TownContext, address: str) -> None:
    """Serving beyond this machine needs a key to exist first: with none, every request
    would be refused, or, worse, a mistake elsewhere would leave the town open."""
    if is_loopback(address):
        return
    if apikey_store.count(town.store) == 0:
        raise Refused(f"refusing to serve on {address} without an API key: make one"
                      " first (`tt auth add NAME --scope read`), or serve on 127.0.0.1")


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
