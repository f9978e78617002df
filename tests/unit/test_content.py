"""syncd.content reads and writes rich text exactly as y-prosemirror lays it out.

Fixtures (tests/unit/fixtures/content/) come from real Yjs 13.6 + y-prosemirror
1.3.7 in a throwaway npm project (not committed), with a test schema:
prosemirror-schema-basic + prosemirror-schema-list + an inline atom
``mention {id, label}`` + an overlapping mark ``comment {id}`` (``excludes: ""``).

- ``y_prosemirror_docs.json``: per case, the PM JSON ``input``, the Yjs update of
  ``prosemirrorJSONToYXmlFragment`` (``Y.encodeStateAsUpdate``, base64), what
  ``yXmlFragmentToProsemirrorJSON`` returns for it (``json``), and ProseMirror's
  ``textBetween(0, size, "\\n", leafText)`` with mention -> "@label|@id" and
  hard_break -> "\\n" (``text``).
- ``python_writes.json``: updates produced by ``write_json`` (fresh docs, and edits
  on a fixture ``base``), applied in Node; ``json`` is what
  ``yXmlFragmentToProsemirrorJSON`` returned.  Node also checked that
  ``yXmlFragmentToProseMirrorRootNode`` with the schema rebuilds ``input``
  without dropping nodes and that the layout equals what y-prosemirror's own
  ``updateYFragment`` writes for the same change (up to key order).
  ``concurrent``: a peer's Yjs update made on the base concurrently with the
  Python write, and the merged JSON Node computed.  ``cursors``: Yjs relative
  positions encoded on the base and their index after the Python write.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.content import (
    DEFAULT_FIELD,
    CheckedDoc,
    ContentError,
    check_doc,
    doc_to_json,
    doc_to_text,
    extract_mentions,
    fragment_to_json,
    fragment_to_text,
    json_to_text,
    text_to_json,
    validate_pm_json,
    write_json,
)
from syncd.updates import EMPTY_UPDATE

FIXTURES = Path(__file__).parent / "fixtures" / "content"
YPM = json.loads((FIXTURES / "y_prosemirror_docs.json").read_text())
PYW = json.loads((FIXTURES / "python_writes.json").read_text())
WRITTEN = {name: case for name, case in YPM.items() if case["input"] is not None}


def doc_from(*updates: str | bytes) -> pycrdt.Doc:
    doc: pycrdt.Doc = pycrdt.Doc()
    for update in updates:
        doc.apply_update(base64.b64decode(update) if isinstance(update, str) else update)
    return doc


def exact(value: Any) -> str:
    """JSON text, so 2 and 2.0 differ as they do for a JS client."""
    return json.dumps(value, sort_keys=True)


def canon(value: Any) -> Any:
    """ProseMirror-equivalent form: mark order, null attrs, empty content and split
    text runs carry no meaning once ProseMirror parses the JSON."""
    if isinstance(value, list):
        out: list[Any] = []
        for item in map(canon, value):
            prev = out[-1] if out else None
            if (
                isinstance(prev, dict)
                and isinstance(item, dict)
                and prev.get("type") == item.get("type") == "text"
                and prev.get("marks") == item.get("marks")
            ):
                out[-1] = {**prev, "text": prev["text"] + item["text"]}
            else:
                out.append(item)
        return out
    if isinstance(value, dict):
        out_d = {k: canon(v) for k, v in value.items() if k not in ("attrs", "content", "marks")}
        attrs = {k: v for k, v in (value.get("attrs") or {}).items() if v is not None}
        if attrs:
            out_d["attrs"] = canon(attrs)
        if value.get("content"):
            out_d["content"] = canon(value["content"])
        if value.get("marks"):
            marks = [canon({"attrs": {}, **m}) for m in value["marks"]]
            out_d["marks"] = sorted(marks, key=exact)
        return out_d
    return value


# --- reading what y-prosemirror wrote ----------------------------------------------


@pytest.mark.parametrize("name", sorted(YPM))
def test_reads_a_y_prosemirror_doc_as_y_prosemirror_does(name: str) -> None:
    case = YPM[name]
    fragment = doc_from(case["update"]).get(DEFAULT_FIELD, type=pycrdt.XmlFragment)

    assert exact(fragment_to_json(fragment)) == exact(case["json"])
    assert fragment_to_text(fragment) == case["text"]


def test_doc_helpers_read_the_named_field() -> None:
    doc = doc_from(YPM["mentions"]["update"])
    assert doc_to_json(doc) == YPM["mentions"]["json"]
    assert doc_to_text(doc, "prosemirror") == "Ping @Ada and @u-7 please"
    assert doc_to_json(doc, "default") == {"type": "doc", "content": []}  # Tiptap's field


def test_plain_text_rules() -> None:
    pm = {
        "type": "doc",
        "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Hi"}]},
            {"type": "paragraph"},
            {
                "type": "paragraph",
                "content": [
                    {"type": "mention", "attrs": {"id": "u1", "label": "Ada"}},
                    {"type": "hardBreak"},
                    {"type": "mention", "attrs": {"id": "u2", "label": None}},
                ],
            },
            {"type": "horizontalRule"},
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "item"}]}
                        ],
                    }
                ],
            },
        ],
    }
    assert json_to_text(pm) == "Hi\n\n@Ada\n@u2\nitem"
    doc: pycrdt.Doc = pycrdt.Doc()
    write_json(doc, pm, "default")
    assert doc_to_text(doc, "default") == "Hi\n\n@Ada\n@u2\nitem"


@pytest.mark.parametrize(
    ("text", "paragraphs"),
    [("", [None]), ("one", ["one"]), ("a\n\nb\r\nc\n", ["a", None, "b", "c", None])],
)
def test_text_to_json_makes_one_paragraph_per_line(text: str, paragraphs: list[Any]) -> None:
    pm = text_to_json(text)
    expected = [
        {"type": "paragraph", "content": [{"type": "text", "text": p}]}
        if p
        else {"type": "paragraph"}
        for p in paragraphs
    ]
    assert pm == {"type": "doc", "content": expected}
    assert validate_pm_json(pm) is pm
    assert json_to_text(pm) == text.replace("\r\n", "\n")


# --- writing -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_write_then_read_gives_what_y_prosemirror_reads(name: str) -> None:
    case = WRITTEN[name]
    doc: pycrdt.Doc = pycrdt.Doc()
    update = write_json(doc, case["input"])

    assert exact(doc_to_json(doc)) == exact(case["json"])
    assert doc_to_text(doc) == case["text"]
    assert exact(doc_to_json(doc_from(update))) == exact(case["json"])  # update is complete
    assert write_json(doc, case["input"]) == EMPTY_UPDATE  # nothing left to change


@pytest.mark.parametrize("name", sorted(PYW["writes"]))
def test_python_written_updates_read_as_node_read_them(name: str) -> None:
    case = PYW["writes"][name]
    base = [YPM[case["base"]]["update"]] if case["base"] else []
    doc = doc_from(*base, case["update"])
    # Marks come out in _marks' rank order; Node shows yrs' (random) format order.
    assert canon(doc_to_json(doc)) == canon(case["json"])


@pytest.mark.parametrize("name", sorted(PYW["writes"]))
def test_write_json_still_produces_what_node_accepted(name: str) -> None:
    case = PYW["writes"][name]
    base = [YPM[case["base"]]["update"]] if case["base"] else []
    doc = doc_from(*base)
    update = write_json(doc, case["input"])

    assert canon(doc_to_json(doc)) == canon(case["json"]) == canon(case["input"])
    # the returned update alone carries the change to a peer that has the base
    assert canon(doc_to_json(doc_from(*base, update))) == canon(case["json"])


@pytest.mark.parametrize("name", sorted(PYW["concurrent"]))
def test_concurrent_peer_edits_survive_the_write(name: str) -> None:
    case = PYW["concurrent"][name]
    write = PYW["writes"][case["write"]]
    base = YPM[write["base"]]["update"]
    for order in ((write["update"], case["peer_update"]), (case["peer_update"], write["update"])):
        assert exact(doc_to_json(doc_from(base, *order))) == exact(case["json"])


def test_peer_cursors_keep_their_place() -> None:
    cursors = PYW["cursors"]
    doc = doc_from(YPM[cursors["base"]]["update"])
    positions = [
        pycrdt.StickyIndex.decode(base64.b64decode(p["relpos"])) for p in cursors["positions"]
    ]
    with doc.transaction() as txn:
        assert [p.get_index(txn) for p in positions] == [p["before"] for p in cursors["positions"]]
    write_json(doc, PYW["writes"][cursors["write"]]["input"])
    with doc.transaction() as txn:
        assert [p.get_index(txn) for p in positions] == [p["after"] for p in cursors["positions"]]


def paragraphs(*lines: str) -> dict[str, Any]:
    return text_to_json("\n".join(lines))


def test_editing_one_paragraph_leaves_the_others_untouched() -> None:
    doc: pycrdt.Doc = pycrdt.Doc()
    write_json(doc, paragraphs("Alpha " * 50, "Bravo " * 50, "Charlie " * 50))
    fragment = doc.get(DEFAULT_FIELD, type=pycrdt.XmlFragment)
    before = list(fragment.children)
    middle_text = before[1].children[0]

    update = write_json(
        doc, paragraphs("Alpha " * 50, "Bravo " * 25 + "!" + "Bravo " * 25, "Charlie " * 50)
    )

    after = list(fragment.children)
    assert after == before  # same items: the other two were not recreated
    assert after[1].children[0] == middle_text  # the text was edited in place
    assert len(update) < 40  # one inserted character, not 900 characters of paragraphs


def test_structural_edits_keep_matching_siblings() -> None:
    doc: pycrdt.Doc = pycrdt.Doc()
    write_json(doc, paragraphs("a", "b", "c"))
    fragment = doc.get(DEFAULT_FIELD, type=pycrdt.XmlFragment)
    a, b, c = fragment.children

    write_json(doc, paragraphs("a", "new", "b", "c"))
    assert [fragment.children[i] for i in (0, 2, 3)] == [a, b, c]
    write_json(doc, paragraphs("a", "c"))
    assert list(fragment.children) == [a, c]
    heading = {"type": "heading", "attrs": {"level": 1}, "content": [{"type": "text", "text": "a"}]}
    write_json(doc, {"type": "doc", "content": [heading, paragraphs("c")["content"][0]]})
    assert fragment.children[0] != a  # a paragraph cannot become a heading in place
    assert fragment.children[1] == c
    assert doc_to_json(doc)["content"][0] == heading


def test_attribute_and_mark_changes_edit_in_place() -> None:
    doc: pycrdt.Doc = pycrdt.Doc()
    h = {"type": "heading", "attrs": {"level": 1}, "content": [{"type": "text", "text": "Title"}]}
    write_json(doc, {"type": "doc", "content": [h]})
    fragment = doc.get(DEFAULT_FIELD, type=pycrdt.XmlFragment)
    element = fragment.children[0]
    text = element.children[0]

    h2 = {
        "type": "heading",
        "attrs": {"level": 2, "id": None},
        "content": [
            {"type": "text", "text": "Ti"},
            {"type": "text", "text": "tle", "marks": [{"type": "em"}]},
        ],
    }
    write_json(doc, {"type": "doc", "content": [h2]})

    assert fragment.children[0] == element
    assert element.children[0] == text
    assert doc_to_json(doc) == {
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [
                    {"type": "text", "text": "Ti"},
                    {"type": "text", "text": "tle", "marks": [{"type": "em", "attrs": {}}]},
                ],
            }
        ],
    }
    assert exact(doc_to_json(doc)["content"][0]["attrs"]) == '{"level": 2}'  # an int, not 2.0


def test_overlapping_marks_use_y_prosemirror_keys() -> None:
    doc: pycrdt.Doc = pycrdt.Doc()
    write_json(doc, YPM["overlapping_comments"]["input"])
    text = doc.get(DEFAULT_FIELD, type=pycrdt.XmlFragment).children[0].children[0]
    keys = {key for _, attrs in text.diff() for key in attrs or {}}
    # the same keys y-prosemirror computed (hashOfJSON of the mark's JSON)
    assert keys == {"comment--1tiVU/zO", "comment--pueABHZP", "strong"}


def test_text_offsets_are_right_beyond_ascii() -> None:
    doc: pycrdt.Doc = pycrdt.Doc()
    write_json(doc, paragraphs("héllo 👋🏽 世界 ✓"))
    for line in ("héllo 👋🏽👋 世界!! ✓", "👋 世界", "x👋🏽 世界 ✓✓", ""):
        write_json(doc, paragraphs(line))
        assert doc_to_text(doc) == line


def test_write_json_rejects_bad_content_and_leaves_the_doc_alone() -> None:
    doc = doc_from(YPM["paragraphs"]["update"])
    with pytest.raises(ContentError):
        write_json(doc, {"type": "doc", "content": [{"type": "paragraph", "content": "x"}]})
    assert doc_to_json(doc) == YPM["paragraphs"]["json"]


def test_write_json_needs_its_own_transaction() -> None:
    doc: pycrdt.Doc = pycrdt.Doc()
    with pytest.raises(RuntimeError), doc.transaction():
        write_json(doc, paragraphs("x"))


def test_write_json_tags_the_transaction_with_origin() -> None:
    doc: pycrdt.Doc = pycrdt.Doc()
    origins: list[Any] = []
    fragment = doc.get(DEFAULT_FIELD, type=pycrdt.XmlFragment)  # keep: it holds the subscription
    fragment.observe_deep(lambda events: origins.append(events[0].transaction.origin))
    write_json(doc, paragraphs("x"), origin="rest-api")
    assert origins == ["rest-api"]


# --- random documents: any sequence of writes ends in the last one --------------------

_words = st.text(alphabet="ab é👋\n", min_size=1, max_size=6)
_mark = st.sampled_from(
    [
        {"type": "strong"},
        {"type": "em"},
        {"type": "link", "attrs": {"href": "https://a.example", "title": None}},
        {"type": "link", "attrs": {"href": "https://b.example", "title": None}},
        {"type": "comment", "attrs": {"id": "c1"}},
        {"type": "comment", "attrs": {"id": "c2"}},
    ]
)


@st.composite
def _text(draw: st.DrawFn) -> dict[str, Any]:
    marks: list[dict[str, Any]] = []
    for mark in draw(st.lists(_mark, max_size=3)):
        # one mark per type, except comments, which overlap
        overlaps = mark["type"] == "comment" or all(m["type"] != mark["type"] for m in marks)
        if overlaps and mark not in marks:
            marks.append(mark)
    node: dict[str, Any] = {"type": "text", "text": draw(_words)}
    if marks:
        node["marks"] = marks
    return node


_inline = st.one_of(
    _text(),
    _text(),
    st.builds(
        lambda i: {"type": "mention", "attrs": {"id": i, "label": None}}, st.sampled_from("xy")
    ),
    st.just({"type": "hard_break"}),
)
_paragraph = st.builds(
    lambda c: {"type": "paragraph", **({"content": c} if c else {})}, st.lists(_inline, max_size=4)
)
_heading = st.builds(
    lambda c: {"type": "heading", "attrs": {"level": 2}, **({"content": c} if c else {})},
    st.lists(_inline, max_size=4),
)
# valid in the fixture schema too: a list item starts with a paragraph
_block = st.recursive(
    _paragraph | _heading,
    lambda inner: st.builds(
        lambda items: {
            "type": "bullet_list",
            "content": [{"type": "list_item", "content": [first, *rest]} for first, rest in items],
        },
        st.lists(st.tuples(_paragraph, st.lists(inner, max_size=1)), min_size=1, max_size=2),
    ),
    max_leaves=6,
)
_docs = st.builds(lambda c: {"type": "doc", "content": c}, st.lists(_block, max_size=4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_docs, min_size=1, max_size=3))
def test_any_sequence_of_writes_ends_in_the_last_document(docs: list[dict[str, Any]]) -> None:
    doc: pycrdt.Doc = pycrdt.Doc()
    mirror: pycrdt.Doc = pycrdt.Doc()  # a peer that only sees the returned updates
    for pm in docs:
        mirror.apply_update(write_json(doc, pm))
        assert canon(doc_to_json(doc)) == canon(pm)
        assert canon(doc_to_json(mirror)) == canon(pm)
        assert doc_to_text(doc) == json_to_text(pm)


# --- validation -------------------------------------------------------------------------

P = {"type": "paragraph"}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "must be an object"),
        ([], "must be an object"),
        ({"content": []}, "'type' must be a string"),
        ({"type": "paragraph"}, 'root type must be "doc"'),
        ({"type": "doc", "content": {}}, "must be a list"),
        ({"type": "doc", "content": [P], "text": "x"}, "only text nodes"),
        ({"type": "doc", "content": [{"type": "text", "text": "x"}]}, "inside a block"),
        ({"type": "doc", "content": [{"type": 3}]}, "'type' must be a string"),
        ({"type": "doc", "content": [{"type": ""}]}, "invalid type name"),
        ({"type": "doc", "content": [{"type": "a b"}]}, "invalid type name"),
        ({"type": "doc", "content": [{**P, "foo": 1}]}, "unknown keys"),
        ({"type": "doc", "content": [{**P, "attrs": []}]}, "must be an object"),
        ({"type": "doc", "content": [{**P, "attrs": {"x": float("nan")}}]}, "finite"),
        ({"type": "doc", "content": [{**P, "attrs": {"x": 2**60}}]}, "JSON-safe"),
        ({"type": "doc", "content": [{**P, "attrs": {"x": {1: 2}}}]}, "keys must be strings"),
        ({"type": "doc", "content": [{**P, "attrs": {"x": b"raw"}}]}, "not a JSON value"),
        ({"type": "doc", "content": [{**P, "content": [{"type": "text"}]}]}, "non-empty string"),
        (
            {"type": "doc", "content": [{**P, "content": [{"type": "text", "text": ""}]}]},
            "non-empty string",
        ),
        (
            {
                "type": "doc",
                "content": [{**P, "content": [{"type": "text", "text": "x", "content": []}]}],
            },
            "cannot have content",
        ),
        (
            {
                "type": "doc",
                "content": [{**P, "content": [{"type": "text", "text": "x", "marks": {}}]}],
            },
            "must be a list",
        ),
        (
            {
                "type": "doc",
                "content": [{**P, "content": [{"type": "text", "text": "x", "marks": ["strong"]}]}],
            },
            "a mark must be an object",
        ),
        (
            {
                "type": "doc",
                "content": [
                    {
                        **P,
                        "content": [
                            {"type": "text", "text": "x", "marks": [{"type": "em", "x": 1}]}
                        ],
                    }
                ],
            },
            "unknown keys",
        ),
        (
            {
                "type": "doc",
                "content": [
                    {
                        **P,
                        "content": [
                            {"type": "text", "text": "x", "marks": [{"type": "em--abcdefgh"}]}
                        ],
                    }
                ],
            },
            "hashed",
        ),
        (
            {
                "type": "doc",
                "content": [
                    {
                        **P,
                        "content": [
                            {"type": "text", "text": "x", "marks": [{"type": "em", "attrs": 1}]}
                        ],
                    }
                ],
            },
            "must be an object",
        ),
    ],
)
def test_validate_rejects_malformed_documents(bad: object, message: str) -> None:
    with pytest.raises(ContentError, match=message):
        validate_pm_json(bad)


def test_validate_accepts_every_fixture_document() -> None:
    for case in YPM.values():
        validate_pm_json(case["json"])
        if case["input"] is not None:
            validate_pm_json(case["input"])


def test_validate_bounds_depth_and_size() -> None:
    deep: dict[str, Any] = P
    for _ in range(10):
        deep = {"type": "blockquote", "content": [deep]}
    validate_pm_json({"type": "doc", "content": [deep]}, max_depth=11)
    with pytest.raises(ContentError, match="deeper than 10"):
        validate_pm_json({"type": "doc", "content": [deep]}, max_depth=10)
    with pytest.raises(ContentError, match="more than 5 nodes"):
        validate_pm_json({"type": "doc", "content": [P] * 5}, max_nodes=5)
    with pytest.raises(ContentError, match="deeper than"):  # attrs nesting counts too
        validate_pm_json(
            {"type": "doc", "content": [{**P, "attrs": {"a": [[[[1]]]]}}]}, max_depth=4
        )


def test_validate_bounds_strings() -> None:
    long_text = {"type": "paragraph", "content": [{"type": "text", "text": "x" * 11}]}
    with pytest.raises(ContentError, match="longer than 10 characters"):
        validate_pm_json({"type": "doc", "content": [long_text]}, max_text=10)
    long_attr = {"type": "image", "attrs": {"src": "x" * 11}}
    with pytest.raises(ContentError, match="longer than 10 characters"):
        validate_pm_json({"type": "doc", "content": [long_attr]}, max_text=10)
    validate_pm_json({"type": "doc", "content": [long_text, long_attr]}, max_text=11)


def test_plain_text_of_too_many_lines_is_refused_by_the_node_budget() -> None:
    with pytest.raises(ContentError, match="more than 100000 nodes"):
        check_doc(text_to_json("\n" * 150_000))


def test_a_checked_doc_is_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"type": "doc", "content": [P, P]}
    checked = check_doc(doc)
    assert isinstance(checked, CheckedDoc) and checked == doc
    assert check_doc(checked) is checked
    calls: list[str] = []
    import syncd.content._validate as validate_module

    real = validate_module._check_node
    monkeypatch.setattr(
        validate_module,
        "_check_node",
        lambda node, path, *rest: calls.append(path) or real(node, path, *rest),
    )
    ydoc: pycrdt.Doc = pycrdt.Doc()
    write_json(ydoc, checked)
    assert calls == []  # the writer trusts what check_doc made
    write_json(pycrdt.Doc(), dict(doc))
    assert calls  # and checks a plain dict itself
    assert doc_to_json(ydoc) == doc


def test_validate_survives_a_very_deep_document() -> None:
    deep: dict[str, Any] = P
    for _ in range(5000):
        deep = {"type": "blockquote", "content": [deep]}
    with pytest.raises(ContentError, match="deeper than 64"):
        validate_pm_json({"type": "doc", "content": [deep]})


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.sampled_from(["doc", "text", "paragraph", "type", "content", "marks", "attrs"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "content", "text", "marks", "attrs", "x"])
            | st.text(max_size=3),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_validate_raises_only_content_error(value: object) -> None:
    try:
        result = validate_pm_json(value)
    except ContentError:
        return
    assert result is value


# --- mentions ----------------------------------------------------------------------------


def test_extract_mentions_reads_nodes_and_text_tokens() -> None:
    pm = {
        "type": "doc",
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "mention", "attrs": {"id": "u-42", "label": "Ada"}},
                    {"type": "text", "text": " cc @bob.smith, @carol-x. and @d"},
                    {"type": "text", "text": "an_1", "marks": [{"type": "strong"}]},
                    {"type": "text", "text": " mail eve@example.com or @@x or a.@y"},
                ],
            },
            {
                "type": "bullet_list",
                "content": [
                    {
                        "type": "list_item",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "@zoe"}]}
                        ],
                    }
                ],
            },
            {"type": "paragraph", "content": [{"type": "mention", "attrs": {"id": 7}}]},
        ],
    }
    assert extract_mentions(pm) == {"u-42", "bob.smith", "carol-x", "dan_1", "zoe", "7"}


def test_extract_mentions_matches_the_fixture_and_ignores_junk() -> None:
    assert extract_mentions(YPM["mentions"]["json"]) == {"u-42", "u-7"}
    junk = {"type": "doc", "content": [1, {"type": "mention"}, {"content": 5}]}
    assert extract_mentions(junk) == set()
