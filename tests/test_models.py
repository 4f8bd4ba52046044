import numpy as np
import pytest

from kerashw.models import MODELS, count_params, get_model


def test_nn_shape_activation_and_params():
    m = get_model("nn")((28, 28), 10, activation="sigmoid")
    assert m.output_shape == (None, 10)
    assert m.get_layer("nn_1_dense").get_config()["activation"] == "sigmoid"
    assert count_params(m) == (235_146, 235_146)
    out = m(np.zeros((2, 28, 28), np.float32))
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)


def test_cnn_shape_activation_and_params():
    m = get_model("cnn")((28, 28), 10, activation="softmax")
    assert m.output_shape == (None, 10)
    assert m.get_layer("cnn_1_softmax").get_config()["activation"] == "softmax"
    trainable, total = count_params(m)
    assert (trainable, total) == (421_738, 421_930)  # BatchNorm's moving stats are the difference


def test_unknown_model_lists_known():
    with pytest.raises(ValueError, match=r"Unknown model 'vgg'\. Known: \[.*'cnn'.*'nn'"):
        get_model("vgg")
    assert {"nn", "cnn"} <= set(MODELS)


@pytest.mark.parametrize("name,channels,trainable", [
    ("resnet18", 1, 11_209_228),  # the report's count (PyTorch convention: BN running stats excluded)
    ("resnet18_mod", 3, 95_164),
])
def test_report_parameter_counts(name, channels, trainable):
    m = get_model(name)((50, 130, channels), 19)
    assert count_params(m)[0] == trainable


@pytest.mark.parametrize("name", ["baseline", "simple_cnn", "resnet18_mod"])
def test_captcha_models_have_four_named_heads(name):
    m = get_model(name)((50, 130, 1), 19)
    out = m(np.zeros((2, 50, 130, 1), np.float32))
    assert sorted(out) == ["char_1", "char_2", "char_3", "char_4"]
    for head in out.values():
        assert head.shape == (2, 19)
        np.testing.assert_allclose(np.asarray(head).sum(axis=1), 1.0, rtol=1e-5)


def test_torch_init_draws_kernels_and_biases_like_pytorch():
    import numpy as np

    model = get_model("nn")((28, 28), 10, init="torch")
    dense = model.get_layer("nn_1_dense")
    kernel, bias = (np.asarray(w) for w in dense.get_weights())
    # PyTorch's Linear: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)); the draw is float32, whose
    # nearest value to 1/28 lies 1.6e-9 above it (so 1 run in ~200 drew a kernel just past the exact bound)
    bound = float(np.float32(1 / np.sqrt(784)))
    assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.95 * bound
    assert abs(kernel.std() - bound / np.sqrt(3)) < 0.05 * bound  # uniform, not Glorot's narrower spread
    assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0.5 * bound  # bias drawn too
    conv = get_model("resnet18_mod")((50, 130, 3), 19, init="torch").get_layer("resnet18_mod_stem_conv")
    fan_in = 7 * 7 * 3
    assert np.abs(np.asarray(conv.kernel)).max() <= float(np.float32(1 / np.sqrt(fan_in)))
    keras_init = get_model("nn")((28, 28), 10, init="keras").get_layer("nn_1_dense")
    assert not np.asarray(keras_init.bias).any()  # Keras's default: zero bias


def test_resnets_honour_the_activation():
    model = get_model("resnet18_mod")((50, 130, 1), 19, activation="tanh")
    acts = {layer.get_config()["activation"] for layer in model.layers if type(layer).__name__ == "Activation"}
    assert acts == {"tanh"}


