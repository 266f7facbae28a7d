"""TrackerNet: output dict, config round trip, input validation."""

import warnings

import pytest
import torch

from ibntrack.nn import ARCHS, IBN, ModelConfig, TrackerNet, build_model, build_model_from_config

SHAPES = {"hm": (2, 1, 24, 40), "wh": (2, 4, 24, 40), "reg": (2, 2, 24, 40), "id": (2, 128, 24, 40)}


@pytest.mark.parametrize("arch", ["resnet18-ibn", "resnet50-ibn"])
def test_output_shapes(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(arch).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 96, 160))
    assert {k: tuple(v.shape) for k, v in out.items()} == SHAPES
    assert torch.all(out["wh"] >= 0)
    assert model.stride == 4
    assert model.config == ModelConfig(arch=arch)


def test_same_dict_in_train_and_eval() -> None:
    model = build_model("resnet18", num_classes=2, emb_dim=8, neck_channels=16, head_conv=8)
    x = torch.randn(2, 3, 64, 64)
    train_out = model.train()(x)
    eval_out = model.eval()(x)
    assert {k: v.shape for k, v in train_out.items()} == {k: v.shape for k, v in eval_out.items()}
    assert train_out["hm"].shape == (2, 2, 16, 16) and train_out["id"].shape == (2, 8, 16, 16)


def test_arch_variants() -> None:
    assert len(ARCHS) == 12  # resnet18/34/50/101, each plain, -ibn (IBN-a) and -ibnb (IBN-b)
    plain = build_model("resnet34")
    assert not any(isinstance(m, IBN) for m in plain.modules())
    ibn = build_model("resnet34-ibn", ibn_mode="mix", ibn_stages=(True, False, False, False))
    assert sum(isinstance(m, IBN) for m in ibn.modules()) == 3  # layer1 of ResNet-34 has 3 blocks
    assert ibn.neck.out_channels == 64
    assert ibn.heads.heads["hm"][0].out_channels == 128


def test_config_round_trip() -> None:
    cfg = ModelConfig(arch="resnet50", num_classes=3, ibn_stages=(True, True, False, False), head_conv=64)
    data = cfg.to_dict()
    assert data["ibn_stages"] == [True, True, False, False]
    assert ModelConfig.from_dict(data) == cfg
    assert cfg.resolved_neck_channels() == 128 and cfg.resolved_head_conv() == 64
    assert isinstance(build_model_from_config(ModelConfig(neck_channels=8, head_conv=8)), TrackerNet)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"arch": "resnet20"}, "resnet18-ibn"),
        ({"num_classes": 0}, "num_classes"),
        ({"emb_dim": -1}, "emb_dim"),
        ({"ibn_ratio": 1.2}, "ibn_ratio"),
        ({"ibn_mode": "b"}, "ibn_mode"),
        ({"ibn_stages": (True,)}, "ibn_stages"),
        ({"neck_channels": 0}, "neck_channels"),
        ({"head_conv": 1.5}, "head_conv"),
    ],
)
def test_bad_config(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ModelConfig(**kwargs)


def test_unknown_option() -> None:
    with pytest.raises(ValueError, match="bogus"):
        build_model("resnet18", bogus=1)
    with pytest.raises(ValueError, match="arch must be one of"):
        build_model("vgg16")


@pytest.fixture(scope="module")
def tiny() -> TrackerNet:
    return build_model("resnet18-ibn", neck_channels=8, head_conv=8).eval()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((3, 64, 64), "rank-4"),
        ((1, 4, 64, 64), "3 \\(RGB\\) channels"),
        ((1, 3, 100, 64), "multiples of 32"),
        ((1, 3, 64, 48), "multiples of 32"),
    ],
)
def test_bad_input(tiny: TrackerNet, shape: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny(torch.zeros(shape))


def test_exports_to_onnx(tmp_path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = build_model("resnet18-ibn", emb_dim=8, neck_channels=8, head_conv=8).eval()
    x = torch.randn(1, 3, 64, 64)
    path = tmp_path / "net.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, output_names=["hm", "wh", "reg", "id"])
        expected = model(x)
    session = ort.InferenceSession(str(path))
    outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    for name, value in zip(["hm", "wh", "reg", "id"], outputs, strict=True):
        torch.testing.assert_close(torch.from_numpy(value), expected[name], atol=1e-4, rtol=1e-4)


def test_width_multiplier_quarters_parameters():
    full = build_model("resnet18-ibn", width=1.0)
    half = build_model("resnet18-ibn", width=0.5)
    n_full = sum(p.numel() for p in full.backbone.parameters())
    n_half = sum(p.numel() for p in half.backbone.parameters())
    assert half.backbone.out_channels == [32, 64, 128, 256]
    assert 0.24 < n_half / n_full < 0.26  # conv weights scale with width²
    out = half(torch.zeros(1, 3, 64, 96))
    assert out["hm"].shape == (1, 1, 16, 24)
    with pytest.raises(ValueError, match="width"):
        build_model("resnet18", width=0)
