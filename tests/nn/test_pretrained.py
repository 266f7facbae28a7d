"""Pretrained backbones: state dicts built here in the exact key layouts and shapes of torchvision's
resnet18/34/50/101 and IBN-Net's resnet*_ibn_a (from their public architecture definitions, written out
independently of our model), loaded into our ResNet(-IBN) backbone."""

import pytest
import torch

from ibntrack.nn import build_model
from ibntrack.nn.pretrained import PretrainedError, load_pretrained

BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
PLANES = (64, 128, 256, 512)


def _bn(prefix: str, c: int, g: torch.Generator) -> dict:
    return {
        f"{prefix}.weight": torch.rand(c, generator=g) + 0.5,
        f"{prefix}.bias": torch.randn(c, generator=g),
        f"{prefix}.running_mean": torch.randn(c, generator=g),
        f"{prefix}.running_var": torch.rand(c, generator=g) + 0.5,
        f"{prefix}.num_batches_tracked": torch.tensor(1234),
    }


def _ibn_a(prefix: str, planes: int, g: torch.Generator) -> dict:
    half = int(planes * 0.5)  # IBN-Net: InstanceNorm2d(half, affine=True) + BatchNorm2d(planes - half)
    return {
        f"{prefix}.IN.weight": torch.rand(half, generator=g) + 0.5,
        f"{prefix}.IN.bias": torch.randn(half, generator=g),
        **_bn(f"{prefix}.BN", planes - half, g),
    }


def reference_state(depth: int, ibn_a: bool = False, seed: int = 0) -> dict:
    """torchvision ``resnet{depth}`` (``ibn_a=False``) or IBN-Net ``resnet{depth}_ibn_a`` state dict."""
    g = torch.Generator().manual_seed(seed)
    bottleneck = depth >= 50
    expansion = 4 if bottleneck else 1
    sd = {"conv1.weight": torch.randn(64, 3, 7, 7, generator=g), **_bn("bn1", 64, g)}
    inplanes = 64
    for stage, (planes, n) in enumerate(zip(PLANES, BLOCKS[depth], strict=True)):
        stride = 1 if stage == 0 else 2
        for i in range(n):
            p = f"layer{stage + 1}.{i}"
            cin = inplanes if i == 0 else planes * expansion
            if bottleneck:
                sd[f"{p}.conv1.weight"] = torch.randn(planes, cin, 1, 1, generator=g)
                sd[f"{p}.conv2.weight"] = torch.randn(planes, planes, 3, 3, generator=g)
                sd[f"{p}.conv3.weight"] = torch.randn(planes * 4, planes, 1, 1, generator=g)
                sd.update(_bn(f"{p}.bn2", planes, g))
                sd.update(_bn(f"{p}.bn3", planes * 4, g))
            else:
                sd[f"{p}.conv1.weight"] = torch.randn(planes, cin, 3, 3, generator=g)
                sd[f"{p}.conv2.weight"] = torch.randn(planes, planes, 3, 3, generator=g)
                sd.update(_bn(f"{p}.bn2", planes, g))
            if ibn_a and stage < 3:  # IBN-Net resnet*_ibn_a: IBN in layer1-layer3, not layer4
                sd.update(_ibn_a(f"{p}.bn1", planes, g))
            else:
                sd.update(_bn(f"{p}.bn1", planes, g))
            if i == 0 and (stride != 1 or inplanes != planes * expansion):
                sd[f"{p}.downsample.0.weight"] = torch.randn(planes * expansion, inplanes, 1, 1, generator=g)
                sd.update(_bn(f"{p}.downsample.1", planes * expansion, g))
        inplanes = planes * expansion
    sd["fc.weight"] = torch.randn(1000, 512 * expansion, generator=g)
    sd["fc.bias"] = torch.randn(1000, generator=g)
    return sd


def _save(tmp_path, sd, name="w.pth") -> str:
    path = tmp_path / name
    torch.save(sd, path)
    return str(path)


def _tiny(arch: str, **kw):
    return build_model(arch, emb_dim=8, neck_channels=8, head_conv=8, **kw)


def _block_keys(sd: dict) -> list[str]:
    return [k for k in sd if not k.startswith("fc.")]


