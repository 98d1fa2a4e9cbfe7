"""Demonstrations as training windows: episodes, Diffusion Policy's padded windows, splits, stats.

One module per job, every name re-exported here (``from lnmdn_agents.data import make_splits``):

* :mod:`~lnmdn_agents.data.windows`: :class:`Episode` (the training view of one demonstration),
  :class:`WindowDataset` (its (To, T) windows, padded as Diffusion Policy's ``SequenceSampler``)
  and :func:`compute_stats` (the normalisation statistics);
* :mod:`~lnmdn_agents.data.loading`: :func:`load_episodes` from a Minari dataset (provisioned on
  first use) and :func:`training_targets`;
* :mod:`~lnmdn_agents.data.splits`: the seeded train/val/test splits (by episode, or by window
  for the reference protocol), the nested :data:`TRAINING_FRACTIONS`, and :func:`make_splits`,
  which does it all.

Minari stores whole episodes; policies train on windows declared by their config::

    obs window   :  |o(t-1)|o(t)|                               (To = n_obs_steps)
    action window:  |a(t-1)|a(t) ... a(t+14)|                   (T = horizon, starts at t-To+1)

Typical use::

    from lnmdn_agents.data import make_splits
    splits = make_splits("lnmdn/pusht/expert-v0", policy_config, seed=0, fraction=0.1)
    loader = torch.utils.data.DataLoader(splits.train, batch_size=64, shuffle=True)
    policy = make_policy("liquid_mdn", policy_config, stats=splits.stats)
"""

from lnmdn_agents.data.loading import load_episodes, training_targets
from lnmdn_agents.data.splits import (
    SPLIT_UNITS,
    TRAINING_FRACTIONS,
    DataSplits,
    fraction_subset,
    make_splits,
    split_episodes,
)
from lnmdn_agents.data.windows import Episode, WindowDataset, compute_stats

__all__ = [
    "SPLIT_UNITS",
    "TRAINING_FRACTIONS",
    "DataSplits",
    "Episode",
    "WindowDataset",
    "compute_stats",
    "fraction_subset",
    "load_episodes",
    "make_splits",
    "split_episodes",
    "training_targets",
]
