"""A directory swapped for a symlink between the sandbox's check and its use leads nowhere.

Two guests sharing a tree (or any host process) can race the walk. The walk holds every
directory it entered open and hands the kernel one plain name below it, so the swap
cannot redirect the operation outside the preopen.
"""

from __future__ import annotations

import os

import pytest

from foglayer.wasi._paths import WasiError, resolve


@pytest.fixture
def tree(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "file").write_text("inside")
    (outside / "file").write_text("SECRET")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    yield root, outside, fd
    os.close(fd)


def test_sandbox_swap_after_walk_stays_inside(tree):
    root, outside, rootfd = tree
    with resolve(rootfd, str(root), "sub/file", follow=True) as t:
        os.rename(root / "sub", root / "moved")
        os.symlink(outside, root / "sub")  # the attacker's swap, after the check
        fd = os.open(t.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=t.dirfd)
        try:
            assert os.read(fd, 100) == b"inside"
        finally:
            os.close(fd)


def test_sandbox_swapped_directory_is_not_entered(tree):
    root, outside, rootfd = tree
    os.rename(root / "sub", root / "moved")
    os.symlink("../outside", root / "sub")
    with pytest.raises(WasiError) as e:
        resolve(rootfd, str(root), "sub/file", follow=True)
    assert e.value.errno == 63  # EPERM: the link leads out of the tree
    with pytest.raises(WasiError):
        resolve(rootfd, str(root), "sub/../../outside/file", follow=True)


def test_sandbox_final_symlink_swap_is_not_followed(tree):
    root, outside, rootfd = tree
    with resolve(rootfd, str(root), "sub/file", follow=True) as t:
        os.unlink(root / "sub" / "file")
        os.symlink(outside / "file", root / "sub" / "file")
        with pytest.raises(OSError):  # ELOOP: O_NOFOLLOW refuses the planted link
            os.open(t.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=t.dirfd)
