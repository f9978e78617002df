"""syncd: a CRDT sync server for collaborative notes."""

__version__ = "0.1.0"
