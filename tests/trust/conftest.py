"""Fixtures of the trust tests; the helpers live in trust_support (import them from there)."""

from trust_support import *  # noqa: F403 - the fixtures are registered from here
