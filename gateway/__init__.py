"""The Fristed gateway: an aiohttp application (see `gateway.app.create_app`)."""
