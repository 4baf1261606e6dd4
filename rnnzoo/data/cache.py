"""Download, verify and cache the files the datasets need; every dataset module goes through here.

A dataset module describes its files as a `Dataset` of `Resource`s and asks for a verified local path:

    path = require(babi.DATASET, babi.ARCHIVE)  # in rnnzoo.data.babi

The rules, in the order this file implements them:

* Files live in ``cache_home()/<dataset name>/``: ``$RNNZOO_HOME`` if set, else ``$XDG_CACHE_HOME/rnnzoo``,
  else ``~/.cache/rnnzoo``.
* A cached file counts only if it passes verification: sha256/md5 of the whole file, or the digests of
  an archive's members (mirrors repack archives, so the members are what is checked).  A successful
  verification leaves a ``<file>.verified`` stamp, so hashing a big archive costs seconds once, not every run.
* Downloads go to ``<file>.incomplete`` and are renamed into place only after they verify; a broken
  download is resumed with an HTTP Range request next time.  An operating-system lock on ``<file>.lock``
  keeps two processes apart; it ends with its holder, so a killed fetch never blocks the next one.
* ``$RNNZOO_MIRROR`` (folders or base URLs separated by ``;``) is tried before the canonical URLs; a
  malformed URL in it is an error naming it, before anything is tried.
* ``$RNNZOO_TIMEOUT`` (seconds, default 60) bounds the wait for a connection and for each read of a
  download: a server that accepts and then says nothing for that long is given up, and the next URL tried.
* Every problem a user can meet is a `DataError` whose message says what is wrong and what to do.
"""

import fnmatch
import hashlib
import http.client
import json
import math
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath

from filelock import FileLock, Timeout
from tqdm import tqdm

from rnnzoo.errors import DataError

TIMEOUT_S = 60.0  # default of $RNNZOO_TIMEOUT: seconds for connecting and for each read of a download
CHUNK = 1 << 20
PROGRESS_DELAY_S = 1.0  # a step's progress bar appears once it has run this long: quick steps stay quiet
USER_AGENT = "rnnzoo/0.1 (python urllib)"
_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)
_TRANSFER_ERRORS = (OSError, http.client.HTTPException, ValueError)  # DataError is caught beside these


class NotDownloadedError(DataError):
    """A file is not in the cache and downloading was not allowed."""


class ChecksumError(DataError):
    """A file's content differs from its published checksums."""


class DownloadError(DataError):
    """No mirror or URL produced a good copy of a file; the message lists every place tried."""


@dataclass(frozen=True)
class Resource:
    """One file of a dataset and the facts that identify its content.

    A `member_sets` digest is the sha256 of one line "<path> TAB <sha256 of its content> LF" per member
    matching the glob, sorted by path (see `member_set_digest`); a glob matching nothing fails verification.
    """

    filename: str  # name of the file in the cache folder
    urls: tuple[str, ...] = ()  # canonical download URLs, tried in order (after mirrors)
    sha256: str | None = None  # digest of the whole file, when its bytes are fixed
    md5: str | None = None  # optional extra check
    members: Mapping[str, str] = field(default_factory=dict)  # tar member path -> sha256 of its content
    member_sets: Mapping[str, str] = field(default_factory=dict)  # fnmatch glob of members -> set digest
    aliases: tuple[str, ...] = ()  # other file names a mirror or user copy may use

    @property
    def names(self) -> tuple[str, ...]:
        return (self.filename, *self.aliases)

    @property
    def checked(self) -> bool:
        return bool(self.sha256 or self.md5 or self.members or self.member_sets)


@dataclass(frozen=True)
class Dataset:
    name: str  # e.g. "babi"
    description: str
    resources: tuple[Resource, ...]

    def resource(self, filename: str) -> Resource:
        for res in self.resources:
            if filename in res.names:
                return res
        raise DataError(f"dataset {self.name!r} has no file {filename!r}; its files are: {_listing(self)}")


def _listing(ds: Dataset) -> str:
    return ", ".join(r.filename + (f" (or {', '.join(r.aliases)})" if r.aliases else "")
                     for r in ds.resources)


