"""fastiqa.weights: every path by which a backbone's weights are found, checked or refused,
with a randomly initialised stand-in file (the real ImageNet files are not on the test
machine); the shipped LPIPS / DISTS heads and their licence notices; `fastiqa weights`
and `fastiqa info`."""
import hashlib
import os
import warnings

import pytest
import torch

from fastiqa import weights as W
from fastiqa.cli import main
from fastiqa.info import collect, format_report

NAME = "squeezenet1_1"


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    """A random stand-in file (the first layer of a squeezenet1_1 state dict; finding a
    file never reads it) and its SHA-256."""
    torch.manual_seed(0)
    sd = {"features.0.weight": torch.randn(64, 3, 3, 3), "features.0.bias": torch.randn(64)}
    path = tmp_path_factory.mktemp("standin") / "any-name.pth"
    torch.save(sd, path)
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Empty FASTIQA_WEIGHTS_DIR and torchvision cache (TORCH_HOME) for this test."""
    env, home = tmp_path / "weights_dir", tmp_path / "torch_home"
    env.mkdir()
    monkeypatch.setenv(W.ENV_DIR, str(env))
    monkeypatch.setenv("TORCH_HOME", str(home))
    cache = home / "hub" / "checkpoints"
    assert W.torchvision_cache_dir() == str(cache)
    return env, cache


def _publish(monkeypatch, sha):
    """Makes the stand-in the 'published' file: a registry entry whose name carries its hash."""
    b = W.Backbone(NAME, f"{NAME}-{sha[:8]}.pth", "test")
    monkeypatch.setitem(W.BACKBONES, NAME, b)
    return b


def _put(folder, b, src):
    os.makedirs(folder, exist_ok=True)
    dest = os.path.join(folder, b.file)
    with open(src, "rb") as f, open(dest, "wb") as g:
        g.write(f.read())
    return dest


def _serve(folder, b, src, monkeypatch):
    """A 'download server' (a file:// folder) holding src under b's file name."""
    _put(folder, b, src)
    monkeypatch.setattr(W, "URL_BASE", folder.as_uri() + "/")


def test_published_names_and_prefixes():
    assert W.BACKBONES["alexnet"].url == "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert W.BACKBONES["alexnet"].sha256_prefix == "7be5be79"
    assert W.BACKBONES["vgg16"].sha256_prefix == "397923af"
    assert W.BACKBONES["squeezenet1_1"].sha256_prefix == "b8a52dc0"
    assert W.BACKBONES["vgg19"].file == "vgg19-dcbb9e9d.pth"


def test_given_path_is_used_as_given_with_its_sha256_and_a_warning(stand_in, places):
    path, sha = stand_in
    with pytest.warns(UserWarning, match=rf"{sha}.*not torchvision's published {NAME}.*b8a52dc0.*using it as given"):
        r = W.find(NAME, path)
    assert (r.path, r.sha256, r.source, r.published) == (path, sha, "argument", False)


def test_given_path_that_is_the_published_file_gives_no_warning(stand_in, places, monkeypatch):
    path, sha = stand_in
    _publish(monkeypatch, sha)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = W.find(NAME, path)
    assert r.published and r.source == "argument"


def test_given_path_missing_names_it():
    with pytest.raises(W.WeightsNotFoundError, match=r"backbone_weights='/no/such.pth': no such file"):
        W.find(NAME, "/no/such.pth")


def test_env_dir_first_then_torchvision_cache(stand_in, places, monkeypatch):
    path, sha = stand_in
    env, cache = places
    b = _publish(monkeypatch, sha)
    in_cache = _put(cache, b, path)
    r = W.find(NAME)
    assert (r.path, r.source, r.published, r.sha256) == (in_cache, "torchvision cache", True, sha)
    in_env = _put(env, b, path)
    r = W.find(NAME)
    assert (r.path, r.source) == (in_env, W.ENV_DIR)


def test_a_file_under_the_published_name_that_is_not_it_is_refused(stand_in, places):
    path, sha = stand_in
    env, _ = places
    bad = _put(env, W.BACKBONES[NAME], path)  # the real name, the stand-in's bytes
    with pytest.raises(W.WeightsMismatchError, match=rf"{bad}.*SHA-256 is {sha}.*begins b8a52dc0.*fetch {NAME}"):
        W.find(NAME)


def test_missing_offline_is_one_error_naming_file_url_and_command(places):
    env, cache = places
    with pytest.raises(W.WeightsNotFoundError) as e:
        W.find("alexnet")
    msg = str(e.value)
    for part in ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                 "fastiqa weights fetch alexnet", str(env), str(cache), "download=True"):
        assert part in msg


