"""LLM Lab Workbook helper package: notebooks call into these modules."""

import logging

__version__ = "0.1.0"

# bitsandbytes 0.50 warns on every import on AVX512-BF16 CPUs that its optional hub kernel ("pip install
# kernels", fetched from the Hugging Face Hub at run time) is missing. The workbook never fetches from a hub and
# the built-in CPU kernels are what it uses, so that logger shows errors only.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


class LabError(Exception):
    """A user-facing error: the CLI prints its one-line message and exits non-zero."""
