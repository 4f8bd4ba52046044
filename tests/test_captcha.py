import shutil

import numpy as np
import pytest

from kerashw.captcha import cache, folders, preprocess, synth
from kerashw.captcha.constants import ALPHABET, HEADS
from kerashw.config import DataError


def test_alphabet_encode_decode_case_insensitive():
    assert len(ALPHABET) == 19
    assert folders.encode("7f37") == folders.encode("7F37")
    assert "".join(ALPHABET[i] for i in folders.encode("ahz2")) == "AHZ2"


@pytest.mark.parametrize("label,message", [
    ("7F3", "has 3 characters, want 4"), ("7F3B", r"has 'B' outside the alphabet"), ("01AB", r"has '01B'"),
])
def test_bad_labels_are_named(label, message):
    with pytest.raises(DataError, match=rf"labels.csv line 7: label '{label}' {message}"):
        folders.encode(label, "labels.csv line 7")


def test_labels_csv_folder(thsr_path):
    items = folders.read_labelled_folder(thsr_path)
    assert len(items) == 300 and all(len(i.label) == 4 and i.label == i.label.upper() for i in items)
    assert all(i.path.exists() for i in items)


def test_filename_labels_and_split_subfolders(tmp_path, synth_folder):
    for phase in ("train", "val", "test"):
        (tmp_path / phase).mkdir()
    items = folders.read_labelled_folder(synth_folder)
    for k, it in enumerate(items[:30]):
        phase = ("train", "val", "test")[k % 3]
        shutil.copy(it.path, tmp_path / phase / f"{it.label.lower()}.png")
    by_stem = folders.read_labelled_folder(tmp_path / "train")
    assert len(by_stem) >= 9 and all(p.path.stem.upper() == p.label for p in by_stem)
    splits, skipped = cache.captcha_splits(str(tmp_path), "original", seed=0)
    assert {p: len(s) for p, s in splits.items()} == {
        p: len(list((tmp_path / p).iterdir())) for p in ("train", "val", "test")}
    assert set(splits["train"].y) == set(HEADS) and skipped == []


def test_bad_label_in_csv_names_file_and_line(tmp_path):
    (tmp_path / "labels.csv").write_text("filename,label\na.png,7F37\nb.png,7F3X\n")
    with pytest.raises(DataError, match=r"labels.csv line 3: label '7F3X'"):
        folders.read_labelled_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("name,text\n")
    with pytest.raises(DataError, match="line 1: want the header 'filename,label'"):
        folders.read_labelled_folder(tmp_path)


def test_bad_image_errors_or_is_skipped(tmp_path, synth_folder):
    folder = tmp_path / "f"
    shutil.copytree(synth_folder, folder)
    (folder / "00003.png").write_bytes(b"not an image")
    items = folders.read_labelled_folder(folder)
    with pytest.raises(DataError, match=r"00003.png: cannot read this image.*--skip-bad"):
        cache.preprocessed(items, "denoise2")
    x, y, skipped = cache.preprocessed(items, "denoise2", skip_bad=True)
    assert len(x) == len(items) - 1 and len(y) == len(x) and skipped[0].endswith("00003.png")


def test_fitted_glyphs_draw_every_symbol_at_the_real_size():
    """The outlines fitted to real crops (glyphs.npz): one per symbol, a glyph's share of ink,
    drawn 0.57-0.70 of the image's height as measured on real captchas (a lean adds a little)."""
    from kerashw.captcha.constants import ALPHABET

    rng = np.random.default_rng(0)
    for ch in ALPHABET:
        outline, aspect = synth._outline(ch)
        assert outline.shape == (192, 144) and 0.2 < outline.mean() < 0.6, ch
        assert 0.6 < aspect < 0.9, ch
        for _ in range(5):
            g = np.asarray(synth._fitted_glyph(ch, 47, rng)) > 0
            rows = np.flatnonzero(g.any(axis=1))
            assert 0.5 * 47 <= rows[-1] - rows[0] + 1 <= 0.8 * 47, ch
    # the fitted outlines are not one font's: M and N, F and H differ where the real ones do
    assert np.abs(synth._outline("M")[0] - synth._outline("N")[0]).mean() > 0.1
    assert np.abs(synth._outline("F")[0] - synth._outline("H")[0]).mean() > 0.1


