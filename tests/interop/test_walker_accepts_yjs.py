"""Everything stock npm yjs writes passes the frame walker: random editing sessions
(text with formats and embeds, maps and arrays with every kind of value, XML as
y-prosemirror writes it, subdocs, deletions, merges and diffs) over several seeds."""

from __future__ import annotations

import pytest
from pycrdt import Doc

from syncd.protocol import (
    YLimits,
    check_dependencies,
    check_state_vector,
    check_update,
    read_state_vector,
)
from tests.support.ytraffic import yjs_traffic

pytestmark = pytest.mark.interop

LIMITS = YLimits.for_message_bytes()
SMALL = YLimits.for_message_bytes(64 * 1024)  # the floor of every cap


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_every_update_and_state_vector_of_a_yjs_session_passes(seed: int) -> None:
    traffic = yjs_traffic(seed, steps=400)
    assert len(traffic.updates) > 100 and len(traffic.state_vectors) > 20
    for update in traffic.updates:
        check_update(update, LIMITS)
        check_update(update, SMALL)
    for state_vector in traffic.state_vectors:
        check_state_vector(state_vector, LIMITS)


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_a_server_relaying_a_yjs_session_in_order_never_misses_a_dependency(seed: int) -> None:
    traffic = yjs_traffic(seed)
    server = Doc()
    emitted = traffic.updates[:-5]  # the rest are whole states, a merge and a diff
    for update in emitted:
        check_dependencies(check_update(update, LIMITS), read_state_vector(server.get_state()))
        server.apply_update(update)
    # the server ends up with everything the three docs hold
    expected: dict[int, int] = {}
    for update in traffic.updates[-5:-2]:
        whole = Doc()
        whole.apply_update(update)
        for client, clock in read_state_vector(whole.get_state()).items():
            expected[client] = max(expected.get(client, 0), clock)
    assert read_state_vector(server.get_state()) == expected


@pytest.mark.parametrize("seed", [11, 12])
def test_the_keystroke_fast_path_agrees_with_the_full_walk_on_yjs_traffic(seed: int) -> None:
    from syncd.protocol._ycontent import Cursor
    from syncd.protocol._ystructs import (
        UpdateShape,
        _typing_shape,
        _walk_delete_set,
        _walk_structs,
    )

    traffic = yjs_traffic(seed, steps=400)
    taken = 0
    for update in traffic.updates:
        fast = _typing_shape(update)
        if fast is None:
            continue
        taken += 1
        cur = Cursor(update)
        full = UpdateShape()
        _walk_structs(cur, LIMITS, full)
        _walk_delete_set(cur, LIMITS, full)
        assert fast == full and not cur.left
    assert taken > 0  # the session types text: the fast path does take some of it
