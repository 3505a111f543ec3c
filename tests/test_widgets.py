"""lab.widgets: the playground and compare view against a real local server, headless (plain text, no widget)
and as widgets driven the way their buttons drive them (the browser test clicks them in JupyterLab)."""

import pytest
from helpers import openai_fake

from lab.client import Client
from lab.widgets import ChatPanel, CompareView, Reply, compare, playground


def echo(body):
    """Answers '<model>: <the user turn>', so a test sees which model got which prompt."""
    return 200, f"{body['model']}: {body['messages'][-1]['content']}", "stop"


@pytest.fixture
def client():
    srv = openai_fake(echo, model="base", adapters=("ame-lora",))
    yield Client(srv.url, model="base", timeout=10, max_retries=0)
    srv.close()


def frame(text: str, glossary: bool) -> str:
    return f"[{'g' if glossary else '-'}] {text}"


def test_a_headless_playground_prints_one_plain_answer_and_builds_no_widget(client, capsys):
    r = playground(client, frame=frame, headless=True, prompt="駅\n二行目")
    assert r == Reply("base", "駅\n二行目", "base: [-] 駅\n二行目")
    assert capsys.readouterr().out == "[base] 駅 -> base: [-] 駅\n二行目\n"  # the prompt's first line only


def test_a_headless_compare_asks_both_models_the_same_framed_prompt(client, capsys):
    assert compare(client, "base", "ame-lora", prompt="駅", frame=frame, headless=True) == (
        "base: [-] 駅", "ame-lora: [-] 駅")
    assert capsys.readouterr().out.splitlines() == ["[base] base: [-] 駅", "[ame-lora] ame-lora: [-] 駅"]


def test_the_chat_panel_offers_the_servers_models_and_sends_what_its_controls_say(client):
    panel = ChatPanel(client, frame=frame, prompt="駅")
    assert list(panel.model.options) == ["base", "ame-lora"] and panel.model.value == "base"
    panel.model.value, panel.glossary.value = "ame-lora", True
    assert panel.send() == "ame-lora: [g] 駅" == panel.answer
    assert "tokens in" in panel.status.value and "tok/s" in panel.status.value
    assert ChatPanel(client).glossary.disabled  # nothing to frame: no glossary to tick


def test_the_compare_view_defaults_to_the_first_and_last_model(client):
    view = CompareView(client, prompt="駅")
    assert (view.left.value, view.right.value) == ("base", "ame-lora")
    assert view.send() == ("base: 駅", "ame-lora: 駅") == view.answers
