"""Curated feeds: definitions, selection rules, rendering, the HTTP app, static export."""

from typing import TYPE_CHECKING

from sources.lazy import lazy_exports

if TYPE_CHECKING:
    from feeds.app import create_app
    from feeds.errors import FeedsError, UnknownFeedError
    from feeds.export import export_static
    from feeds.model import FeedDefinition, RenderedFeed, Site, SourceInfo
    from feeds.publish import Publisher
    from feeds.render import render_atom
    from feeds.select import Selector, Verdict, select_entries

__all__ = [
    "FeedDefinition",
    "FeedsError",
    "Publisher",
    "RenderedFeed",
    "Selector",
    "Site",
    "SourceInfo",
    "UnknownFeedError",
    "Verdict",
    "create_app",
    "export_static",
    "render_atom",
    "select_entries",
]

# Each name is imported on first use (sources/lazy.py); the type checker reads the imports above.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__)
