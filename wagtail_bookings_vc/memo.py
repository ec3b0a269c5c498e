"""Site-wide lookups remembered while one email job or one page is made.

An email job asks for the default site, its email settings and its conferencing
settings a dozen times over (the subject, the links, the calendar file, the footer),
and the members area asks for some of them for every booking it lists. Inside
:func:`read_scope` each is read from the database once; outside it, every call reads it
afresh, as the admin and anything that changes them need.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["read_scope", "remembered"]

_memo: ContextVar[dict[Hashable, object] | None] = ContextVar("bvc_memo", default=None)


@contextmanager
def read_scope() -> Iterator[None]:
    """Remember the lookups made through :func:`remembered` until the block ends.

    For code that only reads these lookups: code that changes a setting or an account
    must not run inside a scope, or it would read its own change back stale.
    """
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def remembered[T](key: Hashable, load: Callable[[], T]) -> T:
    """``load()``, once per :func:`read_scope` for each ``key``; every time outside one."""
    memo = _memo.get()
    if memo is None:
        return load()
    if key not in memo:
        memo[key] = load()
    return memo[key]  # type: ignore[return-value]
