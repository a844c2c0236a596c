"""config.yaml, read once into typed, frozen settings.

Unknown keys, duplicate ids, references to sources or tags that do not exist, bad URLs and
bad intervals are refused with a :class:`ConfigError` whose every line names the key path
(``sources[2] (id 'theregister').url``) and the problem. docs/config.md documents every key;
a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import gc
import ipaddress
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from feedmill.errors import ConfigError
from feeds.model import FeedDefinition, Rule, SearchSettings, Site
from feeds.rules import RuleError, compile_regex
from feeds.select import FEED_QUERY_LIMITS
from sources.hosts import HostLimits
from sources.netguard import AddressPolicy
from sources.parsing import ParsePool
from sources.policy import PollSettings
from sources.settings import FetchSettings, default_user_agent
from sources.urls import check_url
from store.canonical import DEFAULT_TRACKING_PARAMETERS, TrackingFilter
from store.database import missing_driver, resolve_database_url
from store.errors import StoreError
from store.model import Retention, SourceDefinition
from store.search import QueryError, parse_query
from store.stories import StorySettings
from store.stories.embed import embedder_installed
from store.stories.settings import EMBEDDER_NAMES

DEFAULT_CONFIG = "config.yaml"
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SLUG = r"^[a-z0-9][a-z0-9_-]{0,99}$"
MIN_INTERVAL = timedelta(minutes=1)
MAX_INTERVAL = timedelta(days=7)
# The longest duration: 50 years, so that `now - duration` and its seconds (a 32-bit column
# on PostgreSQL) stay in range.
MAX_DURATION = timedelta(days=18250)
MAX_COUNT = 1_000_000_000  # the largest count (max_entries) a 32-bit column holds with room


def parse_duration(value: Any) -> timedelta:
    """``90`` (seconds), ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1h30m"``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration such as 30m, 2h or 1d")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a duration such as 30m, 2h or 1d")
    if isinstance(value, int | float):
        return _checked(value, lambda: timedelta(seconds=value))
    match = _DURATION.match(str(value).strip().lower()) if isinstance(value, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration such as 30m, 2h or 1d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return _checked(
        value, lambda: timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    )


def _checked(value: Any, make: Callable[[], timedelta]) -> timedelta:
    """``make()``, or a ValueError when the duration is too long for a timedelta at all."""
    try:
        return make()
    except OverflowError:
        raise ValueError(f"{value!r} is too long: at most {_days(MAX_DURATION)}") from None


# An http(s) URL that sources.urls.check_url certainly accepts, told in one regular
# expression (the full check, per source, dominates reading a config of many sources): a host name
# whose last label starts with a letter, or a canonical IPv4 address; a port in range; then
# printable ASCII only. Anything else gets the full check.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN_HTTP_URL = re.compile(
    r"https?://(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z][A-Za-z0-9-]*"
    rf"|(?:{_OCTET}\.){{3}}{_OCTET})"
    r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r"(?:[/?#][!-~]*)?"
)


def _http_url(value: str) -> str:
    if _PLAIN_HTTP_URL.fullmatch(value):
        return value
    return check_url(value.strip())


def _interval(value: timedelta) -> timedelta:
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:
        raise ValueError(f"an interval must be between 1m and 7d, not {_show(value)}")
    return value


def _host_or_cidr(value: str) -> str:
    value = value.strip()
    if not value or ("/" in value and not _is_network(value)):
        raise ValueError(f"{value!r} is neither a host name nor a CIDR such as 10.0.0.0/8")
    return value


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    if value > MAX_DURATION:
        raise ValueError(f"{_days(value)} is too long: at most {_days(MAX_DURATION)}")
    return value


def _show(value: timedelta) -> str:
    return f"{int(value.total_seconds())}s"


def _days(value: timedelta) -> str:
    return f"{value.days}d" if value.days else _show(value)


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
Interval = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_interval)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
Slug = Annotated[str, Field(pattern=_SLUG)]
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    base_url: HttpUrl | None = None
    title: str = "feedmill"
    shutdown_timeout: Duration = timedelta(seconds=10)
    access_log: bool = False

    def public_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = self.base_url or f"http://{host}:{self.port}/"
        return url if url.endswith("/") else url + "/"