def cache_home() -> Path:
    """``$RNNZOO_HOME``, else ``$XDG_CACHE_HOME/rnnzoo``, else ``~/.cache/rnnzoo`` (as torch.hub chooses). An
    empty variable counts as unset, and so does a relative XDG_CACHE_HOME (the XDG specification has
    relative paths ignored)."""
    if env := os.environ.get("RNNZOO_HOME"):
        return Path(env).expanduser()
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or "").expanduser()
    return (xdg if xdg.is_absolute() else Path.home() / ".cache") / "rnnzoo"


def dataset_dir(ds: Dataset) -> Path:
    return cache_home() / ds.name


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def load_checksums(name: str) -> dict[str, str]:
    """{path: digest} from the shipped ``rnnzoo/data/checksums/<name>`` (``sha256sum`` format)."""
    text = resources.files("rnnzoo.data").joinpath("checksums").joinpath(name).read_text(encoding="utf-8")
    digests = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        digest, _, path = line.strip().partition(" ")
        path = path.strip().removeprefix("*")  # sha256sum marks binary mode with '*'
        if len(digest) != 64 or not path:
            raise DataError(f"checksums/{name} line {lineno} is not 'digest  path': {line!r}")
        digests[path] = digest.lower()
    return digests


# ---------------------------------------------------------------------------------------------- archives


def _norm(name: str) -> str:
    """Member names compare without a leading './' (repacked archives differ in that)."""
    while name.startswith("./"):
        name = name[2:]
    return name


def progress_bar(iterable: Iterable[object] | None = None, *, desc: str, total: float | None = None,
                 in_bytes: bool = False) -> tqdm:
    """A progress bar on stderr for a step that can take seconds (reading an archive, hashing, tokenizing):
    drawn only on a terminal (``disable=None``) and only once the step has lasted PROGRESS_DELAY_S; it is
    cleared when the step ends."""
    units = {"unit": "B", "unit_scale": True, "unit_divisor": 1024} if in_bytes else {}
    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, disable=None, delay=PROGRESS_DELAY_S,
                leave=False, **units)


def _members(archive: Path, wanted: Callable[[str], bool], desc: str | None = None
             ) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of the regular-file members whose path is `wanted`, in archive order, in one pass; the
    progress bar `desc` (default "reading <archive>") counts the archive's bytes read so far."""
    try:
        with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tar:
            size = os.fstat(raw.fileno()).st_size
            with progress_bar(desc=desc or f"reading {archive.name}", total=size, in_bytes=True) as bar:
                for info in tar:
                    bar.update(max(0, raw.tell() - bar.n))
                    name = _norm(info.name)
                    if info.isfile() and wanted(name):
                        member = tar.extractfile(info)
                        assert member is not None  # always a file object for a regular member
                        yield name, member.read()
    except _TAR_ERRORS as e:
        raise DataError(f"{archive} is not a readable tar archive ({e}); delete it and fetch it again") from e


def iter_members(archive: Path, pattern: str, *, desc: str | None = None) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of the regular-file members matching the fnmatch `pattern`; `desc` names the progress bar."""
    pattern = _norm(pattern)
    yield from _members(Path(archive), lambda name: fnmatch.fnmatchcase(name, pattern), desc)


def read_member(archive: Path, member: str) -> bytes:
    wanted = _norm(member)
    for _, data in _members(Path(archive), lambda name: name == wanted):
        return data
    raise DataError(f"{archive} has no member {member!r}. If the file came from a mirror or `rnnzoo data add`, "
                    "that copy may lack it; otherwise it is incomplete or another version of the file: delete it "
                    "and fetch it again")


# ------------------------------------------------------------------------------------------ verification


def verify_file(res: Resource, path: Path, *, fix: str = "delete the file and download it again") -> None:
    """Check `path` against every checksum in `res`: ChecksumError on a mismatch, DataError if unreadable."""
    problems = _problems(res, Path(path))
    if problems:
        details = "\n  ".join(problems)
        raise ChecksumError(f"{path} is corrupt or not the expected file:\n  {details}\nFix: {fix}.")


def _problems(res: Resource, path: Path) -> list[str]:
    """What is wrong with `path` according to `res`'s checksums; empty when it is all right."""
    problems = []
    algos = [a for a in ("sha256", "md5") if getattr(res, a)]
    if algos:
        hashes = {a: hashlib.new(a) for a in algos}
        try:
            with open(path, "rb") as f, progress_bar(desc=f"checking {path.name}", total=os.fstat(f.fileno()).st_size,
                                                     in_bytes=True) as bar:
                while chunk := f.read(CHUNK):
                    for h in hashes.values():
                        h.update(chunk)
                    bar.update(len(chunk))
        except OSError as e:
            raise DataError(f"cannot read {path}: {e}") from e
        for algo, h in hashes.items():
            expected = getattr(res, algo).lower()
            if h.hexdigest() != expected:
                problems.append(f"expected {algo} {expected}, got {h.hexdigest()}")
    if res.members or res.member_sets:
        problems += _member_problems(res, path)
    return problems


