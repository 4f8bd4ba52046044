"""--precision mixed: the policy chosen per hardware, the refusal where there is no fast
path, and a real mixed run (bfloat16 convolutions, float32 heads) where the CPU has bf16."""
import pytest
from click.testing import CliRunner

from kerashw.training import precision
from kerashw.cli import main
from kerashw.config import RunSpec, TrainOptions

HAS_BF16 = bool(precision.cpu_flags() & set(precision.BF16_FLAGS))


def test_policy_follows_the_hardware(tmp_path):
    assert precision.policy_name("float32", gpu=False, flags=set()) == "float32"
    assert precision.policy_name("mixed", gpu=True, flags=set()) == "mixed_float16"
    assert precision.policy_name("mixed", gpu=False, flags={"avx2", "avx512_bf16"}) == "mixed_bfloat16"
    assert precision.policy_name("mixed", gpu=False, flags={"amx_bf16"}) == "mixed_bfloat16"
    with pytest.raises(precision.UnsupportedError, match="--precision float32"):
        precision.policy_name("mixed", gpu=False, flags={"avx2", "avx512f"})
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16\n")
    assert "avx512_bf16" in precision.cpu_flags(info)
    assert precision.cpu_flags(tmp_path / "missing") == set()


def test_cli_refuses_mixed_without_a_fast_path(tmp_path, tiny_mnist, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda *a: {"avx2"})
    monkeypatch.setattr(precision, "has_gpu", lambda: False)
    st = tmp_path / "st"
    r = CliRunner().invoke(main, ["train", "--model", "nn", "--precision", "mixed", "--epochs", "1",
                                  "--mnist", str(tiny_mnist), "--store", str(st)])
    assert r.exit_code == 2, r.output
    assert "not on this machine" in r.output and "--precision float32" in r.output
    assert "Traceback" not in r.output


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bfloat16 instructions (avx512_bf16/amx_bf16)")
@pytest.mark.slow
def test_mixed_run_computes_in_bfloat16_with_float32_heads(store, tiny_mnist):
    import keras

    from kerashw.training import train

    spec = RunSpec(model="cnn", epochs=1, limit=128, batch_size=32, lr=1e-3, precision="mixed")
    result = train.run(spec, store=store, options=TrainOptions(mnist=str(tiny_mnist)))
    assert result.status == "finished" and 0 < result.final["test"]["loss"] < 10
    assert keras.config.dtype_policy().name == "float32"  # the next run starts from float32
    model = keras.models.load_model(store.run_dir(result.run_id) / "model.keras", compile=False)
    conv = model.get_layer("cnn_1_conv")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    head = model.get_layer("cnn_predictions")
    assert head.compute_dtype == "float32" and model.output.dtype == "float32"
    assert store.get(result.run_id).spec["precision"] == "mixed"
