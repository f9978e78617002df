"""Socket.IO gateway, presence (who is on a note) and the hub that keeps both current."""
