"""The pipeline stages, one Hydra app each: download -> judge -> train -> evaluate -> generate.

Importing this package pins the CPU kernels' dispatch level before torch runs a kernel, so
that a stage writes the same bytes on any x86-64 CPU with AVX2: ATen's vectorized kernels,
oneDNN's (the judge's convolutions) and MKL's BLAS would otherwise each pick the widest
instructions the CPU has (AVX-512 here, AVX2 elsewhere), and their float sums differ in the
last bits, which training amplifies into a different checkpoint. A variable already set in
the environment wins (``ATEN_CPU_CAPABILITY=avx512`` gives the CPU's own speed back).
"""
import os
import platform

CPU_PINS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2,STRICT"}

if platform.machine().lower() in ("x86_64", "amd64"):
    for _key, _value in CPU_PINS.items():
        os.environ.setdefault(_key, _value)
