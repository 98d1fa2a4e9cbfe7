"""``diffusion``: Diffusion Policy's conditional 1-D U-Net; DDPM training, DDPM/DDIM sampling."""

from lnmdn_agents.policies.diffusion.configuration import DiffusionConfig
from lnmdn_agents.policies.diffusion.modeling import ConditionalUnet1D, DiffusionPolicy
from lnmdn_agents.policies.noise_scheduler import NoiseScheduler

__all__ = ["ConditionalUnet1D", "DiffusionConfig", "DiffusionPolicy", "NoiseScheduler"]
