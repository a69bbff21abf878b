"""The registered studies: importing this package registers each of them.

Add a study by writing a module here and importing it below.
"""

from . import activations, compare_rules, rbm_digits  # noqa: F401
from . import dying_relu, relufication, sparse_inference, sparsity_activations  # noqa: F401
from . import reservoir_benchmarks  # noqa: F401
from . import lsm_separation  # noqa: F401
from . import lsm_classification  # noqa: F401
from . import coupled  # noqa: F401
from . import scaling_laws  # noqa: F401
from . import all_studies  # noqa: F401  (last: it runs the others)
