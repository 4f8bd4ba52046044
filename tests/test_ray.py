"""kerashw train --ray: a study's runs as Ray tasks on a local multi-node cluster made here
(ray.cluster_utils.Cluster: a head without CPUs, two one-CPU worker nodes), the test process
the only writer of the store. Ray is an optional extra: without it the tests that need a
cluster are skipped, and the one-line error is tested either way."""
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerashw.cli import main
from kerashw.config import RunSpec, TrainOptions
from kerashw.listener import Listener
from kerashw.store import Store
from kerashw.studies import get_study


def numbers(store, run_id):
    """Every stored number of a run but the times."""
    return [(r.epoch, r.phase, r.samples, r.metrics) for r in store.epochs(run_id)]


def untimed(summary: dict) -> dict:
    return {phase: {k: v for k, v in m.items() if k != "seconds"} for phase, m in summary.items()
            if isinstance(m, dict)}


def test_ray_without_the_extra_is_a_one_line_error(monkeypatch, tmp_path):
    from kerashw.cluster import RayMissing, require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(RayMissing, match=r'pip install "kerashw\[ray\]"'):
        require_ray()
    r = CliRunner().invoke(main, ["train", "--exp", "lr", "--epochs", "1", "--ray", "--store", str(tmp_path / "st")])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip() and not line.startswith(("Usage:", "Try "))]
    assert lines == ['Error: kerashw train --ray needs Ray, an optional extra: pip install "kerashw[ray]"']
    assert not (tmp_path / "st").exists()  # nothing made


def test_a_node_trains_only_the_data_its_run_id_names(tmp_path, synth_folder):
    """What a node gets is checked against the run id's fingerprint: the same images in another
    folder are the same run; an edited copy is refused, naming both fingerprints."""
    import shutil

    from kerashw.cluster import node, payload
    from kerashw.config import DataError
    from kerashw.identity import identify

    spec = identify(RunSpec(task="captcha", model="resnet18_tiny", data=str(synth_folder), epochs=1))
    here, _ = node.localise(spec, TrainOptions(), payload.pack_data(synth_folder), tmp_path / "n1", "node-a")
    assert here.run_id == spec.run_id and here.data != spec.data and (tmp_path / "n1" / "data").is_dir()
    edited = shutil.copytree(synth_folder, tmp_path / "edited", copy_function=shutil.copyfile)
    sorted(edited.glob("*.png"))[0].write_bytes(b"other bytes")
    with pytest.raises(DataError, match=rf"reached node-b has fingerprint \S+, but run {spec.run_id} names"):
        node.localise(spec, TrainOptions(), payload.pack_data(edited), tmp_path / "n2", "node-b")


def test_a_run_folder_travels_whole_and_only_the_newest_backup_stays(tmp_path):
    from kerashw.cluster import payload

    src = tmp_path / "src"
    (src / "backup").mkdir(parents=True)
    (src / "backup" / "epoch-0002.weights.h5").write_bytes(b"two")
    (src / "metrics.csv").write_text("epoch\n0\n1\n")
    (src / ".partial-1-model.keras").write_bytes(b"half")  # a write in progress never travels
    home = tmp_path / "home"
    (home / "backup").mkdir(parents=True)
    (home / "backup" / "epoch-0001.weights.h5").write_bytes(b"one")
    payload.mirror(payload.pack_folder(src), home, "backup")
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file()) == \
        ["backup/epoch-0002.weights.h5", "metrics.csv"]
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="outside"):
        payload.unpack(buf.getvalue(), home)
    assert not (tmp_path / "escape.txt").exists()


def test_ray_does_not_combine_with_workers(tmp_path):
    r = CliRunner().invoke(main, ["train", "--exp", "lr", "--ray", "--workers", "2", "--store", str(tmp_path / "st")])
    assert r.exit_code == 2 and "--ray" in r.output and "--workers" in r.output


