"""Energy-based models: energy losses, restricted Boltzmann machines, Langevin sampling, Hopfield memories.

* :mod:`.losses`: the energy losses of LeCun et al. (2006) as Module classes
  (the functions live in :mod:`ann.losses` and :mod:`ann.functional`).
* :mod:`.rbm`: restricted Boltzmann machines (Bernoulli or Gaussian visible units), CD-k and PCD.
* :mod:`.langevin`: Langevin sampling from an energy Module or callable, and contrastive-divergence
  training with a replay buffer (Du & Mordatch 2019).
* :mod:`.hopfield`: the classical binary Hopfield memory and the modern dense one (Ramsauer et al. 2020).
"""

from .losses import *  # noqa: F401,F403
from .losses import __all__ as _losses_all
from .hopfield import Hopfield, ModernHopfield, overlap
from .langevin import EBMTrainer, ReplayBuffer, langevin_sample
from .rbm import RBM

__all__ = [*_losses_all, "RBM", "langevin_sample", "ReplayBuffer", "EBMTrainer", "Hopfield", "ModernHopfield", "overlap"]
