"""Every piece of shared application state, typed, in one module (no globals)."""

from aiohttp import web
from jinja2 import Environment

from gateway.configcache import ConfigCache
from gateway.db import Database
from gateway.kdfgate import KdfGate
from gateway.limits import ClientLimits
from gateway.pow import PowControl
from gateway.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
JINJA = web.AppKey("jinja", Environment)
KDF_GATE = web.AppKey("kdf_gate", KdfGate)
# Proof of work (gateway.pow), per-client limits (gateway.limits), the /config cache.
POW = web.AppKey("pow", PowControl)
CLIENTS = web.AppKey("clients", ClientLimits)
CONFIG = web.AppKey("config", ConfigCache)
