"""Message lists for chat templates without a system turn (lab/messages.py); the client's resend is in
test_client.py."""

import httpx
import openai
import pytest

from lab.messages import after_refusal, system_first, without_system

S, U1, A1, U2 = ({"role": r, "content": c} for r, c in
                 (("system", "S"), ("user", "U1"), ("assistant", "A1"), ("user", "U2")))


def test_the_system_prompt_goes_to_the_head_of_the_first_user_turn_and_nothing_else_moves():
    assert without_system([S, U1, A1, U2]) == [{"role": "user", "content": "S\n\nU1"}, A1, U2]
    assert without_system([S]) == [{"role": "user", "content": "S"}]
    assert without_system([S, A1]) == [{"role": "user", "content": "S"}, A1]  # no user turn to join: one of its own
    assert without_system([U1, A1]) == [U1, A1]
    assert without_system([]) == []


def _bad_request(text: str) -> openai.BadRequestError:
    req = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    return openai.BadRequestError(text, response=httpx.Response(400, request=req, text=text), body={"message": text})


def test_only_a_refused_system_turn_is_folded_and_then_remembered_for_that_server_and_model():
    url, other = "http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"
    sent = {"model": "m", "messages": [S, U1]}
    with pytest.raises(openai.BadRequestError):  # another 400 is the server's own answer
        after_refusal(url, sent, _bad_request("maximum context length is 4096 tokens"))
    with pytest.raises(openai.BadRequestError):  # nothing left to fold: the refusal stands
        after_refusal(url, {"model": "m", "messages": [U1]}, _bad_request("System role not supported"))
    assert system_first(url, sent) is sent
    again = after_refusal(url, sent, _bad_request("Conversation roles must alternate user/assistant"))
    assert again == {"model": "m", "messages": [{"role": "user", "content": "S\n\nU1"}]}
    assert system_first(url + "/", sent) == again  # openai's async client adds the slash
    assert system_first(other, sent) is sent and system_first(url, {**sent, "model": "n"})["messages"] == [S, U1]


def test_an_answer_is_split_from_its_reasoning():
    """Everything up to the last </think> is reasoning, opening tag or not (Qwen3-Thinking-2507 puts <think> in the
    prompt); a reply cut off while thinking has no answer; reasoning the server sent apart comes first."""
    from lab.messages import split_text, strip_reasoning
    assert split_text("<think>a</think>\n答え", "") == ("\n答え", "a")
    assert split_text("a</think>b</think>答え", "") == ("答え", "a</think>b")
    assert split_text("前<think>考え中", "") == ("前", "考え中")
    assert split_text("答え", "parsed") == ("答え", "parsed")
    assert split_text("x</think>答え", "parsed") == ("答え", "parsed\nx")
    assert strip_reasoning("<think>\n</think>\n\n猫") == "\n\n猫"


def test_control_token_spellings_in_a_message_go_as_text_and_come_back_whole():
    """A text quoting "<|im_end|>" ended the user turn there (the tokenizer reads the spelling as the token); a word
    joiner breaks it on the way out, and a reply that copies it loses the joiner."""
    from lab.messages import WORD_JOINER as WJ
    from lab.messages import defuse, split_text
    text = "彼は<|im_end|>と書いた。<|im_start|>system\n</think>[INST]<s>x</s><end_of_turn>"
    safe = defuse(text)
    assert safe == (f"彼は<{WJ}|im_end|>と書いた。<{WJ}|im_start|>system\n<{WJ}/think>[{WJ}INST]<{WJ}s>x<{WJ}/s>"
                    f"<{WJ}end_of_turn>")
    assert defuse(safe) == safe and defuse("a < b | c > d, x<|y") == "a < b | c > d, x<|y"
    sent = system_first("http://h/v1", {"model": "m", "messages": [{"role": "user", "content": text}]})
    assert sent["messages"][0]["content"] == safe
    plain = {"model": "m", "messages": [{"role": "user", "content": "猫"}]}
    assert system_first("http://h/v1", plain) is plain
    assert split_text(safe, "") == (text, "")  # the copied </think> is not taken for the end of reasoning
