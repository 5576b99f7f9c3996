import hashlib
import zipfile
from pathlib import Path

import pytest

from seqrec.data import datasets
from seqrec.data.errors import DataError

SHARED = Path("/work/shared/data")
INTER = b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t4\t5\n2\t10\t3\t6\n"
ITEM_HEADER = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
ITEM = ITEM_HEADER + "10\tSolo\t1999\tDrama\n"
USER_HEADER = b"user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
USER = USER_HEADER + b"1\t20\tF\twriter\t12345\n2\t30\tM\tother\t54321\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty cache, and any attempt to reach the network fails the test."""
    monkeypatch.setenv("SEQREC_HOME", str(tmp_path / "home"))

    def no_network(*args, **kwargs):
        raise AssertionError("the network must not be used here")

    monkeypatch.setattr(datasets, "_download", no_network)
    monkeypatch.setattr(datasets, "_pip_download", no_network)
    return tmp_path / "home"


@pytest.fixture
def fake_ml100k(monkeypatch):
    """Checksums of a tiny ml-100k in place of the real ones."""
    files = {"ml-100k.inter": INTER, "ml-100k.item": ITEM.encode(), "ml-100k.user": USER}
    for name, data in files.items():
        monkeypatch.setitem(datasets.ML100K_SHA256, name, sha(data))
    return files


def make_wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("recbole/__init__.py", "")
        for name, data in files.items():
            archive.writestr(datasets.RECBOLE_ML100K + name, data)
    return path


def test_cache_home_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SEQREC_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets.cache_home() == tmp_path / "xdg" / "seqrec"
    monkeypatch.setenv("SEQREC_HOME", str(tmp_path / "own"))
    assert datasets.cache_home() == tmp_path / "own"


def test_wheel_route_then_cache_hit(home, fake_ml100k, monkeypatch, tmp_path):
    calls = []

    def fake_pip(requirement, dest, timeout=300):
        calls.append(requirement)
        return make_wheel(dest / "recbole-1.2.1-py3-none-any.whl", fake_ml100k)

    monkeypatch.setattr(datasets, "_pip_download", fake_pip)
    folder = datasets.fetch("ml-100k")
    assert folder == home / "datasets" / "ml-100k"
    assert sorted(p.name for p in folder.iterdir()) == sorted(fake_ml100k)
    assert (folder / "ml-100k.inter").read_bytes() == INTER
    assert datasets.fetch("ml-100k") == folder
    frame = datasets.load_interactions("ml-100k")
    assert calls == ["recbole==1.2.1"]  # fetched once, then served from the cache
    assert frame.rows() == [("1", "10", 5.0, 4.0), ("2", "10", 6.0, 3.0)]
    assert datasets.load_item_features("ml-100k")["class"].to_list() == [["Drama"]]
    assert datasets.load_user_features("ml-100k")["age"].to_list() == ["20", "30"]


def test_checksum_mismatch_leaves_no_cache(home, fake_ml100k, monkeypatch):
    damaged = {**fake_ml100k, "ml-100k.inter": INTER + b"3\t10\t1\t7\n"}
    monkeypatch.setattr(
        datasets, "_pip_download", lambda r, d, timeout=300: make_wheel(d / "r.whl", damaged)
    )
    with pytest.raises(DataError, match=r"ml-100k\.inter \(from the download\).*sha256 is"):
        datasets.fetch("ml-100k")
    assert not (home / "datasets" / "ml-100k").exists()
    assert list((home / "datasets").iterdir()) == []  # the scratch folder is gone too


def grouplens_zip(path: Path) -> Path:
    item = (
        "10|Solo (1999)|01-Jan-1999||http://x|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
        "11|Misérables, Les (1995)|01-Jan-1995||http://y|0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|0|0\n"
        "12|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-100k/u.data", INTER.split(b"\n", 1)[1])
        archive.writestr("ml-100k/u.user", b"1|20|F|writer|12345\n2|30|M|other|54321\n")
        archive.writestr("ml-100k/u.item", item.encode("latin-1"))
    return path


