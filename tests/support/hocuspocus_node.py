"""Drive stock `@hocuspocus/provider` clients (and headless Tiptap) from pytest.

One Node process (``tests/node/hpclient.mjs``) hosts sockets (`HocuspocusProviderWebsocket`)
and clients (one `HocuspocusProvider` each, i.e. one document), over the JSON-lines
protocol of `NodeYjs`. Waits are bounded and evaluated in Node on every change.
"""

from __future__ import annotations

from typing import Any

from tests.support.yjs_node import NODE_DIR, NodeYjs

SCRIPT = NODE_DIR / "hpclient.mjs"


def hocuspocus_node() -> NodeYjs:
    return NodeYjs(script=SCRIPT)


class HpClient:
    """One provider (one document) in the Node process."""

    def __init__(self, node: NodeYjs, name: str) -> None:
        self.node = node
        self.name = name

    async def wait(self, expr: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the JS expression over the client's state `s` holds; returns `s`."""
        return await self.node.call(
            "wait", self.name, expr=expr, within=timeout, timeout=timeout + 5.0
        )

    async def state(self) -> dict[str, Any]:
        return await self.node.call("state", self.name)

    async def insert(self, text: str) -> None:
        await self.node.call("insert", self.name, text=text)

    async def type(self, text: str) -> None:
        await self.node.call("type", self.name, text=text)

    async def tiptap_type(self, text: str) -> None:
        await self.node.call("tiptap_type", self.name, text=text)

    async def stateless(self, payload: str) -> None:
        await self.node.call("stateless", self.name, payload=payload)

    async def set_token(self, token: str) -> None:
        await self.node.call("set_token", self.name, token=token)

    async def destroy(self) -> None:
        await self.node.call("destroy", self.name)


async def open_socket(node: NodeYjs, socket: str, url: str) -> None:
    await node.call("socket", socket=socket, url=url)


async def open_doc(
    node: NodeYjs,
    name: str,
    *,
    socket: str,
    doc: str,
    token: str,
    tiptap: bool = False,
    user: dict[str, Any] | None = None,
) -> HpClient:
    await node.call("open", name, socket=socket, doc=doc, token=token, tiptap=tiptap, user=user)
    return HpClient(node, name)
