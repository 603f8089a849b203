"""R4 fuzzing, the bounded part CI runs: every parser gets its seeds, a few hundred seeded mutations
and a hundred hypothesis examples, and may only reject them with its documented errors. The full
campaign (millions of inputs) is scripts/fuzz.sh; docs/reliability-fuzzing.md has its figures."""
from __future__ import annotations

import random
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.reliability_fuzz import check_one, describe, mutate, run_target, targets
from vtape import frame

TARGETS = targets()
QUICK_INPUTS = 400


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeded_mutations_meet_only_documented_errors(name):
    result = run_target(TARGETS[name], QUICK_INPUTS, seed=20261207)
    assert result.inputs == QUICK_INPUTS
    assert not result.findings, "\n\n".join(describe(finding) for finding in result.findings)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_hypothesis_inputs_meet_only_documented_errors(name):
    target = TARGETS[name]
    seeds = target.seeds()
    inputs = st.one_of(st.binary(max_size=256), st.randoms(use_true_random=False).map(lambda rng: mutate(rng, seeds)))

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(inputs)
    def parse(data):
        finding = check_one(target, data)
        assert finding is None, describe(finding)

    parse()


def test_the_seeds_are_valid_input():
    """Seeds the parsers reject would leave the mutations on the surface of each format."""
    for target in TARGETS.values():
        for seed in target.seeds():
            if target.name in ("vtape-frame", "vtape-cdb", "hex-cdb"):
                continue
            target.run(seed)


def test_the_mutation_engine_repeats_with_its_seed():
    seeds = [bytes(range(64))]
    first = [mutate(random.Random(5), seeds) for _ in range(3)]
    assert first == [mutate(random.Random(5), seeds) for _ in range(3)]


def test_the_daemon_survives_garbage_frames_and_keeps_serving(vtape_library):
    """Malformed request headers over the real socket get a HOST_ERROR reply and a closed
    connection; the daemon goes on serving (the fixture also checks its log holds no traceback)."""
    rng = random.Random(11)
    valid = frame.encode_request_header(bytes(6), 0, 0)
    for _ in range(60):
        garbage = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            garbage[rng.randrange(len(garbage))] = rng.randrange(256)
        try:
            frame.decode_request_header(bytes(garbage))
        except frame.FrameError:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                sock.connect(vtape_library.drives[0])
                sock.sendall(bytes(garbage))
                reply = frame.decode_reply_header(frame.recv_exactly(sock, frame.REPLY_HEADER_SIZE))
                assert reply.host_status == frame.HOST_ERROR
                assert sock.recv(1) == b""
    with vtape_library.client("drive0") as client:
        assert client.execute(bytes(6)).status in (0, 2)
