"""The unit tier's guard: every phase of every unit test runs with processes and IP sockets refused.

Hook wrappers rather than an autouse fixture, so that a module- or
session-scoped fixture that starts a server is caught too: its setup runs
inside the setup phase of the first test that uses it.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.unit.guard import Guard, fail_on

_GUARD = Guard()


def _guarded(item: pytest.Item) -> Generator[None, object, object]:
    _GUARD.install()
    try:
        result = yield
    finally:
        _GUARD.uninstall()
    fail_on(_GUARD.take(), item.nodeid)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item))


@pytest.fixture
def unit_guard() -> Guard:
    """The installed guard, for the tests of the guard itself (they take what they provoke)."""
    return _GUARD
