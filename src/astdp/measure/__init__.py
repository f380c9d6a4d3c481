"""Measuring instruments, none of them the model: the judge (a CNN trained by backprop), the
measures of generated samples in its feature space, the linear probe of hidden layers, and
in-painting's masks and memory baseline."""
