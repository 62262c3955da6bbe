"""Data-centric enhancement: split, eq. 6 perturbations, corruptions, shards, resume, workers."""
from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_robust import corruptions as kc
from keras_robust import datacentric as dc
from keras_robust.datacentric import plan as dc_plan
from keras_robust.datacentric import records

from tests.helpers import linear_model, tiny_cnn

SHAPE = (16, 16, 3)
ATTACK = dc.Eq6Config().replace(steps=3)
OPTIONS = dc.RunOptions(batch_size=8, shard_size=16, progress=False)
FAST = dict(attack=ATTACK, options=OPTIONS)


def fast(**options):
    """`FAST` with these run options changed."""
    return dict(attack=ATTACK, options=OPTIONS.replace(**options))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, *SHAPE), dtype=np.uint8)
    return images, rng.integers(0, 3, 50).astype(np.int32)


@pytest.fixture
def ensemble():
    return [tiny_cnn(SHAPE, 3), tiny_cnn(SHAPE, 3)]


def _files(directory):
    return sorted(f for f in os.listdir(directory) if not f.startswith("."))


def _same_files(a, b):
    assert _files(a) == _files(b)
    for name in _files(a):
        assert filecmp.cmp(os.path.join(a, name), os.path.join(b, name), shallow=False), name


# ---------------------------------------------------------------------------- split


@pytest.mark.parametrize("ratio", [(0, 1, 4), (1, 1, 1), (0.2, 0.3, 0.5), (3, 0, 1), (0, 0, 1)])
@pytest.mark.parametrize("n", [1, 2, 7, 50, 1001])
def test_part_counts_are_exact_and_within_one_of_the_ratio(ratio, n):
    counts = dc.part_counts(n, ratio)
    shares = n * np.asarray(ratio, float) / sum(ratio)
    assert counts.sum() == n
    assert np.all(np.abs(counts - shares) < 1)
    assert np.all(counts[np.asarray(ratio) == 0] == 0)


def test_plan_is_a_random_split_decided_by_the_seed_alone():
    a = dc.make_plan(1000, (0, 1, 4), seed=3, shard_size=64)
    b = dc.make_plan(1000, (0, 1, 4), seed=3, shard_size=128)
    c = dc.make_plan(1000, (0, 1, 4), seed=4, shard_size=64)
    assert np.array_equal(a.parts, b.parts)  # shard size does not change the split
    assert not np.array_equal(a.parts, c.parts)
    assert a.counts == {"clean": 0, "adversarial": 200, "corrupted": 800}
    # spread over the data, not a block
    assert 0.1 < a.parts[:500].tolist().count(1) / 200 < 0.9


def test_output_size_and_split_follow_the_ratio(data, ensemble):
    x, y = data
    for ratio in [(0, 1, 4), (1, 2, 2)]:
        result = dc.enhance(x, y, ensemble, ratio=ratio, **FAST)
        assert len(result) == len(x) == len(result.images) == len(result.parts)
        shares = len(x) * np.asarray(ratio, float) / sum(ratio)
        counts = np.asarray([result.counts[p] for p in dc.PARTS])
        assert np.all(np.abs(counts - shares) < 1)
        assert np.array_equal(result.labels, y)
        assert result.images.dtype == np.uint8 and result.images.shape == x.shape
        clean = result.parts == "clean"
        assert np.array_equal(result.images[clean], x[clean])
        assert [d["part"] for d in result.details] == result.parts.tolist()
        assert [d["index"] for d in result.details] == list(range(len(x)))


# ---------------------------------------------------------------------------- eq. 6


def test_each_perturbation_stays_in_its_ball_and_the_sum_in_both(ensemble):
    rng = np.random.default_rng(1)
    x = rng.random((12, *SHAPE), dtype=np.float32)
    y = rng.integers(0, 3, 12)
    settings = dc.Eq6Config(dc.LINF_ATTACK.replace(steps=6),  # big L2 steps reach the boundary
                            dc.L2_ATTACK.replace(steps=6, step_size=0.3))
    d_inf, d_2 = dc.perturbations(ensemble, x, y, settings, seed=0, batch_size=5)
    assert np.abs(d_inf).max() <= 8 / 255 + 1e-6
    l2 = np.sqrt((d_2.astype(np.float64) ** 2).reshape(len(x), -1).sum(1))
    assert l2.max() <= 1.0 + 1e-5 and l2.max() > 0.9
    for delta in (d_inf, d_2):
        assert (x + delta).min() >= 0 and (x + delta).max() <= 1
    x_adv = dc.combine(x, d_inf, d_2)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    np.testing.assert_array_equal(x_adv, np.clip(x + d_inf + d_2, 0, 1))
    # Per pixel |x_adv - x| <= |d_inf| + |d_2| (clipping to [0, 1] only shrinks it), so per
    # image the sum obeys ||.||_inf <= 8/255 + ||d_2||_inf <= 8/255 + ||d_2||_2 <= 8/255 + 1
    # and ||.||_2 <= ||d_inf||_2 + ||d_2||_2 <= 8/255 * sqrt(H*W*C) + 1 (1.87 at 16x16x3);
    # any two [0, 1] images already differ by at most 1 per pixel, so only these can fail.
    per_pixel = np.abs(x_adv - x)
    assert np.all(per_pixel <= 8 / 255 + np.abs(d_2) + 1e-6)
    flat = (x_adv.astype(np.float64) - x).reshape(len(x), -1)
    assert np.all(np.abs(flat).max(1) <= 8 / 255 + np.abs(d_2).reshape(len(x), -1).max(1) + 1e-6)
    assert np.all(np.abs(flat).max(1) <= 8 / 255 + l2 + 1e-6)
    assert np.all(np.sqrt((flat ** 2).sum(1)) <= 8 / 255 * np.sqrt(np.prod(SHAPE)) + l2 + 1e-5)
    assert np.sqrt((flat ** 2).sum(1)).max() <= 8 / 255 * np.sqrt(np.prod(SHAPE)) + 1.0 + 1e-5


