"""Template context of the example site: the navigation shown in every page's header."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from wagtail.models import Page, Site


@dataclass(frozen=True)
class NavItem:
    """One link of the main navigation."""

    title: str
    url: str
    active: bool


def _nav_items(request: HttpRequest) -> list[NavItem]:
    site = Site.find_for_request(request)
    if site is None:
        return []
    root = site.root_page
    pages: list[Page] = [root, *root.get_children().live().in_menu().specific()]
    path = request.path
    items = []
    for page in pages:
        url = page.get_url(request=request)
        if not url:
            continue
        active = path == url if page.pk == root.pk else path.startswith(url)
        title = "Home" if page.pk == root.pk else page.title
        items.append(NavItem(title=title, url=url, active=active))
    return items


def navigation(request: HttpRequest) -> dict[str, object]:
    """Add ``site_nav``: the home page and its children shown in menus, computed on first use."""
    return {"site_nav": SimpleLazyObject(lambda: _nav_items(request))}
