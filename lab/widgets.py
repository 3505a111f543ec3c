"""Playground widgets (ipywidgets): a streaming chat/translate panel and a side-by-side compare view."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab import paths
from lab.client import Client

DEFAULT_PROMPT = "私は日本語を勉強しています。"
# (input text, glossary ticked) -> the prompt sent; a stage passes its own (lab.translate.panel_prompt), so this
# core module needs no stage. None sends the text as typed.
Framer = Callable[[str, bool], str]


def _framed(frame: Framer | None, text: str, glossary: bool = False) -> str:
    return frame(text, glossary) if frame else text


class ChatPanel:
    """Text area, model selector (from /v1/models), temperature, max tokens, glossary toggle, Send, output.

    The answer streams into the output area with tokens/s. `send()` does what the button does, so a
    headless run (papermill, nbval) gets an answer without anyone clicking and nothing waits for input."""

    def __init__(self, client: Client, frame: Framer | None = None, prompt: str = DEFAULT_PROMPT) -> None:
        import ipywidgets as w
        self.client = client
        self.frame = frame
        models = [m["id"] for m in client.models()]
        self.text = w.Textarea(value=prompt, description="input", layout=w.Layout(width="95%", height="80px"))
        self.model = w.Dropdown(options=models, value=client.model, description="model")
        self.temperature = w.FloatSlider(value=0.0, min=0.0, max=1.5, step=0.1, description="temperature")
        self.max_tokens = w.IntSlider(value=64, min=8, max=1024, step=8, description="max tokens")
        self.glossary = w.Checkbox(value=False, description="glossary", disabled=frame is None)
        self.button = w.Button(description="Send", button_style="primary")
        self.output = w.Output(layout=w.Layout(border="1px solid #ccc", min_height="40px", width="95%"))
        self.status = w.HTML(value="")
        self.answer = ""
        self.button.on_click(lambda _: self.send())
        self.view = w.VBox([self.text, w.HBox([self.model, self.glossary]),
                            w.HBox([self.temperature, self.max_tokens]), w.HBox([self.button, self.status]),
                            self.output])

    def send(self) -> str:
        """Stream an answer for the current input into the output area; returns it."""
        prompt = _framed(self.frame, self.text.value, self.glossary.value)
        self.output.clear_output()
        self.status.value = "<i>generating…</i>"
        pieces: list[str] = []

        def show(piece: str) -> None:
            pieces.append(piece)
            with self.output:
                print(piece, end="", flush=True)
        t0 = time.perf_counter()
        r = self.client.stream(prompt, model=self.model.value, max_tokens=self.max_tokens.value,
                               temperature=self.temperature.value, thinking=False, on_text=show)
        dt = time.perf_counter() - t0
        self.answer = r.text
        self.status.value = (f"<span class='lab-done'>{r.completion_tokens} tokens in {dt:.2f}s "
                             f"({r.completion_tokens / dt:.0f} tok/s), TTFT {1000 * (r.ttft or 0):.0f} ms</span>")
        return r.text

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.view)


class CompareView:
    """The same input to two models (e.g. base vs a LoRA adapter), answers side by side."""

    def __init__(self, client: Client, left: str | None = None, right: str | None = None,
                 prompt: str = DEFAULT_PROMPT, frame: Framer | None = None) -> None:
        import ipywidgets as w
        self.client, self.frame = client, frame
        models = [m["id"] for m in client.models()]
        self.text = w.Textarea(value=prompt, description="input", layout=w.Layout(width="95%"))
        self.left = w.Dropdown(options=models, value=left or models[0], description="left")
        self.right = w.Dropdown(options=models, value=right or models[-1], description="right")
        self.out_left, self.out_right = w.Output(), w.Output()
        self.button = w.Button(description="Compare", button_style="primary")
        self.answers: tuple[str, str] = ("", "")
        self.button.on_click(lambda _: self.send())
        self.view = w.VBox([self.text, w.HBox([self.left, self.right, self.button]),
                            w.HBox([w.VBox([w.HTML("<b>left</b>"), self.out_left], layout=w.Layout(width="48%")),
                                    w.VBox([w.HTML("<b>right</b>"), self.out_right], layout=w.Layout(width="48%"))])])

    def send(self) -> tuple[str, str]:
        """Ask both models; returns (left answer, right answer)."""
        prompt = _framed(self.frame, self.text.value)
        answers = []
        for model, out in ((self.left.value, self.out_left), (self.right.value, self.out_right)):
            r = self.client.chat(prompt, model=model, max_tokens=64, thinking=False)
            out.clear_output()
            with out:
                print(r.text)
            answers.append(r.text)
        self.answers = (answers[0], answers[1])
        return self.answers

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.view)


@dataclass
class Reply:
    """What a headless playground answered."""

    model: str
    prompt: str
    answer: str


# Headless runs (papermill, nbval) build no widget at all: an Output widget routes a cell's output through
# comm messages that nbclient must pair with the cell (its output hooks), and the kernel then sends two to
# three messages per streamed token. Plain prints are what a log or a text diff needs anyway.
def playground(client: Client, frame: Framer | None = None, headless: bool = False,
               prompt: str = DEFAULT_PROMPT) -> ChatPanel | Reply:
    """Show the chat panel; headless (papermill/nbval) prints one answer as plain text, with no widget."""
    if headless:
        text = _framed(frame, prompt)
        r = client.stream(text, max_tokens=64, temperature=0.0, thinking=False)
        print(f"[{client.model}] {prompt.splitlines()[0]} -> {r.text}")
        return Reply(client.model, prompt, r.text)
    panel = ChatPanel(client, frame=frame, prompt=prompt)
    from IPython.display import display
    display(panel)
    return panel


def compare(client: Client, left: str, right: str, prompt: str = DEFAULT_PROMPT, frame: Framer | None = None,
            headless: bool = False) -> CompareView | tuple[str, str]:
    """The compare view; headless: both answers printed as text (no widget), returned as (left, right)."""
    if not headless:
        view = CompareView(client, left, right, prompt=prompt, frame=frame)
        from IPython.display import display
        display(view)
        return view
    text = _framed(frame, prompt)
    answers = tuple(client.chat(text, model=m, max_tokens=64, thinking=False).text for m in (left, right))
    for m, a in zip((left, right), answers, strict=True):
        print(f"[{m}] {a}")
    return answers[0], answers[1]


def screenshot_dir() -> Path:
    """Where browser tests put their screenshots (under runs/)."""
    d = paths.runs() / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d
