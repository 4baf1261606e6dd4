"""rnnzoo: the seven classic Keras recurrent-network examples, ported to PyTorch."""

__version__ = "0.1.0"
