"""The enhanced data set in the TensorFlow Datasets layout (`datacentric.write_tfds`).

A tiny run with all three parts (two shards) is written with `write_tfds` and
read back with `tfds.builder_from_directory` and `tfds.load(data_dir=...)`:
images, labels and parts must equal what `datacentric.load` yields, and the
provenance fields what `datacentric.read_records` gives.
"""
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_robust import datacentric as dc
from keras_robust.datacentric import tfds_export
from tests.helpers import tiny_cnn

SHAPE = (8, 8, 3)


@pytest.fixture(scope="module")
def enhanced(tmp_path_factory):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, *SHAPE), dtype=np.uint8)
    labels = rng.integers(0, 3, 12).astype(np.int32)
    folder = str(tmp_path_factory.mktemp("enhanced"))
    dc.enhance(images, labels, [tiny_cnn(SHAPE, 3)], ratio=(1, 1, 2),
               attack=dc.Eq6Config().replace(steps=2),
               options=dc.RunOptions(batch_size=4, shard_size=8, output_dir=folder, progress=False))
    return folder


def test_tfds_reads_what_load_and_read_records_give(enhanced, tmp_path):
    data_dir = str(tmp_path / "tfds")
    written = dc.write_tfds(enhanced, data_dir, name="tiny_enhanced", progress=False)
    assert written == os.path.join(data_dir, "tiny_enhanced", "1.0.0")

    builder = tfds.builder_from_directory(written)
    assert builder.info.splits["train"].num_examples == 12
    ours = [(image.numpy(), int(label), int(part))
            for image, label, part in dc.load(enhanced, batch_size=None, with_part=True)]
    provenance = dc.read_records(enhanced)
    theirs = list(builder.as_dataset(split="train").as_numpy_iterator())
    assert len(theirs) == len(ours) == len(provenance) == 12
    assert {p["part"] for p in provenance} == set(dc.PARTS)  # every part (and field) is covered
    for example, (image, label, part), record in zip(theirs, ours, provenance):
        assert example["image"].dtype == np.uint8
        np.testing.assert_array_equal(example["image"], np.round(image * 255))
        assert (int(example["label"]), int(example["part"])) == (label, part)
        assert dc.PARTS[int(example["part"])] == record["part"]
        assert int(example["index"]) == record["index"]
        assert example["corruption"].decode() == record.get("corruption", "")
        for field in ("severity", "seed", "attack_seed"):
            assert int(example[field]) == record.get(field, tfds_export.MISSING_INT), field
        for field in ("linf_norm", "l2_norm"):
            assert float(example[field]) == pytest.approx(
                record.get(field, tfds_export.MISSING_FLOAT), abs=1e-6), field

    # tfds.load finds it by name in data_dir (no builder code, no download).
    loaded = tfds.load("tiny_enhanced", data_dir=data_dir, split="train")
    assert [int(e["index"]) for e in loaded] == [r["index"] for r in provenance]


def test_write_tfds_refuses_bad_names_an_existing_copy_and_unfinished_runs(enhanced, tmp_path):
    with pytest.raises(ValueError, match="TFDS name"):
        dc.write_tfds(enhanced, str(tmp_path), name="Bad-Name", progress=False)
    with pytest.raises(ValueError, match="MAJOR.MINOR.PATCH"):
        dc.write_tfds(enhanced, str(tmp_path), version="1", progress=False)
    dc.write_tfds(enhanced, str(tmp_path), progress=False)
    with pytest.raises(FileExistsError, match="already holds"):
        dc.write_tfds(enhanced, str(tmp_path), progress=False)
    unfinished = str(tmp_path / "unfinished")
    dc.enhance(np.zeros((4, *SHAPE), np.uint8), [0, 1, 2, 0], None, ratio=(1, 0, 0),
               options=dc.RunOptions(output_dir=unfinished, shard_size=2, worker_index=0,
                                     num_workers=2, progress=False))
    with pytest.raises(dc.IncompleteOutputError):
        dc.write_tfds(unfinished, str(tmp_path / "other"), progress=False)
