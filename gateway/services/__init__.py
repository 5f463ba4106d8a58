"""Services hold the rules; routes parse input and render, storage is `gateway.models`."""
