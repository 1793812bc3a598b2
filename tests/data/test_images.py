"""Images deeper than 8 bits: every mode is scaled by its bit depth or refused, never clipped, on every path."""

import csv
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import liv
from liv.cli import main
from liv.data import DataError
from liv.data.check import check_path
from liv.data.frame_folders import read_frame_folders, read_image_folder
from liv.data.images import image_to_rgb, read_image

# Every 16-bit level that matters: both ends, the 8 -> 16-bit expansion v * 257, and either side of 255 * 256.
RAMP = np.array([[0, 1, 255, 256, 257, 1000, 32767, 32768, 257 * 200, 65279, 65280, 65535]], np.uint16)


def high_byte(x: np.ndarray) -> np.ndarray:
    """The documented 16 -> 8-bit rule, written out naively."""
    return np.array([[[v // 256] * 3 for v in row] for row in x.tolist()], np.uint8)


def png16(path, samples: np.ndarray, color_type: int) -> None:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour): samples (H, W, C) unsigned 16-bit."""
    h, w = samples.shape[:2]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in samples)  # filter 0 on every row
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# ------------------------------------------------------------------------------------------ 16 bits

def test_16_bit_grey_png_is_scaled_by_its_high_byte(tmp_path):
    Image.fromarray(RAMP).save(tmp_path / "g.png")
    with Image.open(tmp_path / "g.png") as im:
        assert im.mode == "I;16"  # what this Pillow opens; an "I" PNG is covered below
    out = read_image(tmp_path / "g.png")
    assert out.dtype == np.uint8 and out.shape == (1, RAMP.shape[1], 3)
    assert np.array_equal(out, high_byte(RAMP))
    # Within one level of the exact rescale, and v * 257 comes back as v.
    assert np.abs(out[..., 0].astype(int) - np.round(RAMP.astype(int) * 255 / 65535)).max() <= 1
    assert out[0, list(RAMP[0]).index(257 * 200), 0] == 200


@pytest.mark.parametrize("mode, dtype", [("I;16", "<u2"), ("I;16L", "<u2"), ("I;16B", ">u2"), ("I;16N", "=u2")])
def test_every_16_bit_mode_gets_the_same_rule(mode, dtype):
    im = Image.frombytes(mode, (RAMP.shape[1], 1), RAMP.astype(dtype).tobytes())
    assert im.mode == mode
    assert np.array_equal(image_to_rgb(im, "x"), high_byte(RAMP))


@pytest.mark.parametrize("bits", [8, 16])
def test_white_is_zero_tiff_reads_as_shown(tmp_path, bits):
    from PIL import TiffImagePlugin

    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[262] = 0  # PhotometricInterpretation WhiteIsZero: a stored 0 is white
    stored = np.full((4, 6), (255 - 88) * (257 if bits == 16 else 1), np.uint16 if bits == 16 else np.uint8)
    path = tmp_path / f"white_is_zero_{bits}.tif"
    Image.fromarray(stored).save(path, tiffinfo=tags)
    with Image.open(path) as im:
        assert im.tag_v2[262] == 0 and im.mode == ("I;16" if bits == 16 else "L")
        raw = int(np.asarray(im)[0, 0])
    # Pillow inverts 8-bit WhiteIsZero itself (its writer stored 88 for 167 shown) but returns 16-bit samples raw.
    assert raw == ((255 - 88) * 257 if bits == 16 else 255 - 88)
    shown = 255 - 88 if bits == 8 else 88  # 16-bit: stored (255 - 88) * 257, shown 65535 minus that
    assert np.array_equal(read_image(path), np.full((4, 6, 3), shown, np.uint8))


@pytest.mark.parametrize("color_type, channels", [(2, 3), (6, 4), (4, 2)])  # RGB, RGBA, grey + alpha
def test_16_bit_colour_pngs_are_not_clipped_and_match_16_bit_grey(tmp_path, color_type, channels):
    rng = np.random.default_rng(color_type)
    samples = rng.integers(0, 65536, (5, 12, channels), dtype=np.uint16)
    samples[0, :RAMP.shape[1], 0] = RAMP[0]
    png16(tmp_path / "c.png", samples, color_type)
    out = read_image(tmp_path / "c.png")
    colour = samples[..., :3] if channels >= 3 else np.repeat(samples[..., :1], 3, axis=-1)
    assert np.array_equal(out, (colour >> 8).astype(np.uint8))  # alpha dropped, colour by its high byte
    # The same picture saved as 16-bit grey reads the same as saved as 16-bit colour.
    grey = samples[..., 0]
    png16(tmp_path / "rgb.png", np.repeat(grey[..., None], 3, axis=-1), 2)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert np.array_equal(read_image(tmp_path / "rgb.png"), read_image(tmp_path / "grey.png"))


def test_16_bit_pgm_opened_as_I_is_scaled(tmp_path):
    (tmp_path / "g.pgm").write_bytes(b"P5\n12 1\n65535\n" + RAMP.astype(">u2").tobytes())
    with Image.open(tmp_path / "g.pgm") as im:
        assert im.mode == "I" and im.format == "PPM"
    assert np.array_equal(read_image(tmp_path / "g.pgm"), high_byte(RAMP))


def test_I_from_a_png_is_16_bit_and_checked_for_range():
    # Older Pillow opened 16-bit grey PNGs as "I"; this one does not, so the format is set by hand.
    im = Image.fromarray(RAMP.astype(np.int32))
    im.format = "PNG"
    assert im.mode == "I" and np.array_equal(image_to_rgb(im, "x"), high_byte(RAMP))
    im = Image.fromarray(np.array([[0, 70000]], np.int32))
    im.format = "PNG"
    with pytest.raises(DataError, match=r"^frame\.png: image mode 'I' \(PNG\) has values in \[0, 70000\]"):
        image_to_rgb(im, "frame.png")


# ------------------------------------------------------------------------------------------ refusals

@pytest.mark.parametrize("values", [np.array([[-5, 70000, 100]], np.int32), np.array([[0, 10, 255]], np.int32)])
def test_32_bit_integer_tiff_is_refused_naming_file_and_mode(tmp_path, values):
    # Even values that would fit 8 bits are refused: the file does not say what range they mean.
    Image.fromarray(values).save(tmp_path / "deep.tif")
    with pytest.raises(DataError) as e:
        read_image(tmp_path / "deep.tif")
    assert e.value.where == str(tmp_path / "deep.tif")
    assert "image mode 'I' (signed or 32-bit integers) in a TIFF file has no known value range" in e.value.problem


def test_float_image_is_refused_naming_file_and_mode(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(DataError) as e:
        read_image(tmp_path / "f.tif")
    assert e.value.where == str(tmp_path / "f.tif") and "image mode 'F' (32-bit float)" in e.value.problem
    with pytest.raises(DataError, match=r"^made in memory: image mode 'I' \(signed or 32-bit integers\) in this image"):
        image_to_rgb(Image.fromarray(np.zeros((2, 2), np.int32)), "made in memory")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "absent.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"bad\.png: cannot decode image \(UnidentifiedImageError"):
        read_image(tmp_path / "bad.png")


# ------------------------------------------------------------------------------------------ 8 bits

@pytest.mark.filterwarnings("error")  # a palette with transparency must not make Pillow warn
def test_8_bit_modes_use_pillows_conversion_and_drop_alpha(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    alpha[0, 0] = 0
    grey = rgb[..., 0]
    cases = {
        "L": (Image.fromarray(grey), np.repeat(grey[..., None], 3, axis=-1)),
        "1": (Image.fromarray(grey > 127), np.repeat(np.where(grey > 127, 255, 0)[..., None], 3, -1).astype(np.uint8)),
        "RGB": (Image.fromarray(rgb), rgb),
        "RGBA": (Image.fromarray(np.dstack([rgb, alpha])), rgb),  # colour kept even where alpha is 0
        "LA": (Image.fromarray(np.dstack([grey, alpha])), np.repeat(grey[..., None], 3, axis=-1)),
    }
    palette = Image.fromarray(rgb).quantize(16)
    cases["P"] = (palette, np.array(palette.convert("RGB")))
    for mode, (im, expected) in cases.items():
        assert im.mode == mode
        im.save(tmp_path / f"{mode}.png")
        assert np.array_equal(read_image(tmp_path / f"{mode}.png"), expected), mode
    palette.save(tmp_path / "pt.png", transparency=bytes([0, 128] + [255] * 14))  # per-entry alpha
    with Image.open(tmp_path / "pt.png") as im:
        assert im.mode == "P" and "transparency" in im.info
    assert np.array_equal(read_image(tmp_path / "pt.png"), cases["P"][1])


def test_other_8_bit_modes_and_premultiplied_alpha():
    rgb = np.random.default_rng(2).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    for mode in ("CMYK", "YCbCr", "HSV", "LAB", "RGBX"):
        im = Image.fromarray(rgb).convert(mode) if mode != "HSV" else Image.frombytes("HSV", (4, 4), rgb.tobytes())
        assert np.array_equal(image_to_rgb(im, "x"), np.array(im.convert("RGB"))), mode
    assert image_to_rgb(Image.new("LAB", (1, 1), (255, 128, 128)), "x").min() >= 254  # L* = 100: white
    # Premultiplied alpha is divided out: 100 at alpha 128 stores a colour of 199.
    assert image_to_rgb(Image.new("RGBa", (1, 1), (100, 100, 100, 128)), "x").tolist() == [[[199] * 3]]
    assert image_to_rgb(Image.new("La", (1, 1), (100, 128)), "x").tolist() == [[[199] * 3]]


# ------------------------------------------------------------------------------------------ every path

def write_case(root):
    """The frames_16bit case: ep16 16-bit grey ramps, ep8 the same >> 8 as 8-bit."""
    for sub in ("ep16", "ep8"):
        (root / sub).mkdir(parents=True)
    for i in range(3):
        ramp = (np.tile(np.linspace(0, 65535, 40), (30, 1)) * (0.4 + 0.2 * i)).astype(np.uint16)
        Image.fromarray(ramp).save(root / "ep16" / f"{i}.png")
        Image.fromarray((ramp >> 8).astype(np.uint8)).save(root / "ep8" / f"{i}.png")
    with open(root / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["directory", "num_frames", "text"], ["ep16", 3, "open"], ["ep8", 3, "open"]])
    return root


def test_16_bit_frame_folder_reads_as_the_8_bit_one(tmp_path):
    root = write_case(tmp_path / "case")
    ep16, ep8 = (e.all_frames().astype(int) for e in read_frame_folders(root))
    assert ep8.max() > 150 and (ep16 == 255).mean() < 0.05  # clipping made ~98% of the pixels white
    assert np.array_equal(ep16, ep8)  # the high byte, exactly as the 8-bit frames were made
    folder16, folder8 = (read_image_folder(root / sub, "t")[0].all_frames() for sub in ("ep16", "ep8"))
    assert np.array_equal(folder16, ep16) and np.array_equal(folder8, ep8)
    assert check_path(root, full=True).ok


def test_frame_folder_check_names_a_refused_file(tmp_path):
    (tmp_path / "ep").mkdir()
    Image.fromarray(np.zeros((4, 4), np.int32)).save(tmp_path / "ep" / "0.tif")
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["directory", "num_frames", "text", "frame_pattern"], ["ep", 1, "t", "{}.tif"]])
    episode = read_frame_folders(tmp_path)[0]
    with pytest.raises(DataError, match=r"ep/0\.tif \(episode .*line 2\): image mode 'I'"):
        episode.read([0])
    [problem] = episode.frames.validate(full=True)
    assert problem.startswith(f"{tmp_path / 'ep' / '0.tif'}: image mode 'I'")


def test_lerobot_parquet_image_feature_is_scaled_or_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from liv.data.lerobot_frames import LeRobotImageFrames

    def encoded(array, fmt):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format=fmt)
        return {"bytes": buffer.getvalue(), "path": None}

    cells = [encoded(RAMP, "PNG"), encoded(np.zeros((2, 2), np.float32), "TIFF")]
    pq.write_table(pa.table({"observation.image": cells}), tmp_path / "data.parquet")
    frames = LeRobotImageFrames(tmp_path / "data.parquet", "observation.image", 0, 2, 0)
    assert np.array_equal(frames.read([0])[0], high_byte(RAMP))
    with pytest.raises(DataError) as e:
        frames.read([1])
    assert e.value.where == f"{tmp_path / 'data.parquet'} column observation.image (episode 0) frame 1"
    assert "image mode 'F'" in e.value.problem


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny"
    liv.create("clip-tiny", seed=0).save(path)
    return path


def test_cli_embed_images_reads_16_bit_as_8_bit(tmp_path, tiny, capsys):
    root = write_case(tmp_path / "case")
    assert main(["embed", "--model", str(tiny), "--images", str(root / "ep16" / "1.png"), str(root / "ep8" / "1.png"),
                 "--out", str(tmp_path / "e.npz")]) == 0
    a, b = np.load(tmp_path / "e.npz")["image_embeddings"]
    np.testing.assert_array_equal(a, b)  # ep8 is exactly ep16's high byte
    Image.fromarray(np.zeros((2, 2), np.float32)).save(tmp_path / "f.tif")
    capsys.readouterr()
    assert main(["embed", "--model", str(tiny), "--images", str(tmp_path / "f.tif"),
                 "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'f.tif'}: image mode 'F'" in err


def test_cli_reward_goal_image_reads_16_bit_as_8_bit(tmp_path, tiny, capsys):
    pytest.importorskip("matplotlib")
    root = write_case(tmp_path / "case")
    tables = []
    for sub in ("ep16", "ep8"):
        out = tmp_path / f"out_{sub}"
        assert main(["reward", str(root / "ep8"), "--goal-image", str(root / sub / "2.png"), "--model", str(tiny),
                     "--out", str(out)]) == 0
        tables.append((out / "rewards.csv").read_text())
    assert tables[0] == tables[1]
    Image.fromarray(np.array([[0, 70000]], np.int32)).save(tmp_path / "deep.tif")
    capsys.readouterr()
    for data in ([str(root / "ep8")], ["--data", str(root), "--out", str(tmp_path / "r.parquet")]):
        args = ["reward", *data, "--goal-image", str(tmp_path / "deep.tif"), "--model", str(tiny)]
        assert main(args + (["--out", str(tmp_path / "o")] if len(data) == 1 else [])) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{tmp_path / 'deep.tif'}: image mode 'I'" in err and "Traceback" not in err


def test_a_folder_of_16_bit_tiffs_opens_as_an_episode(tmp_path):
    from liv.data import open_dataset

    for i in range(3):  # a mono camera's export: one LZW-compressed 16-bit TIFF per frame
        Image.fromarray(np.full((8, 8), (10 + 20 * i) * 257, np.uint16)).save(tmp_path / f"{i}.tif",
                                                                              compression="tiff_lzw")
    [episode] = open_dataset(tmp_path, text="t")
    assert episode.all_frames()[:, 0, 0, 0].tolist() == [10, 30, 50]
