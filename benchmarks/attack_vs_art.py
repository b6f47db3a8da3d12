"""One case against the Adversarial Robustness Toolbox 1.20.1 (installed aside, not a
dependency): FGSM and PGD without random start on a fixed network and batch."""

import numpy as np
import torch
from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier

from gankit.attacks import fgsm, pgd
from gankit.data import load_dataset
from gankit.metrics.features import fit_classifier

bundle = load_dataset("digits", resolution=8)
x, y = bundle.train.tensors
net = fit_classifier(x, y, 10, epochs=4)
xt, yt = bundle.test.tensors
xt, yt = xt[:64], yt[:64]
clf = PyTorchClassifier(
    net,
    loss=torch.nn.CrossEntropyLoss(),
    input_shape=(1, 8, 8),
    nb_classes=10,
    clip_values=(-1.0, 1.0),
    device_type="cpu",
)
for norm, art_norm, eps in (("linf", np.inf, 0.1), ("l2", 2, 0.5)):
    ours = fgsm(net, xt, yt, eps, norm).numpy()
    theirs = FastGradientMethod(clf, norm=art_norm, eps=eps).generate(xt.numpy(), y=yt.numpy())
    print(f"FGSM {norm} eps={eps}: max |ours - ART| = {np.abs(ours - theirs).max():.2e}")
    steps, alpha = 10, 2.5 * eps / 10
    ours = pgd(net, xt, yt, eps, norm, steps=steps, random_init=False).numpy()
    attack = ProjectedGradientDescent(
        clf,
        norm=art_norm,
        eps=eps,
        eps_step=alpha,
        max_iter=steps,
        num_random_init=0,
        verbose=False,
    )
    theirs = attack.generate(xt.numpy(), y=yt.numpy())
    with torch.no_grad():
        agree = net(torch.from_numpy(ours)).argmax(1) == net(torch.from_numpy(theirs)).argmax(1)
    print(
        f"PGD {norm} eps={eps}, {steps} steps: max |ours - ART| = "
        f"{np.abs(ours - theirs).max():.2e}, same prediction on {int(agree.sum())}/64"
    )