# Ray's sockets live in its session folder, "<dir>/ray/session_<date>_<time>_<us>_<pid>/sockets/
# plasma_store", and a Unix socket's path has at most 107 characters
SOCKET_TAIL = len("/ray/session_2026-12-05_07-59-58_240945_1234567/sockets/plasma_store")


@pytest.fixture
def ray_dir(tmp_path):
    """A folder for Ray's session with a short path: under pytest's base folder (tmp_path's
    long test name would pass the socket limit), else beside it in the suite's own temporary
    folder; removed afterwards either way."""
    import shutil

    root = tmp_path.parents[1] if tmp_path.parent.name.startswith("popen-gw") else tmp_path.parent
    for base in (root, root.parent):
        for i in range(1000):
            folder = base / f"r{i}"
            if len(str(folder)) + SOCKET_TAIL > 107:
                break
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            yield str(folder)
            shutil.rmtree(folder, ignore_errors=True)
            return
    pytest.fail(f"no folder near {root} is short enough for Ray's sockets (107 characters)")


@pytest.fixture
def cluster(ray_dir, monkeypatch):
    """A head node with no CPU (nothing trains beside the driver) and two one-CPU workers."""
    ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install "kerashw[ray]"')
    from ray.cluster_utils import Cluster

    # Ray's session folder and its workers' temporary files under this test's tmp_path; a short
    # name, since Ray's sockets live there and a socket path has at most 107 characters
    monkeypatch.setenv("RAY_TMPDIR", ray_dir)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c, nodes
    finally:
        ray.shutdown()
        c.shutdown()


class Seen(Listener):
    def __init__(self, on_phase=lambda run_id, record: None):
        self.notices, self.on_phase = [], on_phase

    def notice(self, text):
        self.notices.append(text)

    def run_phase_ended(self, run_id, record):
        self.on_phase(run_id, record)


@pytest.mark.slow
def test_a_study_on_two_nodes_stores_what_one_process_stores(cluster, tmp_path, tiny_mnist, synth_folder):
    from kerashw.cluster.driver import RayOptions, run_study
    from kerashw.training import train

    import shutil

    c, _ = cluster
    specs = [RunSpec.from_dict({**s.to_dict(), "epochs": 2, "limit": 128}) for s in get_study("lr").make()]
    # a fourth run whose data fails on its node: an image there OpenCV cannot read
    bad = shutil.copytree(synth_folder, tmp_path / "bad", copy_function=shutil.copyfile)
    victim = sorted(bad.glob("*.png"))[0]
    victim.write_bytes(b"not an image")
    broken = RunSpec(task="captcha", model="resnet18_tiny", preprocess="original", data=str(bad), epochs=1, limit=32)
    options = TrainOptions(mnist=str(tiny_mnist))
    seen = Seen()
    on_ray = Store(tmp_path / "ray")
    results = run_study(specs + [broken], store=on_ray, studies=["lr"], listener=seen, options=options,
                        ray_options=RayOptions(address=c.address))
    assert [r.status for r in results] == ["finished"] * 3 + ["failed"]  # the study went on
    import tempfile  # the nodes' temporary folders (a copy of the data each) are gone with their runs

    assert not list(Path(tempfile.gettempdir()).glob("kerashw-node-*"))
    failed = on_ray.get(results[3].run_id)
    assert failed.status == "failed" and re.search(rf"on \S+ \(node \w+\): DataError: .*{victim.name}: cannot read",
                                                   failed.error), failed.error
    results = results[:3]
    nodes = {m.group(1) for n in seen.notices if (m := re.search(r"\(node (\w+)\)", n))}
    assert len(nodes) == 2  # both worker nodes trained
    alone = Store(tmp_path / "one")
    train.run_study(specs, store=alone, studies=["lr"], options=options)
    for r in results:
        assert numbers(on_ray, r.run_id) == numbers(alone, r.run_id)  # same ids, same numbers to the digit
        row, ref = on_ray.get(r.run_id), alone.get(r.run_id)
        assert row.status == "finished" and untimed(row.final) == untimed(ref.final) and row.best["epoch"] == ref.best["epoch"]
        files = on_ray.files(r.run_id)
        assert files.model.exists() and files.best_weights.exists() and files.metrics.exists()
        assert not files.backup.exists()  # a finished run keeps no backup
    again = run_study(specs, store=on_ray, studies=["lr"], options=options, ray_options=RayOptions(address=c.address))
    assert [r.status for r in again] == ["skipped"] * 3  # finished runs are reused, as on one machine


