"""The edges that speak a wire protocol: the y-websocket endpoint (raw ASGI), the
Socket.IO gateway and uvicorn's lean WebSocket protocol."""
