"""Tests of rnnzoo.data.cache against a local HTTP server and small generated archives (no network)."""

import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the tests run from a plain checkout, without installing the package
    sys.path.insert(0, str(ROOT))

from rnnzoo.data import cache  # noqa: E402
from rnnzoo.data.cache import (  # noqa: E402
    ChecksumError,
    DataError,
    Dataset,
    DownloadError,
    NotDownloadedError,
    Resource,
)

PAYLOAD = bytes(range(256)) * 40  # 10 KiB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
BABI = "babi/tasks_1-20_v1-2_en_en-10k.tar.gz"  # in the real-data folder (conftest: RNNZOO_TEST_DATA)


# ------------------------------------------------------------------------------------------ HTTP server


class FileServer:
    """Serves in-memory files; `modes[path]` makes one misbehave: "drop", "wrong", "404" or "norange"."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        handler = type("Handler", (Handler,), {"server_state": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Handler(BaseHTTPRequestHandler):
    server_state: FileServer

    def log_message(self, format: str, *args: object) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:
        state = self.server_state
        range_header = self.headers.get("Range")
        state.requests.append((self.path, range_header))
        mode = state.modes.get(self.path, "ok")
        data = state.files.get(self.path)
        if data is None or mode == "404":
            self.send_error(404)
            return
        if mode == "wrong":
            data = bytes(b ^ 0xFF for b in data)
        start = int(range_header.removeprefix("bytes=").split("-")[0]) if range_header else 0
        if mode == "norange":
            start = 0
        if start >= len(data) > 0:
            self.send_error(416)
            return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "drop":
            body = body[: len(body) // 2]  # promised the whole file, then hang up
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RNNZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RNNZOO_MIRROR", raising=False)
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    return tmp_path / "home"


def toy(*resources: Resource) -> Dataset:
    return Dataset("toy", "test data", resources)


def served(server: FileServer, path: str = "/f.bin", data: bytes = PAYLOAD, **kw: object) -> Resource:
    server.files[path] = data
    return Resource("f.bin", urls=(server.url(path),), sha256=hashlib.sha256(data).hexdigest(), **kw)


def make_tar(members: dict[str, bytes], *, mtime: int = 0, reverse: bool = False, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in reversed(members) if reverse else members:
            info = tarfile.TarInfo(prefix + name)
            info.size, info.mtime = len(members[name]), mtime
            tar.addfile(info, io.BytesIO(members[name]))
    return buf.getvalue()


MEMBERS = {"d/a.txt": b"alpha\n", "d/b.txt": b"beta\n", "d/sub/c.txt": b"gamma\n", "e.txt": b"other\n"}
MEMBER_SHAS = {name: hashlib.sha256(data).hexdigest() for name, data in MEMBERS.items()}


def set_digest(names: list[str]) -> str:
    return hashlib.sha256("".join(f"{n}\t{MEMBER_SHAS[n]}\n" for n in sorted(names)).encode()).hexdigest()


# ------------------------------------------------------------------------------------------ downloads


def test_download_then_cache_hit(server: FileServer, home: Path) -> None:
    res = served(server)
    paths = cache.fetch(toy(res), progress=False)
    assert paths == {"f.bin": home / "toy" / "f.bin"}
    assert paths["f.bin"].read_bytes() == PAYLOAD
    assert (home / "toy" / "f.bin.verified").exists()
    assert not (home / "toy" / "f.bin.incomplete").exists()
    cache.fetch(toy(res), progress=False)
    assert cache.require(toy(res), "f.bin") == paths["f.bin"]
    assert cache.state(toy(res), res)[0] == "present"
    assert len(server.requests) == 1


def test_dropped_connection_is_resumed_with_range(server: FileServer, home: Path) -> None:
    res = served(server)
    server.modes["/f.bin"] = "drop"
    with pytest.raises(DownloadError, match="connection closed"):
        cache.fetch(toy(res), progress=False)
    final, partial = home / "toy" / "f.bin", home / "toy" / "f.bin.incomplete"
    assert not final.exists()
    half = partial.stat().st_size
    assert 0 < half < len(PAYLOAD)
    assert cache.state(toy(res), res)[0] == "missing"

    server.modes["/f.bin"] = "ok"
    assert cache.require(toy(res), "f.bin").read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/f.bin", f"bytes={half}-")
    assert not partial.exists()


def test_server_ignoring_range_starts_over(server: FileServer, home: Path) -> None:
    res = served(server)
    (home / "toy").mkdir(parents=True)
    (home / "toy" / "f.bin.incomplete").write_bytes(PAYLOAD[:100])
    server.modes["/f.bin"] = "norange"
    assert cache.require(toy(res), "f.bin").read_bytes() == PAYLOAD
    assert server.requests == [("/f.bin", "bytes=100-")]


def test_bad_resumed_download_is_fetched_again_from_scratch(server: FileServer, home: Path) -> None:
    res = served(server)
    (home / "toy").mkdir(parents=True)
    (home / "toy" / "f.bin.incomplete").write_bytes(b"x" * 100)  # not a prefix of the real file
    assert cache.require(toy(res), "f.bin").read_bytes() == PAYLOAD
    assert server.requests == [("/f.bin", "bytes=100-"), ("/f.bin", None)]


def test_wrong_bytes_leave_no_file(server: FileServer, home: Path) -> None:
    res = served(server)
    server.modes["/f.bin"] = "wrong"
    with pytest.raises(DownloadError, match="expected sha256") as info:
        cache.fetch(toy(res), progress=False)
    assert PAYLOAD_SHA in str(info.value)
    assert not (home / "toy" / "f.bin").exists() and not (home / "toy" / "f.bin.incomplete").exists()


def test_404_falls_back_to_next_url(server: FileServer) -> None:
    server.files["/good"] = PAYLOAD
    res = Resource("f.bin", urls=(server.url("/missing"), server.url("/good")), sha256=PAYLOAD_SHA)
    assert cache.require(toy(res), "f.bin").read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == ["/missing", "/good"]


def test_all_sources_failing_is_one_error_naming_each(server: FileServer, home: Path) -> None:
    server.files["/wrong"] = PAYLOAD
    server.modes["/wrong"] = "wrong"
    urls = (server.url("/missing"), server.url("/wrong"), "http://127.0.0.1:1/refused")
    with pytest.raises(DownloadError) as info:
        cache.fetch(toy(Resource("f.bin", urls=urls, sha256=PAYLOAD_SHA)), progress=False)
    message = str(info.value)
    for url in urls:
        assert url in message
    assert "HTTP 404" in message and "expected sha256" in message
    assert "rnnzoo data add toy PATH" in message and "RNNZOO_MIRROR" in message
    assert not (home / "toy" / "f.bin").exists()


def test_corrupt_cached_file_is_reported_and_replaced(server: FileServer, home: Path) -> None:
    res = served(server)
    path = cache.require(toy(res), "f.bin")
    path.write_bytes(bytes(len(PAYLOAD)))  # the right size, the wrong bytes
    kind, where, detail = cache.state(toy(res), res)
    assert (kind, where) == ("corrupt", path)
    assert str(path) in detail and "rnnzoo data fetch toy" in detail and PAYLOAD_SHA in detail
    with pytest.raises(ChecksumError, match="rnnzoo data fetch toy"):
        cache.require(toy(res), "f.bin", download=False)
    assert cache.fetch(toy(res), progress=False)["f.bin"].read_bytes() == PAYLOAD
    assert len(server.requests) == 2


def test_stamp_spares_reverification_until_checksums_change(
    server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = served(server)
    cache.require(toy(res), "f.bin")

    def no_verify(*args: object, **kw: object) -> None:
        raise AssertionError("verified again despite a current stamp")

    with monkeypatch.context() as patched:
        patched.setattr(cache, "verify_file", no_verify)
        assert cache.state(toy(res), res)[0] == "present"
    other = Resource("f.bin", sha256="0" * 64)
    assert cache.state(toy(other), other)[0] == "corrupt"


def test_data_verify_hashes_again_what_a_load_trusts(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file changed behind the cache's back, keeping its size and time: a load trusts the stamp, but
    `rnnzoo data verify` hashes the file, reports it, and no load trusts it afterwards."""
    from rnnzoo import data
    from rnnzoo.cli import main

    res = served(server)
    ds = toy(res)
    monkeypatch.setitem(data.DATASETS, ds.name, ds)
    path = cache.require(ds, "f.bin")
    before = path.stat()
    path.write_bytes(PAYLOAD[::-1])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert cache.state(ds, res)[0] == "present"  # the fast check: size and modification time

    capsys.readouterr()
    assert main(["data", "verify", "toy"]) == 2
    out, err = capsys.readouterr()
    assert out.startswith(f"corrupt  {path}") and PAYLOAD_SHA in out
    assert "missing or corrupt; run: rnnzoo data fetch toy" in err
    assert cache.state(ds, res)[0] == "corrupt"
    assert cache.fetch(ds, progress=False)["f.bin"].read_bytes() == PAYLOAD
    assert main(["data", "verify", "toy"]) == 0
    assert capsys.readouterr().out == f"present  {path}\n"