def test_position_pool_gives_each_head_its_own_view():
    import keras

    model = get_model("resnet18_mod_pos")((50, 130, 1), 19)
    plain = count_params(get_model("resnet18_mod")((50, 130, 1), 19))[0]
    assert count_params(model)[0] == plain + 4 * 33  # a 1x1 conv of 32 channels + bias per head
    weights = keras.Model(model.input, model.get_layer("resnet18_mod_pos_pos_pool_weights").output)
    w = np.asarray(weights(np.random.default_rng(0).random((2, 50, 130, 1)).astype("float32")))
    assert w.shape == (2, 2 * 5, 4)  # 4 attention maps over the 2x5 cells of the last stage
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-5)  # each a softmax over the cells
    assert count_params(get_model("resnet18_tiny_pos")((50, 130, 3), 19))[0] < 25_000


def test_high_resolution_variant_keeps_the_parameters_and_doubles_the_map():
    import keras

    model = get_model("resnet18_mod_hr")((50, 130, 3), 19)
    assert count_params(model)[0] == count_params(get_model("resnet18_mod_pos")((50, 130, 3), 19))[0] < 100_000
    weights = keras.Model(model.input, model.get_layer("resnet18_mod_hr_pos_pool_weights").output)
    assert weights.output.shape[1] == 4 * 9  # the last stage's cells: 4x9 instead of 2x5
    tiny = count_params(get_model("resnet18_tiny_hr")((50, 130, 3), 19))[0]
    assert tiny == count_params(get_model("resnet18_tiny_pos")((50, 130, 3), 19))[0] < 25_000


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_fused_batchnorm_trains_as_keras_batchnorm_does(dtype, tmp_path):
    """The fused kernel is a faster path to the same numbers: outputs, every gradient and the
    moving statistics of one training step agree with Keras's BatchNormalization to float
    rounding (16-bit activations: to bf16 rounding), inference is Keras's own, and a model
    with it saves and loads as .keras."""
    import keras
    import tensorflow as tf

    from kerashw import blocks

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2, 3, (8, 6, 7, 5)).astype("float32"))
    w = tf.constant(rng.normal(size=(8, 6, 7, 5)).astype("float32"))
    out = {}
    keras.config.set_dtype_policy(dtype)
    try:
        for kind in ("keras", "fused"):
            with blocks.batchnorm(kind):
                inp = keras.Input((6, 7, 5))
                model = keras.Model(inp, blocks.batch_norm(inp, epsilon=1e-5, momentum=0.9, name="bn"))
            bn = model.get_layer("bn")
            bn.gamma.assign(np.linspace(0.5, 2, 5))
            bn.beta.assign(np.linspace(-1, 1, 5))
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.cast(model(x, training=True), "float32")
                loss = tf.reduce_sum(y * w + 0.1 * y * y)
            grads = tape.gradient(loss, [x, bn.gamma, bn.beta])
            out[kind] = [y, *grads, bn.moving_mean, bn.moving_variance, model(x, training=False)]
            assert type(bn).__name__ == {"keras": "BatchNormalization", "fused": "FusedBatchNormalization"}[kind]
    finally:
        keras.config.set_dtype_policy("float32")
    rtol = 1e-5 if dtype == "float32" else 2e-2
    for a, b in zip(out["keras"], out["fused"]):
        a, b = np.asarray(tf.cast(a, "float32")), np.asarray(tf.cast(b, "float32"))
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.abs(a).max())
    assert not np.allclose(out["fused"][5], 1.0)  # the moving variance did move (a real check)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    assert type(again.get_layer("bn")).__name__ == "FusedBatchNormalization"
    np.testing.assert_array_equal(np.asarray(again(x, training=False)), np.asarray(model(x, training=False)))


def test_models_build_their_batchnorm_as_asked():
    from kerashw import blocks

    kinds = lambda m: {type(l).__name__ for l in m.layers if "BatchNormalization" in type(l).__name__}
    assert kinds(get_model("resnet18_mod")((50, 130, 1), 19)) == {"FusedBatchNormalization"}  # the default
    with blocks.batchnorm("keras"):
        assert kinds(get_model("baseline")((50, 130, 1), 19)) == {"BatchNormalization"}
    with pytest.raises(ValueError, match="Unknown bn 'half'.*fused.*keras"):
        with blocks.batchnorm("half"):
            pass
