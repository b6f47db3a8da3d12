"""How strong can an L∞ attack at ε = 0.1 get on the 16 px digits evaluator?

Per test image (all 360), the evaluator counts as fooled when any of these finds an
adversarial example in the ball: PGD on the cross-entropy, 20 steps from the best of 10
random starts; PGD on the cross-entropy, 100 steps from the clean image (no random
start); and a multi-targeted PGD (Gowal et al. 2019) on the margin ``f_t − f_y``, 20
steps toward each of the 9 other classes. Needs the evaluator (``gankit evaluator train
digits --resolution 16``); one thread.

    python benchmarks/pgd_strength.py
"""

import torch

from gankit.attacks import IMAGE_BOUNDS, STEP_FACTOR, pgd, project, random_start
from gankit.data import load_dataset
from gankit.metrics.features import load_evaluator

EPS = 0.1
torch.set_num_threads(1)
net = load_evaluator("digits", resolution=16).net.eval()
x, y = load_dataset("digits", resolution=16).test.tensors


def fooled(x_adv: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x_adv).argmax(dim=1) != y


def margin_toward(target: torch.Tensor, steps: int, generator: torch.Generator) -> torch.Tensor:
    """Targeted PGD: raise ``f_target − f_y`` by L∞ steps of 2.5 ε / steps."""
    x_adv = project(random_start(x, EPS, "linf", generator), x, EPS, "linf", IMAGE_BOUNDS)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        logits = net(x_adv)
        margin = logits.gather(1, target[:, None]) - logits.gather(1, y[:, None])
        (grad,) = torch.autograd.grad(margin.sum(), x_adv)
        x_adv = project(x_adv + STEP_FACTOR * EPS / steps * grad.sign(), x, EPS, "linf",
                        IMAGE_BOUNDS)  # fmt: skip
    return x_adv.detach()


generator = torch.Generator().manual_seed(0)
results = {
    "PGD-CE, 20 steps, best of 10 random starts": fooled(
        pgd(net, x, y, EPS, "linf", 20, generator=generator, restarts=10)
    ),
    "PGD-CE, 100 steps, no random start": fooled(
        pgd(net, x, y, EPS, "linf", 100, random_init=False)
    ),
}
targeted = torch.zeros(len(x), dtype=torch.bool)
for shift in range(1, 10):
    targeted |= fooled(margin_toward((y + shift) % 10, 20, generator))
results["multi-targeted PGD on the margin, 9 targets x 20 steps"] = targeted
results["any of the three"] = torch.stack(list(results.values())).any(dim=0)
print(f"digits evaluator at 16 px, {len(x)} test images, L∞ ε = {EPS}:")
for name, wrong in results.items():
    print(f"  {name}: accuracy {100 * (1 - wrong.float().mean().item()):.1f} %")
print("python benchmarks/pgd_strength.py")
