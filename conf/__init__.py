# Makes conf/ the package astdp.conf in an installed astdp (see pyproject.toml), so Hydra
# finds the configs as pkg://astdp.conf from any folder. Only the YAML files matter here.
