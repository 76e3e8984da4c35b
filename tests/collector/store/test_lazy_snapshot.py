"""The server's pool snapshot holds ids and reads texts on demand."""

import pytest

from acquisition.core.pool import TextLookup, texts_of


def test_text_lookup_reads_on_demand_and_keeps_a_bounded_cache():
    calls = []

    def fetch(ids):
        calls.append(list(ids))
        return {i: f"text {i}" for i in ids}

    texts = TextLookup([5, 3, 9, 3], fetch, cache_size=2)
    assert len(texts) == 3 and list(texts) == [3, 5, 9] and 5 in texts and 4 not in texts and "5" not in texts
    assert texts[5] == "text 5" and texts[5] == "text 5"
    assert calls == [[5]]  # the second read came from the cache
    with pytest.raises(KeyError):
        texts[4]
    assert texts.get(4, "") == ""
    assert texts_of(texts, [3, 9, 5]) == {3: "text 3", 9: "text 9", 5: "text 5"}
    assert len(texts._cache) == 2


def test_the_collectors_policy_reads_the_same_texts_as_an_eager_snapshot(store, collector):
    lazy, eager = store.pool_snapshot(lazy_texts=True), store.pool_snapshot()
    assert isinstance(lazy.response_text, TextLookup) and isinstance(eager.response_text, dict)
    assert set(lazy.response_text) == set(eager.response_text)
    assert {r: lazy.response_text[r] for r in eager.response_text} == eager.response_text
    policy, _ = collector.active_policy()
    assert isinstance(policy.pool.response_text, TextLookup)
