"""Scaling out: a mirrored run on two logical CPU devices and a two-process multi-worker
cluster on 127.0.0.1 end with the single-device run's numbers; `--workers 2` trains each
run of a study exactly once, in two processes sharing one store.

Tolerance: the replicas compute the same global batch in two halves and sum the
gradients, so only the order of float32 additions differs from one device: relative
differences of ~1e-7 per step, far inside the 1e-4 allowed on the losses after a
few steps; accuracies must match exactly (one flipped image would move them 1 %)."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from kerashw.store import Store
from kerashw.cli.workers import child_argv

ARGS = ["--model", "nn", "--epochs", "2", "--limit", "128", "--batch", "32", "--lr", "0.001"]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _final(store_dir):
    (row,) = Store(store_dir, readonly=True).runs()
    assert row.status == "finished", row.error
    return row.final


def _same(a, b):
    for phase in ("train", "val", "test"):
        assert a[phase]["loss"] == pytest.approx(b[phase]["loss"], rel=1e-4), phase
        assert a[phase]["top1"] == pytest.approx(b[phase]["top1"], abs=1e-9), phase


@pytest.fixture(scope="module")
def single(tmp_path_factory, tiny_mnist):
    """The single-device run the distributed ones must reproduce, in a fresh process as
    they are (a test process's earlier work could shift a float32 sum by an ulp)."""
    st = tmp_path_factory.mktemp("single")
    subprocess.run([sys.executable, "-m", "kerashw.cli", "train", *ARGS, "--mnist", str(tiny_mnist),
                    "--store", str(st)], check=True, env=_env(), capture_output=True)
    return _final(st)


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_matches_one_device(tmp_path, tiny_mnist, single):
    st = tmp_path / "st"
    script = textwrap.dedent(f"""
        import sys, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from kerashw.cli import main
        main({json.dumps(["train", *ARGS, "--mnist", str(tiny_mnist), "--store", str(st),
                          "--distribute", "mirrored", "--devices", "/cpu:0,/cpu:1"])})
    """)
    r = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "mirrored over 2 replicas, global batch 32 (16 per replica)" in r.stdout
    _same(_final(st), single)


@pytest.mark.slow
def test_mirrored_captcha_run_evaluates_an_odd_val_split(tmp_path, synth_folder):
    """Keras's evaluate under a strategy rebuilt the model from its first batch averaged over
    the replicas: a 21-image val split (one batch, 11 + 10 images) failed in AddN."""
    st = tmp_path / "st"
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from kerashw.cli import main
        main({json.dumps(["train", "--model", "resnet18_mod", "--data", str(synth_folder), "--split", "64", "21", "35",
                          "--epochs", "1", "--batch", "32", "--store", str(st),
                          "--distribute", "mirrored", "--devices", "/cpu:0,/cpu:1"])})
    """)
    r = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (row,) = Store(st, readonly=True).runs()
    assert row.status == "finished" and {"val", "test"} <= set(row.final)
    # every image of each split was counted: an accuracy over 21 images is a multiple of 1/21
    assert any(abs(row.final["val"]["char_1_acc"] * 21 - k) < 1e-4 for k in range(22))


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_two_worker_cluster_matches_one_device_and_only_the_chief_writes(tmp_path, tiny_mnist, single):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        env = {**_env(), "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                  "task": {"type": "worker", "index": i}})}
        cmd = [sys.executable, "-m", "kerashw.cli", "train", *ARGS, "--mnist", str(tiny_mnist),
               "--store", str(tmp_path / f"st{i}"), "--distribute", "multiworker"]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outs)
    _same(_final(tmp_path / "st0"), single)  # worker 0 is the chief (no "chief" task)
    assert Store(tmp_path / "st1", readonly=True).runs() == []  # the other wrote nothing of the user's
    assert not (tmp_path / "st1" / "runs").exists()


def test_workers_train_each_run_once(lr_study_store):
    st, r = lr_study_store
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "with 2 worker(s) of 1 thread(s) each" in r.stdout
    rows = Store(st, readonly=True).runs()
    assert len(rows) == 3 and all(row.status == "finished" for row in rows)
    (folder,) = (st / "workers").iterdir()  # one folder per command: <time>-<pid>
    logs = [(folder / f"worker-{k}.log").read_text() for k in (1, 2)]
    for row in rows:  # trained by exactly one worker
        assert sum(f"finished {row.id}" in log for log in logs) == 1, row.id


def test_child_argv_keeps_the_users_options_and_sets_threads():
    argv = ["--exp", "lr", "--workers", "2", "--threads=4", "--epochs", "1", "--force"]
    assert child_argv(argv, 1, None) == ["--exp", "lr", "--epochs", "1", "--force", "--threads", "1"]
    assert child_argv(["--workers=3"], 2, 12.5)[-2:] == ["--force-before", "12.5"]


def test_force_before_reruns_old_results_once(store):
    """Two workers of a --force study: a run that finished before the study started is
    re-run; one a sibling finished after it started is not re-run again."""
    import time

    from kerashw.config import RunSpec

    spec = RunSpec(epochs=1)
    for run_id in ("old", "new"):
        store.start_run(run_id, "mnist", "nn", spec.to_dict(), [], (1, 1), {})
        if run_id == "old":
            store.finish_run(run_id, "finished", 1.0, {}, {}, None)
            started = time.time() + 0.01
            time.sleep(0.02)
        else:
            store.finish_run(run_id, "finished", 1.0, {}, {}, None)
    assert store.claim("old", force=True, force_before=started).verdict == "claimed"
    assert store.claim("new", force=True, force_before=started).verdict == "finished"


def test_distribute_flags_are_checked(tmp_path):
    from click.testing import CliRunner

    from kerashw.cli import main

    r = CliRunner().invoke(main, ["train", "--model", "nn", "--devices", "/cpu:0", "--store", str(tmp_path)])
    assert r.exit_code == 2 and "--devices needs --distribute mirrored" in r.output
    r = CliRunner().invoke(main, ["train", "--exp", "lr", "--workers", "2", "--distribute", "mirrored",
                                  "--store", str(tmp_path)])
    assert r.exit_code == 2 and "does not combine with --distribute" in r.output


def _train_cli(tmp_path, *args, env=None):
    cmd = [sys.executable, "-m", "kerashw.cli", "train", *ARGS, "--store", str(tmp_path / "st"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**_env(), **(env or {})})


@pytest.mark.slow
def test_devices_and_tf_config_that_do_not_exist_are_one_line_each(tmp_path, tiny_mnist):
    """--devices /cpu:1 on a one-CPU machine made the first step wait forever; a missing or
    malformed TF_CONFIG was a traceback."""
    env = {"KERASHW_MNIST": str(tiny_mnist)}
    for args, extra, message in (
            (["--distribute", "mirrored", "--devices", "/cpu:7"], {}, "--devices '/cpu:7': no such device here"),
            (["--distribute", "mirrored", "--devices", "nonsense:1:2"], {}, "is not a device name"),
            (["--distribute", "multiworker"], {"TF_CONFIG": ""}, "needs the TF_CONFIG environment variable"),
            (["--distribute", "multiworker"], {"TF_CONFIG": '{"cluster": 3}'}, "TF_CONFIG is '{\"cluster\": 3}'; want JSON"),
            # a tower step inside a replica's step failed in TensorFlow's graph, after the run was stored
            (["--distribute", "mirrored", "--towers", "2"], {}, "cannot combine: --distribute does not combine with towers")):
        r = _train_cli(tmp_path, *args, env={**env, **extra})
        out = r.stdout + r.stderr
        assert r.returncode == 2 and message in out and "Traceback" not in out, out[-2000:]
    assert not (tmp_path / "st").exists() or Store(tmp_path / "st", readonly=True).runs() == []


def _running(store_dir, n, timeout=120):
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            rows = Store(store_dir, readonly=True).runs()
        except Exception:
            rows = []
        if sum(r.status == "running" for r in rows) >= n:
            return rows
        time.sleep(0.3)
    raise AssertionError(f"{n} runs never ran at once")


def _claim_pids(store_dir) -> list[int]:
    import sqlite3

    with sqlite3.connect(f"file:{Store.resolve(store_dir)}?mode=ro", uri=True) as con:
        return [pid for (pid,) in con.execute("SELECT pid FROM claims")]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie has stopped: its parent has not reaped it yet
        return f.read().split(")")[-1].split()[0] == "Z"


@pytest.mark.slow
def test_a_signal_to_the_workers_command_stops_them_at_once_and_says_what_was_stored(tmp_path, tiny_mnist):
    import signal
    import time

    st = tmp_path / "st"
    cmd = [sys.executable, "-m", "kerashw.cli", "train", "--exp", "lr", "--epochs", "300", "--limit", "256",
           "--mnist", str(tiny_mnist), "--store", str(st), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    _running(st, 2)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    waited = time.time() - sent
    assert proc.returncode == 130, out
    rows = Store(st, readonly=True).runs()
    stopped = sorted(r.id for r in rows if r.status == "interrupted")
    assert len(stopped) == 2 and not any(r.status == "running" for r in rows)
    assert "Stored as interrupted, to resume from their last whole epoch: " in out
    assert all(i in out for i in stopped)
    # it used to wait 10 s before passing the signal on, while the workers started new runs
    assert len(rows) == 2, [r.status for r in rows]
    assert waited < 60, waited


@pytest.mark.slow
def test_workers_stop_when_their_command_is_killed(tmp_path, tiny_mnist):
    import signal
    import time

    st = tmp_path / "st"
    cmd = [sys.executable, "-m", "kerashw.cli", "train", "--exp", "lr", "--epochs", "300", "--limit", "256",
           "--mnist", str(tiny_mnist), "--store", str(st), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    _running(st, 2)
    pids = _claim_pids(st)
    assert len(pids) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 90
    while time.time() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.3)
    assert all(_gone(p) for p in pids), "the workers outlived their command"
    assert sorted(r.status for r in Store(st, readonly=True).runs()) == ["interrupted", "interrupted"]