def _member_problems(res: Resource, archive: Path) -> list[str]:
    exact = {_norm(m): d.lower() for m, d in res.members.items()}
    globs = {_norm(g): d.lower() for g, d in res.member_sets.items()}

    def wanted(name: str) -> bool:
        return name in exact or any(fnmatch.fnmatchcase(name, g) for g in globs)

    found = {name: hashlib.sha256(data).hexdigest()
             for name, data in _members(archive, wanted, desc=f"checking {archive.name}")}
    problems = []
    missing = sorted(set(exact) - set(found))
    if missing:
        problems.append(f"{len(missing)} member(s) missing, e.g. {', '.join(missing[:3])}")
    changed = [m for m in exact if m in found and found[m] != exact[m]]
    problems += [f"member {m}: expected sha256 {exact[m]}, got {found[m]}" for m in changed[:3]]
    if len(changed) > 3:
        problems.append(f"... and {len(changed) - 3} more changed members")
    for glob, expected in globs.items():
        matched = {name: digest for name, digest in found.items() if fnmatch.fnmatchcase(name, glob)}
        actual = _set_digest(matched)
        if not matched:
            problems.append(f"no member matches {glob!r}")
        elif actual != expected:
            problems.append(f"members {glob!r} ({len(matched)}): expected digest {expected}, got {actual}")
    return problems


def _set_digest(digests: Mapping[str, str]) -> str:
    listing = "".join(f"{name}\t{digests[name]}\n" for name in sorted(digests))
    return hashlib.sha256(listing.encode()).hexdigest()


def member_set_digest(archive: Path, pattern: str) -> str:
    """The `Resource.member_sets` digest of the members of `archive` that match `pattern`."""
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in iter_members(archive, pattern)}
    return _set_digest(digests)


def _stamp_facts(res: Resource, path: Path) -> dict[str, object]:
    expected = {"sha256": res.sha256, "md5": res.md5, "members": dict(res.members),
                "member_sets": dict(res.member_sets)}
    key = hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "expected": key}


def _write_stamp(res: Resource, path: Path) -> None:
    try:
        _sibling(path, ".verified").write_text(json.dumps(_stamp_facts(res, path)))
    except OSError:
        pass  # a read-only cache still works; it is just verified again next time


def _verify_cached(ds: Dataset, res: Resource, path: Path, *, rehash: bool = False) -> None:
    """verify_file for a file in the cache, trusting the stamp of an earlier verification if still current
    (unless `rehash`). A file found corrupt loses its stamp, so that no later load trusts it."""
    stamp = _sibling(path, ".verified")
    try:
        if not rehash and json.loads(stamp.read_text()) == _stamp_facts(res, path):
            return
    except (OSError, ValueError):
        pass
    try:
        verify_file(res, path, fix=f"run `rnnzoo data fetch {ds.name}`, which replaces it (or delete it first)")
    except DataError:
        stamp.unlink(missing_ok=True)
        raise
    _write_stamp(res, path)


# ------------------------------------------------------------------------------------------ public cache


def _not_downloaded(ds: Dataset, res: Resource) -> str:
    return (f"{res.filename} of dataset {ds.name} is not downloaded yet. Run `rnnzoo data fetch {ds.name}`, "
            f"or if you already have the file, `rnnzoo data add {ds.name} PATH`.")


