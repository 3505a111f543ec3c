"""lab.translate.endpoints: several real local servers as one pool; a failing one leaves, its request moves, and it
comes back once it answers /v1/models again."""

import asyncio

import openai
import pytest
from helpers import free_port, openai_fake

from lab.translate import endpoints
from lab.translate.endpoints import Endpoint, NoEndpoint, Pool


def pool(urls: list[str], said: list[str]) -> Pool:
    eps = [Endpoint(u, openai.AsyncOpenAI(base_url=u, api_key="k", timeout=3, max_retries=0)) for u in urls]
    return Pool(eps, say=said.append)


async def ask(c: openai.AsyncOpenAI) -> str:
    r = await c.chat.completions.create(model="fake", messages=[{"role": "user", "content": "駅"}], seed=1)
    return r.choices[0].message.content


def run(p: Pool, n: int = 1) -> list[tuple[str, str]]:
    async def go():
        return [await p.call(ask) for _ in range(n)]
    return asyncio.run(go())


@pytest.fixture
def up():
    srv = openai_fake(lambda body: (200, "车站", "stop"))
    yield srv
    srv.close()


def test_a_dead_endpoint_hands_its_request_to_a_live_one_and_says_so(up):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    said: list[str] = []
    p = pool([dead, up.url], said)
    assert run(p, 2) == [("车站", up.url)] * 2
    assert p.endpoints[0].down and p.endpoints[0].error == "APIConnectionError"
    assert said == [f"translate: endpoint {dead} failed (APIConnectionError); 1 other(s) carry on, its requests "
                    f"move to them"]  # once, not once a request


def test_every_endpoint_failing_is_one_error_naming_each():
    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    with pytest.raises(NoEndpoint, match=r"no endpoint answers: .*\(APIConnectionError\), .*\(APIConnectionError\)"):
        run(pool(dead, []))
    with pytest.raises(NoEndpoint, match=r"server .* failed after 2 retries \(APIConnectionError\)"):
        run(pool(dead[:1], []))


def test_a_5xx_moves_the_request_too():
    failing = openai_fake(lambda body: (500, "boom", "stop"))
    ok = openai_fake(lambda body: (200, "车站", "stop"))
    try:
        assert run(pool([failing.url, ok.url], [])) == [("车站", ok.url)]
    finally:
        failing.close()
        ok.close()


def test_a_rejected_request_is_not_moved():
    """A 400 is the request's fault: another endpoint would reject it too."""
    bad = openai_fake(lambda body: (400, "too long", "stop"))
    ok = openai_fake(lambda body: (200, "车站", "stop"))
    try:
        with pytest.raises(openai.BadRequestError):
            run(pool([bad.url, ok.url], []))
        assert not [r for r in ok.requests if "chat" in r[0]]
    finally:
        bad.close()
        ok.close()


def test_the_fewest_requests_in_flight_go_first(up):
    other = openai_fake(lambda body: (200, "站", "stop"))
    try:
        p = pool([up.url, other.url], [])
        p.endpoints[0].in_flight = 3  # busy with three
        assert run(p) == [("站", other.url)]
    finally:
        other.close()


def test_a_failed_endpoint_is_probed_and_comes_back(up, monkeypatch):
    monkeypatch.setattr(endpoints, "PROBE_EVERY_S", 0.0)
    said: list[str] = []
    p = pool([up.url], said)
    p.endpoints[0].down, p.endpoints[0].error = True, "APIConnectionError"
    assert run(p) == [("车站", up.url)]
    assert not p.endpoints[0].down and said == [f"translate: endpoint {up.url} answers again; back in the rotation"]
