"""Stage of notebook 05: C -> Rust as SACToR does it (tasks, build, sandboxed tests, translate loop)."""

from lab.c2rust import sandbox
from lab.c2rust.build import available_crates, build_rust, crates_used
from lab.c2rust.harness import CaseResult, CheckReport, check, check_source, count_unsafe, extract_rust
from lab.c2rust.loop import LoopSettings, batch, per_round, programs, translate
from lab.c2rust.prompts import feedback
from lab.c2rust.report import passed_plot, table
from lab.c2rust.sactor import sactor_config
from lab.c2rust.tasks import Case, Task, load_task, normalize

__all__ = ["Case", "CaseResult", "CheckReport", "LoopSettings", "Task", "available_crates", "batch", "build_rust",
           "check", "check_source", "count_unsafe", "crates_used", "extract_rust", "feedback", "load_task",
           "normalize", "passed_plot", "per_round", "programs", "sactor_config", "sandbox", "table", "translate"]
