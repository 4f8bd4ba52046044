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