def test_download_only_when_asked_and_checked(stand_in, places, monkeypatch, tmp_path):
    path, sha = stand_in
    env, _ = places
    b = _publish(monkeypatch, sha)
    _serve(tmp_path / "server", b, path, monkeypatch)
    with pytest.raises(W.WeightsNotFoundError):
        W.find(NAME)  # nothing downloaded without being asked
    assert not os.listdir(env)
    r = W.find(NAME, download=True)
    assert (r.path, r.sha256, r.source) == (os.path.join(env, b.file), sha, "download")


def test_download_of_another_file_is_refused_and_removed(stand_in, places, monkeypatch, tmp_path):
    path, _ = stand_in
    env, _ = places
    _serve(tmp_path / "server", W.BACKBONES[NAME], path, monkeypatch)  # the real name, not its bytes
    with pytest.raises(W.WeightsMismatchError, match="not the published file"):
        W.fetch(NAME)
    assert not os.listdir(env)


def test_download_failure_says_where_from(places, monkeypatch, tmp_path):
    monkeypatch.setattr(W, "URL_BASE", (tmp_path / "nothing").as_uri() + "/")
    with pytest.raises(W.WeightsNotFoundError, match="could not download .*squeezenet1_1-b8a52dc0.pth"):
        W.fetch(NAME)


def test_cli_fetch_and_list_and_info(stand_in, places, monkeypatch, tmp_path, capsys):
    path, sha = stand_in
    env, _ = places
    b = _publish(monkeypatch, sha)
    _serve(tmp_path / "server", b, path, monkeypatch)
    assert main(["weights", "list"]) == 0
    assert f"{NAME:<14} {b.file:<28} absent" in capsys.readouterr().out
    assert main(["weights", "fetch", NAME]) == 0
    assert f"{NAME}: {os.path.join(env, b.file)} (sha256 {sha})" in capsys.readouterr().out
    assert main(["weights", "list"]) == 0
    assert f"{os.path.join(env, b.file)} ({W.ENV_DIR})" in capsys.readouterr().out
    rows = {r["name"]: r for r in collect()["weights"]}
    assert rows[NAME]["path"] == os.path.join(env, b.file) and rows["alexnet"]["path"] is None
    text = format_report(collect())
    assert f"{os.path.join(env, b.file)} ({W.ENV_DIR})" in text and "absent: alexnet" in text
    assert main(["weights", "fetch", "resnet50"]) == 2
    assert "unknown: resnet50" in capsys.readouterr().err


def test_a_file_that_is_no_state_dict_is_a_clear_error(tmp_path):
    p = tmp_path / "x.pth"
    torch.save([1, 2, 3], p)
    r = W.Resolved(NAME, str(p), "", "argument", False)
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        W.load_state_dict(r)
    p.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a loadable torchvision state dict"):
        W.load_state_dict(r)


SHIPPED = {  # fastiqa/data: SHA-256 of the files copied from lpips 0.1.4 and DISTS_pytorch 0.1
    "lpips_v0.1_alex.pth": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "lpips_v0.1_vgg.pth": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    "lpips_v0.1_squeeze.pth": "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
    "dists_alpha_beta.pt": "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
}


def test_shipped_heads_are_the_published_files_with_their_licences():
    data = os.path.join(os.path.dirname(W.__file__), "data")
    for name, sha in SHIPPED.items():
        assert W.sha256(os.path.join(data, name)) == sha, name
    lp = open(os.path.join(data, "LICENSE-lpips.txt")).read()
    ds = open(os.path.join(data, "LICENSE-DISTS.txt")).read()
    assert "Redistribution and use in source and binary forms" in lp and "Richard Zhang" in lp
    assert "MIT License" in ds and "Keyan Ding" in ds
    for name, sha in SHIPPED.items():
        assert sha in (lp if name.startswith("lpips") else ds), name