class PerHostSettings(_Section):
    concurrency: int = Field(2, ge=1, le=100)
    share_retry_after: bool = False


class FetchConfig(_Section):
    interval: Interval = timedelta(minutes=30)
    min_interval: Interval = timedelta(minutes=5)
    max_interval: Interval = timedelta(days=1)
    hint_ceiling: Interval = timedelta(days=1)
    jitter: float = Field(0.1, ge=0, le=1)
    permanent_redirect_polls: int = Field(3, ge=1, le=100)
    per_host: PerHostSettings = PerHostSettings()
    block_private_addresses: bool = True
    allow_addresses: list[Annotated[str, AfterValidator(_host_or_cidr)]] = []
    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=30)
    deadline: Duration = timedelta(seconds=60)
    max_redirects: int = Field(5, ge=0, le=20)
    max_body_size: int = Field(15 * 1024 * 1024, ge=1024)
    concurrency: int = Field(10, ge=1, le=1000)
    user_agent: str | None = None
    parse_deadline: Duration = timedelta(seconds=30)
    parse_workers: int = Field(0, ge=0, le=64)


class SchedulerSettings(_Section):
    heartbeat: Duration = timedelta(seconds=30)
    lease: Duration = timedelta(minutes=10)


class RetentionSettings(_Section):
    """How long entries are kept; each source may override either key."""

    max_age: Duration | None = None
    max_entries: int | None = Field(None, ge=1, le=MAX_COUNT)


class LinksSettings(_Section):
    """How canonical links are made: tracking parameters dropped (store.canonical)."""

    tracking_parameters: list[Annotated[str, Field(min_length=1)]] = list(
        DEFAULT_TRACKING_PARAMETERS
    )

    def tracking_filter(self) -> TrackingFilter:
        return TrackingFilter(self.tracking_parameters)


