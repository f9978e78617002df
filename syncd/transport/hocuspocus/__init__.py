"""The Hocuspocus protocol endpoint (Tiptap's `@hocuspocus/provider`), on the same rooms as
y-websocket: codec in `syncd.protocol.hocuspocus`, per-document auth in `auth`, one
socket's documents in `socket` and `document`, stateless relay in `stateless`."""

from syncd.transport.hocuspocus.endpoint import PATH, HocuspocusEndpoint

__all__ = ["PATH", "HocuspocusEndpoint"]
