"""Chat messages: lists built from a prompt and reshaped for a template with no system turn; a reply's answer
split from its reasoning."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lab import LabError
from lab.server_errors import server_message

if TYPE_CHECKING:  # openai is imported where used: `lab` starts without it (test_cli)
    import openai

# A chat template that has no system turn raises, and vLLM answers 400 with its text: Gemma's "System role not
# supported", Mistral v0.1's "Conversation roles must alternate user/assistant/..."
SYSTEM_REFUSED = re.compile(r"system role|roles must alternate", re.IGNORECASE)


# Text that a tokenizer reads as a control token when it stands in a message: a novel (or a C comment) quoting
# "<|im_end|>" ended the user turn there, and the rest read as a turn of its own. A word joiner (U+2060) after
# the first character keeps the text for the model and breaks the token; replies lose every word joiner.
CONTROL = re.compile(r"<\|[^|<>\s]{1,64}\|>|</?think>|<(?:start|end)_of_turn>|\[/?INST\]|</?s>")
WORD_JOINER = "\u2060"


def need_chat_template(tok: Any, model: str, why: str) -> None:
    """One line for a tokenizer without a chat template (a base model) where `why` renders prompts with it."""
    if not getattr(tok, "chat_template", None):
        raise LabError(f"{model}: its tokenizer has no chat template (a base model?); {why}: use the Instruct "
                       f"version, or put a chat_template.jinja in the folder")


def defuse(text: str) -> str:
    """`text` with every control-token spelling broken by a word joiner (idempotent)."""
    return CONTROL.sub(lambda m: m.group(0)[0] + WORD_JOINER + m.group(0)[1:], text)


def defused(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with every string content defused (a chat request, a fine-tuning record)."""
    return [{**m, "content": defuse(m["content"])} if isinstance(m.get("content"), str) else m for m in messages]


def messages_of(prompt: str | list[dict[str, str]], system: str | None = None) -> list[dict[str, str]]:
    """A chat message list from a plain prompt (or pass one through)."""
    if isinstance(prompt, list):
        return prompt
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": prompt}]


def without_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The messages with a leading system prompt moved to the head of the first user turn (as llama.cpp's Gemma
    template does); the messages themselves when they hold no system turn."""
    if not (messages and messages[0].get("role") == "system"):
        return messages
    system, rest = messages[0]["content"], messages[1:]
    if rest and rest[0].get("role") == "user":
        return [{"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}, *rest[1:]]
    return [{"role": "user", "content": system}, *rest]


# (base URL, model) whose chat template refused a system turn: later requests go folded at once, not after a 400
# each (a translation of 300 chunks sent 300 refused requests first).
_NO_SYSTEM: set[tuple[str, str]] = set()


def _server_model(base_url: Any, kw: dict[str, Any]) -> tuple[str, str]:
    """The key of _NO_SYSTEM (openai's async client keeps the URL with a trailing slash, the sync one here without)."""
    return str(base_url).rstrip("/"), str(kw.get("model"))


def system_first(base_url: Any, kw: dict[str, Any]) -> dict[str, Any]:
    """Request arguments (a chat request's, or a /tokenize body's) as they go to the server: control tokens
    defused, and the system turn folded in where this server refused it before."""
    if not kw.get("messages"):
        return kw
    msgs = defused(kw["messages"])
    if _server_model(base_url, kw) in _NO_SYSTEM:
        return {**kw, "messages": without_system(msgs)}
    return kw if msgs == kw["messages"] else {**kw, "messages": msgs}


def after_refusal(base_url: Any, sent: dict[str, Any], e: openai.BadRequestError) -> dict[str, Any]:
    """The request to send once more when the server's 400 refused the system turn `sent` held (remembered for the
    server and model); otherwise the error itself is raised."""
    msgs = sent.get("messages") or []
    if not (msgs and msgs[0].get("role") == "system" and SYSTEM_REFUSED.search(server_message(e))):
        raise e
    _NO_SYSTEM.add(_server_model(base_url, sent))
    return {**sent, "messages": without_system(msgs)}


def send_folded(base_url: Any, send: Callable[[dict[str, Any]], Any], kw: dict[str, Any]) -> Any:
    """send(kw) (a blocking request), once more with the system turn folded in when the server's template refused
    it; stream_chat does the same awaiting."""
    import openai
    sent = system_first(base_url, kw)
    try:
        return send(sent)
    except openai.BadRequestError as e:
        return send(after_refusal(base_url, sent, e))


THINK_END = "</think>"


def strip_reasoning(reply: str) -> str:
    """The answer of a thinking model: what follows the last </think> (the opening tag may be in the prompt,
    as in Qwen3-Thinking-2507's template), or the text before an unterminated <think>."""
    return split_text(reply, "")[0]


def split_reasoning(message: Any) -> tuple[str, str]:
    """(answer, reasoning) of a chat message: vLLM's reasoning parser fills reasoning_content (or reasoning);
    without it, everything up to the last </think> is reasoning, opening tag or not."""
    extra = getattr(message, "model_extra", None) or {}
    return split_text(message.content or "", extra.get("reasoning") or extra.get("reasoning_content") or "")


def split_text(content: str, reasoning: str) -> tuple[str, str]:
    """(answer, reasoning) of a reply's text and the reasoning the server sent apart (maybe none)."""
    if THINK_END in content:
        head, content = content.rsplit(THINK_END, 1)
        reasoning = (reasoning + "\n" + head.replace("<think>", "", 1)).strip()
    elif "<think>" in content:  # cut off while thinking: nothing after the tag is an answer
        content, head = content.split("<think>", 1)
        reasoning = (reasoning + "\n" + head).strip()
    return content.replace(WORD_JOINER, ""), reasoning  # a defused token the model copied is the text again