def test_generator_is_deterministic_and_looks_like_thsr():
    a, mask = synth.generate("7F37", 11, with_mask=True)
    b = synth.generate("7F37", 11)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, synth.generate("7F37", 12))
    h, w, c = a.shape
    assert 44 <= h <= 49 and 112 <= w <= 138 and c == 3 and a.dtype == np.uint8  # the real ones' sizes
    assert mask.shape == (h, w) and mask[:, w // 2].any()  # the arc crosses the middle
    assert a.mean() > 120  # light background, dark glyphs


@pytest.mark.parametrize("variant,channels", [("original", 3), ("denoise", 1), ("denoise2", 1)])
def test_variant_shapes_and_range(variant, channels, thsr_path):
    import cv2

    img = cv2.imread(str(next(thsr_path.glob("*.jpg"))))
    out = preprocess.get_preprocessor(variant)(img)
    assert out.shape == (50, 130, channels) and out.dtype == np.uint8
    assert out.max() > out.min()  # not blank


def test_denoise_removes_the_arc():
    rng = np.random.default_rng(0)
    left = []
    for i in range(60):
        rgb, mask = synth.generate(synth.random_label(rng), 1000 + i, with_mask=True)
        bgr = rgb[:, :, ::-1]
        before = preprocess.binarise(preprocess.remove_speckle(bgr))
        after = preprocess.remove_arc(before)
        visible = (before & mask).sum()  # arc pixels that are ink before (the arc inverts glyphs)
        assert visible / mask.sum() > 0.4
        left.append((after & mask).sum() / visible)
    # Measured here on synthetic version 5 (arcs 4.5-5.5 px from the very left edge, as measured
    # on real ones): mean 0.23, median 0.20 of the visible arc left, the arc's edge rows mostly
    # (version 3, 3.5-5.5 px: 0.17 and 0.13; version 2: 0.12 and 0.08). Without removal: 1.0.
    assert np.mean(left) < 0.28 and np.median(left) < 0.25


def test_denoise_keeps_the_text_of_real_captchas(thsr_path):
    import cv2

    for p in sorted(thsr_path.glob("*.jpg"))[:10]:
        out = preprocess.denoise(cv2.imread(str(p)))[:, :, 0]
        ink = (out > 127).mean()
        assert 0.05 < ink < 0.5, f"{p.name}: {ink:.2%} ink after denoise"


def test_preprocessing_is_cached(synth_folder, monkeypatch):
    items = folders.read_labelled_folder(synth_folder)
    x1, y1, _ = cache.preprocessed(items, "denoise")
    calls = []
    monkeypatch.setattr(cache, "_preprocess_chunk", lambda a: calls.append(a))
    x2, y2, _ = cache.preprocessed(items, "denoise")  # from disk: no image is touched
    assert calls == []
    np.testing.assert_array_equal(x1, x2)
    assert x1.shape == (160, 50, 130, 1)


def test_split_proportions(synth_folder):
    splits, _ = cache.captcha_splits(str(synth_folder), "original", seed=1)
    assert [len(splits[p]) for p in ("train", "val", "test")] == [80, 20, 60]  # 4:1:3
    splits, _ = cache.captcha_splits(str(synth_folder), "original", seed=1, counts=(50, 10, 20))
    assert [len(splits[p]) for p in ("train", "val", "test")] == [50, 10, 20]
    with pytest.raises(DataError, match="needs 400 images but the folder has 160"):
        cache.captcha_splits(str(synth_folder), "original", seed=1, counts=(200, 100, 100))


def test_extra_folder_joins_training_only_when_asked(tmp_path, synth_folder):
    import shutil

    from kerashw.config import RunSpec
    from kerashw.identity import identify

    names = sorted(p.name for p in synth_folder.glob("*.png"))
    labels = dict(line.split(",") for line in (synth_folder / "labels.csv").read_text().splitlines()[1:])
    for sub, part in (("train", names[:80]), ("val", names[80:100]), ("test", names[100:130]), ("extra", names[130:])):
        (tmp_path / sub).mkdir()
        for n in part:
            shutil.copyfile(synth_folder / n, tmp_path / sub / n)
        (tmp_path / sub / "labels.csv").write_text("filename,label\n" + "".join(f"{n},{labels[n]}\n" for n in part))
    without, _ = cache.captcha_splits(str(tmp_path), "denoise2", seed=0)
    with_extra, _ = cache.captcha_splits(str(tmp_path), "denoise2", seed=0, extra=True)
    assert (len(without["train"]), len(with_extra["train"])) == (80, 110)
    assert len(with_extra["val"]) == 20 and len(with_extra["test"]) == 30
    spec = RunSpec(task="captcha", model="resnet18_mod", data=str(tmp_path))
    assert identify(spec).run_id != identify(spec.__class__(**{**spec.__dict__, "extra": True})).run_id


def test_a_non_utf8_file_name_is_read_not_a_segfault(tmp_path, synth_folder):
    """cv2.imread took the name as str and crashed the process on surrogate escapes."""
    import os
    import shutil

    from kerashw import export

    folder = tmp_path / "caps"
    folder.mkdir()
    src = sorted(synth_folder.glob("*.png"))[:3]
    names = [os.fsdecode(b"\xff\xfe-" + str(i).encode() + b".png") for i in range(3)]
    for s_, n in zip(src, names):
        shutil.copyfile(s_, folder / n)
    labels = dict(line.split(",") for line in (synth_folder / "labels.csv").read_text().split()[1:])
    rows = [f"{n},{labels[s_.name]}" for s_, n in zip(src, names)]
    (folder / "labels.csv").write_bytes(os.fsencode("filename,label\n" + "\n".join(rows) + "\n"))
    items = [folders.Item(folder / n, labels[s_.name]) for s_, n in zip(src, names)]
    x, y, skipped = cache.preprocessed(items, "original")
    assert x.shape == (3, 50, 130, 3) and skipped == []
    assert export.prepare_image(folder / names[0], {"task": "captcha", "preprocess": "original"}).shape == (50, 130, 3)


def test_the_preprocessing_cache_follows_the_pixels_not_the_second(tmp_path, synth_folder):
    """An image rewritten within the same second, same size (BMP: the size is the shape's):
    the run id (content) changed but the cache keyed on whole-second mtimes and sizes
    served the old pixels."""
    import os

    import cv2

    folder = tmp_path / "caps"
    folder.mkdir()
    src = folders.read_labelled_folder(synth_folder)[:4]
    for k, it in enumerate(src):
        cv2.imwrite(str(folder / f"{k}.bmp"), cv2.resize(cv2.imread(str(it.path)), (140, 48)))
    items = [folders.Item(folder / f"{k}.bmp", it.label) for k, it in enumerate(src)]
    before, _, _ = cache.preprocessed(items, "original")
    a, b = items[0].path, items[1].path
    st = a.stat()
    a.write_bytes(b.read_bytes())  # other pixels, the same size
    os.utime(a, ns=(st.st_atime_ns, (st.st_mtime_ns // 10**9) * 10**9 + 123))  # the same second
    assert a.stat().st_size == st.st_size and int(a.stat().st_mtime) == int(st.st_mtime)
    after, _, _ = cache.preprocessed(items, "original")
    np.testing.assert_array_equal(after[0], before[1])  # the new pixels, not the cached ones


def test_dot_slash_names_are_the_same_file(tmp_path, synth_folder):
    import shutil

    folder = shutil.copytree(synth_folder, tmp_path / "caps", copy_function=shutil.copyfile)
    rows = (folder / "labels.csv").read_text().splitlines()
    (folder / "labels.csv").write_text("\n".join([*rows, "./" + rows[1]]) + "\n")
    with pytest.raises(DataError, match=r"lines 2 and \d+ both list '00000.png'"):
        folders.read_labelled_folder(folder)


def test_a_partial_split_layout_says_what_is_missing(tmp_path, synth_folder):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(synth_folder, root / "train", copy_function=shutil.copyfile)
    shutil.copytree(synth_folder, root / "test", copy_function=shutil.copyfile)
    with pytest.raises(DataError, match=r"has train/test/ but no val/; a split folder needs all of train/val/test/"):
        folders.source_items(str(root))
    with pytest.raises(DataError, match=r"no labelled images .* it has train/test/ subfolders"):
        folders.read_labelled_folder(root)
