"""Named data sets: where to get them, their checksums and the local cache.

Files live in ``$SEQREC_HOME/datasets/<name>/`` (default ``$XDG_CACHE_HOME/seqrec`` or
``~/.cache/seqrec``). A data set is fetched once: files are written to a scratch folder, checked
against their sha256 and only then moved into the cache, so a file present in the cache is a
checked file. ``fetch(name, source=PATH)`` installs from a local copy instead of the network.

ml-100k is kept as RecBole's three atomic files. They come from the ``recbole==1.2.1`` wheel
(``pip download``, which reaches PyPI wherever pip works). The GroupLens zip is the fallback: its
``u.data`` and ``u.user`` are RecBole's ``.inter`` / ``.user`` rows behind a header, so those two
are held to RecBole's checksums; RecBole's ``.item`` carries its own edits (titles split from
years, a misspelt "unkonwn" title), so the ``.item`` converted from GroupLens is checked for shape
only and may differ from RecBole's in a few titles.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from seqrec.checksums import sha256_of
from seqrec.data.errors import DataError
from seqrec.data.readers import read_atomic_features, read_interactions
from seqrec.errors import FetchError

ML100K_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
ML100K_ITEMS = 1682
BEAUTY_SHA256 = {"beauty.txt": "f480b7a7403852342ffd8f9809bb30697dd669be31813d0e204b698fec86ef49"}
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_ML100K = "recbole/dataset_example/ml-100k/"
GROUPLENS_ML100K = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
BEAUTY_URL = "https://raw.githubusercontent.com/FeiSun/BERT4Rec/master/data/beauty.txt"
GENRES = (  # the 19 genre flags of GroupLens' u.item, in column order
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip


@dataclass(frozen=True)
class DatasetInfo:
    """What a registered data set is made of and how to get it."""

    name: str
    description: str
    sha256: dict[str, str]  # file name -> checksum of every file the cache holds
    interactions: str  # the file holding the interactions
    # fills a scratch folder from a source (or the web) and returns the checksums that apply
    install: Callable[[Path, Path | None], dict[str, str]]
    item_features: tuple[str, str] | None = None  # (file, id field)
    user_features: tuple[str, str] | None = None


# ---------------------------------------------------------------- network and pip


def _download(url: str, dest: Path, timeout: float) -> None:
    """Fetch ``url`` into ``dest``; any network failure raises OSError."""
    with urllib.request.urlopen(url, timeout=timeout) as response, dest.open("wb") as out:
        shutil.copyfileobj(response, out)


def _pip_download(requirement: str, dest: Path, timeout: float = 300) -> Path:
    """Run ``pip download`` with this interpreter and return the wheel it saved."""
    command = [sys.executable, "-m", "pip", "download", requirement, "--no-deps"]
    command += ["--only-binary=:all:", "--quiet", "-d", str(dest)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise OSError(f"pip download {requirement} failed: {done.stderr.strip()[-500:]}")
    return wheels[0]


# ---------------------------------------------------------------- ml-100k


def _ml100k_from_wheel(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for name in ML100K_SHA256:
            member = RECBOLE_ML100K + name
            if member not in archive.namelist():
                raise DataError.at(wheel, None, f"no {member} in the wheel")
            (dest / name).write_bytes(archive.read(member))


def _grouplens_item_line(line: str) -> str:
    """``1|Toy Story (1995)|01-Jan-1995||url|0|0|0|1|...`` -> ``1 Toy Story 1995 Animation ...``."""
    fields = line.split("|")
    if len(fields) != 5 + len(GENRES):
        raise DataError.at("u.item", None, f"{line!r}: expected {5 + len(GENRES)} fields")
    title, year = fields[1].strip(), ""
    if title.endswith(")") and title[-6:-5] == "(" and title[-5:-1].isdigit():
        title, year = title[:-6].rstrip(), title[-5:-1]
    elif fields[2][-4:].isdigit():
        year = fields[2][-4:]
    genres = " ".join(g for g, flag in zip(GENRES, fields[5:], strict=True) if flag == "1")
    return f"{fields[0]}\t{title}\t{year}\t{genres}\n"


def _ml100k_from_grouplens(archive_path: Path, dest: Path) -> None:
    """Convert GroupLens' ``u.data``, ``u.user`` and ``u.item`` (Latin-1) to atomic files."""
    with zipfile.ZipFile(archive_path) as archive:
        data, user, item = (archive.read(f"ml-100k/u.{part}") for part in ("data", "user", "item"))
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    (dest / "ml-100k.inter").write_bytes(header.encode() + data)
    header = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    (dest / "ml-100k.user").write_bytes(header.encode() + user.replace(b"|", b"\t"))
    lines = item.decode("latin-1").splitlines()
    header = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    body = "".join(_grouplens_item_line(line) for line in lines if line)
    (dest / "ml-100k.item").write_text(header + body, encoding="utf-8")


def _converted_ml100k(dest: Path) -> dict[str, str]:
    """Checksums for files converted from GroupLens: its ``.item`` is checked for shape only."""
    items = read_atomic_features(dest / "ml-100k.item", "item_id")
    if items.height != ML100K_ITEMS:
        raise DataError.at("ml-100k.item", None, f"{items.height} items, expected {ML100K_ITEMS}")
    return {k: v for k, v in ML100K_SHA256.items() if k != "ml-100k.item"}


