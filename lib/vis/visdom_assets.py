"""The web assets of the visdom server, installed from npm so that ``python -m visdom.server`` starts
without internet.

At every start, visdom 0.2.4 (``visdom/server/build.py::download_scripts``) fetches its JavaScript, CSS,
fonts and part of MathJax from unpkg.com, cdn.plot.ly, d3js.org and cdnjs. A file is skipped when it
already exists *and* ``static/version.built`` holds the installed visdom version; a MathJax file is
skipped when it exists. Without internet the MathJax download raises an uncaught
``requests.ConnectionError`` and the server dies before it listens.

The same files are published as npm packages. :func:`install_assets` fetches them with ``npm pack``
(or takes tarballs fetched elsewhere), checks every tarball against the sha512 pinned in
:data:`PACKAGES` (the registry's ``dist.integrity``), writes each file atomically under the name and
folder the server expects (``static/js``, ``static/css``, ``static/fonts``, the MathJax tree under
``static/js/mathjax/2.7.5``), records their sha256 in ``static/offline_assets.json`` and writes
``static/version.built`` last. :func:`verify_assets` re-hashes every placed file and runs visdom's own
``download_scripts`` with all network access replaced by a recorder: the assets are complete exactly
when it tries to fetch nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union
from unittest import mock

from lib.utils.errors import register_user_error
from lib.utils.misc import atomic_write

__all__ = ["NpmPackage", "PACKAGES", "VISDOM_VERSION", "MANIFEST_NAME", "AssetError", "NpmMissingError",
           "visdom_package_dir", "fetch_tarballs", "install_assets", "verify_assets", "offline_fetch_attempts",
           "assets_ok"]

VISDOM_VERSION = "0.2.4"
"""The visdom release whose download list :data:`PACKAGES` reproduces."""

MANIFEST_NAME = "static/offline_assets.json"
"""Manifest (relative to the visdom package folder): package versions/integrities, sha256 and size of
every placed file."""

MATHJAX_DIR = "static/js/mathjax/2.7.5"


@dataclass(frozen=True)
class NpmPackage:
    """One npm package and the files visdom needs from it.

    Attributes:
        name, version: the npm package spec ``name@version``.
        integrity: ``sha512-<base64>`` of the tarball as the npm registry publishes it (``dist.integrity``).
        files: ``(path inside the tarball's package/ folder, destination relative to the visdom
            package folder)``; one source may be placed under several names.
        tree: ``(destination folder, top-level entries)``: copy these files/folders of the package
            recursively below the destination (the MathJax runtime tree).
    """

    name: str
    version: str
    integrity: str
    files: Tuple[Tuple[str, str], ...] = ()
    tree: Optional[Tuple[str, Tuple[str, ...]]] = None

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball_name(self) -> str:
        """File name ``npm pack`` gives the tarball (no scoped packages here)."""
        return f"{self.name}-{self.version}.tgz"


_GLYPH = "glyphicons-halflings-regular"
# The download table of visdom 0.2.4's build.py, as npm packages. Destination names are those the
# server checks (``static/<js|css|fonts>/<name>``); the classnames entry is unpkg's resolution of the
# bare package URL (its ``main``, index.js) and, like every name without .js/.css, lands in fonts/.
PACKAGES: Tuple[NpmPackage, ...] = (
    NpmPackage("jquery", "3.1.1",
               "sha512-zuiWRmx65Kd1oFGdWLvAjbsumdOBFvs3r1vuqCyKFF79R7exBHNbiNEJ8LR+xkzgfxqBznMD/4Cv6PHXS6mvEw==",
               (("dist/jquery.min.js", "static/js/jquery.min.js"),)),
    NpmPackage("bootstrap", "3.3.7",
               "sha512-qcFaisBrcBhTFkz1IUnGDYnX6ZWfFzH8zOixUDtHW9Ip+r+7MfMFav2rzy7cIHc7rgIg7xjhWBoo1mS/U26j4g==",
               (("dist/js/bootstrap.min.js", "static/js/bootstrap.min.js"),
                ("dist/css/bootstrap.min.css", "static/css/bootstrap.min.css"),
                (f"dist/fonts/{_GLYPH}.eot", f"static/fonts/{_GLYPH}.eot"),
                (f"dist/fonts/{_GLYPH}.woff2", f"static/fonts/{_GLYPH}.woff2"),
                (f"dist/fonts/{_GLYPH}.woff", f"static/fonts/{_GLYPH}.woff"),
                (f"dist/fonts/{_GLYPH}.ttf", f"static/fonts/{_GLYPH}.ttf"),
                # the name build.py checks (URL with fragment) and the name bootstrap.min.css requests
                (f"dist/fonts/{_GLYPH}.svg", f"static/fonts/{_GLYPH}.svg#glyphicons_halflingsregular"),
                (f"dist/fonts/{_GLYPH}.svg", f"static/fonts/{_GLYPH}.svg"))),
    NpmPackage("react", "16.2.0",
               "sha512-ZmIomM7EE1DvPEnSFAHZn9Vs9zJl5A9H7el0EGTE6ZbW9FKe/14IYAlPbC8iH25YarEQxZL+E8VW7Mi7kfQrDQ==",
               (("umd/react.production.min.js", "static/js/react-react.min.js"),)),
    NpmPackage("react-dom", "16.2.0",
               "sha512-zpGAdwHVn9K0091d+hr+R0qrjoJ84cIBFL2uU60KvWBPfZ7LPSrfqviTxGHWN0sjPZb2hxWzMexwrvJdKePvjg==",
               (("umd/react-dom.production.min.js", "static/js/react-dom.min.js"),)),
    NpmPackage("react-modal", "3.1.10",
               "sha512-7b77AGWCkdg0YOf/qcYIGCpuwbxRwOA8P3UrUovk4grUNv+idOmHovJAx/Dcd3fuwHtgixxVjpcjVG60985MSA==",
               (("dist/react-modal.min.js", "static/js/react-modal.min.js"),)),
    NpmPackage("plotly.js-dist-min", "2.11.1",
               "sha512-F9WWNht0D3yBLZGHbLoJNfvplXvy+GUPSsA/lCbMuYd/UwzSu6Vmyprxlps9Einw1LDS1hYBrJeioK0lE3ieXA==",
               (("plotly.min.js", "static/js/plotly-plotly.min.js"),)),
    NpmPackage("sjcl", "1.0.7",
               "sha512-xQbiwKfiAj6vyk44ANJ5RRymALRdRZOuRoKNYkWUU404p/RFXmMaay1Z5vRn30GJjkD+psox4Jd38jZojSuNYA==",
               (("sjcl.js", "static/js/sjcl.js"),)),
    NpmPackage("layout-bin-packer", "1.4.0",
               "sha512-dQOZnajbOBGIcS9YlzKrkRtMCGa2oEpyf1zGRn93suphSvPclJe54Sbgtb053GJ21DUk84IBzaeQvjn+Gb10fA==",
               (("dist/layout-bin-packer.js.map", "static/js/layout-bin-packer.js.map"),
                ("dist/layout-bin-packer.js", "static/js/layout_bin_packer.js"))),
    NpmPackage("d3", "3.5.17",
               "sha512-yFk/2idb8OHPKkbAL8QaOaqENNoMhIaSHZerk3oQsECwkObkCpJyjYwCe+OHiq6UEdhe1m8ZGARRRO3ljFjlKg==",
               (("d3.min.js", "static/js/d3.v3.min.js"),)),
    NpmPackage("d3-selection-multi", "1.0.1",
               "sha512-mEnRkJ6A+Otd1LuRPV3az+s/RLDmIEhuz/MnT21O2nPcWNH7wZotdIlRjMA4Wpr+n7AESQ5fD8v1J3nL2Mnw9g==",
               (("build/d3-selection-multi.js", "static/js/d3-selection-multi.v1.js"),)),
    NpmPackage("save-svg-as-png", "1.4.17",
               "sha512-7QDaqJsVhdFPwviCxkgHiGm9omeaMBe1VKbHySWU6oFB2LtnGCcYS13eVoslUgq6VZC6Tjq/HddBd1K6p2PGpA==",
               (("lib/saveSvgAsPng.js", "static/js/saveSvgAsPng.js"),)),
    NpmPackage("react-resizable", "1.4.6",
               "sha512-4zLORO51u0/mlDsrVCAA4p266d+3mb2ZMNdiWOotAh/PdnfrRzZhgePmKE08PSQatXVIfMjmyD+Sapay8tmxdQ==",
               (("css/styles.css", "static/css/react-resizable-styles.css"),)),
    NpmPackage("react-grid-layout", "0.16.3",
               "sha512-ytP92EqUjqcFhGzvdeKrK610dQ04GdFwRCWtD6PoeL5wR3liETcFISO7k8RBqnosV86JtXf/DwIfrL0COLs0gg==",
               (("css/styles.css", "static/css/react-grid-layout-styles.css"),)),
    NpmPackage("classnames", "2.2.5",
               "sha512-DTt3GhOUDKhh4ONwIJW4lmhyotQmV2LjNlGK/J2hkwUcqcbKkCLAdJPtxQnxnlc7SR3f1CEXCyMmc7WLUsWbNA==",
               (("index.js", "static/fonts/classnames"),)),
    # MathJax: build.py fetches 8 files, but MathJax.js loads its input/output jax, extensions, fonts and
    # localisation at run time, so the whole runtime tree is placed (not the 'unpacked' sources, docs, tests).
    NpmPackage("mathjax", "2.7.5",
               "sha512-OzsJNitEHAJB3y4IIlPCAvS0yoXwYjlo2Y4kmm9KQzyIBZt2d8yKRalby3uTRNN4fZQiGL2iMXjpdP1u2Rq2DQ==",
               tree=(MATHJAX_DIR, ("MathJax.js", "LICENSE", "config", "extensions", "jax", "localization", "fonts"))),
)


@register_user_error
class AssetError(RuntimeError):
    """Fetching, checking or placing an asset failed (the message names package, file and cause)."""


class NpmMissingError(AssetError):
    """``npm`` is not installed (or not on PATH)."""


def visdom_package_dir() -> Path:
    """The installed ``visdom`` package folder (the server's ``install_dir``).

    Raises:
        AssetError: visdom is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("visdom")  # no import: visdom imports torch and more
    if spec is None or not spec.submodule_search_locations:
        raise AssetError("visdom is not installed in this Python (pip install visdom==0.2.4)")
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def _read_version(vdir: Path) -> str:
    """The version visdom reads from its ``VERSION`` file (``no_version_file`` when absent, as visdom)."""
    path = vdir / "VERSION"
    return path.read_text().strip() if path.is_file() else "no_version_file"


def _sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def fetch_tarballs(dest_dir: Union[str, Path], packages: Sequence[NpmPackage] = PACKAGES, npm: str = "npm",
                   timeout_s: float = 900.0) -> Dict[str, Path]:
    """Download the packages' tarballs into ``dest_dir`` with ``npm pack`` (no install, no scripts).

    npm uses its cache, so a second call works without network once the cache holds them.

    Returns:
        ``{package name: tarball path}``.

    Raises:
        NpmMissingError: ``npm`` is not on PATH.
        AssetError: npm failed (its output is in the message) or a tarball is missing afterwards.
    """
    exe = shutil.which(npm)
    if exe is None:
        raise NpmMissingError(f"'{npm}' was not found on PATH; install Node.js/npm (Debian: apt-get install npm) "
                              f"or fetch the tarballs elsewhere with `npm pack` and pass them with --tarballs")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "pack", "--ignore-scripts", "--loglevel=error"] + [p.spec for p in packages]
    try:
        proc = subprocess.run(cmd, cwd=str(dest), capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise AssetError(f"`npm pack` took more than {timeout_s:.0f} s (no registry access?)") from exc
    if proc.returncode != 0:
        raise AssetError(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}:\n"
                         f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return find_tarballs(dest, packages)


def find_tarballs(folder: Union[str, Path], packages: Sequence[NpmPackage] = PACKAGES) -> Dict[str, Path]:
    """``{package name: <folder>/<name>-<version>.tgz}``.

    Raises:
        AssetError: a tarball is missing (the message lists which).
    """
    folder = Path(folder)
    found, missing = {}, []
    for pkg in packages:
        path = folder / pkg.tarball_name
        if path.is_file():
            found[pkg.name] = path
        else:
            missing.append(pkg.tarball_name)
    if missing:
        raise AssetError(f"tarballs missing in '{folder}': {', '.join(missing)} "
                         f"(fetch them with: npm pack {' '.join(p.spec for p in packages)})")
    return found


def _safe_rel(name: str) -> Optional[PurePosixPath]:
    """``package/<rel>`` -> ``<rel>``; None for anything outside package/ or with '..' / absolute parts."""
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or len(p.parts) < 2 or p.parts[0] != "package":
        return None
    return PurePosixPath(*p.parts[1:])


def _iter_package_files(pkg: NpmPackage, tar: tarfile.TarFile) -> Iterator[Tuple[str, bytes]]:
    """(destination relative to the visdom folder, bytes) of every file ``pkg`` places."""
    members = {}
    for m in tar.getmembers():
        rel = _safe_rel(m.name)
        if rel is not None and m.isfile():
            members[str(rel)] = m
    for src, dst in pkg.files:
        member = members.get(src)
        if member is None:
            raise AssetError(f"{pkg.spec}: the tarball has no file '{src}' (needed as '{dst}')")
        yield dst, tar.extractfile(member).read()
    if pkg.tree is not None:
        dest_root, entries = pkg.tree
        n = 0
        for rel, member in members.items():  # archive order: a gzip stream only seeks forward cheaply
            top = rel.split("/", 1)[0]
            if top in entries:
                n += 1
                yield f"{dest_root}/{rel}", tar.extractfile(member).read()
        if n == 0:
            raise AssetError(f"{pkg.spec}: none of {entries} found in the tarball")


def _write_atomic(path: Path, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def install_assets(visdom_dir: Union[str, Path, None] = None, tarball_dir: Union[str, Path, None] = None,
                   npm: str = "npm", packages: Sequence[NpmPackage] = PACKAGES,
                   log: Callable[[str], None] = print) -> Dict:
    """Fetch, check and place the assets, write the manifest and ``static/version.built``, then verify.

    Args:
        visdom_dir: the visdom package folder (default: the installed one).
        tarball_dir: folder with ``<name>-<version>.tgz`` from ``npm pack`` (default: fetch with npm
            into a temporary folder).
        npm: npm executable.

    Returns:
        The manifest written (``visdom_version``, ``packages``, ``files: {rel path: {sha256, size, package}}``).

    Raises:
        NpmMissingError: no tarball_dir and no npm.
        AssetError: a tarball fails its pinned sha512, lacks a file, or the result fails verification.
    """
    vdir = Path(visdom_dir) if visdom_dir is not None else visdom_package_dir()
    version = _read_version(vdir)
    if version != VISDOM_VERSION:
        log(f"visdom_assets: warning: visdom {version} is installed, the asset list is that of {VISDOM_VERSION}")
    built = vdir / "static" / "version.built"
    if built.exists():
        built.unlink()  # a partial install must not claim to be complete

    with tempfile.TemporaryDirectory(prefix="visdom_assets_") as tmp:
        if tarball_dir is None:
            log(f"visdom_assets: fetching {len(packages)} npm packages with `npm pack` ...")
            tarballs = fetch_tarballs(tmp, packages, npm=npm)
        else:
            tarballs = find_tarballs(tarball_dir, packages)
        manifest = {"visdom_version": version, "packages": {}, "files": {}}
        for pkg in packages:
            data = tarballs[pkg.name].read_bytes()
            got = _sri_sha512(data)
            if got != pkg.integrity:
                raise AssetError(f"{tarballs[pkg.name]}: sha512 {got} differs from the pinned {pkg.integrity} "
                                 f"of {pkg.spec}")
            manifest["packages"][pkg.name] = {"version": pkg.version, "integrity": pkg.integrity}
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for dst, blob in _iter_package_files(pkg, tar):
                    _write_atomic(vdir / dst, blob)
                    manifest["files"][dst] = {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob),
                                              "package": pkg.spec}
    _write_atomic(vdir / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
    _write_atomic(built, version.encode("utf-8"))
    problems = verify_assets(vdir)
    if problems:
        raise AssetError("the placed assets fail verification:\n  " + "\n  ".join(problems))
    total = sum(f["size"] for f in manifest["files"].values())
    log(f"visdom_assets: placed {len(manifest['files'])} files ({total / 1e6:.1f} MB) under {vdir / 'static'}; "
        f"verified (sha256 of every file, version.built = {version}, the server fetches nothing at start)")
    return manifest


def offline_fetch_attempts(visdom_dir: Union[str, Path, None] = None) -> List[str]:
    """URLs visdom's own start-up check (``visdom.server.build.download_scripts``) would fetch for
    ``visdom_dir``, found by running it with every network call replaced by a recorder that fails.

    Empty means ``python -m visdom.server`` starts without network. Note that, like the server, this
    deletes a ``static/version.built`` that does not match the installed visdom version.
    """
    import requests
    import visdom.server.build as build
    from urllib.error import URLError

    vdir = Path(visdom_dir) if visdom_dir is not None else visdom_package_dir()
    attempts: List[str] = []

    class _Opener:
        def open(self, req, *a, **k):
            attempts.append(getattr(req, "full_url", str(req)))
            raise URLError("offline check: network disabled")

    def _get(url, *a, **k):
        attempts.append(str(url))
        raise requests.ConnectionError("offline check: network disabled")

    sink = io.StringIO()
    with mock.patch.object(build.request, "build_opener", lambda *a, **k: _Opener()), \
            mock.patch.object(build.request, "install_opener", lambda *a, **k: None), \
            mock.patch.object(requests, "get", _get), \
            mock.patch.object(build.logging, "error", lambda *a, **k: None), \
            contextlib.redirect_stdout(sink):
        try:
            build.download_scripts(install_dir=str(vdir))
        except requests.ConnectionError:
            pass  # the uncaught MathJax download: already recorded
    return attempts


def verify_assets(visdom_dir: Union[str, Path, None] = None, check_start: bool = True) -> List[str]:
    """Problems with the installed assets; an empty list means complete and intact.

    Checks: the manifest exists and names this visdom version; every file of :data:`PACKAGES` is in
    it; every manifest file exists with its size and sha256; ``static/version.built`` equals the
    installed version; and (``check_start``) :func:`offline_fetch_attempts` is empty.
    """
    vdir = Path(visdom_dir) if visdom_dir is not None else visdom_package_dir()
    version = _read_version(vdir)
    problems: List[str] = []
    mpath = vdir / MANIFEST_NAME
    if not mpath.is_file():
        return [f"no manifest '{mpath}' (assets never installed: run python tracking/visdom_assets.py)"]
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
    except (ValueError, KeyError) as exc:
        return [f"manifest '{mpath}' is unreadable: {exc}"]
    if manifest.get("visdom_version") != version:
        problems.append(f"manifest is for visdom {manifest.get('visdom_version')}, installed is {version}")
    for pkg in PACKAGES:
        for _, dst in pkg.files:
            if dst not in files:
                problems.append(f"'{dst}' ({pkg.spec}) is not in the manifest")
        if pkg.tree is not None and not any(k.startswith(pkg.tree[0] + "/") for k in files):
            problems.append(f"no file of the {pkg.spec} tree is in the manifest")
    for rel, meta in sorted(files.items()):
        path = vdir / rel
        if not path.is_file():
            problems.append(f"missing: {rel}")
            continue
        if path.stat().st_size != meta["size"]:
            problems.append(f"size differs: {rel} ({path.stat().st_size} bytes, manifest {meta['size']})")
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != meta["sha256"]:
            problems.append(f"sha256 differs: {rel}")
    built = vdir / "static" / "version.built"
    built_version = built.read_text().strip() if built.is_file() else None
    if built_version != version:
        problems.append(f"static/version.built is {built_version!r}, expected {version!r} "
                        f"(otherwise the server re-downloads everything)")
    if check_start and not problems:
        urls = offline_fetch_attempts(vdir)
        if urls:
            problems.append(f"the server would still fetch {len(urls)} file(s) at start, e.g. {urls[:3]}")
    return problems


def assets_ok(visdom_dir: Union[str, Path, None] = None, check_start: bool = True) -> bool:
    """True when :func:`verify_assets` finds nothing wrong (the server starts offline)."""
    try:
        return not verify_assets(visdom_dir, check_start=check_start)
    except Exception:
        return False
