"""Transports: the y-websocket endpoint (Socket.IO joins later)."""
