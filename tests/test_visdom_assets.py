"""The offline web assets of the visdom server: our file names against visdom's own download list
(its start-up check run with the network replaced by a recorder), the installed assets (install.sh
runs tracking/visdom_assets.py), tamper detection, and the pinned tarball hashes."""

import io
import json
import os
import shutil
import runpy
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

from lib.vis.visdom_assets import (MANIFEST_NAME, MATHJAX_DIR, PACKAGES, AssetError, install_assets,
                                   offline_fetch_attempts, verify_assets, visdom_package_dir)
from tests.conftest import PROJECT_ROOT

MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.5/"


def _fake_visdom_dir(tmp_path) -> Path:
    vdir = tmp_path / "visdom"
    vdir.mkdir()
    shutil.copy(visdom_package_dir() / "VERSION", vdir / "VERSION")
    return vdir


def _mathjax_rel(url: str) -> str:
    assert url.startswith(MATHJAX_CDN), url
    return urlparse(url[len(MATHJAX_CDN):]).path  # drops ?V=2.7.5 and the like


def test_names_match_visdom_download_list(tmp_path):
    """Placing a file under every name of PACKAGES leaves visdom's start-up with only MathJax to fetch,
    and the MathJax files it fetches all lie inside the tree we place."""
    vdir = _fake_visdom_dir(tmp_path)
    names = {d for p in PACKAGES for _, d in p.files} - {"static/fonts/glyphicons-halflings-regular.svg"}
    everything = offline_fetch_attempts(vdir)
    # an empty folder: visdom wants each of its 21 files, then dies on the first MathJax file
    assert len(everything) == len(names) + 1 and everything[-1].startswith(MATHJAX_CDN), everything

    for pkg in PACKAGES:
        for _, dst in pkg.files:
            (vdir / dst).parent.mkdir(parents=True, exist_ok=True)
            (vdir / dst).write_bytes(b"x")
    (vdir / "static" / "version.built").write_text((vdir / "VERSION").read_text().strip())
    mathjax = next(p for p in PACKAGES if p.name == "mathjax")
    fetched = []
    for _ in range(20):
        remaining = offline_fetch_attempts(vdir)
        if not remaining:
            break
        assert len(remaining) == 1 and remaining[0].startswith(MATHJAX_CDN), remaining
        rel = _mathjax_rel(remaining[0])
        assert rel.split("/", 1)[0] in mathjax.tree[1], f"{rel} is outside the MathJax entries we place"
        fetched.append(rel)
        (vdir / MATHJAX_DIR / rel).parent.mkdir(parents=True, exist_ok=True)
        (vdir / MATHJAX_DIR / rel).write_bytes(b"x")
    assert offline_fetch_attempts(vdir) == []
    assert len(fetched) == 8 and "MathJax.js" in fetched and "config/TeX-AMS-MML_HTMLorMML.js" in fetched


def _installed_or_skip():
    problems = verify_assets(check_start=False)
    if problems:
        pytest.skip(f"visdom's offline assets are not installed (python tracking/visdom_assets.py): {problems[0]}")
    return visdom_package_dir()


def test_installed_assets_verify_and_start_offline():
    vdir = _installed_or_skip()
    assert verify_assets(vdir) == []  # includes visdom's own start-up check with the network disabled
    manifest = json.loads((vdir / MANIFEST_NAME).read_text())
    assert {p.name: p.version for p in PACKAGES} == {k: v["version"] for k, v in manifest["packages"].items()}
    # the index page's scripts are real files, not error pages
    assert (vdir / "static/js/plotly-plotly.min.js").stat().st_size > 3_000_000
    assert (vdir / "static/js/mathjax/2.7.5/MathJax.js").read_bytes().lstrip().startswith(b"/*")
    assert b"jQuery v3.1.1" in (vdir / "static/js/jquery.min.js").read_bytes()[:200]
    for rel in ("config/Safe.js", "extensions/Safe.js", "jax/output/SVG/fonts/TeX/fontdata.js",
                "jax/output/SVG/jax.js", "jax/output/SVG/fonts/TeX/Size1/Regular/Main.js", "jax/output/SVG/config.js"):
        assert f"{MATHJAX_DIR}/{rel}" in manifest["files"]  # the rest of visdom's MathJax list
    assert _cli(["--check"]) == 0


def _cli(argv):
    """Exit code of ``python tracking/visdom_assets.py <argv>``, run in this process."""
    sys.path.insert(0, str(PROJECT_ROOT / "tracking"))
    try:
        return runpy.run_path(str(PROJECT_ROOT / "tracking" / "visdom_assets.py"), run_name="not_main")["main"](argv)
    finally:
        sys.path.remove(str(PROJECT_ROOT / "tracking"))


def test_verify_detects_changed_and_missing_files(tmp_path):
    vdir = _installed_or_skip()
    copy = tmp_path / "visdom"
    copy.mkdir()
    shutil.copy(vdir / "VERSION", copy / "VERSION")
    # a copy made of links to the installed files, with the MathJax tree cut to MathJax.js (fast);
    # files to break are replaced, never edited through the link
    manifest = json.loads((vdir / MANIFEST_NAME).read_text())
    manifest["files"] = {k: v for k, v in manifest["files"].items()
                         if not k.startswith(MATHJAX_DIR + "/") or k == f"{MATHJAX_DIR}/MathJax.js"}
    for rel in list(manifest["files"]) + ["static/version.built"]:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(vdir / rel, copy / rel)
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert verify_assets(copy, check_start=False) == []
    jq = copy / "static/js/jquery.min.js"
    jq.unlink()
    jq.write_bytes((vdir / "static/js/jquery.min.js").read_bytes().replace(b"jQuery", b"jQueeq", 1))
    (copy / "static/css/bootstrap.min.css").unlink()
    problems = verify_assets(copy, check_start=False)
    assert "sha256 differs: static/js/jquery.min.js" in problems
    assert "missing: static/css/bootstrap.min.css" in problems
    (copy / "static/version.built").unlink()
    assert any("version.built" in p for p in verify_assets(copy, check_start=False))


def test_tarball_with_wrong_hash_is_refused(tmp_path):
    """A tarball that is not the published one is rejected before anything is placed."""
    tarballs = tmp_path / "tarballs"
    tarballs.mkdir()
    for pkg in PACKAGES:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            data = b"console.log('not the real file');"
            info = tarfile.TarInfo("package/index.js")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        (tarballs / pkg.tarball_name).write_bytes(buf.getvalue())
    vdir = _fake_visdom_dir(tmp_path)
    with pytest.raises(AssetError, match=r"jquery-3\.1\.1\.tgz: sha512 .* differs from the pinned"):
        install_assets(vdir, tarball_dir=tarballs, log=lambda *_: None)
    assert not (vdir / "static" / "version.built").exists()
    assert not (vdir / "static" / "js" / "jquery.min.js").exists()

    (tarballs / PACKAGES[0].tarball_name).unlink()
    with pytest.raises(AssetError, match="tarballs missing"):
        install_assets(vdir, tarball_dir=tarballs, log=lambda *_: None)