def test_not_downloaded_error_names_the_commands() -> None:
    with pytest.raises(NotDownloadedError) as info:
        cache.require(toy(Resource("f.bin", sha256=PAYLOAD_SHA)), "f.bin", download=False)
    assert "rnnzoo data fetch toy" in str(info.value) and "rnnzoo data add toy PATH" in str(info.value)
    with pytest.raises(DataError, match="no file 'nope'"):
        cache.require(toy(Resource("f.bin")), "nope")


# A process that takes the cache's lock on the file named by argv[1], says so, and holds it until a line
# arrives on its stdin (or until it is killed).
LOCK_HOLDER = """
import sys
from pathlib import Path
from rnnzoo.data import cache
with cache._locked(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""


def hold_lock(target: Path) -> subprocess.Popen[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(target)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def in_background(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run `work` in a daemon thread; the list receives its result (or exception) when it ends."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as e:  # handed to the test, which asserts on it
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_killed_lock_holder_blocks_nobody(server: FileServer, home: Path) -> None:
    res = served(server)
    (home / "toy").mkdir(parents=True)
    holder = hold_lock(home / "toy" / "f.bin")
    holder.kill()  # SIGKILL: no cleanup code of the holder runs
    holder.wait(timeout=10)
    start = time.monotonic()
    thread, outcome = in_background(lambda: cache.require(toy(res), "f.bin"))
    thread.join(timeout=10)
    assert not thread.is_alive(), "still waiting for the lock of a dead process"
    assert outcome == [home / "toy" / "f.bin"]
    assert time.monotonic() - start < 3
    assert (home / "toy" / "f.bin").read_bytes() == PAYLOAD


def test_a_live_lock_holder_keeps_others_waiting(
    server: FileServer, home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    res = served(server)
    (home / "toy").mkdir(parents=True)
    holder = hold_lock(home / "toy" / "f.bin")
    try:
        thread, outcome = in_background(lambda: cache.require(toy(res), "f.bin"))
        thread.join(timeout=1.0)
        assert thread.is_alive() and outcome == [] and server.requests == []  # waiting, not downloading
        assert "waiting for another process to finish f.bin" in capfd.readouterr().err
    finally:
        holder.communicate("release\n", timeout=10)
    thread.join(timeout=10)
    assert outcome == [home / "toy" / "f.bin"] and len(server.requests) == 1


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers; it stops by itself after `lifetime` seconds."""

    def __init__(self, lifetime: float = 30.0) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.accepted = 0
        self.stop = threading.Event()
        self.deadline = time.monotonic() + lifetime
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        held = []
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            try:
                held.append(self.sock.accept()[0])
                self.accepted += 1
            except TimeoutError:
                continue
        for conn in held:
            conn.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}{path}"

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    srv = SilentServer()
    yield srv
    srv.close()


