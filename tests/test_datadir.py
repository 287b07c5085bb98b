"""The cache's archive of a data directory: what goes in comes back, and nothing else.

``write_archive`` turns the server's ``tar -c`` stream into a cache entry;
``send_archive`` streams an entry into ``tar -x`` running as the server's
account. GNU tar and Python's reader must get every name and size a data
directory can hold byte for byte, and a planted entry (links, odd headers,
configuration, a truncated file) must be refused or cleaned, never passed on.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_guard.postgres import datadir

SIZES = [0, 1, 511, 512, 513, 8192, 16384, 16385, 70000, 1 << 20]

NAMES = [
    "PG_VERSION",
    "base/1/2608_fsm",
    "x" * 100,  # exactly ustar's name field
    "deep/" + "/".join(["segment" * 4] * 6) + "/file",  # > 100 bytes: split into the prefix
    "caf\u00e9/n\u00e4me",
]

needs_tar = pytest.mark.skipif(shutil.which("tar") is None, reason="no tar program here")


def tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def contents(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def expected(files: dict[str, bytes]) -> dict[str, bytes]:
    """What arrives of ``files``: never their configuration, ours instead."""
    kept = {k: v for k, v in files.items() if not datadir.excluded(k)}
    kept.update({k: v.encode() for k, v in datadir.CONFIG_FILES.items()})
    return kept


def stream_of(folder: Path) -> io.BytesIO:
    """What ``tar -c data`` run in ``folder``'s parent writes (Python's writer, GNU format)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(folder, arcname=datadir.TOP)
    buffer.seek(0)
    return buffer


def entry_of(tmp_path: Path, files: dict[str, bytes]) -> Path:
    src = tree(tmp_path / "src", files)
    archive = tmp_path / "entry.tar"
    datadir.write_archive(stream_of(src), archive)
    return archive


