"""Hand-written fast paths of the models, each beside its plain PyTorch reference.

The model files (rnnzoo/models/) read as the Keras originals' layers and only select a kernel from here.
Every kernel computes what its reference computes (values and gradients, checked in tests/test_kernels.py)
and is here because it is faster on the hardware rnnzoo trains on:

- dropout.py: inverted-dropout masks from 8- or 16-bit lanes of random 64-bit words (`dropout_mask`,
  `LaneDropout`); reference `reference_dropout_mask`, one uniform draw per element.
- embedding.py: `KeptGradEmbedding` (the weight gradient in a buffer kept from step to step, only the
  touched rows cleared) and `TimeMajorEmbedding` (output laid out as the fused LSTM reads it); reference
  `reference_embedding`, nn.Embedding's lookup.
- lstm.py: `stepwise_lstm`, a CPU training path for one LSTM layer with its backward written out, and
  `WeightDropLSTM`, DropConnect on the recurrent weights inside the fused kernel; reference `reference_lstm`,
  the LSTM cell step by step with autograd (also the path for what the fused kernels cannot run).
- conv_lstm.py: `ConvLSTMFunction`, a whole ConvLSTM layer's forward and backward; reference
  `reference_conv_lstm`, the cell step by step with autograd. Under torch.export (`rnnzoo export`) the
  layer is `scan_conv_lstm`, the same cell in one scan over the frames.
- conv1d.py: `ChannelsLastConv1d` and `ChannelsLastMaxPool1d`, Keras' Conv1D and MaxPooling1D on (B, T, C)
  sequences run as 2-D operations on that memory; references `reference_conv1d`, `reference_max_pool1d`.
- conv3d.py: `time_sliced_conv3d`, a Conv3D with one output channel as one 2-D convolution over all
  frames; reference `reference_conv3d`, F.conv3d over the time-padded video.
"""
