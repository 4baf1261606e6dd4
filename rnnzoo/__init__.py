"""rnnzoo: the seven classic Keras recurrent-network examples, ported to PyTorch."""

import os

# Idle OpenMP threads sleep instead of spinning. On a small shared machine spinning threads starve the
# ones doing the work (measured on 2 busy cores: a conv_lstm epoch took 236 s spinning, 28 s passive).
# Set before torch is imported, which starts the OpenMP runtime; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
