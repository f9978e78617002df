"""Shared helpers for syncd's test suites (e.g. the stock Node Yjs client driver)."""
