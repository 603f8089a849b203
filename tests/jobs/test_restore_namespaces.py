"""Restore with namespace mapping (docs/tape-backup.md): `--namespaces store=SRC,source=NS,target=NS[,max-depth=N]`,
on the whole set (selective through the catalog, or a full pass when the catalog is missing) and
on named snapshots, through the library and through `tapefs restore`."""
import json
import stat
import subprocess

import pytest

from tapefs.datastore.datastore import Datastore
from tapefs.datastore.naming import BackupNamespace
from tapefs.datastore.registry import DatastoreRegistry
from tapefs.jobs.errors import JobError
from tapefs.jobs.namespace_map import NamespaceMap, NamespaceMapping
from tapefs.jobs.restore import StoreMap, restore_media_set
from tests.helpers.commands import tapefs
from tests.helpers.tape_jobs import run_backup
from tests.helpers.tape_setup import add_cartridges


def ns(text):
    return BackupNamespace.parse(text)


# -- the map ------------------------------------------------------------------------------------

def test_mapping_defaults_are_root_to_root_at_any_depth():
    assert NamespaceMapping.parse("store=s1") == NamespaceMapping("s1", ns(""), ns(""), None)
    assert NamespaceMapping.parse("store=s1,source=a/b,target=x,max-depth=2") == \
        NamespaceMapping("s1", ns("a/b"), ns("x"), 2)


def test_targets_replace_the_source_prefix_within_max_depth():
    mapping = NamespaceMap.parse(["store=s1,source=a,target=x/y,max-depth=1"])
    assert mapping.targets("s1", ns("a")) == [ns("x/y")]
    assert mapping.targets("s1", ns("a/b")) == [ns("x/y/b")]
    assert mapping.targets("s1", ns("a/b/c")) == []  # two levels below source
    assert mapping.targets("s1", ns("")) == [] and mapping.targets("s1", ns("ab")) == []
    # A store without a mapping keeps its namespaces.
    assert mapping.targets("s2", ns("a/b/c")) == [ns("a/b/c")]
    assert mapping.maps_store("s1") and not mapping.maps_store("s2")


def test_a_namespace_covered_by_two_mappings_goes_to_both():
    mapping = NamespaceMap.parse(["store=s1,max-depth=0", "store=s1,source=a,target=old/a"])
    assert mapping.targets("s1", ns("")) == [ns("")]
    assert mapping.targets("s1", ns("a")) == [ns("old/a")]
    assert NamespaceMap.parse(["store=s1", "store=s1,source=a,target=copy"]).targets("s1", ns("a/b")) == \
        [ns("a/b"), ns("copy/b")]


def test_too_deep_a_target_is_refused():
    mapping = NamespaceMap.parse(["store=s1,target=a/b/c/d/e/f"])
    assert mapping.targets("s1", ns("x")) == [ns("a/b/c/d/e/f/x")]
    with pytest.raises(JobError, match="maps to 'a/b/c/d/e/f/x/y', deeper than 7 levels"):
        mapping.targets("s1", ns("x/y"))


@pytest.mark.parametrize("items, message", [
    (["source=a,target=b"], "store=SOURCE-STORE is required"),
    (["store=s1,sorce=a"], "expected KEY=VALUE with KEY one of store, source, target, max-depth, got 'sorce=a'"),
    (["store=s1,a"], "got 'a'"),
    (["store=s1,max-depth=8"], "max-depth must be 0..7, got '8'"),
    (["store=s1,max-depth=-1"], "max-depth must be 0..7, got '-1'"),
    (["store=s1,source=a//b"], "invalid namespace component ''"),
    (["store=s1,target=a,target=b"], "target given twice"),
    (["store=s1,source=a,target=x", "store=s1,source=a,target=y"], "store s1 source 'a' is mapped twice"),
    (["store=s1", "store=s1,target=y"], "store s1 source '/' is mapped twice"),
])
def test_bad_mappings_are_refused_with_the_reason(items, message):
    with pytest.raises(JobError) as info:
        NamespaceMap.parse(items)
    assert message in str(info.value)