def restored(archive: Path, dest: Path) -> dict[str, bytes]:
    """``send_archive`` into GNU tar, as a restore does; what landed in ``dest/data``."""
    dest.mkdir()
    with subprocess.Popen(
        ["tar", "-x", "--no-same-owner", "-f", "-", "-C", str(dest)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as tar:
        assert tar.stdin is not None and tar.stderr is not None
        datadir.send_archive(archive, tar.stdin)
        tar.stdin.close()
        errors = tar.stderr.read()
    assert tar.returncode == 0, errors
    assert errors == b""
    return contents(dest / datadir.TOP)


@pytest.fixture
def source() -> dict[str, bytes]:
    files = {f"sizes/{size}": os.urandom(size) for size in SIZES}
    files.update({name: name.encode() * 3 for name in NAMES})
    files["postgresql.conf"] = b"archive_command = 'touch /tmp/owned'\n"
    files["standby.signal"] = b""
    files["postmaster.pid"] = b"1\n"
    return files


@needs_tar
def test_gnu_tar_extracts_what_was_archived_without_its_configuration(tmp_path, source):
    archive = entry_of(tmp_path, source)
    assert restored(archive, tmp_path / "out") == expected(source)


def test_the_archive_holds_our_headers_only(tmp_path, source):
    archive = entry_of(tmp_path, source)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert {m.type for m in members} == {tarfile.REGTYPE, tarfile.DIRTYPE}
    assert {m.mode for m in members if m.isdir()} == {0o700}
    assert {m.mode for m in members if m.isfile()} == {0o600}
    assert {(m.uid, m.gid, m.mtime, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    names = {m.name for m in members}
    assert "data/postgresql.conf" not in names and "data/standby.signal" not in names


def test_what_is_sent_equals_whatever_the_stream_is(tmp_path, source):
    """A pipe, a file (sendfile), a file opened for appending (Linux refuses sendfile
    into it, as macOS does into anything but a socket) and a buffer: the same bytes."""
    archive = entry_of(tmp_path, source)
    buffer = io.BytesIO()
    datadir.send_archive(archive, buffer)
    with open(tmp_path / "file.tar", "wb") as handle:
        datadir.send_archive(archive, handle)
    with open(tmp_path / "appended.tar", "ab") as handle:
        datadir.send_archive(archive, handle)
    assert (tmp_path / "file.tar").read_bytes() == buffer.getvalue()
    assert (tmp_path / "appended.tar").read_bytes() == buffer.getvalue()
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        got = {
            m.name.removeprefix("data/"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }
    assert got == expected(source)


def test_a_link_in_the_stream_is_refused(tmp_path):
    root = tree(tmp_path / "src", {"base/1/1": b"x"})
    (root / "base" / "1" / "2").symlink_to("/etc/passwd")
    with pytest.raises(datadir.UnsafeEntry, match="neither a folder nor a regular file"):
        datadir.write_archive(stream_of(root), tmp_path / "entry.tar")


def _planted(archive: Path, header: bytes, data: bytes = b"") -> None:
    """Insert a member before the archive's end marker, as another pipeline could."""
    body = archive.read_bytes()[: -2 * 512]
    pad = b"\0" * (-len(data) % 512)
    archive.write_bytes(body + header + data + pad + b"\0" * 1024)


def _tar_header(
    name: str, kind: bytes, *, size: int = 0, link: str = "", mode: int = 0o600
) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.linkname = link
    info.mode = mode
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")


@pytest.mark.parametrize(
    "header",
    [
        _tar_header("data/base/1/evil", tarfile.SYMTYPE, link="/etc/shadow"),
        _tar_header("data/base/1/evil", tarfile.LNKTYPE, link="data/PG_VERSION"),
        _tar_header("data/../../etc/cron.d/x", tarfile.REGTYPE),
        _tar_header("/etc/cron.d/x", tarfile.REGTYPE),
        _tar_header("data/base/1/suid", tarfile.REGTYPE, mode=0o4755),  # not our mode
        _tar_header("data/dev", tarfile.CHRTYPE),
    ],
    ids=["symlink", "hardlink", "dotdot", "absolute", "other-mode", "device"],
)
def test_a_planted_member_makes_the_entry_unusable(tmp_path, header):
    archive = entry_of(tmp_path, {"PG_VERSION": b"15\n"})
    _planted(archive, header)
    with pytest.raises(datadir.UnsafeEntry):
        datadir.send_archive(archive, io.BytesIO())


@needs_tar
def test_planted_configuration_with_our_headers_is_left_out(tmp_path):
    archive = entry_of(tmp_path, {"PG_VERSION": b"15\n"})
    conf = b"restore_command = 'touch /tmp/owned'\n"
    _planted(archive, datadir._header("data/postgresql.auto.conf", size=len(conf)), conf)
    _planted(archive, datadir._header("data/recovery.signal", size=0))
    got = restored(archive, tmp_path / "out")
    assert got == expected({"PG_VERSION": b"15\n"})


@pytest.mark.parametrize("cut", [700, 1024, 1100, 3000])
def test_a_truncated_archive_is_refused(tmp_path, cut):
    """Cut into the end marker, the last member's padding or its data (the cache's
    manifest records the archive's size as well)."""
    archive = entry_of(tmp_path, {"PG_VERSION": b"15\n", "base/1/1": os.urandom(5000)})
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) - cut])
    with pytest.raises(datadir.UnsafeEntry):
        datadir.send_archive(archive, io.BytesIO())


component = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
    min_size=1,
    max_size=60,
).filter(lambda s: s not in (".", ".."))


@needs_tar
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.lists(component, min_size=1, max_size=3).map("/".join),
        st.binary(max_size=20000),
        max_size=8,
    )
)
def test_any_tree_of_folders_and_files_comes_back_unchanged(tmp_path_factory, files):
    root = tmp_path_factory.mktemp("tree")
    usable: dict[str, bytes] = {}
    for name, data in files.items():
        # a name that is also a folder of another name cannot be both: keep the first
        if any(other.startswith(name + "/") or name.startswith(other + "/") for other in usable):
            continue
        parts = name.split("/")
        try:  # the file and each of its folders
            for depth in range(1, len(parts) + 1):
                datadir._header("/".join(["data", *parts[:depth]]))
        except datadir.UnsafeEntry:
            continue  # longer than ustar holds (no data directory has such names)
        usable[name] = data
    archive = entry_of(root, usable)
    assert restored(archive, root / "out") == expected(usable)