@pytest.mark.parametrize("depth", [18, 50])
def test_ibn_net_checkpoint_lands_tensor_by_tensor(tmp_path, depth):
    sd = reference_state(depth, ibn_a=True)
    model = _tiny(f"resnet{depth}-ibn")
    report = load_pretrained(model, _save(tmp_path, sd))
    assert report.layout == "ibn-net" and report.source_arch == f"resnet{depth}_ibn_a"
    assert report.complete, report.summary()
    assert report.ignored == ["fc.weight", "fc.bias"] and not report.adapted
    own = model.backbone.state_dict()
    assert len(report.loaded) == len(own)  # every backbone tensor
    for key, value in sd.items():
        if key.startswith("fc."):
            continue
        ours = key.replace(".bn1.IN.", ".bn1.in_").replace(".bn1.BN.", ".bn1.bn.")
        assert torch.equal(own[ours], value.to(own[ours].dtype)), key


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_weights_into_ibn_split_explicitly(tmp_path, depth):
    sd = reference_state(depth)
    model = _tiny(f"resnet{depth}-ibn")
    report = load_pretrained(
        model, _save(tmp_path, {"state_dict": {f"module.{k}": v for k, v in sd.items()}})
    )
    assert report.layout == "torchvision" and report.source_arch == f"resnet{depth}"
    assert report.complete, report.summary()
    own = model.backbone.state_dict()
    n_ibn_blocks = sum(BLOCKS[depth][:3])
    assert len(report.adapted) == 2 * n_ibn_blocks  # in_weight and in_bias of every IBN layer
    # layer2.0: planes 128, IN takes channels 0..63, BN channels 64..127
    w, rm = sd["layer2.0.bn1.weight"], sd["layer2.0.bn1.running_mean"]
    assert torch.equal(own["layer2.0.bn1.in_weight"], w[:64])
    assert torch.equal(own["layer2.0.bn1.bn.weight"], w[64:])
    assert torch.equal(own["layer2.0.bn1.bn.running_mean"], rm[64:])
    assert torch.equal(own["layer4.0.bn1.weight"], sd["layer4.0.bn1.weight"])  # layer4 stays plain BN
    for key in sd:
        if ".bn1." not in key and not key.startswith("fc."):
            assert torch.equal(own[key], sd[key].to(own[key].dtype)), key


@pytest.mark.parametrize("depth", [34, 101])
def test_deeper_layouts_complete_plain_and_ibn(tmp_path, depth):
    for ibn_a, arch in ((False, f"resnet{depth}"), (True, f"resnet{depth}-ibn")):
        report = load_pretrained(_tiny(arch), _save(tmp_path, reference_state(depth, ibn_a=ibn_a)))
        assert report.complete, report.summary()
        assert report.source_arch == f"resnet{depth}" + ("_ibn_a" if ibn_a else "")


def test_another_architecture_is_reported_not_ignored(tmp_path):
    model = _tiny("resnet50-ibn")
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    report = load_pretrained(model, _save(tmp_path, reference_state(18)))
    assert not report.complete and not report.arch_matches
    assert report.source_arch == "resnet18" and report.mismatched and report.missing
    assert "resnet18 weights, the model is resnet50-ibn" in report.summary()
    # what fits is still copied (the stem), what does not keeps its initialisation
    own = model.backbone.state_dict()
    assert "backbone.conv1.weight" in report.loaded
    assert torch.equal(own["layer1.0.conv1.weight"], before["layer1.0.conv1.weight"])  # 1x1 vs 3x3
    assert (
        "layer1.0.conv1.weight",
        "backbone.layer1.0.conv1.weight",
        "(64, 64, 3, 3) vs (64, 64, 1, 1)",
    ) in (report.mismatched)


def test_a_non_resnet_file_loads_nothing(tmp_path):
    sd = {"base.base_layer.0.weight": torch.randn(16, 3, 7, 7), "hm.2.bias": torch.zeros(1)}  # DLA-like
    report = load_pretrained(_tiny("resnet18-ibn"), _save(tmp_path, {"epoch": 30, "state_dict": sd}))
    assert report.layout == "unknown" and report.source_arch == "unknown"
    assert not report.loaded and not report.complete
    assert sorted(report.unexpected) == sorted(sd)
    assert "nothing fits" in report.summary()


def test_ibn_ratio_and_plain_bn_targets_are_mismatches(tmp_path):
    path = _save(tmp_path, reference_state(18, ibn_a=True))
    report = load_pretrained(_tiny("resnet18-ibn", ibn_ratio=0.25), path)
    assert not report.complete
    assert any("ibn_ratio" in why for _, _, why in report.mismatched)
    report = load_pretrained(_tiny("resnet18"), path)  # plain BN model, IBN-Net file
    assert not report.complete
    assert any("plain BN" in why for _, _, why in report.mismatched)
    report = load_pretrained(_tiny("resnet18-ibn", ibn_mode="mix"), path)  # gated IN+BN on every channel
    assert not report.complete
    assert any("no mapping onto IBN(mix)" in why for _, _, why in report.mismatched)


def test_width_multiplier_and_unreadable_files(tmp_path):
    path = _save(tmp_path, reference_state(18))
    with pytest.raises(PretrainedError, match="width is 0.5"):
        load_pretrained(_tiny("resnet18-ibn", width=0.5), path)
    with pytest.raises(PretrainedError, match="does not exist"):
        load_pretrained(_tiny("resnet18-ibn"), tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(PretrainedError, match="junk.pth"):
        load_pretrained(_tiny("resnet18-ibn"), junk)


def test_loaded_model_still_runs(tmp_path):
    model = _tiny("resnet18-ibn")
    load_pretrained(model, _save(tmp_path, reference_state(18, ibn_a=True)))
    out = model.eval()(torch.randn(1, 3, 64, 64))
    assert out["hm"].shape == (1, 1, 16, 16) and torch.isfinite(out["id"]).all()


def test_an_ibntrack_checkpoint_gives_its_backbone(tmp_path):
    donor = _tiny("resnet18-ibn")
    path = tmp_path / "ours.pt"
    torch.save({"model": donor.state_dict(), "model_config": donor.config.to_dict()}, path)
    model = _tiny("resnet18-ibn")
    report = load_pretrained(model, path)
    assert report.layout == "ibntrack" and report.source_arch == "resnet18" and report.complete, (
        report.summary()
    )
    for key, value in donor.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
