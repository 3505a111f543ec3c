"""Stage of notebook 04: Japanese -> Chinese long-text translation (sources, chunks, prompts, checks, cache)."""

from lab.translate.chunking import Chunk, Unit, chunk_budget, make_chunks, max_tokens_for
from lab.translate.document import FAILED_MARK
from lab.translate.eval import evaluate, rejections
from lab.translate.pipeline import Settings, Translator
from lab.translate.prompts import PromptSpec, Term, load_fewshot, load_glossary, panel_prompt, terms_in
from lab.translate.variants import base_vs_adapter, scored, translate

__all__ = ["Chunk", "FAILED_MARK", "PromptSpec", "Settings", "Term", "Translator", "Unit", "base_vs_adapter",
           "chunk_budget", "evaluate", "load_fewshot", "load_glossary", "make_chunks", "max_tokens_for",
           "panel_prompt", "rejections", "scored", "terms_in", "translate"]
