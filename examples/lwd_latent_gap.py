"""Which of LWD's two phases limits it: the decoded policy's error under four latents.

    .venv/bin/python examples/lwd_latent_gap.py RUN[/best] ... [--windows 2000]

LWD acts with a small policy pi_z whose weights a hypernetwork decodes from a latent z. Phase 1
trains the decoder with the posterior latent of each demonstration window (an encoder that sees
the window's actions); phase 2 trains a diffusion prior p(z | observation history), which is
what acts in closed loop. For ``--windows`` test windows of the run's own dataset (split as in
training), this prints the mean squared error, in normalised action units, of pi_z's actions
against the demonstrated ones, at the window's first step and along the window (pi_z run on the
window's observations, as in phase 1), for z =

* the posterior mean (what phase 1 fitted: the decoder's own error),
* a sample of the prior and its deterministic sample (x_N = 0; closed-loop validation's mode),
* the mean latent (no information in z: what pi_z reads from the observation alone).

Prior errors far above the posterior's say the latent carries what the prior cannot infer from
the history; a mean-latent error close to the posterior's says the latent is barely used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lnmdn_agents.checkpoint import load_policy
from lnmdn_agents.data import make_splits
from lnmdn_agents.evaluation.run_folders import read_train_config


def latent_gap(run: Path, n_windows: int = 2000, seed: int = 0) -> dict[str, tuple[float, float]]:
    """{latent: (first-step MSE, along-window MSE)} on ``n_windows`` test windows of ``run``."""
    policy = load_policy(run)
    if not hasattr(policy, "sample_latents"):
        raise SystemExit(f"{run}: a {type(policy).__name__} run, not an lwd one")
    policy.eval()
    saved = read_train_config(run)
    test = make_splits(saved["dataset"], policy.config, seed=saved.get("split_seed", 0)).test
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:n_windows]
    items = [test[int(i)] for i in pick]
    obs = torch.stack([x["obs"] for x in items])
    action = torch.stack([x["action"] for x in items])
    norm, to = policy.normalizer, policy.config.n_obs_steps
    target = norm.normalize_action(action)
    steps = min(obs.shape[1], action.shape[1])
    torch.manual_seed(seed)
    with torch.no_grad():
        posterior, _ = policy.encode(obs, action)
        latents = {
            "posterior mean": posterior,
            "prior sample": policy.sample_latents(obs[:, :to], 1)[:, 0],
            "prior deterministic": policy.sample_latents(obs[:, :to], 1, deterministic=True)[:, 0],
            "mean latent": policy.latent_mean.expand_as(posterior),
        }
        out = {}
        for name, z in latents.items():
            pred = policy.decode(z)(norm.normalize_obs(obs[:, :steps])).clamp(-1.0, 1.0)
            err = (pred - target[:, :steps]) ** 2
            out[name] = (err[:, 0].mean().item(), err.mean().item())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="lwd run folders or their best/")
    parser.add_argument("--windows", type=int, default=2000, help="test windows per run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'run':40s} {'latent':20s} first-step MSE  window MSE")
    for run in args.runs:
        for name, (first, window) in latent_gap(run, args.windows).items():
            print(f"{str(run)[-40:]:40s} {name:20s} {first:14.4f}  {window:10.4f}", flush=True)


if __name__ == "__main__":
    main()