def test_grouplens_fallback_converts(home, fake_ml100k, monkeypatch):
    def pip_fails(requirement, dest, timeout=300):
        raise OSError("no index")

    monkeypatch.setattr(datasets, "_pip_download", pip_fails)
    monkeypatch.setattr(datasets, "_download", lambda url, dest, timeout: grouplens_zip(dest))
    monkeypatch.setattr(datasets, "ML100K_ITEMS", 3)
    folder = datasets.fetch("ml-100k")
    assert (folder / "ml-100k.inter").read_bytes() == INTER
    assert (folder / "ml-100k.user").read_bytes() == USER
    lines = (folder / "ml-100k.item").read_text(encoding="utf-8").splitlines()
    assert lines[1:] == [
        "10\tSolo\t1999\tDrama",
        "11\tMisérables, Les\t1995\tDrama Musical",
        "12\tunknown\t\tunknown",
    ]


def test_nothing_reachable_names_every_route(home, monkeypatch):
    def fails(*args, **kwargs):
        raise OSError("unreachable")

    monkeypatch.setattr(datasets, "_pip_download", fails)
    monkeypatch.setattr(datasets, "_download", fails)
    with pytest.raises(
        datasets.FetchError, match=r"recbole==1\.2\.1(.|\n)*grouplens(.|\n)*source="
    ):
        datasets.fetch("ml-100k")


def test_ml100k_from_local_wheel(home, fake_ml100k, tmp_path):
    wheel = make_wheel(tmp_path / "recbole-1.2.1-py3-none-any.whl", fake_ml100k)
    folder = datasets.fetch("ml-100k", source=wheel)
    assert (folder / "ml-100k.user").read_bytes() == USER


def test_beauty_local_path_and_checksum(home, monkeypatch, tmp_path):
    data = b"1 1\n1 2\n2 1\n"
    monkeypatch.setitem(datasets.BEAUTY_SHA256, "beauty.txt", sha(data))
    wrong = tmp_path / "wrong.txt"
    wrong.write_bytes(data + b"2 2\n")
    with pytest.raises(DataError, match=r"beauty\.txt \(from .*wrong\.txt\).*expected"):
        datasets.fetch("beauty", source=wrong)
    good = tmp_path / "beauty.txt"
    good.write_bytes(data)
    path = datasets.fetch("beauty", source=good)
    assert path == home / "datasets" / "beauty" / "beauty.txt"
    assert datasets.load_interactions("beauty")["item"].to_list() == ["1", "2", "1"]


def test_beauty_unreachable_suggests_a_source(home, monkeypatch):
    def fails(url, dest, timeout):
        raise OSError("Name or service not known")

    monkeypatch.setattr(datasets, "_download", fails)
    with pytest.raises(datasets.FetchError, match=r"fetch\('beauty', source=PATH\)"):
        datasets.fetch("beauty")


def test_unknown_names(home, tmp_path):
    assert datasets.available() == ["beauty", "ml-100k"]
    with pytest.raises(
        ValueError, match=r"unknown data set 'ml-1m'; known data sets: beauty, ml-100k"
    ):
        datasets.fetch("ml-1m")
    with pytest.raises(
        ValueError, match=r"neither a known data set \(beauty, ml-100k\) nor a file"
    ):
        datasets.load_interactions("ml-1m")
    with pytest.raises(
        ValueError, match=r"beauty has no item features; data sets with them: \['ml-100k'\]"
    ):
        datasets.load_item_features("beauty")


def test_load_interactions_from_a_path(home, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("user_id,item_id,timestamp\nu,a,3\n")
    assert datasets.load_interactions(path).rows() == [("u", "a", 3.0)]


@pytest.mark.skipif(not (SHARED / "ml-100k").is_dir(), reason="shared ml-100k not present")
def test_real_ml100k_from_a_folder_matches_the_checksums(home):
    folder = datasets.fetch("ml-100k", source=SHARED / "ml-100k")
    assert datasets.sha256_of(folder / "ml-100k.item") == datasets.ML100K_SHA256["ml-100k.item"]


@pytest.mark.skipif(not (SHARED / "beauty").is_dir(), reason="shared beauty not present")
def test_real_beauty_from_a_path_matches_the_checksum(home):
    path = datasets.fetch("beauty", source=SHARED / "beauty" / "beauty.txt")
    assert datasets.load_interactions(path).height == 353_962
