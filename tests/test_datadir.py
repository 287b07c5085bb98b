"""The data directory stream: what pack writes, tar and unpack read back unchanged.

The cache restore streams a data directory we own into ``tar`` running as
the server's account, so the archive pack writes has to be one that GNU tar
and Python's reader take byte for byte, for every name and size a data
directory can hold (and for odd ones it could, were it planted).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path, PurePosixPath

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
    "y" * 140,  # one component too long for ustar: a PAX header
    "caf\u00e9/n\u00e4me",
]


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


def expected(files: dict[str, bytes], *, ours: bool = False) -> dict[str, bytes]:
    """What arrives of ``files``: never their configuration; ours when ``ours`` (tar keeps them,
    unpack drops every configuration file, the ones pack adds as well)."""
    kept = {k: v for k, v in files.items() if not datadir.excluded(PurePosixPath(k))}
    if ours:
        kept.update({k: v.encode() for k, v in datadir.CONFIG_FILES.items()})
    return kept


@pytest.fixture
def source(tmp_path: Path) -> dict[str, bytes]:
    files = {f"sizes/{size}": os.urandom(size) for size in SIZES}
    files.update({name: name.encode() * 3 for name in NAMES})
    files["postgresql.conf"] = b"archive_command = 'touch /tmp/owned'\n"
    files["standby.signal"] = b""
    files["postmaster.pid"] = b"1\n"
    tree(tmp_path / "src", files)
    return files


def test_python_reads_back_what_pack_wrote_to_a_buffer(tmp_path, source):
    buffer = io.BytesIO()
    datadir.pack(tmp_path / "src", buffer)
    buffer.seek(0)
    datadir.unpack(buffer, tmp_path / "out")
    assert contents(tmp_path / "out") == expected(source)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer, mode="r:") as tar:
        members = tar.getmembers()
    assert {m.mode for m in members if m.isdir()} == {0o700}
    assert {m.mode for m in members if m.isfile()} == {0o600}
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, 0)}


def test_gnu_tar_extracts_what_pack_wrote_into_its_pipe(tmp_path, source):
    if shutil.which("tar") is None:
        pytest.skip("no tar program on this machine")
    (tmp_path / "out").mkdir()
    with subprocess.Popen(
        ["tar", "-x", "--no-same-owner", "-f", "-", "-C", str(tmp_path / "out")],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as tar:
        assert tar.stdin is not None
        datadir.pack(tmp_path / "src", tar.stdin)
        tar.stdin.close()
        errors = tar.stderr.read() if tar.stderr else b""
    assert tar.returncode == 0, errors
    assert errors == b""
    assert contents(tmp_path / "out" / datadir.TOP) == expected(source, ours=True)


def test_pack_written_to_a_file_equals_pack_written_to_a_buffer(tmp_path, source):
    buffer = io.BytesIO()
    datadir.pack(tmp_path / "src", buffer)
    with open(tmp_path / "stream.tar", "wb") as handle:
        handle.write(b"")  # something buffered before: flushed before the descriptor is used
        datadir.pack(tmp_path / "src", handle)
    assert (tmp_path / "stream.tar").read_bytes() == buffer.getvalue()


def test_a_stream_sendfile_cannot_write_to_gets_the_same_bytes(tmp_path, source):
    """Linux refuses sendfile into a file opened for appending (EINVAL), as macOS does
    into anything but a socket: the bytes are read and written instead."""
    buffer = io.BytesIO()
    datadir.pack(tmp_path / "src", buffer)
    with open(tmp_path / "appended.tar", "ab") as handle:
        datadir.pack(tmp_path / "src", handle)
    assert (tmp_path / "appended.tar").read_bytes() == buffer.getvalue()


def test_a_link_in_the_source_stops_the_pack(tmp_path):
    root = tree(tmp_path / "src", {"base/1/1": b"x"})
    (root / "base" / "1" / "2").symlink_to("/etc/passwd")
    with pytest.raises(datadir.UnsafeEntry, match="neither a folder nor a regular file"):
        datadir.pack(root, io.BytesIO())


component = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
    min_size=1,
    max_size=120,
).filter(lambda s: s not in (".", "..") and len(s.encode()) <= 200)


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
    usable = {}
    for name, data in files.items():
        # a name that is also a folder of another name cannot be both: keep the first
        if any(other.startswith(name + "/") or name.startswith(other + "/") for other in usable):
            continue
        usable[name] = data
    tree(root / "src", usable)
    buffer = io.BytesIO()
    datadir.pack(root / "src", buffer)
    buffer.seek(0)
    datadir.unpack(buffer, root / "out")
    assert contents(root / "out") == expected(usable)
