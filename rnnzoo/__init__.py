"""rnnzoo: the seven classic Keras recurrent-network examples, ported to PyTorch."""

# OpenMP's wait policy is left to the runtime (and to the user). Forcing PASSIVE (idle threads sleep) made
# a lone 2-thread process 3-5x slower on this project's 2-core machine (`rnnzoo bench` babi_rnn 134 vs 609
# samples/s, imdb_lstm 640 vs 1807); it helps only where other processes keep the cores busy, and there
# OMP_WAIT_POLICY=PASSIVE or OMP_NUM_THREADS=1 can be set by hand (see the README).

__version__ = "0.1.0"
