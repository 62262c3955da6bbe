"""One line per defence: the parametrised production tests cover every entry.

`make(builder)` builds the defence from `builder`, a zero-argument function
returning a fresh small backbone (AFS builds its extractors with it).
`deterministic(builder)` is the same defence with every random draw switched
off or fixed by its seed, for parity tests that compare runs bit for bit (it
skips the test where the runs compared cannot draw the same).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import pytest
import tensorflow as tf

import keras_robust as kr


@dataclasses.dataclass(frozen=True)
class Case:
    make: Callable
    deterministic: Callable | None


def _afs(builder, **kwargs):
    return kr.AFSModel([builder(), builder()], epsilon=0.05, steps=2, seed=0, **kwargs)


def _one_device(reason: str) -> None:
    # Randomness keyed on (seed, step, replica): each replica draws for its own part of
    # the batch, so a 2-replica step is another draw than one device's, not the same run.
    if tf.distribute.get_strategy().num_replicas_in_sync > 1:
        pytest.skip(reason)


def _mtlat_deterministic(builder):
    # M-TLAT's draws (Beta lambdas, partners, budgets, targets) are stateless,
    # keyed on (seed, step, replica), and XLA draws the same: with a fixed seed
    # this runs the whole of Algorithm 1, Mixup and the targeted FGSM included.
    # Each replica splits and mixes its own batch (partners cannot cross
    # replicas), so a two-replica step is another draw of Algorithm 1 than the
    # single-device step, not the same computation: no parity to test there.
    _one_device("M-TLAT halves and mixes each replica's batch: a 2-replica step draws "
                "other pairs and halves than one device, so runs cannot match")
    return kr.MTLATModel(builder(), epsilon_max=0.05, seed=0)


def _gaussian_noise_deterministic(builder):
    # The noise is XLA-stable (`_random.normal`): the XLA step draws what the graph step does.
    _one_device("GaussianNoiseModel: each replica draws its own half-batch's noise")
    return kr.GaussianNoiseModel(builder(), sigma=0.25, seed=0)


def _grad_align_deterministic(builder):
    # FGSM from a zero start; the alignment term's eta is XLA-stable (`_random.uniform`).
    _one_device("GradAlignModel: each replica draws its own half-batch's eta")
    return kr.GradAlignModel(builder(), epsilon=0.05, seed=0)


CASES: dict[str, Case] = {
    "plain": Case(lambda b: kr.RobustModel(b(), seed=0), lambda b: kr.RobustModel(b(), seed=0)),
    "pgd_at": Case(
        lambda b: kr.PGDATModel(b(), epsilon=0.05, step_size=0.02, steps=2, seed=0),
        lambda b: kr.PGDATModel(b(), epsilon=0.05, step_size=0.02, steps=2, random_start=False,
                                seed=0)),
    # The training attack on batch statistics (BatchNorm frozen while it runs).
    "pgd_at_batch_bn": Case(
        lambda b: kr.PGDATModel(b(), epsilon=0.05, step_size=0.02, steps=2,
                                attack_batchnorm="batch", seed=0),
        lambda b: kr.PGDATModel(b(), epsilon=0.05, step_size=0.02, steps=2, random_start=False,
                                attack_batchnorm="batch", seed=0)),
    "bat": Case(lambda b: kr.BATModel(b(), epsilon=0.05, seed=0),
                lambda b: kr.BATModel(b(), epsilon=0.05, random_start=False, seed=0)),
    "bpfc": Case(lambda b: kr.BPFCModel(b(), seed=0), lambda b: kr.BPFCModel(b(), noise=False, seed=0)),
    "afs": Case(_afs, lambda b: _afs(b, random_start=False)),
    "mtlat": Case(lambda b: kr.MTLATModel(b(), epsilon_max=0.05, seed=0), _mtlat_deterministic),
    # TRADES' KL attack needs its Gaussian start, which each replica draws apart: the
    # deterministic case keeps the TRADES loss on a CE attack from x.
    "trades": Case(lambda b: kr.TRADESModel(b(), epsilon=0.05, step_size=0.02, steps=2, seed=0),
                   lambda b: kr.TRADESModel(b(), epsilon=0.05, step_size=0.02, steps=2, loss="ce",
                                            random_start=False, seed=0)),
    # Randomized smoothing's Gaussian augmentation: a stateless draw keyed on the step.
    "gaussian_noise": Case(lambda b: kr.GaussianNoiseModel(b(), sigma=0.25, seed=0),
                           _gaussian_noise_deterministic),
    # GradAlign: FGSM training plus the alignment term's second-order gradient.
    "grad_align": Case(lambda b: kr.GradAlignModel(b(), epsilon=0.05, seed=0),
                       _grad_align_deterministic),
    # MART shares TRADES' PairedModel; its own part, the loss, is tested in tests/mart/.
    # Adversarial weight perturbation over PGD-AT: the extra `awp_gamma` variable and the
    # weight restore through saving, export, resume, XLA and two replicas.
    "pgd_at_awp": Case(
        lambda b: kr.PGDATModel(b(), epsilon=0.05, step_size=0.02, steps=2, seed=0,
                                weight_perturbation=kr.AWPConfig(gamma=0.01)),
        lambda b: kr.PGDATModel(b(), epsilon=0.05, step_size=0.02, steps=2, random_start=False,
                                seed=0, weight_perturbation=kr.AWPConfig(gamma=0.01))),
}
