"""Stage of notebook 05: C -> Rust as SACToR does it (tasks, build, sandboxed tests, translate loop)."""

from lab.c2rust.harness import (
                                CaseResult,
                                CheckReport,
                                check,
                                check_source,
                                clippy_warnings,
                                count_unsafe,
                                extract_rust,
                                load_tests,
)
from lab.c2rust.loop import batch, feedback, programs, translate

__all__ = ["CaseResult", "CheckReport", "batch", "check", "check_source", "clippy_warnings", "count_unsafe",
           "extract_rust", "feedback", "load_tests", "programs", "translate"]