def test_a_server_that_never_answers_times_out_per_url(
    server: FileServer, silent: SilentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RNNZOO_TIMEOUT", "0.4")
    server.files["/f.bin"] = PAYLOAD
    res = Resource("f.bin", urls=(silent.url("/f.bin"), server.url("/f.bin")), sha256=PAYLOAD_SHA)
    start = time.monotonic()
    assert cache.require(toy(res), "f.bin").read_bytes() == PAYLOAD  # from the second URL, after 0.4 s
    assert 0.35 < time.monotonic() - start < 5
    assert silent.accepted == 1 and len(server.requests) == 1

    only_silent = Resource("g.bin", urls=(silent.url("/g.bin"),), sha256=PAYLOAD_SHA)
    with pytest.raises(DownloadError) as info:
        cache.require(toy(only_silent), "g.bin")
    assert f"{silent.url('/g.bin')}: no answer within 0.4 s" in str(info.value)
    assert "RNNZOO_TIMEOUT" in str(info.value)


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
def test_a_bad_timeout_setting_is_a_clear_error(server: FileServer, monkeypatch: pytest.MonkeyPatch,
                                                value: str) -> None:
    monkeypatch.setenv("RNNZOO_TIMEOUT", value)
    with pytest.raises(DataError, match=f"RNNZOO_TIMEOUT must be a number of seconds above 0.*got '{value}'"):
        cache.require(toy(served(server)), "f.bin")
    assert server.requests == []


@pytest.mark.parametrize("mirror, why", [
    ("http://[::1", "Invalid IPv6 URL"),
    ("http://example.org:port/data", "Port could not be cast"),
    ("https:///data", "it names no host"),
    ("htp://example.org/data", "unknown scheme 'htp'"),
])
def test_a_malformed_mirror_url_is_a_clear_error(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mirror: str, why: str
) -> None:
    from rnnzoo.cli import main

    monkeypatch.setenv("RNNZOO_MIRROR", f"/some/folder; {mirror}")
    with pytest.raises(DataError) as info:
        cache.require(toy(served(server)), "f.bin")
    assert f"RNNZOO_MIRROR holds a malformed URL {mirror!r} ({why}" in str(info.value)
    assert server.requests == []
    capsys.readouterr()
    assert main(["data", "fetch", "babi"]) == 2  # on the command line: one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith(f"rnnzoo: error: RNNZOO_MIRROR holds a malformed URL {mirror!r}")
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------ mirrors, add


def test_folder_mirror_with_alias_and_dataset_layout_comes_first(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty, mirror = tmp_path / "empty", tmp_path / "mirror"
    empty.mkdir()
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "f-copy.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("RNNZOO_MIRROR", f"{empty} ; {mirror}")
    res = Resource("f.bin", urls=(server.url("/f.bin"),), sha256=PAYLOAD_SHA, aliases=("f-copy.bin",))
    assert cache.require(toy(res), "f.bin").read_bytes() == PAYLOAD
    assert server.requests == []


def test_corrupt_file_in_a_folder_mirror_is_not_trusted(
    server: FileServer, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "f.bin").write_bytes(PAYLOAD[:-1] + b"x")
    monkeypatch.setenv("RNNZOO_MIRROR", str(mirror))
    res = served(server)
    assert cache.require(toy(res), "f.bin").read_bytes() == PAYLOAD  # from the URL, after the mirror's copy
    assert [path for path, _ in server.requests] == ["/f.bin"]
    server.files.clear()  # and with no good source at all: an error, and no file in the cache
    (home / "toy" / "f.bin").unlink()
    with pytest.raises(cache.DownloadError, match=str(mirror / "f.bin")):
        cache.require(toy(res), "f.bin")
    assert not (home / "toy" / "f.bin").exists()


def test_url_mirror(server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/m/toy/f.bin"] = PAYLOAD
    monkeypatch.setenv("RNNZOO_MIRROR", server.url("/m/"))
    res = Resource("f.bin", urls=("http://127.0.0.1:1/never",), sha256=PAYLOAD_SHA)
    assert cache.require(toy(res), "f.bin").read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == ["/m/f.bin", "/m/toy/f.bin"]


def test_add_good_file_found_by_content(tmp_path: Path, home: Path) -> None:
    other = Resource("other.bin", sha256="1" * 64)
    res = Resource("f.bin", sha256=PAYLOAD_SHA)
    source = tmp_path / "downloaded-by-hand"
    source.write_bytes(PAYLOAD)
    assert cache.add(toy(other, res), source) == home / "toy" / "f.bin"
    assert (home / "toy" / "f.bin").read_bytes() == PAYLOAD
    assert cache.state(toy(other, res), res)[0] == "present"


def test_add_wrong_file_is_a_clear_error(tmp_path: Path, home: Path) -> None:
    ds = toy(Resource("f.bin", sha256=PAYLOAD_SHA, aliases=("f-alias.bin",)))
    stranger = tmp_path / "stranger.bin"
    stranger.write_bytes(b"not it")
    with pytest.raises(DataError, match=r"none of the files dataset toy expects \(f.bin \(or f-alias.bin\)"):
        cache.add(ds, stranger)
    impostor = tmp_path / "f-alias.bin"
    impostor.write_bytes(b"not it either")
    with pytest.raises(ChecksumError, match="not the f.bin of toy"):
        cache.add(ds, impostor)
    with pytest.raises(DataError, match="is not a file"):
        cache.add(ds, tmp_path / "absent")
    assert not (home / "toy" / "f.bin").exists()


# ------------------------------------------------------------------------------------------ archives


def test_member_checks_accept_a_repack_but_not_a_changed_member(tmp_path: Path) -> None:
    res = Resource("a.tar.gz", members=MEMBER_SHAS)
    original, repacked = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    original.write_bytes(make_tar(MEMBERS))
    repacked.write_bytes(make_tar(MEMBERS, mtime=1_700_000_000, reverse=True, prefix="./"))
    assert original.read_bytes() != repacked.read_bytes()
    cache.verify_file(res, original)
    cache.verify_file(res, repacked)

    changed = tmp_path / "c.tar.gz"
    changed.write_bytes(make_tar(MEMBERS | {"d/b.txt": b"BETA\n"}))
    with pytest.raises(ChecksumError, match="member d/b.txt"):
        cache.verify_file(res, changed)
    partial = tmp_path / "d.tar.gz"
    partial.write_bytes(make_tar({k: v for k, v in MEMBERS.items() if k != "e.txt"}))
    with pytest.raises(ChecksumError, match="missing, e.g. e.txt"):
        cache.verify_file(res, partial)
    not_tar = tmp_path / "e.tar.gz"
    not_tar.write_bytes(b"plain text")
    with pytest.raises(DataError, match="not a readable tar archive"):
        cache.verify_file(res, not_tar)


def test_member_sets(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_tar(MEMBERS))
    good = Resource("a.tar.gz", member_sets={"d/*": set_digest(["d/a.txt", "d/b.txt", "d/sub/c.txt"])})
    cache.verify_file(good, archive)
    assert cache.member_set_digest(archive, "d/*") == good.member_sets["d/*"]
    archive.write_bytes(make_tar(MEMBERS | {"d/sub/c.txt": b"changed\n"}))
    with pytest.raises(ChecksumError, match="members 'd/\\*'"):
        cache.verify_file(good, archive)
    with pytest.raises(ChecksumError, match="no member matches 'x/\\*'"):
        cache.verify_file(Resource("a.tar.gz", member_sets={"x/*": set_digest([])}), archive)


def test_read_and_iter_members(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_tar(MEMBERS, prefix="./"))
    assert cache.read_member(archive, "d/b.txt") == b"beta\n"
    assert list(cache.iter_members(archive, "d/*.txt")) == [
        ("d/a.txt", b"alpha\n"), ("d/b.txt", b"beta\n"), ("d/sub/c.txt", b"gamma\n")]
    with pytest.raises(DataError, match=r"a\.tar\.gz has no member 'd/zzz.txt'"):
        cache.read_member(archive, "d/zzz.txt")


def evil_tar(path: Path, info: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        info.size = len(data) if info.isfile() else 0
        tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def tar_info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize("case", ["dotdot", "absolute", "symlink", "hardlink", "device", "hardlink to no member",
                                  "link named with '.'"])
def test_safe_extract_refuses_unsafe_members(tmp_path: Path, case: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    info = {
        "dotdot": tar_info("../evil"),
        "absolute": tar_info(str(tmp_path / "abs-evil")),
        "symlink": tar_info("link", tarfile.SYMTYPE, "../../outside"),
        "hardlink": tar_info("hard", tarfile.LNKTYPE, "../outside"),
        "device": tar_info("dev", tarfile.CHRTYPE),
        "hardlink to no member": tar_info("hard", tarfile.LNKTYPE, "hard"),  # tarfile: KeyError, mid-extraction
        "link named with '.'": tar_info("fine.txt/.", tarfile.SYMTYPE, "fine.txt"),  # tarfile: RecursionError
    }[case]
    archive = evil_tar(work / "evil.tar.gz", info, b"evil" if info.isfile() else b"")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(DataError, match=f"member '{info.name}' is unsafe"):
        cache.safe_extract(archive, work / "out")
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, inside the target or out of it


def test_safe_extract_of_links_in_a_loop_is_a_data_error(tmp_path: Path) -> None:
    """A directory replaced by a link to itself: tarfile cannot make the link and falls back on copying its
    target member, which is the link again (RecursionError)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(tar_info("a", tarfile.DIRTYPE))
        tar.addfile(tar_info("a", tarfile.SYMTYPE, "a"))
    (tmp_path / "loop.tar").write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="its links form a loop"):
        cache.safe_extract(tmp_path / "loop.tar", tmp_path / "out")


def test_safe_extract_good_archives(tmp_path: Path) -> None:
    tgz = tmp_path / "a.tgz"
    tgz.write_bytes(make_tar(MEMBERS))
    cache.safe_extract(tgz, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "sub" / "c.txt").read_bytes() == b"gamma\n"
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("z/ok.txt", b"zip")
    cache.safe_extract(tmp_path / "a.zip", tmp_path / "zout")
    assert (tmp_path / "zout" / "z" / "ok.txt").read_bytes() == b"zip"


def test_safe_extract_refuses_unsafe_zip_and_unknown_types(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("ok.txt", b"ok")
        zf.writestr("../evil.txt", b"evil")
    with pytest.raises(DataError, match="member '../evil.txt' is unsafe"):
        cache.safe_extract(tmp_path / "evil.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil.txt").exists()
    (tmp_path / "x.rar").write_bytes(b"")
    with pytest.raises(DataError, match="unknown archive type"):
        cache.safe_extract(tmp_path / "x.rar", tmp_path / "out")


def test_cache_home_honours_rnnzoo_home_then_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("RNNZOO_HOME", str(tmp_path / "zoo"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_home() == tmp_path / "zoo"
    monkeypatch.setenv("RNNZOO_HOME", "")
    assert cache.cache_home() == tmp_path / "xdg" / "rnnzoo"
    assert cache.dataset_dir(toy()) == tmp_path / "xdg" / "rnnzoo" / "toy"
    monkeypatch.delenv("RNNZOO_HOME")
    assert cache.cache_home() == tmp_path / "xdg" / "rnnzoo"
    for unusable in ("", "relative/cache"):  # unset, empty or relative: the default under the home folder
        monkeypatch.setenv("XDG_CACHE_HOME", unusable)
        assert cache.cache_home() == tmp_path / "user" / ".cache" / "rnnzoo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_home() == tmp_path / "user" / ".cache" / "rnnzoo"


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so that progress bars are drawn into it."""

    def isatty(self) -> bool:
        return True


def test_long_steps_show_progress_on_a_terminal_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "PROGRESS_DELAY_S", 0.0)  # draw at once, as a step of some seconds would
    (tmp_path / "f.bin").write_bytes(PAYLOAD)
    (tmp_path / "a.tgz").write_bytes(make_tar(MEMBERS))
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("z/ok.txt", b"zip")

    def steps() -> None:
        cache.verify_file(Resource("f.bin", sha256=PAYLOAD_SHA), tmp_path / "f.bin")
        cache.verify_file(Resource("a.tgz", members=MEMBER_SHAS), tmp_path / "a.tgz")
        cache.safe_extract(tmp_path / "a.tgz", tmp_path / "out")
        cache.safe_extract(tmp_path / "a.zip", tmp_path / "zout")

    for stderr in (Terminal(), io.StringIO()):
        monkeypatch.setattr(sys, "stderr", stderr)
        steps()
        shown = stderr.getvalue()
        if isinstance(stderr, Terminal):
            for bar in ("checking f.bin", "checking a.tgz", "extracting a.tgz", "extracting a.zip"):
                assert bar in shown
            assert "/10.0k" in shown  # the hashed file's 10 KiB, counted in bytes
        else:
            assert shown == ""  # not a terminal (a log file, a pipe): no bars


# ------------------------------------------------------------------------------------------ shipped data


def test_babi_checksums_load() -> None:
    digests = cache.load_checksums("babi.sha256")
    assert len(digests) == 81
    assert all(len(d) == 64 for d in digests.values())
    assert "tasks_1-20_v1-2/en-10k/qa1_single-supporting-fact_train.txt" in digests


def test_real_babi_archive_verifies(real_data: Path) -> None:
    archive = real_data / BABI
    if not archive.exists():
        pytest.skip(reason=f"the bAbI archive is not at {archive}")
    cache.verify_file(Resource(archive.name, members=cache.load_checksums("babi.sha256")), archive)
