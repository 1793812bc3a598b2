"""Frame i of a video is the i-th frame it shows, for any timing: B-frames, edit lists, open GOPs,
variable frame rates; timing that cannot be indexed, or a frame the decoder does not deliver, is an error.

Frame k of every video written here is a flat grey image of level 8 + 6k, so ``round((mean - 8) / 6)``
tells which frame came back, through lossy codecs too.
"""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from liv.data import DataError
from liv.data import video_files
from liv.data.check import check_path
from liv.data.video_files import VideoFrames


def grey(k: int) -> np.ndarray:
    return np.full((64, 64, 3), 8 + 6 * k, np.uint8)


def identify(frames: np.ndarray) -> list[int]:
    return [int(round((f.mean() - 8) / 6)) for f in frames]


def write(path, n, codec="libx264", pts=None, time_base=None, options=None, pix_fmt="yuv420p"):
    """Encode grey frames 0..n-1, with explicit presentation timestamps ``pts`` in ``time_base`` if given."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30, options=options or {})
        stream.width = stream.height = 64
        stream.pix_fmt = pix_fmt
        if time_base:
            stream.codec_context.time_base = stream.time_base = time_base
        for k in range(n):
            frame = av.VideoFrame.from_ndarray(grey(k), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[k], time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def assert_every_frame_by_index(source: VideoFrames, shown: list[int]) -> None:
    """Sequential and random reads both give the shown frames (grey levels ``shown``) by index."""
    assert len(source) == len(shown)
    assert identify(source.read(range(len(shown)))) == shown
    rng = np.random.default_rng(0)
    for _ in range(30):
        order = rng.integers(0, len(shown), size=5).tolist()
        assert identify(source.read(order)) == [shown[i] for i in order]
    ends = [len(shown) - 1, 0, len(shown) // 2, 0]
    assert identify(source.read(ends)) == [shown[i] for i in ends]
    assert source.validate(full=True) == []


def test_avi_with_b_frames_shows_frame_0_after_the_stream_start(tmp_path):
    path = write(tmp_path / "bframes.avi", 37, codec="mpeg4", options={"bf": "2", "g": "12", "b": "4M"})
    with av.open(path) as c:  # the kind: the first shown frame is later than the stream's start
        assert c.streams.video[0].start_time < min(p.pts for p in c.demux() if p.size)
    assert_every_frame_by_index(VideoFrames(path), list(range(37)))


def test_h264_with_b_frames_in_avi_whose_timestamps_follow_decoding_order(tmp_path):
    path = write(tmp_path / "h264.avi", 30, options={"bf": "2", "g": "10"})
    with av.open(path) as c:  # the kind: AVI has no presentation times, so timestamps increase in decoding order
        stamps = [p.pts for p in c.demux() if p.size]
        assert stamps == sorted(stamps) and c.streams.video[0].codec_context.has_b_frames
    source = VideoFrames(path)
    assert_every_frame_by_index(source, list(range(30)))
    assert source.info().decode_order and source.info().keyframes == [0, 10, 20]
    np.testing.assert_allclose(source.times(), np.arange(30) / 30)


@pytest.mark.parametrize("name, time_base, pts", [
    ("dropped.mp4", Fraction(1, 30), [k + k // 3 for k in range(30)]),  # every 4th timestamp skipped
    ("webcam.mkv", Fraction(1, 1000), [int(k * 33.3) + 5 * (k % 3) + 40 * (k > 10) for k in range(30)]),  # ms clock
])
def test_variable_frame_rate_gives_the_ith_shown_frame(tmp_path, name, time_base, pts):
    path = write(tmp_path / name, 30, pts=pts, time_base=time_base, options={"g": "8"})
    source = VideoFrames(path)
    assert_every_frame_by_index(source, list(range(30)))
    np.testing.assert_allclose(source.times(), (np.array(pts) - pts[0]) * float(time_base), atol=1e-3)
    assert source.fps == pytest.approx(29 / float((pts[-1] - pts[0]) * time_base), rel=1e-2)  # the mean, not 30


@pytest.mark.parametrize("codec", ["mjpeg", "libx264"])
def test_avi_with_dropped_frames_is_not_called_truncated(tmp_path, codec):
    # AVI keeps a fixed frame period: a dropped frame is an empty chunk, counted in the header, never shown.
    slots = [t for t in range(24) if t % 4 != 3]
    path = write(tmp_path / "dropped.avi", len(slots), codec=codec, pts=slots, time_base=Fraction(1, 30),
                 options={"bf": "2"} if codec == "libx264" else {}, pix_fmt="yuvj420p" if codec == "mjpeg" else "yuv420p")
    with av.open(path) as c:
        assert c.streams.video[0].frames > len(slots)  # the header counts the dropped slots
    source = VideoFrames(path)
    assert_every_frame_by_index(source, list(range(len(slots))))  # validate(full=True) == []: not "truncated"
    if not source.info().decode_order:  # with decoding-order stamps (H.264 B-frames) a gap's place is approximate
        np.testing.assert_allclose(source.times(), (np.array(slots) - slots[0]) / 30, atol=1e-6)
    assert source.times()[-1] == pytest.approx((slots[-1] - slots[0]) / 30)


def test_audio_longer_than_the_video_is_not_a_truncated_video(tmp_path):
    path = str(tmp_path / "with_audio.mkv")  # a webcam or screen recording: sound runs on after the picture
    with av.open(path, "w") as container:
        video, audio = container.add_stream("libx264", rate=20), container.add_stream("aac", rate=48000)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        for k in range(20):
            for packet in video.encode(av.VideoFrame.from_ndarray(grey(k), format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        for i in range(3 * 48000 // 1024):  # 3 s of silence, against the video's 1 s
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 48000, i * 1024
            for packet in audio.encode(samples):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    with av.open(path) as c:
        assert c.duration / 1e6 > 2.5  # the container lasts as long as its sound
    assert_every_frame_by_index(VideoFrames(path), list(range(20)))  # validate(full=True) == []
    assert VideoFrames(path).fps == pytest.approx(20)


def test_mp4_edit_list_preroll_is_not_shown(tmp_path):
    # Frames with negative timestamps go before the edit list's start: decoded for reference, never shown.
    path = write(tmp_path / "preroll.mp4", 20, pts=[k - 3 for k in range(20)], time_base=Fraction(1, 30),
                 options={"g": "5"})
    source = VideoFrames(path)
    assert_every_frame_by_index(source, list(range(3, 20)))  # validate(): no "truncated" for the 3 hidden frames


def test_mp4_starting_late_and_open_gop(tmp_path):
    late = write(tmp_path / "late.mp4", 20, pts=[k + 7 for k in range(20)], time_base=Fraction(1, 30),
                 options={"g": "5"})
    assert_every_frame_by_index(VideoFrames(late), list(range(20)))
    params = "open-gop=1:keyint=10:min-keyint=10:bframes=3:b-pyramid=none"
    open_gop = write(tmp_path / "open_gop.mp4", 40, options={"x264-params": params})
    assert_every_frame_by_index(VideoFrames(open_gop), list(range(40)))


def stream_copy_cut(tmp_path, name, skip, options):
    """Packets from the ``skip``-th on (decoding order) of a 40-frame video, remuxed as they are: a cut
    without re-encoding that starts mid-GOP (no edit list), as stream-copy trimming tools make."""
    full = write(tmp_path / f"full_{name}", 40, options=options)
    with av.open(full) as source, av.open(str(tmp_path / name), "w") as cut:
        stream = cut.add_stream_from_template(source.streams.video[0])
        for i, packet in enumerate(p for p in source.demux(video=0) if p.size):
            if i >= skip:
                packet.stream = stream
                cut.mux(packet)
    return str(tmp_path / name)


@pytest.mark.parametrize("name, skip, options, shown", [
    ("p_frames.mkv", 3, {"g": "10", "bf": "0"}, range(10, 40)),  # P-frames before the first keyframe
    ("b_frames.mp4", 4, {"g": "10", "bf": "2"}, range(10, 40)),  # and B-frames, in MP4 without an edit list
    ("open_gop.mkv", 10, {"x264-params": "open-gop=1:keyint=10:min-keyint=10:bframes=3:b-pyramid=none:scenecut=0"},
     None),  # leading pictures of an open GOP's first I-frame, which reference the cut-away GOP
    ("intra_refresh.mkv", 20, {"crf": "8", "x264-params": "intra-refresh=1:keyint=15:bframes=0"},
     range(32, 40)),  # no IDR after the first: shown only once the refresh has swept the whole picture
])
def test_a_cut_starting_mid_gop_shows_frames_from_its_first_keyframe(tmp_path, name, skip, options, shown):
    path = stream_copy_cut(tmp_path, name, skip, options)
    with av.open(path) as c:  # what a player shows: what the decoder delivers from the start
        delivered = identify(np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]))
    assert shown is None or delivered == list(shown)
    assert_every_frame_by_index(VideoFrames(path), delivered)


def test_segment_of_a_variable_rate_video(tmp_path):
    path = write(tmp_path / "dropped.mp4", 30, pts=[k + k // 3 for k in range(30)], time_base=Fraction(1, 30))
    segment = VideoFrames(path, 10, 25)
    assert identify(segment.read([14, 0, 7])) == [24, 10, 17]
    np.testing.assert_allclose(segment.times()[:4], np.array([0, 1, 3, 4]) / 30, atol=1e-3)


def test_repeated_timestamps_are_refused_naming_the_frames(tmp_path):
    pts = [0, 33, 67, 67, 133, 167, 200, 233, 267, 300]  # Matroska accepts equal timestamps; frames 2, 3 share one
    path = write(tmp_path / "repeat.mkv", 10, codec="ffv1", pts=pts, time_base=Fraction(1, 1000))
    source = VideoFrames(path)
    message = "repeat.mkv: cannot index its frames: frames 2 and 3 have the same timestamp (0.067000 s"
    [problem] = source.validate()
    assert message in problem
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(".", r"\.")):
        source.read([0])
    report = check_path(tmp_path / "repeat.mkv", text="t")
    assert not report.ok and message in str(report.errors[0])


def test_a_frame_the_decoder_skips_is_an_error_not_its_neighbour(tmp_path):
    path = write(tmp_path / "v.mp4", 30, options={"g": "10", "bf": "0"})
    source = VideoFrames(path)
    assert identify(source.read([3])) == [3]
    with video_files._FILES.lock:  # a real decoder setting that drops frames: only keyframes come out
        video_files._container(path).streams.video[0].codec_context.skip_frame = "NONKEY"
    with pytest.raises(DataError, match=r"v\.mp4: frame 13 \(shown at 0\.4333.* s\) did not come out of the "
                                        r"decoder, which went on with frame 20"):
        source.read([13])
    assert identify(source.read([13])) == [13]  # the damaged container was dropped: a fresh one decodes it


def test_data_check_reads_the_first_frame(tmp_path):
    from liv.data.frame_folders import write_frame_folders

    manifest = write_frame_folders(tmp_path, [("t", np.stack([grey(k) for k in range(6)]))])
    first = next(tmp_path.rglob("0.png"))
    first.write_bytes(b"not a png")
    report = check_path(manifest, decode_frames=1)  # what `liv train` runs: frame 0 is read even so
    assert not report.ok and "0.png" in str(report.errors[0])


def test_an_mpeg_ts_file_opens_as_a_single_video(tmp_path):
    from liv.data import open_dataset

    path = write(tmp_path / "camera.ts", 12, codec="mpeg2video", options={"bf": "2", "b": "8M", "qmax": "2"})
    [episode] = open_dataset(path, text="open the drawer")
    assert identify(episode.read([11, 0, 5])) == [11, 0, 5]


def test_reward_time_column_follows_the_video_timestamps(tmp_path):
    import liv
    from liv.eval.commands import RewardArgs, run_reward

    path = write(tmp_path / "dropped.mp4", 12, pts=[k + k // 3 for k in range(12)], time_base=Fraction(1, 30))
    liv.create("clip-tiny", seed=0).save(tmp_path / "model")
    run_reward(RewardArgs(input=Path(path), model=str(tmp_path / "model"), goal=["open the drawer"],
                          out=tmp_path / "out"))
    rows = (tmp_path / "out" / "rewards.csv").read_text().splitlines()[1:]
    times = [float(r.split(",")[1]) for r in rows]
    np.testing.assert_allclose(times, [(k + k // 3) / 30 for k in range(12)], atol=1e-6)
