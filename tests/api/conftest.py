from tests.support.fixtures import node, start_scaled, start_syncd, syncd  # noqa: F401