def state(ds: Dataset, res: Resource, *, rehash: bool = False) -> tuple[str, Path, str]:
    """("missing" | "present" | "corrupt", cache path, a message for the user).

    A file verified before counts as present while its size and modification time are those it had then
    (its ``.verified`` stamp); `rehash` hashes it again regardless, for when its content is in doubt."""
    path = dataset_dir(ds) / res.filename
    if not path.exists():
        return "missing", path, _not_downloaded(ds, res)
    try:
        _verify_cached(ds, res, path, rehash=rehash)
    except DataError as e:
        return "corrupt", path, str(e)
    return "present", path, "verified"


def fetch(ds: Dataset, *, progress: bool = True) -> dict[str, Path]:
    """Make every file of `ds` present and verified, downloading what is missing or corrupt."""
    paths = {}
    for res in ds.resources:
        kind, path, _ = state(ds, res)
        paths[res.filename] = path if kind == "present" else _download(ds, res, progress)
    return paths


def require(ds: Dataset, filename: str, *, download: bool = True) -> Path:
    res = ds.resource(filename)
    kind, path, detail = state(ds, res)
    if kind == "present":
        return path
    if not download:
        raise (ChecksumError if kind == "corrupt" else NotDownloadedError)(detail)
    return _download(ds, res, progress=True)


def add(ds: Dataset, source: Path) -> Path:
    """Copy a file the user already has into the cache, after checking it is one of the dataset's files."""
    source = Path(source).expanduser()
    if not source.is_file():
        raise DataError(f"{source} is not a file")
    named = [r for r in ds.resources if source.name in r.names]
    if named:
        res = named[0]
        fix = (f"this is not the {res.filename} of {ds.name}; "
               f"get another copy, or run `rnnzoo data fetch {ds.name}`")
        verify_file(res, source, fix=fix)
    else:
        res = next((r for r in ds.resources if r.checked and _passes(r, source)), None)
        if res is None:
            raise DataError(f"{source} is none of the files dataset {ds.name} expects ({_listing(ds)}): "
                            "its name and content match none of them")
    target = dataset_dir(ds) / res.filename
    partial = _sibling(target, ".incomplete")
    make_cache_dir(target.parent)
    with _locked(target):
        try:
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise DataError(f"could not copy {source} to {target}: {e}") from e
        _write_stamp(res, target)
    return target


def _passes(res: Resource, path: Path) -> bool:
    try:
        verify_file(res, path)
    except DataError:
        return False
    return True


# ------------------------------------------------------------------------------------------ downloading


@contextmanager
def _locked(target: Path) -> Iterator[bool]:
    """Hold the operating system's lock on ``<target>.lock``; yields True if another process held it first
    (and may have done the work meanwhile).

    The kernel drops the lock when its holder ends, however it ends (killed with -9 included), so a dead
    process never keeps the next one waiting; the empty lock file itself stays in the folder."""
    lock = FileLock(_sibling(target, ".lock"))
    waited = False
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(f"waiting for another process to finish {target.name} (it holds {lock.lock_file})",
                  file=sys.stderr)
            waited = True
            lock.acquire()
    except OSError as e:
        raise DataError(f"cannot lock {lock.lock_file}: {e.strerror or e}; set RNNZOO_HOME to a folder you can "
                        "write") from None
    try:
        yield waited
    finally:
        lock.release()


URL_SCHEMES = ("http", "https", "ftp", "file")


def _is_url(place: str) -> bool:
    return urllib.parse.urlsplit(place).scheme in URL_SCHEMES


def timeout_s() -> float:
    """Seconds a download waits for a connection and for each read: ``$RNNZOO_TIMEOUT``, default TIMEOUT_S."""
    raw = os.environ.get("RNNZOO_TIMEOUT", "").strip()
    if not raw:
        return TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DataError(f"RNNZOO_TIMEOUT must be a number of seconds above 0 (e.g. 60), got {raw!r}")
    return value


