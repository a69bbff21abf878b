"""Which synapses belong to each neuron: lets spike rules touch only the synapses of neurons that spiked."""

from __future__ import annotations

from neuro.backend import array_module

__all__ = ["SynapseIndex"]


def _grouping(keys, n: int, xp):
    order = xp.argsort(keys, kind="stable")
    ptr = xp.zeros(n + 1, dtype=xp.int64)
    ptr[1:] = xp.cumsum(xp.bincount(keys, minlength=n))
    return order, ptr


def _members(order, ptr, neurons, xp):
    starts = ptr[neurons]
    counts = ptr[neurons + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return xp.zeros(0, dtype=xp.int64)
    ends = xp.cumsum(counts)
    k = xp.arange(total, dtype=xp.int64)
    # the neuron each output position belongs to: no repeat() with array counts (CuPy 13 rejects device counts)
    seg = xp.searchsorted(ends, k, side="right")
    return order[starts[seg] + k - (ends - counts)[seg]]


class SynapseIndex:
    """The synapses of each presynaptic and each postsynaptic neuron of a synapse list.

    ``pre_index``, ``post_index``: ``(S,)`` int, synapse ``s`` connects
    ``pre_index[s]`` to ``post_index[s]``; ``n_pre``, ``n_post``: the
    population sizes. Build it once for a fixed connectivity and pass it as
    ``index=`` to :meth:`plasticity.Rule.step_synapses`; a spike rule then
    costs time in proportion to the synapses of the neurons that spiked,
    not to ``S``.
    """

    def __init__(self, pre_index, post_index, n_pre: int, n_post: int):
        xp = array_module(pre_index, post_index)
        i = xp.asarray(pre_index).astype(xp.int64)
        j = xp.asarray(post_index).astype(xp.int64)
        if i.ndim != 1 or j.shape != i.shape:
            raise ValueError(f"pre_index and post_index must be 1-D of the same length, got {i.shape} and {j.shape}")
        if i.size and (int(i.min()) < 0 or int(i.max()) >= n_pre or int(j.min()) < 0 or int(j.max()) >= n_post):
            raise ValueError(f"indices out of range for n_pre={n_pre}, n_post={n_post}")
        self.n_synapses, self.n_pre, self.n_post = int(i.size), int(n_pre), int(n_post)
        self._pre = _grouping(i, self.n_pre, xp)
        self._post = _grouping(j, self.n_post, xp)
        self._xp = xp

    @classmethod
    def from_arrays(cls, pre_order, pre_ptr, post_order, post_ptr) -> "SynapseIndex":
        """An index from its arrays (see :attr:`arrays`), without re-sorting."""
        self = cls.__new__(cls)
        self._xp = array_module(pre_order, post_order)
        self._pre, self._post = (pre_order, pre_ptr), (post_order, post_ptr)
        self.n_synapses, self.n_pre, self.n_post = int(pre_order.shape[0]), int(pre_ptr.shape[0]) - 1, int(post_ptr.shape[0]) - 1
        return self

    @property
    def arrays(self) -> tuple:
        """``(pre_order, pre_ptr, post_order, post_ptr)``: synapses ``pre_order[pre_ptr[m]:pre_ptr[m+1]]`` belong
        to presynaptic neuron ``m`` (likewise for postsynaptic neurons); int64."""
        return self._pre + self._post

    def of_pre(self, neurons):
        """The synapse ids (int64) of presynaptic ``neurons`` (int array)."""
        return _members(*self._pre, neurons, self._xp)

    def of_post(self, neurons):
        """The synapse ids (int64) of postsynaptic ``neurons`` (int array)."""
        return _members(*self._post, neurons, self._xp)
