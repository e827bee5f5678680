"""The feature graph: registered feature definitions, traversal, versions, snapshots.

Feature classes register into the *active* graph when they are defined. The active graph is
the one entered with ``with graph.use():`` (a ContextVar), else the module-level default
``metaxy_delta.graph``.

Example:
    >>> import metaxy_delta as mx
    >>> with mx.FeatureGraph().use() as g:
    ...     class Raw(mx.BaseFeature, spec=mx.FeatureSpec(key="test/feature", id_columns=["id"], fields=[mx.FieldSpec(key="default", code_version="1")])):
    ...         id: str
    ...     g.get_feature_version("test/feature")
    'd26937b1'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from metaxy_delta.models._hashing import truncation_length
from metaxy_delta.models.definition import FeatureDefinition
from metaxy_delta.models.keys import FeatureKey, FieldKey, coerce_to_feature_key
from metaxy_delta.models.plan import FeaturePlan, FQFieldKey
from metaxy_delta.models.versions import GraphVersions

if TYPE_CHECKING:
    from metaxy_delta.models.feature import BaseFeature

_ACTIVE: ContextVar[FeatureGraph | None] = ContextVar("metaxy_delta_active_graph", default=None)


class FeatureGraph:
    """A set of feature definitions keyed by :class:`FeatureKey`.

    Versions and plans are computed lazily, once per graph state, and cached until the graph
    is mutated (``add_*`` / ``remove_feature``) or the hash truncation length changes.
    """

    _default: ClassVar[FeatureGraph]

    def __init__(self) -> None:
        self.feature_definitions_by_key: dict[FeatureKey, FeatureDefinition] = {}
        self._versions: GraphVersions | None = None
        self._versions_truncation: int | None = None

    # -- registration -------------------------------------------------------------------------
    def add_feature(self, feature_cls: type[BaseFeature]) -> None:
        """Register a :class:`BaseFeature` subclass."""
        self.add_feature_definition(FeatureDefinition.from_feature_class(feature_cls))

    def add_feature_definition(
        self, definition: FeatureDefinition, on_conflict: Literal["raise", "ignore"] = "raise"
    ) -> None:
        """Register a definition; re-registering the same class path replaces it silently."""
        key = definition.key
        existing = self.feature_definitions_by_key.get(key)
        if existing is not None and not self._replaces(existing, definition, on_conflict):
            return
        self.feature_definitions_by_key[key] = definition
        self._invalidate()

    @staticmethod
    def _replaces(
        old: FeatureDefinition, new: FeatureDefinition, on_conflict: Literal["raise", "ignore"]
    ) -> bool:
        if new.is_external and not old.is_external:
            return False
        if old.is_external and not new.is_external:
            return True
        if old.feature_class_path == new.feature_class_path and not new.is_external:
            return True
        if on_conflict == "ignore":
            return False
        raise ValueError(
            f"feature with key {new.key} is already registered by {old.feature_class_path!r}; "
            f"cannot register {new.feature_class_path!r} under the same key"
        )

    def remove_feature(self, key: Any) -> None:
        """Remove a feature (``KeyError`` if absent)."""
        del self.feature_definitions_by_key[coerce_to_feature_key(key)]
        self._invalidate()

    def _invalidate(self) -> None:
        self._versions = None

    # -- lookup ------------------------------------------------------------------------------
    def get_feature_definition(self, key: Any) -> FeatureDefinition:
        """The definition registered under ``key`` (``KeyError`` naming it if absent)."""
        fkey = coerce_to_feature_key(key)
        try:
            return self.feature_definitions_by_key[fkey]
        except KeyError:
            known = sorted(k.to_string() for k in self.feature_definitions_by_key)
            raise KeyError(f"feature {fkey} is not registered (registered: {known})") from None

    def get_feature_class(self, key: Any) -> type[BaseFeature] | None:
        """The class behind a registered feature, if it came from one."""
        return self.get_feature_definition(key).feature_class

    def __contains__(self, key: object) -> bool:
        try:
            return coerce_to_feature_key(key) in self.feature_definitions_by_key
        except ValueError:
            return False

    def list_features(
        self, projects: Sequence[str] | str | None = None, *, only_current_project: bool = True
    ) -> list[FeatureKey]:
        """Registered keys, optionally restricted to projects (default: the configured one)."""
        if isinstance(projects, str):
            projects = [projects]
        if projects is None and only_current_project:
            from metaxy_delta.config import MetaxyConfig

            current = MetaxyConfig.get().project
            projects = [current] if current else None
        return sorted(
            k
            for k, d in self.feature_definitions_by_key.items()
            if projects is None or d.project in projects
        )

    # -- versions ----------------------------------------------------------------------------
    @property
    def versions(self) -> GraphVersions:
        """The memo of plans and versions for the current graph state."""
        n = truncation_length()
        if self._versions is None or self._versions_truncation != n:
            self._versions = GraphVersions(self.feature_definitions_by_key)
            self._versions_truncation = n
        return self._versions

    def get_feature_plan(self, key: Any) -> FeaturePlan:
        """The plan of a feature; raises if a dependency is missing or the graph has a cycle."""
        fkey = coerce_to_feature_key(key)
        self.get_feature_definition(fkey)
        return self.versions.plan(fkey)

    def get_field_version(self, fq: FQFieldKey) -> str:
        return self.versions.field_version(fq)

    def get_feature_version_by_field(self, key: Any) -> dict[str, str]:
        fkey = coerce_to_feature_key(key)
        self.get_feature_definition(fkey)
        return self.versions.feature_version_by_field(fkey)

    def get_feature_version(self, key: Any) -> str:
        fkey = coerce_to_feature_key(key)
        self.get_feature_definition(fkey)
        return self.versions.feature_version(fkey)

    def get_project_version(self, project: str) -> str:
        return self.versions.project_version(project)

    @property
    def project(self) -> str:
        """The single non-external project of this graph (``RuntimeError`` otherwise)."""
        projects = {d.project for d in self.feature_definitions_by_key.values() if not d.is_external}
        if len(projects) != 1:
            raise RuntimeError(
                f"cannot infer the project: the graph has {len(projects)} projects "
                f"{sorted(projects)}; set `project` in metaxy.toml or METAXY_PROJECT"
            )
        return projects.pop()

    @property
    def project_version(self) -> str:
        """Project version of the configured project, or of the graph's only project."""
        from metaxy_delta.config import MetaxyConfig

        return self.get_project_version(MetaxyConfig.get().project or self.project)

    @property
    def has_external_features(self) -> bool:
        return any(d.is_external for d in self.feature_definitions_by_key.values())

    # -- traversal ---------------------------------------------------------------------------
    def topological_sort_features(
        self, feature_keys: Sequence[Any] | None = None, *, descending: bool = False
    ) -> list[FeatureKey]:
        """Dependencies first (DFS post-order, alphabetical tie-break, as Metaxy)."""
        keys = (
            set(self.feature_definitions_by_key)
            if feature_keys is None
            else {coerce_to_feature_key(k) for k in feature_keys}
        )
        for key in keys & set(self.feature_definitions_by_key):
            self.versions._check_acyclic(key)
        order: list[FeatureKey] = []
        seen: set[FeatureKey] = set()

        def visit(key: FeatureKey) -> None:
            if key in seen or key not in keys:
                return
            seen.add(key)
            definition = self.feature_definitions_by_key.get(key)
            deps = [d.feature for d in definition.spec.deps] if definition else []
            for dep in sorted(deps, key=lambda k: k.to_string().lower()):
                visit(dep)
            order.append(key)

        for key in sorted(keys, key=lambda k: k.to_string().lower()):
            visit(key)
        return order[::-1] if descending else order

    def get_downstream_features(self, sources: Sequence[Any]) -> list[FeatureKey]:
        """Every feature that transitively depends on ``sources``, in topological order."""
        source_keys = {coerce_to_feature_key(s) for s in sources}
        children: dict[FeatureKey, set[FeatureKey]] = {}
        for key, definition in self.feature_definitions_by_key.items():
            for dep in definition.spec.deps:
                children.setdefault(dep.feature, set()).add(key)
        found: set[FeatureKey] = set()
        frontier = list(source_keys)
        while frontier:
            for child in children.get(frontier.pop(), ()):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
        return self.topological_sort_features(sorted(found - source_keys))

    # -- snapshots ---------------------------------------------------------------------------
    def to_snapshot(self, *, project: str | None = None) -> dict[str, dict[str, Any]]:
        """Serialisable snapshot of a project's own features (Metaxy's snapshot shape)."""
        project = project or self.project
        out: dict[str, dict[str, Any]] = {}
        for key, d in sorted(self.feature_definitions_by_key.items()):
            if d.project != project or d.is_external:
                continue
            out[key.to_string()] = {
                "feature_spec": d.spec.model_dump(mode="json"),
                "feature_schema": d.feature_schema,
                "metaxy_feature_version": self.get_feature_version(key),
                "metaxy_definition_version": d.feature_definition_version,
                "feature_class_path": d.feature_class_path,
                "project": d.project,
            }
        return out

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Mapping[str, Any]]) -> FeatureGraph:
        """Rebuild a graph (of definitions, without classes) from :meth:`to_snapshot` output."""
        graph = cls()
        for item in data.values():
            graph.add_feature_definition(
                FeatureDefinition.from_stored_data(
                    item["feature_spec"],
                    item["feature_schema"],
                    item.get("feature_class_path"),
                    item["project"],
                )
            )
        return graph

    # -- active graph ------------------------------------------------------------------------
    @classmethod
    def get_active(cls) -> FeatureGraph:
        """The graph entered with :meth:`use`, else the default graph."""
        return _ACTIVE.get() or cls._default

    get = get_active

    @classmethod
    def set_active(cls, graph: FeatureGraph) -> None:
        """Make ``graph`` active in the current context (prefer :meth:`use`)."""
        _ACTIVE.set(graph)

    @contextmanager
    def use(self) -> Iterator[FeatureGraph]:
        """Make this graph active inside a ``with`` block."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def field_keys(self, key: Any) -> list[FieldKey]:
        """The field keys of a feature, in spec order."""
        return [f.key for f in self.get_feature_definition(key).spec.fields]


graph = FeatureGraph()
FeatureGraph._default = graph


def current_graph() -> FeatureGraph:
    """The active feature graph."""
    return FeatureGraph.get_active()