def mirrors() -> list[str]:
    """The folders and base URLs of ``$RNNZOO_MIRROR``, in order; a malformed URL is a DataError naming it."""
    places = []
    for mirror in (m.strip() for m in os.environ.get("RNNZOO_MIRROR", "").split(";")):
        if not mirror:
            continue
        try:
            parts = urllib.parse.urlsplit(mirror)
            _ = parts.port  # raises ValueError for a port that is no number in 0-65535
        except ValueError as e:
            why = str(e)
        else:
            if "://" in mirror and parts.scheme not in URL_SCHEMES:
                why = f"unknown scheme {parts.scheme!r}, known: {', '.join(URL_SCHEMES)}"
            elif parts.scheme in ("http", "https", "ftp") and not parts.hostname:
                why = "it names no host"
            else:
                places.append(mirror)
                continue
        raise DataError(f"RNNZOO_MIRROR holds a malformed URL {mirror!r} ({why}); set it to folders or base "
                        "URLs such as https://example.org/datasets, separated by ';'")
    return places


def _sources(ds: Dataset, res: Resource) -> list[str]:
    """Every place to try, in order: each mirror under each name and both layouts, then the canonical URLs."""
    places = []
    for mirror in mirrors():
        for rel in (p for name in res.names for p in (name, f"{ds.name}/{name}")):
            if _is_url(mirror):
                places.append(mirror.rstrip("/") + "/" + urllib.parse.quote(rel))
            else:
                places.append(str(Path(mirror).expanduser() / rel))
    return places + list(res.urls)


def _describe(e: Exception, timeout: float) -> str:
    silent = f"no answer within {timeout:g} s (the limit RNNZOO_TIMEOUT sets, in seconds)"
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return silent if isinstance(e.reason, TimeoutError) else f"cannot connect ({e.reason})"
    if isinstance(e, FileNotFoundError):
        return "not found"
    if isinstance(e, TimeoutError):
        return silent
    return (str(e) or type(e).__name__).replace("\n", "\n    ")


def make_cache_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the cache folder {folder}: {exc.strerror or exc}; set RNNZOO_HOME to a "
                        "folder you can write") from None


def _download(ds: Dataset, res: Resource, progress: bool) -> Path:
    """Get `res` from the first source that yields a verified copy and move it into the cache."""
    target = dataset_dir(ds) / res.filename
    partial = _sibling(target, ".incomplete")
    places, timeout = _sources(ds, res), timeout_s()  # a malformed setting fails before anything is locked
    make_cache_dir(target.parent)
    failures = []
    with _locked(target) as waited:
        if waited and state(ds, res)[0] == "present":
            return target  # the other process fetched it
        for place in places:
            try:
                if _is_url(place):
                    _from_url(place, partial, res, progress, timeout)
                else:
                    shutil.copyfile(place, partial)
                    _verify_or_discard(res, partial)
            except (*_TRANSFER_ERRORS, DataError) as e:
                failures.append(f"{place}: {_describe(e, timeout)}")
                continue
            os.replace(partial, target)
            _write_stamp(res, target)
            return target
    tried = "\n  ".join(failures) or "nothing: the dataset lists no URL and RNNZOO_MIRROR is not set"
    raise DownloadError(f"could not get {res.filename} for dataset {ds.name}. Tried:\n  {tried}\n"
                        f"If you have the file, run `rnnzoo data add {ds.name} PATH`; or set RNNZOO_MIRROR "
                        "to folders or base URLs (separated by ';') that hold it.")


def _verify_or_discard(res: Resource, partial: Path) -> None:
    try:
        problems = _problems(res, partial)
    except DataError:
        problems = ["not a readable archive"]
    if problems:
        partial.unlink(missing_ok=True)
        raise ChecksumError("wrong content: " + "; ".join(problems))


def _from_url(url: str, partial: Path, res: Resource, progress: bool, timeout: float) -> None:
    resumed = _http_get(url, partial, progress, timeout)
    try:
        _verify_or_discard(res, partial)
    except DataError:
        if not resumed:
            raise
        _http_get(url, partial, progress, timeout)  # the resumed download was bad: once more from scratch
        _verify_or_discard(res, partial)


