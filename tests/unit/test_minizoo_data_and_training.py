"""The coloured digits dataset and deterministic CPU training."""

import numpy as np
import torch

from filterlens.models.architectures import build_architecture
from filterlens.train.digits import coloured_digits, to_tensor
from filterlens.train.minizoo import PGDSettings, TrainSettings, accuracy, train


def test_coloured_digits_are_seeded_rgb_32x32_with_a_fixed_stratified_split():
    a, b = coloured_digits(seed=3), coloured_digits(seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.x_train.shape == (1347, 3, 32, 32) and a.x_test.shape == (450, 3, 32, 32)
    assert a.x_train.dtype == np.uint8
    assert set(np.bincount(a.y_test)) <= {43, 44, 45, 46}  # stratified: 25 % of each class (174-183)
    assert not np.array_equal(coloured_digits(seed=4).x_train, a.x_train)
    # Colour varies between images: the three channels are not copies of each other.
    assert np.abs(a.x_train[:, 0].astype(int) - a.x_train[:, 1]).mean() > 10


def _tiny_training(adversarial):
    data = coloured_digits(limit=60)
    x, y = to_tensor(data.x_train), torch.from_numpy(data.y_train)
    model = build_architecture("wide_resnet", {"depth": 10, "widen_factor": 1}, 10, seed=7)
    attack = PGDSettings(eps=0.1, step_size=0.05, steps=2) if adversarial else None
    history = train(model, x, y, TrainSettings(1, 15, 0.05, 0.9, 5e-4, seed=7, adversarial=attack), log=lambda _: None)
    return model, history


def test_training_is_deterministic_on_cpu():
    for adversarial in (False, True):
        (m1, h1), (m2, h2) = _tiny_training(adversarial), _tiny_training(adversarial)
        assert h1 == h2
        for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
            assert torch.equal(v1, v2), k


def test_pgd_does_not_raise_accuracy_and_stays_in_the_ball():
    from filterlens.train.attacks import pgd_linf

    model, _ = _tiny_training(False)
    data = coloured_digits(limit=60)
    x, y = to_tensor(data.x_test), torch.from_numpy(data.y_test)
    x_adv = pgd_linf(model, x, y, eps=0.1, step_size=0.05, steps=3, generator=torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert accuracy(model, x, y, PGDSettings(0.1, 0.05, 3)) <= accuracy(model, x, y)