def test_enhanced_adversarial_images_are_the_sum_of_the_two_perturbations(ensemble):
    rng = np.random.default_rng(2)
    x = rng.random((20, *SHAPE), dtype=np.float32)
    y = rng.integers(0, 3, 20).astype(np.int32)
    settings = dc.Eq6Config().replace(steps=4)
    result = dc.enhance(x, y, ensemble, ratio=(0, 1, 1), attack=settings,
                        options=dc.RunOptions(batch_size=4, shard_size=64, progress=False))
    assert result.images.dtype == np.float32
    adversarial = np.flatnonzero(result.parts == "adversarial")
    # One shard: batch b of the adversarial part uses attack_seed(seed, shard 0, b), as
    # `perturbations` does for its batch b.
    d_inf, d_2 = dc.perturbations(ensemble, x[adversarial], y[adversarial], settings, seed=0,
                                  batch_size=4)
    np.testing.assert_array_equal(result.images[adversarial],
                                  dc.combine(x[adversarial], d_inf, d_2))
    for i, record in zip(adversarial, np.asarray(result.details)[adversarial]):
        assert record["linf_norm"] <= 8 / 255 + 1e-6 and record["l2_norm"] <= 1.0 + 1e-5
        assert record["attack"] == settings.get_config() and record["attack"]["l2"]["steps"] == 4
        assert np.abs(result.images[i] - x[i]).max() <= 8 / 255 + record["l2_norm"] + 1e-6


