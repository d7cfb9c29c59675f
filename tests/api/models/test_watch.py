"""DirectoryWatch: a change made before a look is always seen by that look."""

import os
import shutil
from pathlib import Path

import pytest

import app.models.watch
from app.models.registry import ModelRegistry
from app.models.watch import DirectoryWatch

# Long enough that no periodic re-check happens during a test.
NO_RECHECK = 3600.0


@pytest.fixture
def watched(tmp_path: Path) -> tuple[Path, DirectoryWatch]:
    directory = tmp_path / "models"
    directory.mkdir()
    watch = DirectoryWatch(directory, recheck_seconds=NO_RECHECK)
    yield directory, watch
    watch.close()


def settle(watch: DirectoryWatch) -> None:
    """Look until the watch reports no change (the first look always reports one)."""
    for _ in range(3):
        if not watch.may_have_changed():
            return
    pytest.fail("the watch keeps reporting changes in an idle directory")


def test_an_idle_directory_needs_no_new_look(watched):
    directory, watch = watched
    (directory / "a_model.pkl").write_bytes(b"a")
    assert watch.may_have_changed() is True  # nothing was looked at yet
    assert watch.may_have_changed() is False
    assert watch.may_have_changed() is False


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: (d / "new_model.pkl").write_bytes(b"n"), id="create"),
        pytest.param(lambda d: (d / "a_model.pkl").write_bytes(b"rewritten"), id="rewrite"),
        pytest.param(lambda d: (d / "a_model.pkl").unlink(), id="delete"),
        pytest.param(lambda d: os.utime(d / "a_model.pkl", ns=(1, 1)), id="touch"),
        pytest.param(lambda d: os.replace(d / "a_model.pkl", d / "b_model.pkl"), id="rename"),
    ],
)
def test_every_kind_of_change_is_seen_by_the_next_look(watched, change):
    directory, watch = watched
    (directory / "a_model.pkl").write_bytes(b"a")
    settle(watch)
    change(directory)
    assert watch.may_have_changed() is True
    assert watch.may_have_changed() is False


def test_a_file_replaced_from_outside_the_directory_is_seen(watched, tmp_path):
    directory, watch = watched
    (directory / "a_model.pkl").write_bytes(b"a")
    settle(watch)
    staged = tmp_path / "staged.pkl"
    staged.write_bytes(b"retrained")
    os.replace(staged, directory / "a_model.pkl")
    assert watch.may_have_changed() is True


def test_two_renames_in_the_same_clock_tick_are_both_seen(tmp_path):
    """The case that rules out caching on the directory's mtime."""
    directory = tmp_path / "models"
    directory.mkdir()
    for name in ("a", "b", "c"):
        (directory / f"{name}_model.pkl").write_bytes(name.encode())
    registry = ModelRegistry(directory, max_model_bytes=1024, allow_pickle=True)
    try:
        before = sorted(registry.entries())
        mtime = os.stat(directory).st_mtime_ns
        os.replace(directory / "a_model.pkl", directory / "x_model.pkl")
        os.replace(directory / "b_model.pkl", directory / "y_model.pkl")
        os.utime(directory, ns=(mtime, mtime))  # as if nothing had happened to the directory
        after = sorted(registry.entries())
    finally:
        registry.close()
    assert before == ["a", "b", "c"]
    assert after == ["c", "x", "y"]


def test_a_directory_created_later_is_watched_from_then_on(tmp_path):
    directory = tmp_path / "not-yet"
    watch = DirectoryWatch(directory, recheck_seconds=NO_RECHECK)
    try:
        assert watch.may_have_changed() is True
        assert watch.may_have_changed() is True  # nothing to watch: always look
        directory.mkdir()
        settle(watch)
        (directory / "a_model.pkl").write_bytes(b"a")
        assert watch.may_have_changed() is True
    finally:
        watch.close()


def test_a_deleted_and_recreated_directory_is_watched_again(watched):
    directory, watch = watched
    settle(watch)
    shutil.rmtree(directory)
    assert watch.may_have_changed() is True
    directory.mkdir()
    settle(watch)
    (directory / "a_model.pkl").write_bytes(b"a")
    assert watch.may_have_changed() is True


def test_the_path_swapped_to_another_directory_is_found_by_the_recheck(tmp_path, monkeypatch):
    """A symlink switched to another directory sends no event: the periodic re-check sees it."""
    old, new, link = tmp_path / "old", tmp_path / "new", tmp_path / "models"
    old.mkdir()
    new.mkdir()
    link.symlink_to(old)
    clock = [1000.0]
    monkeypatch.setattr(app.models.watch.time, "monotonic", lambda: clock[0])
    watch = DirectoryWatch(link, recheck_seconds=1.0)
    try:
        settle(watch)
        staged = tmp_path / "staged"
        staged.symlink_to(new)
        os.replace(staged, link)
        assert watch.may_have_changed() is False  # no event: the old directory did not change
        clock[0] += 1.0
        assert watch.may_have_changed() is True
        settle(watch)
        (new / "a_model.pkl").write_bytes(b"a")
        assert watch.may_have_changed() is True  # the new directory is the one watched now
    finally:
        watch.close()


def test_without_inotify_every_look_is_a_full_look(watched, monkeypatch, caplog):
    directory, _ = watched

    def no_inotify(*args, **kwargs):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(app.models.watch, "INotify", no_inotify)
    watch = DirectoryWatch(directory, recheck_seconds=NO_RECHECK)
    assert [watch.may_have_changed() for _ in range(3)] == [True, True, True]
    assert [record.levelname for record in caplog.records] == ["WARNING"]  # said once
    assert "No inotify" in caplog.text


def test_a_closed_watch_keeps_answering_safely_without_reopening(watched, monkeypatch):
    _, watch = watched
    settle(watch)
    watch.close()

    def must_not_reopen(*args, **kwargs):
        raise AssertionError("a closed watch opened a new inotify descriptor")

    monkeypatch.setattr(app.models.watch, "INotify", must_not_reopen)
    assert [watch.may_have_changed() for _ in range(2)] == [True, True]
