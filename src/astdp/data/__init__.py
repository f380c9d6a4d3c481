"""The datasets: IDX files, their download and checksums, and the Lightning data module."""