def _install_ml100k(dest: Path, source: Path | None) -> dict[str, str]:
    """From ``source`` (folder of atomic files, RecBole wheel or GroupLens zip) or the web."""
    if source is not None:
        if source.is_dir():
            for name in ML100K_SHA256:
                shutil.copyfile(source / name, dest / name)
        elif source.suffix == ".whl":
            _ml100k_from_wheel(source, dest)
        else:
            _ml100k_from_grouplens(source, dest)
            return _converted_ml100k(dest)
        return ML100K_SHA256
    errors = []
    try:
        _ml100k_from_wheel(_pip_download(RECBOLE_REQUIREMENT, dest), dest)
        return ML100K_SHA256
    except (OSError, subprocess.SubprocessError, zipfile.BadZipFile) as error:
        errors.append(f"{RECBOLE_REQUIREMENT} wheel: {error}")
    try:
        _download(GROUPLENS_ML100K, dest / "ml-100k.zip", timeout=15)
        _ml100k_from_grouplens(dest / "ml-100k.zip", dest)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        errors.append(f"{GROUPLENS_ML100K}: {error}")
        raise FetchError(_unreachable("ml-100k", errors, "ml-100k.zip or recbole wheel")) from error
    return _converted_ml100k(dest)


# ---------------------------------------------------------------- beauty


def _install_beauty(dest: Path, source: Path | None) -> dict[str, str]:
    """From ``source`` (the file or a folder holding beauty.txt) or the authors' repository."""
    target = dest / "beauty.txt"
    if source is not None:
        shutil.copyfile(source / "beauty.txt" if source.is_dir() else source, target)
        return BEAUTY_SHA256
    try:
        _download(BEAUTY_URL, target, timeout=60)
    except OSError as error:
        raise FetchError(
            _unreachable("beauty", [f"{BEAUTY_URL}: {error}"], "beauty.txt")
        ) from error
    return BEAUTY_SHA256


def _unreachable(name: str, errors: list[str], what: str) -> str:
    tried = "\n  ".join(errors)
    return (
        f"could not fetch {name}; tried:\n  {tried}\n"
        f"Get {what} another way and run fetch({name!r}, source=PATH)."
    )


REGISTRY = {
    "ml-100k": DatasetInfo(
        name="ml-100k",
        description="MovieLens 100K as RecBole atomic files (ratings, item genres, user features)",
        sha256=ML100K_SHA256,
        interactions="ml-100k.inter",
        install=_install_ml100k,
        item_features=("ml-100k.item", "item_id"),
        user_features=("ml-100k.user", "user_id"),
    ),
    "beauty": DatasetInfo(
        name="beauty",
        description="Amazon Beauty as in the BERT4Rec paper (user item per line, time-ordered)",
        sha256=BEAUTY_SHA256,
        interactions="beauty.txt",
        install=_install_beauty,
    ),
}


# ---------------------------------------------------------------- cache and public API


def cache_home() -> Path:
    """``$SEQREC_HOME``, else ``$XDG_CACHE_HOME/seqrec``, else ``~/.cache/seqrec``."""
    if os.environ.get("SEQREC_HOME"):
        return Path(os.environ["SEQREC_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "seqrec"


def available() -> list[str]:
    """Names ``fetch`` and ``load_interactions`` accept."""
    return sorted(REGISTRY)


def info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; an unknown name is an error listing the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(available())}")
    return REGISTRY[name]


def _verify(folder: Path, expected: dict[str, str], origin: str) -> None:
    for name, checksum in expected.items():
        actual = sha256_of(folder / name)
        if actual != checksum:
            raise DataError.at(
                f"{name} (from {origin})", None, f"sha256 is {actual}, expected {checksum}"
            )


def fetch(name: str, source: str | Path | None = None) -> Path:
    """The data set's cache folder (its file when it has one), fetched and checked on first use.

    With the files already cached, ``source`` is not read.
    """
    spec = info(name)
    folder = cache_home() / "datasets" / name
    result = folder / spec.interactions if len(spec.sha256) == 1 else folder
    if all((folder / f).is_file() for f in spec.sha256):
        return result
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=folder.parent) as scratch:
        scratch_path = Path(scratch)
        origin = "the download" if source is None else str(source)
        expected = spec.install(scratch_path, None if source is None else Path(source).expanduser())
        _verify(scratch_path, expected, origin)
        folder.mkdir(exist_ok=True)
        for file_name in spec.sha256:
            os.replace(scratch_path / file_name, folder / file_name)
    return result


def load_interactions(name_or_path: str | Path) -> pl.DataFrame:
    """The canonical interaction frame of a registered data set or of a file in any format."""
    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        location = fetch(name_or_path)
        spec = REGISTRY[name_or_path]
        return read_interactions(location if location.is_file() else location / spec.interactions)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise ValueError(
            f"{name_or_path!r} is neither a known data set ({', '.join(available())}) nor a file"
        )
    return read_interactions(path)


def _features(name: str, which: str) -> pl.DataFrame:
    spec = info(name)
    entry = spec.item_features if which == "item" else spec.user_features
    if entry is None:
        having = [n for n, s in REGISTRY.items() if getattr(s, f"{which}_features")]
        raise ValueError(f"{name} has no {which} features; data sets with them: {having}")
    folder = fetch(name)
    return read_atomic_features(folder / entry[0], entry[1])


def load_item_features(name: str) -> pl.DataFrame:
    """Item features (``id`` + typed columns) of a registered data set that has them."""
    return _features(name, "item")


def load_user_features(name: str) -> pl.DataFrame:
    """User features (``id`` + typed columns) of a registered data set that has them."""
    return _features(name, "user")
