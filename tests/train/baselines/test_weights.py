"""The weight baselines (plada_train.baselines.weights): pruning zeroes the smallest weights, and
retraining after pruning keeps them zero."""

from __future__ import annotations

import torch

from plada_train import baselines


def test_pruning_zeroes_the_smallest_weights():
    model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Linear(10, 2))
    pruned = baselines._pruned(model, 0.5)
    weights = torch.cat([m.weight.flatten() for m in pruned if isinstance(m, torch.nn.Linear)])
    assert int((weights == 0).sum()) == 60  # half of 120 weights
    original = torch.cat([m.weight.flatten() for m in model if isinstance(m, torch.nn.Linear)]).abs()
    assert original[weights == 0].max() <= original[weights != 0].min()


def test_retraining_after_pruning_keeps_the_pruned_weights_zero():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Linear(10, 2))
    pruned_before = baselines._pruned(model, 0.5)
    zeros_before = [m.weight == 0 for m in pruned_before]

    def finetune(m):
        optimiser = torch.optim.SGD(m.parameters(), lr=1.0)
        for _ in range(3):
            optimiser.zero_grad()
            m(torch.randn(8, 10)).square().sum().backward()
            optimiser.step()
        return m

    tuned = baselines._pruned(model, 0.5, finetune)
    for layer, zero in zip(tuned, zeros_before):
        assert torch.equal(layer.weight == 0, zero)  # the same weights pruned, and still zero
    assert any(not torch.equal(a.weight, b.weight) for a, b in zip(tuned, pruned_before))  # the rest moved
