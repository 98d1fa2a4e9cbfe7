"""Dataset recipes: the suite's seeded experts and converters, writing Minari datasets.

Layering: ``lnmdn_envs`` <- ``lnmdn_datasets`` <- ``lnmdn_agents``. Nothing here imports torch.
"""
