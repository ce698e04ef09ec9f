"""Training-step time of labkit's DiT, side by side with torch's own transformer and with itself
after pruning.

    OMP_NUM_THREADS=1 python bench/dit.py [--preset digits] [--batch 64] [--repeats 30]

Three models see the same tokens (batch x N x hidden) and take one AdamW step per call:
labkit's DiT (adaLN-Zero blocks, attention written out with per-head gates), a stack of
``nn.TransformerEncoderLayer`` of the same width, depth, head count and MLP width (no time
conditioning: a lower bound on what a transformer step costs), and labkit's DiT after 20% and
50% of its heads are pruned structurally. Prints median milliseconds per step (CPU time of this
process, so other jobs on a shared machine inflate it less) and ratios; no assertions.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from labkit.dit import PRESETS, DiT, patchify
from labkit.pruning import prune_heads, random_importance, select_heads


class TorchEncoder(nn.Module):
    """Patch embedding, ``nn.TransformerEncoder`` of the DiT's shape, linear read-out."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        patch_dim = config.patch_size**2 * config.channels
        self.embed = nn.Linear(patch_dim, config.hidden)
        layer = nn.TransformerEncoderLayer(config.hidden, config.num_heads, int(config.hidden * config.mlp_ratio),
                                           dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.depth, enable_nested_tensor=False)
        self.out = nn.Linear(config.hidden, patch_dim)

    def forward(self, x, t):
        return self.out(self.encoder(self.embed(patchify(x, self.config.patch_size))))


def step_times(models: dict, x, t, repeats: int) -> dict[str, float]:
    """Median CPU seconds of one forward + backward + AdamW step per model. Models take turns
    (round robin), so a change in the machine's load hits all of them alike."""
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in models.items()}
    times = {name: [] for name in models}
    for i in range(repeats + 3):
        for name, model in models.items():
            start = time.process_time()
            loss = model(x, t).pow(2).mean()
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
            if i >= 3:  # warm-up steps excluded
                times[name].append(time.process_time() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="digits", choices=tuple(PRESETS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    config = PRESETS[args.preset]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, config.channels, config.image_size, config.image_size, generator=g)
    t = torch.rand(args.batch, generator=g) + 0.01
    dit = DiT(config, generator=g)
    models = {"labkit DiT": dit, "nn.TransformerEncoder": TorchEncoder(config)}
    for ratio in (0.2, 0.5):
        models[f"DiT pruned {ratio:.0%}"] = prune_heads(dit, select_heads(random_importance(dit, g), ratio))
    print(f"preset {args.preset}: {config.depth} blocks x {config.num_heads} heads, width {config.hidden}, "
          f"{config.num_patches} tokens, batch {args.batch}, torch threads {torch.get_num_threads()}")
    seconds_per_step = step_times(models, x, t, args.repeats)
    base = seconds_per_step["labkit DiT"]
    for name, model in models.items():
        seconds = seconds_per_step[name]
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:24s} {1e3 * seconds:8.2f} ms/step   {params:>10,d} params   ratio to DiT {seconds / base:5.2f}")


if __name__ == "__main__":
    main()