@pytest.mark.slow
def test_a_node_lost_mid_run_and_a_cancel_lose_nothing(cluster, tmp_path, mnist_path):
    """A run whose node is removed after its first whole epoch starts again on the other node
    from there; a cancel stores the run interrupted and the same call resumes it. Both end
    with the numbers of an unbroken run."""
    from kerashw.cluster.driver import RayOptions, run_study

    c, nodes = cluster
    spec = RunSpec(model="cnn", epochs=4, limit=2000, lr=1e-3)
    options = TrainOptions(mnist=str(mnist_path))
    ro = RayOptions(address=c.address)
    # the unbroken run in one process with the node's one TensorFlow thread (--cpus-per-run 1):
    # another thread count sums a convolution in another order, and the last digits differ
    alone = Store(tmp_path / "one")
    cmd = [sys.executable, "-m", "kerashw.cli", "train", "--model", "cnn", "--epochs", "4", "--limit", "2000",
           "--lr", "0.001", "--threads", "1", "--mnist", str(mnist_path), "--store", str(alone.home)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (unbroken,) = alone.runs()

    removed = []

    def remove_node_at_epoch_2(run_id, record):
        if record.epoch == 2 and not removed:  # epoch 1's run folder, backup included, is home by now
            note = next(n for n in seen.notices if run_id in n and "(node " in n)
            prefix = re.search(r"\(node (\w+)\)", note).group(1)
            (node,) = [n for n in nodes if n.node_id.startswith(prefix)]
            c.remove_node(node, allow_graceful=False)
            removed.append(node)

    seen = Seen(remove_node_at_epoch_2)
    on_ray = Store(tmp_path / "ray")
    (result,) = run_study([spec], store=on_ray, listener=seen, options=options, ray_options=ro)
    assert removed and result.status == "finished", seen.notices
    restart = [n for n in seen.notices if "lost its node" in n]
    assert len(restart) == 1 and re.search(r"from epoch [23] \(attempt 2/3\)", restart[0]), restart
    assert result.run_id == unbroken.id and numbers(on_ray, result.run_id) == numbers(alone, unbroken.id)

    cancel = threading.Event()
    stopped = Seen(lambda run_id, record: record.epoch == 2 and cancel.set())
    cancelled = Store(tmp_path / "cancelled")
    (first,) = run_study([spec], store=cancelled, listener=stopped, options=options, ray_options=ro, cancel=cancel)
    assert first.status == "interrupted" and cancelled.get(first.run_id).status == "interrupted"
    assert cancelled.files(first.run_id).backup.exists()  # what the resume starts from
    (resumed,) = run_study([spec], store=cancelled, options=options, ray_options=ro)
    assert resumed.status == "finished"
    assert numbers(cancelled, resumed.run_id) == numbers(alone, unbroken.id)


@pytest.mark.slow
def test_the_cli_trains_a_study_on_a_ray_it_starts(tmp_path, tiny_mnist, ray_dir):
    """`kerashw train --exp lr --epochs 2 --ray`, as a user types it: a local Ray for the command."""
    pytest.importorskip("ray", reason='Ray is an optional extra: pip install "kerashw[ray]"')
    import os

    env = {**os.environ, "RAY_TMPDIR": ray_dir, "RAY_AUTH_MODE": "disabled", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "kerashw.cli", "train", "--exp", "lr", "--epochs", "2", "--limit", "128",
           "--mnist", str(tiny_mnist), "--store", str(tmp_path / "st"), "--ray"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("finished") >= 3 and "Epoch [2/2], phase: test" in r.stdout
    rows = Store(tmp_path / "st").runs()
    assert sorted(row.status for row in rows) == ["finished"] * 3
