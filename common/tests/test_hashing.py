"""The remembered file digest: equal to a fresh SHA-256, re-computed after any change."""

import hashlib
import os

import pytest

from omicsrun import hashing


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """Cache under tmp_path; every real hashing of a file is counted."""
    monkeypatch.setenv("OMICSRUN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("OMICSRUN_DIGEST_CACHE", raising=False)
    calls = []
    real = hashing.sha256_file

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(hashing, "sha256_file", counting)
    return calls


def test_cached_digest_is_remembered_until_the_file_changes(counted, tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "_SETTLED_NS", -(10**15))  # every timestamp counts as settled
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 5000)
    expected = hashlib.sha256(b"x" * 5000).hexdigest()
    assert hashing.sha256_file_cached(path) == expected
    assert hashing.sha256_file_cached(path) == expected
    assert len(counted) == 1  # the second answer came from the cache
    # Same size, other bytes: the ctime moves, so the digest is computed again.
    path.write_bytes(b"y" * 5000)
    assert hashing.sha256_file_cached(path) == hashlib.sha256(b"y" * 5000).hexdigest()
    assert len(counted) == 2
    # Restoring the old mtime does not hide a change (ctime cannot be set back).
    stat = path.stat()
    path.write_bytes(b"z" * 5000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert hashing.sha256_file_cached(path) == hashlib.sha256(b"z" * 5000).hexdigest()
    # Replaced by another file under the same name.
    other = tmp_path / "b.bin"
    other.write_bytes(b"w" * 5000)
    os.replace(other, path)
    assert hashing.sha256_file_cached(path) == hashlib.sha256(b"w" * 5000).hexdigest()
    assert len(counted) == 4


def test_fresh_files_are_not_remembered(counted, tmp_path):
    """A file changed within the last seconds could change again within one timestamp tick
    without its ctime moving, so its digest is not stored (git's racy-clean rule)."""
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    hashing.sha256_file_cached(path)
    hashing.sha256_file_cached(path)
    assert len(counted) == 2
    assert not (tmp_path / "cache").exists()


def test_cache_can_be_turned_off_and_survives_garbage(counted, tmp_path, monkeypatch):
    monkeypatch.setattr(hashing, "_SETTLED_NS", -(10**15))
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    monkeypatch.setenv("OMICSRUN_DIGEST_CACHE", "0")
    hashing.sha256_file_cached(path)
    assert not (tmp_path / "cache").exists()
    monkeypatch.setenv("OMICSRUN_DIGEST_CACHE", "1")
    hashing.sha256_file_cached(path)
    (entry,) = (tmp_path / "cache" / "sha256").iterdir()
    entry.write_text("{not json")
    assert hashing.sha256_file_cached(path) == hashlib.sha256(b"abc").hexdigest()
    entry.write_text('{"state": [0], "sha256": "forged"}')  # a stale or foreign entry
    assert hashing.sha256_file_cached(path) == hashlib.sha256(b"abc").hexdigest()
    assert len(counted) == 4