def _http_get(url: str, partial: Path, progress: bool, timeout: float) -> bool:
    """Download `url` into `partial`, continuing what is already there if the server allows; True if it did.

    A broken transfer raises and keeps `partial` so that the next attempt resumes it."""
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": USER_AGENT} | ({"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not offset:
            raise
        e.close()
        partial.unlink()  # "range not satisfiable": what we have is no prefix of the file
        return _http_get(url, partial, progress, timeout)
    with response:
        resumed = offset > 0 and response.status == 206
        if resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            partial.unlink()
            raise DataError(f"the server answered with another range than bytes={offset}-; will start over")
        offset = offset if resumed else 0  # a 200 answer carries the whole file: start over
        length = response.headers.get("Content-Length", "")
        total = offset + int(length) if length.isdigit() else None
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                   desc=partial.name.removesuffix(".incomplete"), disable=None if progress else True)
        with open(partial, "ab" if resumed else "wb") as out, bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    size = partial.stat().st_size
    if total is not None and size < total:
        raise DataError(f"connection closed after {size} of {total} bytes (kept {partial.name} to resume)")
    return resumed


# ------------------------------------------------------------------------------------------ extraction


def _unsafe_path(name: str) -> str | None:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    return "'..' in its path" if ".." in parts else None


def _extract_tar(archive: Path, target: Path) -> None:
    root = os.path.realpath(target)

    def inside(rel: str) -> bool:
        full = os.path.normpath(os.path.join(root, rel))
        return full == root or full.startswith(root + os.sep)

    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            files: set[str] = set()  # the regular files (and hard links) met so far, as tarfile compares them
            for m in members:  # check everything before writing anything
                why = _unsafe_path(m.name)
                if not why and m.isdev():
                    why = "device file or fifo"
                elif not why and m.issym() and not inside(os.path.join(os.path.dirname(m.name), m.linkname)):
                    why = f"symlink to {m.linkname!r} outside the target"
                elif not why and m.islnk() and not inside(m.linkname):
                    why = f"hard link to {m.linkname!r} outside the target"
                elif not why and m.islnk() and os.path.normpath(m.linkname) not in files:
                    why = f"hard link to {m.linkname!r}, which is no file before it in the archive"
                elif not why and (m.issym() or m.islnk()) and not _plain(m.name):
                    why = "a link whose name has '.' or empty parts"  # tarfile may resolve it to itself
                if m.isfile() or m.islnk():
                    files.add(os.path.normpath(m.name))
                if why:
                    raise DataError(f"refusing to extract {archive}: member {m.name!r} is unsafe ({why}); "
                                    "nothing was extracted")
            target.mkdir(parents=True, exist_ok=True)
            tar.extractall(target, members=progress_bar(members, desc=f"extracting {archive.name}"), filter="data")
    except RecursionError:  # tarfile follows a link that cannot be made to its target member, and so on
        raise DataError(f"cannot extract {archive}: its links form a loop") from None
    except _TAR_ERRORS as e:
        raise DataError(f"cannot extract {archive} ({e}); delete it and fetch it again") from e


def _plain(name: str) -> bool:
    """A relative path without '.' or empty parts (a leading './' aside)."""
    return all(part not in ("", ".") for part in _norm(name).split("/"))


def _extract_zip(archive: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if why := _unsafe_path(name):
                    raise DataError(f"refusing to extract {archive}: member {name!r} is unsafe ({why}); "
                                    "nothing was extracted")
            target.mkdir(parents=True, exist_ok=True)
            zf.extractall(target, members=progress_bar(zf.infolist(), desc=f"extracting {archive.name}"))
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"cannot extract {archive} ({e}); delete it and fetch it again") from e


_EXTRACTORS: dict[str, Callable[[Path, Path], None]] = {
    ".tar.gz": _extract_tar, ".tgz": _extract_tar, ".tar.bz2": _extract_tar, ".tar.xz": _extract_tar,
    ".tar": _extract_tar, ".zip": _extract_zip,
}


def safe_extract(archive: Path, target: Path) -> None:
    """Extract an archive (the suffixes of `_EXTRACTORS`: tar, compressed or not, and zip) into `target`; an
    archive with any member that would land outside `target` (absolute path, '..', outside link, device
    file) is refused as a whole. The datasets read their members in place (`read_member`); this is for
    unpacking an archive to disk."""
    archive, target = Path(archive), Path(target)
    for suffix, extract in _EXTRACTORS.items():
        if archive.name.lower().endswith(suffix):
            return extract(archive, target)
    raise DataError(f"cannot extract {archive}: unknown archive type (known: {', '.join(_EXTRACTORS)})")
