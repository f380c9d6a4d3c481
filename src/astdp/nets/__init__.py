"""The networks and the rule: plain torch, no Lightning, Hydra or W&B.

``rule``: the local learning rule and the one learning step; ``family``: what every local
network shares; ``visible`` and ``joined``: the two aSTDP networks; ``mlp``: the backprop twin's.
"""