def test_the_attack_lowers_the_true_logit_of_the_ensemble():
    model = linear_model((8, 8, 1), num_classes=3, seed=0)
    rng = np.random.default_rng(3)
    x = rng.random((32, 8, 8, 1), dtype=np.float32) * 0.5 + 0.25
    y = np.argmax(model(x).numpy(), -1)
    settings = dc.Eq6Config().replace(steps=10, input_diversity=0.0, smoothing_kernel=0)
    d_inf, d_2 = dc.perturbations([model], x, y, settings)
    before = model(x).numpy()[np.arange(32), y]
    after = model(dc.combine(x, d_inf, d_2)).numpy()[np.arange(32), y]
    assert np.all(after < before)
    # The logit loss -z_y of a linear model has the constant gradient -w_y: without
    # smoothing or diversity, the L-inf attack ends at -eps * sign(w_y) (4 steps of 2/255
    # reach 8/255; no clipping for x in [0.25, 0.75]) and the L2 one along -w_y.
    kernel = model.get_layer("linear").get_weights()[0]
    w_y = kernel[:, y].T.reshape(x.shape)
    np.testing.assert_allclose(d_inf, -8 / 255 * np.sign(w_y), atol=1e-6)
    direction = -w_y / np.sqrt((w_y ** 2).sum(axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(d_2, 10 * 0.025 * direction, atol=1e-5)


def test_the_cross_entropy_setting_steps_along_the_softmax_gradient():
    model = linear_model((8, 8, 1), num_classes=3, seed=1)
    rng = np.random.default_rng(5)
    x = rng.random((16, 8, 8, 1), dtype=np.float32) * 0.5 + 0.25
    y = rng.integers(0, 3, 16)
    one_step = dc.Eq6Config(l2=None).replace(steps=1, input_diversity=0.0, smoothing_kernel=0)
    d_ce, _ = dc.perturbations([model], x, y, one_step.replace(loss="ce"))
    d_logit, _ = dc.perturbations([model], x, y, one_step)
    # By hand: the cross-entropy gradient of logits W x + b is W (softmax - onehot);
    # one step of 2/255 along its sign (the L1 normalisation keeps the sign).
    kernel = model.get_layer("linear").get_weights()[0]
    p = tf.nn.softmax(model(x)).numpy()
    grad = (p - np.eye(3)[y]) @ kernel.T
    np.testing.assert_allclose(d_ce, 2 / 255 * np.sign(grad).reshape(x.shape), atol=1e-6)
    # The logit loss steps along -w_y alone: a different perturbation.
    np.testing.assert_allclose(d_logit, -2 / 255 * np.sign(kernel[:, y].T).reshape(x.shape),
                               atol=1e-6)
    assert np.mean(d_ce != d_logit) > 0.1
    with pytest.raises(ValueError, match="loss"):
        dc.Eq6Config().replace(loss="hinge")


def test_settings_from_an_older_version_resume_and_other_losses_are_refused(tmp_path, data,
                                                                             ensemble):
    x, y = data
    out = str(tmp_path / "out")
    first = dc.enhance(x, y, ensemble, **fast(output_dir=out))
    plan_path = os.path.join(out, records.PLAN_FILE)
    with open(plan_path) as f:
        plan = json.load(f)
    # As an older version wrote it: the former keywords, before `loss` existed.
    plan["attack"] = {"iterations": 3, "linf_epsilon": 8 / 255, "linf_step": 2 / 255,
                      "l2_epsilon": 1.0, "l2_step": 0.025, "decay": 1.0, "diversity_prob": 0.7,
                      "smoothing_kernel": 5, "random_start": False}
    with open(plan_path, "w") as f:
        json.dump(plan, f)
    again = dc.enhance(x, y, ensemble, **fast(output_dir=out))
    np.testing.assert_array_equal(again.images, first.images)
    with pytest.raises(ValueError, match="different enhancement run.*attack"):
        dc.enhance(x, y, ensemble, attack=ATTACK.replace(loss="ce"),
                   options=OPTIONS.replace(output_dir=out))
    with pytest.raises(ValueError, match="Unknown attack settings.*'steps'"):
        dc.Eq6Config.from_config({"steps": 3})


def test_disabling_one_ball_leaves_only_the_other(ensemble):
    rng = np.random.default_rng(4)
    x = rng.random((4, *SHAPE), dtype=np.float32)
    y = np.zeros(4, np.int32)
    d_inf, d_2 = dc.perturbations(ensemble, x, y, dc.Eq6Config(l2=None).replace(steps=2))
    assert np.abs(d_inf).max() > 0 and not d_2.any()


# ---------------------------------------------------------------------------- corruptions


def test_corrupted_images_regenerate_from_their_records(data, ensemble):
    x, y = data
    result = dc.enhance(x, y, ensemble, **FAST)
    corrupted = np.flatnonzero(result.parts == "corrupted")
    assert len(corrupted) == 40
    names = {result.details[i]["corruption"] for i in corrupted}
    assert names <= set(kc.DATACENTRIC_14) and len(names) > 5
    for i in corrupted[:8]:
        record = result.details[i]
        assert 1 <= record["severity"] <= 5
        again = kc.corrupt(x[i], record["corruption"], record["severity"], seed=record["seed"])
        np.testing.assert_array_equal(result.images[i], again)


def test_float_input_gives_float_output_with_the_same_decisions(data, ensemble):
    x, y = data
    as_uint8 = dc.enhance(x, y, ensemble, **FAST)
    as_float = dc.enhance(x.astype(np.float32) / 255, y, ensemble, **FAST)
    assert as_float.images.dtype == np.float32
    assert as_float.images.min() >= 0 and as_float.images.max() <= 1
    assert as_float.parts.tolist() == as_uint8.parts.tolist()
    corrupted = as_uint8.parts == "corrupted"
    np.testing.assert_array_equal(np.round(as_float.images[corrupted] * 255).astype(np.uint8),
                                  as_uint8.images[corrupted])
    adversarial = as_uint8.parts == "adversarial"
    assert np.abs(as_float.images[adversarial] * 255 - as_uint8.images[adversarial]).max() <= 0.5001


# ---------------------------------------------------------------------------- output


def test_metadata_matches_the_examples(tmp_path, data, ensemble):
    x, y = data
    out = str(tmp_path / "out")
    result = dc.enhance(x, y, ensemble, **fast(output_dir=out))
    metadata = dc.read_metadata(out)
    assert metadata["num_examples"] == metadata["num_examples_out"] == len(x)
    assert metadata["counts"] == result.counts == metadata["planned_counts"]
    assert metadata["seed"] == 0 and metadata["ratio"] == [0.0, 1.0, 4.0]
    assert [s["name"] for s in metadata["surrogates"]] == [m.name for m in ensemble]
    assert all(len(s["fingerprint"]) == 64 for s in metadata["surrogates"])
    assert metadata["attack"] == ATTACK.get_config() and metadata["attack"]["linf"]["steps"] == 3
    assert len(metadata["shards"]) == 4 and sum(s["examples"] for s in metadata["shards"]) == 50
    for shard in metadata["shards"]:
        assert records.sha256_of(os.path.join(out, shard["file"])) == shard["sha256"]
    stored = dc.read_records(out)
    assert [r["part"] for r in stored] == result.parts.tolist()
    assert stored == result.details
    images, labels, parts = next(iter(dc.load(out, batch_size=100, with_part=True)))
    assert [dc.PARTS[p] for p in parts.numpy()] == result.parts.tolist()
    assert np.bincount(parts.numpy(), minlength=3).tolist() == [result.counts[p] for p in dc.PARTS]
    for shard in metadata["shards"]:
        sidecar = json.load(open(os.path.join(out, shard["file"].replace(".tfrecord", ".json"))))
        shard_parts = [r["part"] for r in sidecar["records"]]
        assert {p: shard_parts.count(p) for p in dc.PARTS} == shard["counts"]


def test_loader_round_trip(tmp_path, data, ensemble):
    x, y = data
    out = str(tmp_path / "out")
    result = dc.enhance(x, y, ensemble, **fast(output_dir=out))
    dataset = dc.load(out, batch_size=16)
    assert dataset.element_spec[0].shape.as_list() == [None, *SHAPE]
    assert dataset.element_spec[0].dtype == tf.float32 and dataset.element_spec[1].dtype == tf.int32
    assert int(dataset.cardinality()) == 4
    images = np.concatenate([b[0].numpy() for b in dataset])
    labels = np.concatenate([b[1].numpy() for b in dataset])
    np.testing.assert_array_equal(images, result.images.astype(np.float32) / 255)
    np.testing.assert_array_equal(labels, y)
    adversarial = dc.load(out, batch_size=None, parts="adversarial")
    assert sum(1 for _ in adversarial) == result.counts["adversarial"] == int(adversarial.cardinality())
    shuffled = dc.load(out, batch_size=10, shuffle=True, augment=True, seed=0)
    assert sum(int(b[0].shape[0]) for b in shuffled) == 50
    in_memory = result.to_dataset(batch_size=50)
    np.testing.assert_array_equal(next(iter(in_memory))[0].numpy(), images)
    # float input round-trips exactly
    float_out = str(tmp_path / "float")
    float_result = dc.enhance(x.astype(np.float32) / 255, y, ensemble, **fast(output_dir=float_out))
    loaded = np.concatenate([b[0].numpy() for b in dc.load(float_out, batch_size=50)])
    np.testing.assert_array_equal(loaded, float_result.images)


def test_killed_run_resumes_to_the_same_bytes(tmp_path, data, ensemble):
    x, y = data
    fresh, killed = str(tmp_path / "fresh"), str(tmp_path / "killed")
    dc.enhance(x, y, ensemble, **fast(output_dir=fresh))

    class Killed(Exception):
        pass

    def die_after_two(event):
        if event.shards_done == 2:
            raise Killed()

    with pytest.raises(Killed):
        dc.enhance(x, y, ensemble, **fast(output_dir=killed, progress=die_after_two))
    assert not os.path.exists(os.path.join(killed, records.METADATA_FILE))
    assert len([f for f in _files(killed) if f.endswith(".tfrecord")]) == 2
    with pytest.raises(dc.IncompleteOutputError):
        dc.load(killed)
    assert sum(1 for _ in dc.load(killed, batch_size=None, allow_incomplete=True)) == 32
    # What a kill in the middle of shard 2 leaves: a temporary file and a shard renamed
    # into place whose sidecar was never written.
    stem = records.shard_stem(2, 4)
    open(os.path.join(killed, f"{stem}.tfrecord.tmp-999-dead"), "wb").write(b"partial")
    open(os.path.join(killed, f"{stem}.tfrecord"), "wb").write(b"garbage")
    events = []
    result = dc.enhance(x, y, ensemble, **fast(output_dir=killed, progress=events.append))
    assert [e.skipped for e in events] == [True, True, False, False]
    _same_files(fresh, killed)
    np.testing.assert_array_equal(
        result.images, np.concatenate([b[0].numpy() for b in dc.load(fresh, 50)]) * 255)


def test_a_corrupted_finished_shard_is_rewritten(tmp_path, data):
    x, y = data
    out = str(tmp_path / "out")
    cheap = (1, 0, 4)  # no adversarial part: no surrogates needed
    dc.enhance(x, y, None, cheap, **fast(output_dir=out))
    reference = open(os.path.join(out, "shard-00001-of-00004.tfrecord"), "rb").read()
    open(os.path.join(out, "shard-00001-of-00004.tfrecord"), "wb").write(reference[:-10])
    events = []
    dc.enhance(x, y, None, cheap, **fast(output_dir=out, progress=events.append))
    assert [e.skipped for e in events] == [True, False, True, True]
    assert open(os.path.join(out, "shard-00001-of-00004.tfrecord"), "rb").read() == reference


_KILL_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    import keras
    from helpers import tiny_cnn
    from keras_robust import datacentric as dc
    keras.utils.set_random_seed(7)
    ensemble = [tiny_cnn((16, 16, 3), 3), tiny_cnn((16, 16, 3), 3)]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (120, 16, 16, 3), dtype=np.uint8)
    y = rng.integers(0, 3, 120)
    dc.enhance(x, y, ensemble, attack=dc.Eq6Config().replace(steps=8),
               options=dc.RunOptions(batch_size=8, shard_size=16, output_dir=sys.argv[1],
                                     progress=False))
""")


@pytest.mark.slow
def test_sigkilled_process_resumes_to_the_same_bytes_as_an_uninterrupted_one(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT.format(tests=os.path.dirname(os.path.dirname(__file__))))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    fresh, killed = str(tmp_path / "fresh"), str(tmp_path / "killed")
    subprocess.run([sys.executable, str(script), fresh], check=True, env=env)
    process = subprocess.Popen([sys.executable, str(script), killed], env=env)
    deadline = time.time() + 300
    while not os.path.exists(os.path.join(killed, "shard-00001-of-00008.json")):
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not os.path.exists(os.path.join(killed, records.METADATA_FILE))
    subprocess.run([sys.executable, str(script), killed], check=True, env=env)
    _same_files(fresh, killed)


def test_a_different_run_in_the_folder_is_refused(tmp_path, data, ensemble):
    x, y = data
    out = str(tmp_path / "out")
    cheap = (1, 0, 4)
    dc.enhance(x, y, None, cheap, **fast(output_dir=out))
    with pytest.raises(ValueError, match="different enhancement run.*seed"):
        dc.enhance(x, y, None, cheap, **fast(output_dir=out, seed=1))
    with pytest.raises(ValueError, match="different enhancement run.*surrogates"):
        dc.enhance(x, y, ensemble, cheap, **fast(output_dir=out))
    result = dc.enhance(x, y, None, cheap, **fast(output_dir=out, seed=1, overwrite=True))
    assert dc.read_metadata(out)["seed"] == 1 and len(result) == 50


def test_streamed_dataset_writes_the_same_bytes_as_arrays(tmp_path, data, ensemble):
    x, y = data
    arrays, streamed = str(tmp_path / "arrays"), str(tmp_path / "streamed")
    dc.enhance(x, y, ensemble, **fast(output_dir=arrays))
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(7)  # batched input is unbatched
    metadata = dc.enhance_dataset(dataset, ensemble, streamed, **FAST)
    assert metadata["counts"] == {"clean": 0, "adversarial": 10, "corrupted": 40}
    _same_files(arrays, streamed)
    unknown_size = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: True)
    cheap = (1, 0, 4)
    counted = dc.enhance_dataset(unknown_size, None, str(tmp_path / "counted"), cheap, **FAST)
    assert counted["num_examples"] == 50  # counted in a first pass
    assert counted["counts"] == {"clean": 10, "adversarial": 0, "corrupted": 40}
    with pytest.raises(ValueError, match="num_examples=80"):  # clean only: fails fast
        dc.enhance_dataset(unknown_size, None, str(tmp_path / "short"), ratio=(1, 0, 0),
                           num_examples=80, **FAST)


# ---------------------------------------------------------------------------- workers


def test_workers_partition_the_shards_and_together_write_the_single_worker_output(
        tmp_path, data, ensemble):
    x, y = data
    single, shared = str(tmp_path / "single"), str(tmp_path / "shared")
    dc.enhance(x, y, ensemble, **fast(output_dir=single))
    first = dc.enhance(x, y, ensemble, **fast(output_dir=shared, worker_index=0, num_workers=2))
    assert not os.path.exists(os.path.join(shared, records.METADATA_FILE))
    with pytest.raises(dc.IncompleteOutputError):
        dc.finalize(shared)
    second = dc.enhance(x, y, ensemble, **fast(output_dir=shared, worker_index=1, num_workers=2))
    shards = [sorted({int(i) // 16 for i in r.indices}) for r in (first, second)]
    assert shards == [[0, 2], [1, 3]]
    assert sorted(np.concatenate([first.indices, second.indices]).tolist()) == list(range(50))
    np.testing.assert_array_equal(first.labels, y[first.indices])
    assert len(first) == 32 and len(second) == 18
    _same_files(single, shared)  # the last worker wrote metadata.json


def test_worker_comes_from_tf_config(monkeypatch):
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                           "index": 1}}))
    assert dc_plan.resolve_worker(None, None) == dc_plan.Worker(2, 3)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "chief",
                                                                           "index": 0}}))
    assert dc_plan.resolve_worker(None, None) == dc_plan.Worker(0, 3)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "ps",
                                                                           "index": 0}}))
    with pytest.raises(ValueError, match="'ps'"):
        dc_plan.resolve_worker(None, None)
    monkeypatch.delenv("TF_CONFIG")
    assert dc_plan.resolve_worker(None, None) == dc_plan.Worker(0, 1)
    assert dc_plan.Worker(1, 3).owns(4) and not dc_plan.Worker(1, 3).owns(5)


def test_mirrored_strategy_splits_attack_batches_over_replicas(data):
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("needs two logical CPU devices (set up by conftest.py)")
    x, y = data
    strategy = tf.distribute.MirroredStrategy([d.name for d in devices[:2]])
    with strategy.scope():
        ensemble = [tiny_cnn(SHAPE, 3), tiny_cnn(SHAPE, 3)]
        crafter = dc.perturb.Crafter(ensemble, dc.Eq6Config().replace(steps=3))
        assert crafter.replicas == 2
        first = dc.enhance(x, y, ensemble, **FAST)
        second = dc.enhance(x, y, ensemble, **FAST)
    np.testing.assert_array_equal(first.images, second.images)
    adversarial = first.parts == "adversarial"
    assert adversarial.sum() == 10
    diff = np.abs(first.images[adversarial].astype(int) - x[adversarial].astype(int))
    assert diff.max() > 0
    # The summed perturbation per image, in 0..255 levels, rounded to the nearest level
    # (+0.5): ||.||_inf <= 8 + 255 ||d_2||_2 + 0.5 and ||.||_2 <= (8 + 0.5) sqrt(H*W*C) +
    # 255 ||d_2||_2, with ||d_2||_2 <= 1 (uint8 images differ by at most 255: 8 + 255 cannot fail).
    l2 = np.array([d["l2_norm"] for d in first.details if d["part"] == "adversarial"])
    assert np.all(l2 <= 1.0 + 1e-5)
    flat = diff.reshape(len(diff), -1)
    assert np.all(flat.max(1) <= 8 + 255 * l2 + 0.5)
    assert np.all(np.sqrt((flat ** 2.0).sum(1)) <= 8.5 * np.sqrt(np.prod(SHAPE)) + 255 * l2 + 1e-3)
    assert all(d["linf_norm"] <= 8 / 255 + 1e-6 for d in first.details if d["part"] == "adversarial")


# ---------------------------------------------------------------------------- damaged files


def _clean_run(folder):
    x = np.random.default_rng(5).integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    dc.enhance(x, np.arange(12) % 3, None, ratio=(1, 0, 0),
               options=dc.RunOptions(output_dir=folder, shard_size=4, progress=False))
    return x


def _damage(path, how):
    with open(path, "rb") as f:
        content = bytearray(f.read())
    if how == "truncate":
        content = content[:len(content) // 2]
    else:  # flip bytes in the middle
        middle = len(content) // 2
        content[middle:middle + 8] = bytes(b ^ 0xFF for b in content[middle:middle + 8])
    with open(path, "wb") as f:
        f.write(bytes(content))


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_damaged_shard_is_named_by_load_and_rewritten_by_a_rerun(tmp_path, how):
    folder = str(tmp_path / "run")
    x = _clean_run(folder)
    shard = os.path.join(folder, "shard-00001-of-00003.tfrecord")
    _damage(shard, how)
    with pytest.raises(ValueError,
                       match=r"shard-00001-of-00003\.tfrecord.*SHA-256.*same arguments"):
        dc.load(folder)
    with pytest.raises(ValueError, match="shard-00001-of-00003"):
        dc.load(folder, allow_incomplete=True)
    # Unchecked, it fails only while iterating, without the file's name (DataLossError for
    # flipped bytes; a truncated file reads as fewer records, caught by the cardinality).
    with pytest.raises((tf.errors.DataLossError, tf.errors.FailedPreconditionError)):
        list(dc.load(folder, verify=False))
    _clean_run(folder)  # the remedy the message gives: re-run with the same arguments
    images = np.concatenate([i.numpy() for i, _ in dc.load(folder, batch_size=5)])
    np.testing.assert_array_equal(np.round(images * 255).astype(np.uint8), x)


def test_a_missing_shard_file_is_named(tmp_path):
    folder = str(tmp_path / "run")
    _clean_run(folder)
    os.remove(os.path.join(folder, "shard-00002-of-00003.tfrecord"))
    with pytest.raises(FileNotFoundError, match=r"shard-00002-of-00003\.tfrecord"):
        dc.load(folder)


def test_damaged_json_files_are_named_with_their_remedy(tmp_path):
    folder = str(tmp_path / "run")
    _clean_run(folder)
    metadata = os.path.join(folder, "metadata.json")
    _damage(metadata, "truncate")
    for read in (dc.load, dc.read_metadata, dc.read_records):
        with pytest.raises(ValueError, match=r"metadata\.json.*not valid JSON.*finalize"):
            read(folder)
    dc.finalize(folder)  # the remedy: rebuilt from the sidecars
    assert len(dc.read_records(folder)) == 12
    sidecar = os.path.join(folder, "shard-00000-of-00003.json")
    _damage(sidecar, "truncate")
    # A finished run with an unreadable sidecar: an error, not 4 records silently missing.
    with pytest.raises(ValueError, match=r"shard-00000-of-00003\.json.*same arguments"):
        dc.read_records(folder)
    assert len(dc.read_records(folder, allow_incomplete=True)) == 8  # finished shards only
    _clean_run(folder)  # the rerun rewrites the shard whose sidecar is unreadable
    assert [r["index"] for r in dc.read_records(folder)] == list(range(12))
    # Valid JSON without its "records" list (edited by hand): named, not a bare KeyError.
    with open(sidecar) as f:
        content = json.load(f)
    with open(sidecar, "w") as f:
        json.dump({k: v for k, v in content.items() if k != "records"}, f)
    with pytest.raises(ValueError, match=r'shard-00000-of-00003\.json.*no "records" list.*same'):
        dc.read_records(folder)
    assert len(dc.read_records(folder, allow_incomplete=True)) == 8
    _clean_run(folder)  # the rerun rewrites it
    assert len(dc.read_records(folder)) == 12
    _damage(os.path.join(folder, "plan.json"), "truncate")
    with pytest.raises(ValueError, match=r"plan\.json.*overwrite=True"):
        records.read_plan(folder)
    with pytest.raises(ValueError, match=r"plan\.json.*overwrite=True"):
        _clean_run(folder)
    x = np.random.default_rng(5).integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    dc.enhance(x, np.arange(12) % 3, None, ratio=(1, 0, 0),  # the remedy: start again
               options=dc.RunOptions(output_dir=folder, shard_size=4, progress=False,
                                     overwrite=True))
    assert records.read_plan(folder)["num_examples"] == 12 and len(dc.read_records(folder)) == 12


def test_damaged_test_sets_are_named(tmp_path):
    x = np.zeros((2, 8, 8, 3), np.uint8)
    pair = (x, np.array([0, 1]))
    path = str(tmp_path / "sets.npz")
    dc.TestSets(pair, pair, pair, {}, {"attack": {}}).save(path)
    _damage(path, "truncate")
    with pytest.raises(ValueError, match=r"sets\.npz.*build_test_sets"):
        dc.TestSets.load(path)


# ---------------------------------------------------------------------------- errors


def test_bad_inputs_fail_with_clear_errors(tmp_path, data, ensemble):
    x, y = data
    with pytest.raises(ValueError, match="NHWC"):
        dc.enhance(x[0], y, ensemble, **FAST)
    with pytest.raises(ValueError, match=r"\[0, 1\].*uint8"):
        dc.enhance(x.astype(np.float32), y, ensemble, **FAST)
    with pytest.raises(ValueError, match="50 images but 49 labels"):
        dc.enhance(x, y[:49], ensemble, **FAST)
    with pytest.raises(ValueError, match="argmax"):
        dc.enhance(x, np.eye(3)[y], ensemble, **FAST)
    with pytest.raises(ValueError, match="ratio"):
        dc.enhance(x, y, ensemble, ratio=(0, 0, 0), **FAST)
    with pytest.raises(ValueError, match="ratio"):
        dc.enhance(x, y, ensemble, ratio=(1, 2), **FAST)
    with pytest.raises(ValueError, match="both 0"):
        dc.enhance(x, y, ensemble, linf_epsilon=0, l2_epsilon=0, options=OPTIONS)
    with pytest.raises(ValueError, match="odd"):
        dc.enhance(x, y, ensemble, smoothing_kernel=4, options=OPTIONS)
    with pytest.raises(ValueError, match="surrogates"):
        dc.enhance(x, y, None, **FAST)
    with pytest.raises(ValueError, match="3 logits"):
        dc.enhance(x, np.full(50, 5), ensemble, **FAST)
    with pytest.raises(ValueError, match="takes images"):
        dc.enhance(x[:, :8, :8], y, ensemble, **FAST)
    with pytest.raises(ValueError, match="Unknown corruption"):
        dc.enhance(x, y, ensemble, corruptions=["sunburn"], **FAST)
    with pytest.raises(ValueError, match="output_dir"):
        dc.enhance(x, y, ensemble, **fast(num_workers=2, worker_index=0))
    with pytest.raises(ValueError, match="worker_index"):
        dc.enhance(x, y, ensemble, **fast(output_dir=str(tmp_path / "w"), num_workers=2,
                                          worker_index=2))
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        dc.enhance_dataset(x, ensemble, str(tmp_path / "d"), **FAST)
    with pytest.raises(FileNotFoundError, match="plan.json"):
        dc.load(str(tmp_path))
    dc.enhance(x, y, ensemble, **fast(output_dir=str(tmp_path / "p")))
    with pytest.raises(ValueError, match="parts"):
        dc.load(str(tmp_path / "p"), parts=["noisy"])
    # only corruptions: no surrogates needed
    result = dc.enhance(x, y, None, ratio=(1, 0, 1), **FAST)
    assert result.counts == {"clean": 25, "adversarial": 0, "corrupted": 25}


# ----------------------------------------------------------------- configs and run options


FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")


def test_the_paper_settings_are_the_defaults():
    paper = dc.Eq6Config()
    assert (paper.linf.norm, paper.linf.epsilon, paper.linf.step_size) == ("linf", 8 / 255, 2 / 255)
    assert (paper.l2.norm, paper.l2.epsilon, paper.l2.step_size) == ("l2", 1.0, 0.025)
    for ball in (paper.linf, paper.l2):
        assert (ball.steps, ball.loss, ball.momentum, ball.input_diversity,
                ball.smoothing_kernel, ball.random_start) == (300, "logit", 1.0, 0.7, 5, False)
    with pytest.raises(ValueError, match="norm 'l2'"):
        dc.Eq6Config(l2=dc.LINF_ATTACK)
    with pytest.raises(ValueError, match="restarts"):
        dc.Eq6Config().replace(restarts=2)


def test_an_output_folder_of_an_older_version_resumes(tmp_path):
    # plan.json and shard 0 as the version before `Eq6Config` wrote them (the former
    # keywords under "attack"); the run: 12 uint8 images, ratio 1:0:1, 3 steps, shards of 4.
    folder = str(tmp_path / "older")
    import shutil
    shutil.copytree(os.path.join(FIXTURES, "datacentric_older_run"), folder)
    x = (np.arange(12 * 8 * 8 * 3) % 251).astype(np.uint8).reshape(12, 8, 8, 3)
    attack = dc.Eq6Config().replace(steps=3)
    assert records.read_plan(folder)["attack"] == attack.get_config()
    options = dc.RunOptions(shard_size=4, progress=False)
    events = []
    resumed = dc.enhance(x, np.arange(12) % 3, None, ratio=(1, 0, 1), attack=attack,
                         options=options.replace(output_dir=folder, progress=events.append))
    assert [e.skipped for e in events] == [True, False, False]  # shard 0 kept, not redone
    fresh = dc.enhance(x, np.arange(12) % 3, None, ratio=(1, 0, 1), attack=attack,
                       options=options.replace(output_dir=str(tmp_path / "fresh")))
    np.testing.assert_array_equal(resumed.images, fresh.images)
    assert dc.read_metadata(folder)["attack"] == attack.get_config()
    with pytest.raises(ValueError, match="different enhancement run.*attack"):
        dc.enhance(x, np.arange(12) % 3, None, ratio=(1, 0, 1), attack=attack.replace(steps=4),
                   options=options.replace(output_dir=folder))


def test_the_former_keywords_still_work_and_give_the_same_run(tmp_path, data, ensemble):
    x, y = data
    new = dc.enhance(x, y, ensemble, attack=dc.Eq6Config().replace(steps=3, loss="ce"),
                     options=dc.RunOptions(batch_size=8, shard_size=16, progress=False, seed=2))
    with pytest.warns(DeprecationWarning, match="enhance.*iterations="):
        old = dc.enhance(x, y, ensemble, iterations=3, loss="ce", batch_size=8, shard_size=16,
                         progress=False, seed=2)
    np.testing.assert_array_equal(new.images, old.images)
    with pytest.warns(DeprecationWarning):
        assert dc.AttackSettings(iterations=3, l2_epsilon=0) == dc.Eq6Config(l2=None).replace(
            steps=3)
    with pytest.raises(TypeError, match="not both"):
        dc.enhance(x, y, ensemble, attack=dc.Eq6Config(), iterations=3)
    with pytest.raises(TypeError, match="unexpected keyword"):
        dc.enhance(x, y, ensemble, iteration=3)


def test_a_second_perturbations_call_does_not_trace_again(monkeypatch):
    traces = []
    graph = dc.perturb.perturbation_graph

    def counting(*args):
        traces.append(1)
        return graph(*args)

    monkeypatch.setattr(dc.perturb, "perturbation_graph", counting)
    surrogates = [tiny_cnn((8, 8, 3), 3), tiny_cnn((8, 8, 3), 3)]
    rng = np.random.default_rng(0)
    x, y = rng.random((10, 8, 8, 3), dtype=np.float32), rng.integers(0, 3, 10)
    config = dc.Eq6Config().replace(steps=2)
    first = dc.perturbations(surrogates, x, y, config, batch_size=4)  # batches 4, 4, 2
    assert len(traces) == 1
    second = dc.perturbations(surrogates, x, y, config, batch_size=4)
    third = dc.perturb.Crafter(surrogates, config, batch_size=4)(x[:4], y[:4], seed=5)
    assert len(traces) == 1  # one trace for the surrogates, config and image shape
    np.testing.assert_array_equal(first[0], second[0])
    dc.perturbations(surrogates, x, y, config.replace(steps=3), batch_size=4)
    assert len(traces) == 2  # another config compiles again
    assert third[0].shape == (4, 8, 8, 3)
