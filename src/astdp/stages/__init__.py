"""The pipeline stages, one Hydra app each: download -> train -> evaluate -> generate."""
