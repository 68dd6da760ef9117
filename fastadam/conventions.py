"""Each framework's definition of every algorithm, as data.

A convention is a preset: the formula switches (*knobs*) that distinguish the frameworks
and the defaults for every hyperparameter a caller leaves as None. There is no kernel per
convention: the knobs only change the coefficients. Each algorithm keeps its own table
(``fastadam.algorithms.<name>.CONVENTIONS``); this module gathers them.

============  ===============================================================================
name          what it reproduces
============  ===============================================================================
``pytorch``   ``torch.optim.Adam``/``AdamW``/``RMSprop``/``NAdam`` (Adam = Kingma & Ba,
              Algorithm 1)
``keras``     Keras 3 / TF2 (epsilon-hat Adam, eps inside the sqrt in RMSProp, decoupled
              weight decay, lr inside the momentum buffer)
``tf1``       ``tf.compat.v1.train.AdamOptimizer`` / ``RMSPropOptimizer`` (mean square starts
              at 1.0)
``optax``     ``optax.adam``/``adamw``/``amsgrad``/``rmsprop``/``nadam``
``basic``     RMSProp only: the textbook rule, no momentum, no centering, no weight decay
============  ===============================================================================

The specification, with the porting traps, is the documentation page "Conventions"
(``docs/conventions.rst``).
"""

from .algorithms import ALGORITHMS
from .algorithms.adam import Convention as AdamConvention
from .algorithms.nadam import Convention as NAdamConvention
from .algorithms.rmsprop import Convention as RMSPropConvention

__all__ = [
    "CONVENTIONS",
    "AdamConvention",
    "RMSPropConvention",
    "NAdamConvention",
    "ADAM_CONVENTIONS",
    "RMSPROP_CONVENTIONS",
    "NADAM_CONVENTIONS",
    "get",
]

#: algorithm name -> convention name -> Convention
CONVENTIONS = {name: spec.conventions for name, spec in ALGORITHMS.items()}
ADAM_CONVENTIONS = CONVENTIONS["adam"]
RMSPROP_CONVENTIONS = CONVENTIONS["rmsprop"]
NADAM_CONVENTIONS = CONVENTIONS["nadam"]


def get(algorithm, name="pytorch"):
    """The Convention ``name`` of ``algorithm`` (ValueError listing the valid names)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; valid: {list(ALGORITHMS)}")
    return ALGORITHMS[algorithm].convention(name)
