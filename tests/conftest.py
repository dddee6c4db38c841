"""Fixtures for the whole suite; the helpers live in _support (import them from there, never
from conftest: several conftest modules share that name)."""

from _support import *  # noqa: F403 - the fixtures are registered from here