# -- restores on a vtape library ----------------------------------------------------------------

def tree(datastore, namespace=""):
    """Snapshot files below a namespace of a datastore: relative path -> bytes."""
    base = datastore.namespace_path(ns(namespace))
    return {str(path.relative_to(base)): path.read_bytes() for path in base.rglob("*")
            if path.is_file() and path.name not in (".lock", "owner") and ".chunks" not in path.parts
            and ".tmp" not in path.parts}


def without_children(files):
    return {path: data for path, data in files.items() if not path.startswith("ns/")}


def restore(setup, media_set, target, snapshots=None, namespaces=()):
    with setup.inventory() as inventory, setup.catalog() as catalog, setup.session("drive1") as session:
        return restore_media_set(media_set, StoreMap({"store": target}), session, inventory, catalog, snapshots,
                                 namespaces=NamespaceMap.parse(namespaces))


@pytest.fixture
def backed_up(tape_setup):
    """Snapshots in the root, in a, a/b and c, on one media set."""
    add_cartridges(tape_setup.library, 2, "32MiB", "4MiB")
    tape_setup.label("SM0001L8", "SM0002L8")
    paths = {
        "root": tape_setup.add_snapshot("vm/100", 1),
        "a": tape_setup.add_snapshot("vm/200", 1, ns="a"),
        "a/b": tape_setup.add_snapshot("ct/300", 1, ns="a/b"),
        "c": tape_setup.add_snapshot("host/x", 1, ns="c"),
    }
    # world-readable, as an older tapefs left its datastores: a restore must not copy that
    subprocess.run(["chmod", "-R", "o+rX", tape_setup.datastore.root], check=True)
    return tape_setup, run_backup(tape_setup).media_set, paths


@pytest.mark.vtape
@pytest.mark.slow
def test_whole_set_with_a_mapping_restores_only_the_mapped_namespaces(backed_up, tmp_path):
    setup, media_set, paths = backed_up
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    result = restore(setup, media_set, target, namespaces=["store=store,source=a,target=moved/a"])
    assert sorted(result.snapshots_restored) == [f"store:ns/a/ns/b/{paths['a/b']}", f"store:ns/a/{paths['a']}"]
    assert result.targets[f"store:ns/a/{paths['a']}"] == [f"restored:ns/moved/ns/a/{paths['a']}"]
    # The namespaces were created; the root and c are not restored; the files are the source's.
    assert target.list_namespaces() == [ns(""), ns("moved"), ns("moved/a"), ns("moved/a/b")]
    assert tree(target, "moved/a") == tree(setup.datastore, "a")
    assert without_children(tree(target)) == {}
    # restored from tape, the datastore is as private as one a backup wrote
    restored = list(target.root.rglob("*"))
    assert {stat.S_IMODE(p.stat().st_mode) for p in restored if p.is_file()} == {0o640}
    assert {stat.S_IMODE(p.stat().st_mode) for p in restored if p.is_dir()} == {0o750}

    # max-depth 0 takes the source namespace only; an existing snapshot is skipped, not rewritten.
    again = restore(setup, media_set, target, namespaces=["store=store,source=a,target=moved/a,max-depth=0"])
    assert again.snapshots_restored == [] and again.snapshots_skipped == [f"store:ns/a/{paths['a']}"]
    flat = restore(setup, media_set, target, namespaces=["store=store,source=a,target=flat,max-depth=0"])
    assert flat.snapshots_restored == [f"store:ns/a/{paths['a']}"]
    assert tree(target, "flat") == without_children(tree(setup.datastore, "a"))


