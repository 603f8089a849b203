"""The config examples in docs/media-pools.md parse with the real loaders."""
import re
from pathlib import Path

import pytest

from tapefs.media.tape_config import load_media_pool_config, load_tape_config, load_tape_job_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "media-pools.md"
LOADERS = {"tape.cfg": load_tape_config, "media-pool.cfg": load_media_pool_config,
           "tape-job.cfg": load_tape_job_config}


def examples() -> dict[str, str]:
    blocks = re.findall(r"```cfg\n# (\S+)\n(.*?)```", DOC.read_text(), re.S)
    return {name: text for name, text in blocks}


def test_every_config_file_has_an_example():
    assert set(examples()) == set(LOADERS)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_example_parses(tmp_path, name):
    path = tmp_path / name
    path.write_text(examples()[name])
    loaded = LOADERS[name](path)
    assert loaded


def test_pool_examples_give_the_documented_policies(tmp_path):
    path = tmp_path / "media-pool.cfg"
    path.write_text(examples()["media-pool.cfg"])
    pools = load_media_pool_config(path)
    assert pools["daily"].retention_policy.seconds == 6 * 86400
    assert str(pools["archive"].allocation_policy) == "continue"
    assert str(pools["archive"].retention_policy) == "keep"


def test_tape_example_has_vtape_sockets_and_a_device_node(tmp_path):
    path = tmp_path / "tape.cfg"
    path.write_text(examples()["tape.cfg"])
    config = load_tape_config(path)
    assert config.drive("drive1").path.endswith("/drive1")
    assert config.drive("desk").changer is None
    assert config.changer("lib0").export_slots == (15, 16)
