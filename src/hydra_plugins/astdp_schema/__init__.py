"""Registers astdp's config schema with Hydra's ConfigStore in every process that composes ``conf/``.

Hydra imports every module under the ``hydra_plugins`` namespace when it starts, so DVC's
own composition of ``params.yaml`` (``dvc exp run``) finds the ``schema`` entries that
``conf/config.yaml`` lists, without importing the package itself.
"""
import astdp.config  # noqa: F401  (registration happens on import)
