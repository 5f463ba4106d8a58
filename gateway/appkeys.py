"""Every piece of shared application state, typed, in one module (no globals)."""

from aiohttp import web
from jinja2 import Environment

from gateway.db import Database
from gateway.kdfgate import KdfGate
from gateway.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
JINJA = web.AppKey("jinja", Environment)
KDF_GATE = web.AppKey("kdf_gate", KdfGate)