@pytest.mark.vtape
@pytest.mark.slow
def test_named_snapshots_are_mapped_and_an_uncovered_one_is_refused(backed_up, tmp_path):
    setup, media_set, paths = backed_up
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    mapping = ["store=store,source=a,target=x", "store=store,max-depth=0,target=top"]
    with pytest.raises(JobError, match="no namespace mapping of store store covers namespace 'c'"):
        restore(setup, media_set, target, [f"store:ns/c/{paths['c']}"], mapping)
    assert tree(target) == {}
    result = restore(setup, media_set, target, [f"store:ns/a/ns/b/{paths['a/b']}", f"store:{paths['root']}"],
                     mapping)
    assert result.targets == {f"store:ns/a/ns/b/{paths['a/b']}": [f"restored:ns/x/ns/b/{paths['a/b']}"],
                              f"store:{paths['root']}": [f"restored:ns/top/{paths['root']}"]}
    assert tree(target, "x/b") == tree(setup.datastore, "a/b")
    assert tree(target, "top") == without_children(tree(setup.datastore))
    # Without a mapping, the named snapshot keeps its namespace.
    plain = restore(setup, media_set, target, [f"store:ns/c/{paths['c']}"])
    assert plain.targets == {f"store:ns/c/{paths['c']}": [f"restored:ns/c/{paths['c']}"]}


@pytest.mark.vtape
@pytest.mark.slow
def test_mapping_on_a_full_pass_when_the_catalog_is_missing(backed_up, tmp_path):
    setup, media_set, paths = backed_up
    with setup.inventory() as inventory, setup.catalog() as catalog:
        for uuid in inventory.compute_media_set_members(media_set):
            catalog.forget_media(uuid)
    target = Datastore.create(tmp_path / "restored", "restored", prefix_dirs=False)
    result = restore(setup, media_set, target, namespaces=["store=store,source=a/b,target=b", "store=store"])
    assert sorted(result.snapshots_restored) == sorted(f"store:{p}" for p in (
        paths["root"], f"ns/a/{paths['a']}", f"ns/a/ns/b/{paths['a/b']}", f"ns/c/{paths['c']}"))
    assert result.targets[f"store:ns/a/ns/b/{paths['a/b']}"] == [
        f"restored:ns/b/{paths['a/b']}", f"restored:ns/a/ns/b/{paths['a/b']}"]
    assert tree(target, "b") == tree(setup.datastore, "a/b")
    assert {k: v for k, v in tree(target).items() if not k.startswith("ns/b/")} == tree(setup.datastore)


@pytest.mark.vtape
@pytest.mark.slow
def test_restore_command_takes_repeated_namespaces_options(backed_up, tmp_path):
    setup, media_set, paths = backed_up
    DatastoreRegistry().create("restored", tmp_path / "restored")

    def restore(*args):
        return tapefs("restore", media_set, "store=restored", "--drive", "drive1", *args, check=False)

    bad = restore("--namespaces", "store=store,sorce=a")
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "tapefs: error: namespace mapping 'store=store,sorce=a': expected KEY=VALUE with KEY one of store, "
        "source, target, max-depth, got 'sorce=a'")
    typo = restore("--namespaces", "store=stroe,source=a")
    assert typo.returncode == 1 and typo.stderr.strip() == (
        f"tapefs: error: namespace mapping: media set {media_set} has no snapshots of store stroe")
    uncovered = restore(f"store:ns/c/{paths['c']}", "--namespaces", "store=store,source=a")
    assert uncovered.returncode == 1 and "no namespace mapping of store store covers namespace 'c'" in uncovered.stderr

    done = restore("--namespaces", "store=store,source=a,target=new,max-depth=0",
                   "--namespace", "store=store,source=c,target=new", "--output-format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["targets"] == {f"store:ns/a/{paths['a']}": [f"restored:ns/new/{paths['a']}"],
                                 f"store:ns/c/{paths['c']}": [f"restored:ns/new/{paths['c']}"]}
    text = restore(f"store:{paths['root']}", "--namespaces", "store=store,max-depth=0,target=top")
    assert text.returncode == 0, text.stderr
    assert f"restored store:{paths['root']} as restored:ns/top/{paths['root']}" in text.stdout
