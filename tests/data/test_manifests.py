"""CSV manifests: places are named by the file's 1-based line as an editor shows it (header = line 1);
an empty file says it is empty, text that is not UTF-8 names the file and the line."""

from __future__ import annotations

import numpy as np
import pytest

from liv.data.check import check_path
from liv.data.epic_kitchens import convert_epic_kitchens
from liv.data.episodes import DataError
from liv.data.frame_folders import write_frame_folders
from liv.data.open import open_dataset


@pytest.fixture
def frames(tmp_path):
    rng = np.random.default_rng(0)
    write_frame_folders(tmp_path / "frames", [(t, rng.integers(0, 256, (3, 8, 8, 3), np.uint8)) for t in "ab"])
    return tmp_path / "frames"


def write(folder, content: bytes):
    folder.mkdir()
    (folder / "manifest.csv").write_bytes(content)
    return folder


def latin1_rows(frames, text: bytes) -> bytes:
    return (b"directory,num_frames,text\n" + f"{frames / 'episode_000000'},3,open\n".encode()
            + f"{frames / 'episode_000001'},3,".encode() + text + b"\n")


def test_not_utf8_names_the_file_and_line(frames, tmp_path):
    folder = write(tmp_path / "a", latin1_rows(frames, b"caf\xe9"))
    for fmt in ("auto", "frames"):
        with pytest.raises(DataError) as e:
            open_dataset(folder, format=fmt)
        assert e.value.where == f"{folder / 'manifest.csv'} line 3", fmt
        assert e.value.problem.startswith("not UTF-8 text (byte 0xe9 at column ") and "save the file as UTF-8" in \
            e.value.problem
    # a quoted text over two lines: the bad byte is on line 4, the record's second line
    with pytest.raises(DataError, match=r"manifest.csv line 4: "):
        open_dataset(write(tmp_path / "b", latin1_rows(frames, b'"a cafe\nby the wind\xf6w"')))
    with pytest.raises(DataError, match=r"manifest.csv line 1 \(the header\)"):
        open_dataset(write(tmp_path / "c", b"directory,num_frames,t\xe9xt\n"))
    # a byte-order mark and blank lines before the header: lines counted from the file's start
    with pytest.raises(DataError, match=r"manifest.csv line 5: "):
        open_dataset(write(tmp_path / "d", b"\xef\xbb\xbf\n\ndirectory,num_frames,text\n\nx,1,caf\xe9\n"))
    # a video manifest, read by the same helpers
    with pytest.raises(DataError, match=r"manifest.csv line 2: "):
        open_dataset(write(tmp_path / "e", b"path,text\nclip.mp4,caf\xe9\n"))
    # Windows and old Mac line ends count one line each; a quoted header over two lines is the header
    with pytest.raises(DataError, match=r"manifest.csv line 3: "):
        open_dataset(write(tmp_path / "f", b"path,text\r\na.mp4,x\rb.mp4,caf\xe9\r\n"))
    with pytest.raises(DataError, match=r"manifest.csv line 2 \(the header\): "):
        open_dataset(write(tmp_path / "g", b'path,"te\nxt\xe9"\na.mp4,x\n'))


def test_an_empty_manifest_says_it_is_empty(tmp_path):
    for name, content, what in (("zero", b"", "0 bytes"), ("blank", b"\n\r\n  \n", "only blank lines")):
        folder = write(tmp_path / name, content)
        for fmt in ("auto", "frames", "video"):
            with pytest.raises(DataError) as e:
                open_dataset(folder, format=fmt)
            assert str(e.value) == f"{folder / 'manifest.csv'}: the file is empty ({what})", fmt


def test_data_check_reports_them(frames, tmp_path):
    report = check_path(write(tmp_path / "a", latin1_rows(frames, b"caf\xe9")))
    assert [p.where for p in report.errors] == [f"{tmp_path / 'a' / 'manifest.csv'} line 3"]
    report = check_path(write(tmp_path / "b", b""))
    assert [p.message for p in report.errors] == ["the file is empty (0 bytes)"]


def test_epic_kitchens_annotations_too(tmp_path):
    (tmp_path / "frames").mkdir()
    header = b"narration_id,participant_id,video_id,narration,start_frame,stop_frame,verb,noun\n"
    for content, message in ((b"", r"annotations.csv: the file is empty \(0 bytes\)"),
                             (header + b"P01_1,P01,P01_01,open caf\xe9,1,10,open,door\n",
                              r"annotations.csv line 2: not UTF-8")):
        (tmp_path / "annotations.csv").write_bytes(content)
        with pytest.raises(DataError, match=message):
            convert_epic_kitchens(tmp_path / "annotations.csv", tmp_path / "frames", tmp_path / "out.csv")


def test_a_header_after_blank_lines_is_found(frames, tmp_path):
    folder = write(tmp_path / "a", f"\n\ndirectory,num_frames,text\n{frames / 'episode_000000'},3,a\n".encode())
    assert open_dataset(folder).texts == ["a"]


def test_records_are_named_by_the_line_an_editor_shows(frames, tmp_path):
    """A bad 3rd record is line 4 (header = line 1); blank lines and a quoted text over two lines are counted
    as the lines they are, and each episode knows its manifest and line."""
    a, b = frames / "episode_000000", frames / "episode_000001"
    content = (f'directory,num_frames,text\n{a},3,"open\nthe drawer"\n\n{b},3,close\n{a},three,open\n'
               f'{b},3,close\n')
    folder = write(tmp_path / "m", content.encode())
    manifest = folder / "manifest.csv"
    errors: list[DataError] = []
    ds = open_dataset(folder, errors=errors)
    assert [str(e) for e in errors] == [f"{manifest} line 6: num_frames 'three' is not an integer"]
    assert [(e.source, e.manifest, e.manifest_line) for e in ds] == [
        (f"{manifest} line 2", str(manifest), 2), (f"{manifest} line 5", str(manifest), 5),
        (f"{manifest} line 7", str(manifest), 7)]
    report = check_path(folder)
    assert [p.where for p in report.errors] == [f"{manifest} line 6"]
    # The third data record of a plain manifest is line 4.
    plain = write(tmp_path / "p", f"directory,num_frames,text\n{a},3,x\n{b},3,y\n{a},-1,z\n".encode())
    with pytest.raises(DataError, match=r"manifest\.csv line 4: num_frames is -1, must be >= 0$"):
        open_dataset(plain)
