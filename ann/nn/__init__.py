"""Layers with PyTorch's names and state-dict naming (see :class:`Module`).

Core layers (:mod:`.layers`, :mod:`.activation`), recurrent layers
(:mod:`.recurrent`, :mod:`.seq2seq`), attention and Transformers
(:mod:`.attention`, :mod:`.transformer`), state-space models (:mod:`.ssm`)
and RWKV (:mod:`.rwkv`); loss modules (:mod:`.loss`).
"""

from .activation import *  # noqa: F401,F403
from .activation import __all__ as _act_all
from .attention import MultiheadAttention
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all
from .loss import *  # noqa: F401,F403
from .loss import __all__ as _loss_all
from .module import Module, Parameter
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .rwkv import RWKVLM, RWKVBlock, RWKVChannelMix, RWKVTimeMix
from .seq2seq import BahdanauAttention, Seq2Seq
from .ssm import S4D, CausalDepthwiseConv1d, Mamba, MambaLayer, MambaLM
from .transformer import LearnedPositionalEncoding, SinusoidalPositionalEncoding, TransformerBlock, TransformerLM

__all__ = [
    "Module",
    "Parameter",
    *_layers_all,
    *_act_all,
    *_loss_all,
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
    "BahdanauAttention", "Seq2Seq",
    "MultiheadAttention",
    "LearnedPositionalEncoding", "SinusoidalPositionalEncoding", "TransformerBlock", "TransformerLM",
    "S4D", "CausalDepthwiseConv1d", "Mamba", "MambaLayer", "MambaLM",
    "RWKVBlock", "RWKVTimeMix", "RWKVChannelMix", "RWKVLM",
]
