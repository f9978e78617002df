from tests.support.fixtures import node, start_syncd, syncd  # noqa: F401  (fixtures)