def _story_section(value: Any) -> Any:
    """The ``stories:`` mapping checked for unknown keys, its windows read as durations and
    its embedder checked to be installed; pydantic then builds the StorySettings."""
    if not isinstance(value, dict):
        return value
    known = {f.name for f in dataclasses.fields(StorySettings)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    values = dict(value)
    for name in ("window", "headline_window"):
        if name in values:
            try:
                values[name] = parse_duration(values[name])
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from exc
    embedder = values.get("embedder")
    if embedder and embedder in EMBEDDER_NAMES and not embedder_installed(embedder):
        raise ValueError(
            f"embedder {embedder!r} needs the embeddings extra: pip install 'feedmill[embeddings]'"
        )
    return values


StoriesSection = Annotated[StorySettings, BeforeValidator(_story_section)]


class SourceSettings(_Section):
    id: Slug
    url: HttpUrl
    title: str | None = None
    tags: list[str] = []
    interval: Interval | None = None
    max_age: Duration | None = None
    max_entries: int | None = Field(None, ge=1, le=MAX_COUNT)


RuleField = Literal["title", "summary", "content", "author", "categories", "link", "source"]
Pattern = Annotated[str, Field(min_length=1)]


class RuleSettings(_Section):
    """One rule of ``include`` / ``exclude`` written as a mapping (a plain string is a
    keyword): exactly one of keyword, phrase, regex, any, all; optional fields."""

    keyword: Keyword | None = None
    phrase: Keyword | None = None
    regex: Pattern | None = None
    any: list[RuleItem] | None = None
    all: list[RuleItem] | None = None
    fields: list[RuleField] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> RuleSettings:
        kinds = [k for k in _RULE_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"a rule needs exactly one of {', '.join(_RULE_KINDS)}")
        group = self.any if self.any is not None else self.all
        if group is not None and not group:
            raise ValueError(f"an {kinds[0]!r} group needs at least one rule")
        if self.regex is not None:
            try:
                compile_regex(self.regex, strict=True)
            except RuleError as exc:
                raise ValueError(str(exc)) from None
        if self.fields is not None and not self.fields:
            raise ValueError("fields may not be empty")
        return self

    def rule(self) -> Rule:
        fields = tuple(self.fields) if self.fields else None
        for kind in ("any", "all"):
            members = getattr(self, kind)
            if members is not None:
                return Rule(kind, fields=fields, rules=tuple(_rule(m) for m in members))
        kind = next(k for k in ("keyword", "phrase", "regex") if getattr(self, k) is not None)
        return Rule(kind, getattr(self, kind), fields=fields)


def _keyword_shorthand(value: Any) -> Any:
    """``- GPU`` is short for ``- keyword: GPU``."""
    return {"keyword": value} if isinstance(value, str) else value


_RULE_KINDS = ("keyword", "phrase", "regex", "any", "all")
RuleItem = Annotated[RuleSettings, BeforeValidator(_keyword_shorthand)]
RuleSettings.model_rebuild()


def _rule(item: RuleSettings) -> Rule | str:
    """A plain keyword stays a string (the FeedDefinition shorthand)."""
    if item.keyword is not None and item.fields is None:
        return item.keyword
    return item.rule()


class FeedSettings(_Section):
    id: Slug
    title: str = Field(min_length=1)
    subtitle: str | None = None
    sources: list[str] = []
    tags: list[str] = []
    include: list[RuleItem] = []
    exclude: list[RuleItem] = []
    limit: int = Field(50, ge=1, le=1000)
    max_age: Duration | None = None
    min_words: int = Field(0, ge=0)
    languages: list[Annotated[str, Field(pattern=r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")]] = []
    dedupe: Literal["none", "link", "story"] = "none"  # one entry per link or story
    prefer: list[str] = []
    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = None

    @field_validator("query")
    @classmethod
    def _query_parses(cls, query: str | None) -> str | None:
        if query is not None:
            try:
                parse_query(query, FEED_QUERY_LIMITS)
            except QueryError as exc:
                raise ValueError(f"not a search query: {exc}") from None
        return query


class HttpSettings(_Section):
    """How the curated feeds are served."""

    max_age: Duration = timedelta(minutes=5)
    recheck: Duration = timedelta(seconds=1)
    gzip: bool = True


class WebSubSettings(_Section):
    """WebSub publishing: with a hub, feeds link to it and it is pinged on change."""

    hub: HttpUrl | None = None
    max_attempts: int = Field(5, ge=1, le=20)
    retry_delay: Duration = timedelta(seconds=10)


class SearchConfig(_Section):
    """The public search: /search, /search.atom (docs/search.md)."""

    public: bool = True
    max_query_length: int = Field(500, ge=10, le=10_000)
    max_terms: int = Field(20, ge=1, le=500)
    timeout: Duration = timedelta(seconds=2)
    limit: int = Field(50, ge=1, le=1000)
    dedupe: Literal["none", "link", "story"] = "none"

    def search_settings(self) -> SearchSettings:
        return SearchSettings(
            public=self.public,
            max_query_length=self.max_query_length,
            max_terms=self.max_terms,
            timeout=self.timeout.total_seconds(),
            limit=self.limit,
            dedupe=self.dedupe,
        )


class Settings(_Section):
    database: str = "sqlite:///feedmill.db"
    server: ServerSettings = ServerSettings()
    fetch: FetchConfig = FetchConfig()
    scheduler: SchedulerSettings = SchedulerSettings()
    retention: RetentionSettings = RetentionSettings()
    links: LinksSettings = LinksSettings()
    sources: list[SourceSettings] = []
    feeds: list[FeedSettings] = []
    http: HttpSettings = HttpSettings()
    websub: WebSubSettings = WebSubSettings()
    stories: StoriesSection = StorySettings()
    search: SearchConfig = SearchConfig()

    # -- what the packages get ------------------------------------------------------------

    def story_settings(self) -> StorySettings | None:
        """How ingest clusters new entries into stories, or None when it does not: with
        ``stories.cluster: auto`` only when a curated feed has ``dedupe: story`` (clustering
        costs ingest time; ``dedupe: link`` needs only the canonical links)."""
        cluster = self.stories.cluster
        wanted = cluster == "always" or (
            cluster == "auto"
            and (any(f.dedupe == "story" for f in self.feeds) or self.search.dedupe == "story")
        )
        return self.stories if wanted else None

    def source_definitions(self) -> list[SourceDefinition]:
        """The sources as the store keeps them; those without retention keys of their own
        share one Retention value."""
        interval = self.fetch.interval
        shared = Retention(self.retention.max_age, self.retention.max_entries)
        return [
            SourceDefinition(
                s.id,
                s.url,
                s.title,
                s.interval or interval,
                self._retention(s) if s.max_age or s.max_entries else shared,
            )
            for s in self.sources
        ]

    def _retention(self, source: SourceSettings) -> Retention:
        """A source's own retention keys win over the global ones, key by key."""
        return Retention(
            max_age=source.max_age or self.retention.max_age,
            max_entries=source.max_entries or self.retention.max_entries,
        )

    def feed_definitions(self) -> list[FeedDefinition]:
        return [
            FeedDefinition(
                id=f.id,
                title=f.title,
                subtitle=f.subtitle,
                source_ids=self._feed_sources(f),
                include=tuple(_rule(r) for r in f.include),
                exclude=tuple(_rule(r) for r in f.exclude),
                limit=f.limit,
                max_age=f.max_age,
                min_words=f.min_words,
                languages=tuple(lang.lower() for lang in f.languages),
                dedupe=f.dedupe,
                prefer=tuple(f.prefer),
                query=f.query,
            )
            for f in self.feeds
        ]

    def _feed_sources(self, feed: FeedSettings) -> tuple[str, ...]:
        """Named sources plus every source with one of the tags; all sources if neither."""
        if not feed.sources and not feed.tags:
            return tuple(s.id for s in self.sources)
        tagged = [s.id for s in self.sources if set(s.tags) & set(feed.tags)]
        return tuple(dict.fromkeys([*feed.sources, *tagged]))

    def fetch_settings(self) -> FetchSettings:
        fetch = self.fetch
        return FetchSettings(
            connect_timeout=fetch.connect_timeout.total_seconds(),
            read_timeout=fetch.read_timeout.total_seconds(),
            deadline=fetch.deadline.total_seconds(),
            max_redirects=fetch.max_redirects,
            max_body_bytes=fetch.max_body_size,
            user_agent=fetch.user_agent or default_user_agent(self.server.base_url),
            addresses=AddressPolicy.from_allowlist(
                fetch.block_private_addresses, fetch.allow_addresses
            ),
            max_connections=max(100, fetch.concurrency),
        )

    def parse_pool(self) -> ParsePool:
        """Worker processes for parsing (``fetch.parse_workers``, 0: one per CPU, 2 to 4),
        each document under ``fetch.parse_deadline``."""
        return ParsePool(
            self.fetch.parse_workers or None, self.fetch.parse_deadline.total_seconds()
        )

    def poll_settings(self) -> PollSettings:
        fetch = self.fetch
        return PollSettings(
            min_interval=fetch.min_interval,
            max_interval=max(fetch.max_interval, fetch.min_interval),
            hint_ceiling=fetch.hint_ceiling,
            jitter=fetch.jitter,
            permanent_redirect_polls=fetch.permanent_redirect_polls,
        )

    def host_limits(self) -> HostLimits:
        per_host = self.fetch.per_host
        return HostLimits(per_host.concurrency, share_retry_after=per_host.share_retry_after)

    def search_settings(self) -> SearchSettings:
        return self.search.search_settings()

    def site(self) -> Site:
        return Site(base_url=self.server.public_url(), title=self.server.title)


def config_path(explicit: str | None = None) -> Path:
    """``--config`` wins, then FEEDMILL_CONFIG, then ./config.yaml."""
    return Path(explicit or os.environ.get("FEEDMILL_CONFIG") or DEFAULT_CONFIG)


def load_config(path: Path, *, check_driver: bool = False) -> Settings:
    """Read and check ``path``, reporting every problem at once (the references too, when
    some values are bad). FEEDMILL_DATABASE_URL, when set, replaces ``database``. With
    ``check_driver``, a database whose driver is not installed is a problem as well.

    Python's cycle collector is paused meanwhile: the values read make no cycles, and with
    many sources its passes over the growing heap would take most of the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_config(path, check_driver)
    finally:
        if enabled:
            gc.enable()


def _load_config(path: Path, check_driver: bool) -> Settings:
    data = _read_yaml(path)
    name = str(path)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = [f"{name}: {line}" for line in _describe(exc, data)]
        problems += [f"{name}: {p}" for p in _raw_references(data)]
    else:
        problems = [f"{name}: {p}" for p in _check_references(settings)]
    from_environment = os.environ.get("FEEDMILL_DATABASE_URL")
    url = from_environment or (settings.database if settings else data.get("database"))
    where = "FEEDMILL_DATABASE_URL" if from_environment else f"{name}: database"
    database = None
    if isinstance(url, str):
        try:
            database = resolve_database_url(url, str(path.resolve().parent))
        except StoreError as exc:
            problems.append(f"{where}: {exc}")
        missing = missing_driver(url) if check_driver and database else None
        if missing:
            problems.append(f"{where}: {missing}")
    if problems or settings is None:
        raise ConfigError(problems)
    return settings.model_copy(update={"database": database})


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc.strerror}"]) from exc
    data = parse_yaml(content, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of keys, not a list or text"])
    return data


# Values in the file, counting each use of an alias in full: at most this many, or one per
# character of the file when that is more (a value without aliases takes a character at
# least, so only aliases can pass it: the expansion stays linear in the file's size).
MAX_YAML_NODES = 100_000


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser when PyYAML was built with it (its wheels are), much quicker than
    the pure-Python one on a config of many sources; with a quicker answer for the plain
    scalars no implicit type could match (most of them)."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> Any:
        if kind is yaml.ScalarNode and not self.yaml_path_resolvers:
            table = self.yaml_implicit_resolvers
            if not implicit[0] or (value and value[0] not in table and None not in table):
                return self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


def parse_yaml(content: bytes, name: str) -> Any:
    """The YAML document in ``content`` (UTF-8), refusing what would be read wrongly or
    without bound: bytes that are not UTF-8, a key given twice in one mapping (YAML keeps
    the last silently), and aliases that expand to more values than MAX_YAML_NODES (or the
    file's length in characters, if longer)."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        column = exc.start - (content.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            [
                f"{name}: not UTF-8 at line {line}, column {column} "
                f"(byte 0x{content[exc.start]:02x}): save the file as UTF-8"
            ]
        ) from None
    try:
        return _load(text, name)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ConfigError(
            [
                f"{name}: not valid YAML at line {line}, column {column}: the character "
                f"U+{exc.character:04X} is not allowed (write it as an escape such as \\x01 "
                "in a double-quoted string)"
            ]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{name}: not valid YAML{where}: {problem}"]) from exc
    except RecursionError:
        raise ConfigError([f"{name}: not valid YAML: nested too deeply"]) from None


def _load(text: str, name: str) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problems = _node_problems(node, name, max(MAX_YAML_NODES, len(text)))
        if problems:
            raise ConfigError(problems)
        return _construct(loader, node)
    finally:
        loader.dispose()


_STR, _SEQ, _MAP = (f"tag:yaml.org,2002:{kind}" for kind in ("str", "seq", "map"))


def _construct(loader: _Loader, node: yaml.Node) -> Any:
    """The node's value, as ``loader.construct_document`` makes it, in a fraction of the
    time on a config of many sources: strings, lists and mappings with string keys (nearly
    every node) are built here; any other node (a number, a date, a merge key ``<<``, an
    explicit tag) by PyYAML's constructor. Called after :func:`_node_problems`, which bounds
    the values (aliases counted in full) and refuses repeated keys. An alias gives a copy
    of its value, not the same object: the values are only read."""
    kind = node.__class__
    if kind is yaml.ScalarNode and node.tag == _STR:
        return node.value
    if kind is yaml.SequenceNode and node.tag == _SEQ:
        return [_construct(loader, item) for item in node.value]
    if kind is yaml.MappingNode and node.tag == _MAP:
        pairs = node.value
        if all(k.__class__ is yaml.ScalarNode and k.tag == _STR for k, _ in pairs):
            return {key.value: _construct(loader, value) for key, value in pairs}
    return loader.construct_object(node, deep=True)


def _node_problems(root: yaml.Node, name: str, limit: int) -> list[str]:
    """What :func:`_repeated_keys` finds, in one quick pass over the nodes when the file has
    no such problem (the walk with key paths runs only when it has one)."""
    seen = 0
    stack = [root]
    while stack:
        node = stack.pop()
        seen += 1
        if seen > limit:
            return [f"{name}: more than {limit} values (aliases counted in full)"]
        if node.__class__ is yaml.MappingNode:
            labels = [k.value if k.__class__ is yaml.ScalarNode else "?" for k, _ in node.value]
            if len(set(labels)) != len(labels):
                return list(_repeated_keys(root, name, limit))
            stack += [value for _, value in node.value]
        elif node.__class__ is yaml.SequenceNode:
            stack += node.value
    return []


def _repeated_keys(root: yaml.Node, name: str, limit: int) -> Iterable[str]:
    """A problem for each key given twice in one mapping, naming its key path and lines;
    and one if the values, aliases counted in full, are more than ``limit``."""
    seen = 0
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, where = stack.pop()
        seen += 1
        if seen > limit:
            yield f"{name}: more than {limit} values (aliases counted in full)"
            return
        if isinstance(node, yaml.SequenceNode):
            stack += [(item, f"{where}[{i}]") for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            for key, value in node.value:
                label = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                path = f"{where}.{label}" if where else label
                if label in lines and key.tag != "tag:yaml.org,2002:merge":
                    yield (
                        f"{name}: {path}: the key is given twice in one mapping "
                        f"(lines {lines[label]} and {key.start_mark.line + 1})"
                    )
                lines.setdefault(label, key.start_mark.line + 1)
                stack.append((value, path))


def _describe(exc: ValidationError, data: Any) -> Iterable[str]:
    for error in exc.errors():
        path = _key_path(error["loc"], data)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "string_pattern_mismatch":
            message = "must be a slug: lower-case letters, digits, '-' and '_', up to 100"
        yield f"{path}: {message}"


def _key_path(loc: tuple[int | str, ...], data: Any) -> str:
    """``sources[2] (id 'x').url`` from pydantic's ('sources', 2, 'url')."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                parts[-1] += f" (id {node['id']!r})"
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def _check_references(settings: Settings) -> Iterable[str]:
    pull = settings.fetch.deadline + settings.fetch.parse_deadline
    if settings.scheduler.lease <= pull:
        yield (
            f"scheduler.lease: must be longer than fetch.deadline plus fetch.parse_deadline "
            f"({_show(pull)}), not {_show(settings.scheduler.lease)}"
        )
    sources = [{"id": s.id, "tags": s.tags} for s in settings.sources]  # all that is checked
    yield from _references(sources, [f.model_dump() for f in settings.feeds])


def _raw_references(data: dict[str, Any]) -> Iterable[str]:
    """The reference problems of a file that also has bad values: read from the YAML as it
    is, skipping whatever does not have the expected shape (the value errors say why)."""

    def mappings(key: str) -> list[dict[str, Any]]:
        items = data.get(key)
        return [i if isinstance(i, dict) else {} for i in items] if isinstance(items, list) else []

    yield from _references(mappings("sources"), mappings("feeds"))


def _references(sources: list[dict[str, Any]], feeds: list[dict[str, Any]]) -> Iterable[str]:
    """Duplicate ids, and feeds naming sources or tags that no source has."""
    yield from _duplicates("sources", _strings([s.get("id") for s in sources]))
    yield from _duplicates("feeds", _strings([f.get("id") for f in feeds]))
    known_sources = {s.get("id") for s in sources}
    known_tags = {tag for s in sources for tag in _strings(s.get("tags"))}
    for index, feed in enumerate(feeds):
        where = f"feeds[{index}] (id {feed.get('id')!r})"
        for source_id in _strings(feed.get("sources")):
            if source_id not in known_sources:
                yield f"{where}.sources: no source has id {source_id!r}"
        for tag in _strings(feed.get("tags")):
            if tag not in known_tags:
                yield f"{where}.tags: no source has tag {tag!r}"
        for source_id in _strings(feed.get("prefer")):
            if source_id not in known_sources:
                yield f"{where}.prefer: no source has id {source_id!r}"


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _duplicates(section: str, ids: list[str]) -> Iterable[str]:
    for value, count in Counter(ids).items():
        if count > 1:
            positions = ", ".join(f"{section}[{i}]" for i, x in enumerate(ids) if x == value)
            yield f"{section}: id {value!r} is used {count} times ({positions})"
