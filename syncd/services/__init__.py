"""The use cases between the edges (api, transport) and the core (protocol, room, bus, storage)."""
