"""Namespace mapping of a restore (docs/tape-backup.md): ``store=SRC[,source=NS][,target=NS][,max-depth=N]``.

A snapshot of source store SRC in namespace N is restored into ``target + (N minus source)`` for
every mapping of SRC whose ``source`` is N or a parent of N at most ``max-depth`` levels up
(default: any depth). Source and target default to the root namespace. A store without a
mapping keeps its namespaces when its snapshots are named one by one; when the restore takes
everything, only the snapshots of mapped stores are restored once any mapping is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tapefs.datastore.errors import NamingError
from tapefs.datastore.naming import MAX_NAMESPACE_DEPTH, BackupNamespace
from tapefs.jobs.errors import JobError

_KEYS = ("store", "source", "target", "max-depth")


@dataclass(frozen=True)
class NamespaceMapping:
    store: str
    source: BackupNamespace = BackupNamespace()
    target: BackupNamespace = BackupNamespace()
    #: Levels below ``source`` that are mapped; None: all.
    max_depth: int | None = None

    @classmethod
    def parse(cls, text: str) -> NamespaceMapping:
        values: dict[str, str] = {}
        for item in text.split(","):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in _KEYS:
                raise JobError(
                    f"namespace mapping {text!r}: expected KEY=VALUE with KEY one of {', '.join(_KEYS)}, got {item!r}"
                )
            if key in values:
                raise JobError(f"namespace mapping {text!r}: {key} given twice")
            values[key] = value.strip()
        if not values.get("store"):
            raise JobError(f"namespace mapping {text!r}: store=SOURCE-STORE is required")
        try:
            source = BackupNamespace.parse(values.get("source"))
            target = BackupNamespace.parse(values.get("target"))
        except NamingError as error:
            raise JobError(f"namespace mapping {text!r}: {error}") from None
        max_depth = None
        if "max-depth" in values:
            depth = values["max-depth"]
            if not depth.isdigit() or int(depth) > MAX_NAMESPACE_DEPTH:
                raise JobError(f"namespace mapping {text!r}: max-depth must be 0..{MAX_NAMESPACE_DEPTH}, got {depth!r}")
            max_depth = int(depth)
        return cls(values["store"], source, target, max_depth)

    def target_of(self, namespace: BackupNamespace) -> BackupNamespace | None:
        """Where ``namespace`` goes under this mapping, or None if the mapping does not cover it."""
        depth = len(self.source.components)
        if namespace.components[:depth] != self.source.components:
            return None
        below = namespace.components[depth:]
        if self.max_depth is not None and len(below) > self.max_depth:
            return None
        return BackupNamespace(self.target.components + below)


class NamespaceMap:
    def __init__(self, mappings: Iterable[NamespaceMapping] = ()):
        self.mappings = list(mappings)
        seen = set()
        for mapping in self.mappings:
            key = (mapping.store, mapping.source)
            if key in seen:
                raise JobError(
                    f"namespace mapping: store {mapping.store} source '{str(mapping.source) or '/'}' is mapped twice"
                )
            seen.add(key)

    @classmethod
    def parse(cls, items: Iterable[str]) -> NamespaceMap:
        return cls(NamespaceMapping.parse(item) for item in items)

    def __bool__(self) -> bool:
        return bool(self.mappings)

    def maps_store(self, store: str) -> bool:
        return any(mapping.store == store for mapping in self.mappings)

    def targets(self, store: str, namespace: BackupNamespace) -> list[BackupNamespace]:
        """Target namespaces of a snapshot of ``store`` in ``namespace`` (itself if the store has
        no mapping; none if its mappings do not cover the namespace)."""
        if not self.maps_store(store):
            return [namespace]
        found = []
        for mapping in self.mappings:
            if mapping.store != store:
                continue
            target = mapping.target_of(namespace)
            if target is None:
                continue
            if len(target.components) > MAX_NAMESPACE_DEPTH:
                raise JobError(
                    f"namespace '{namespace}' of store {store} maps to '{target}', deeper than "
                    f"{MAX_NAMESPACE_DEPTH} levels"
                )
            if target not in found:
                found.append(target)
        return found
