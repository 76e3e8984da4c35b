"""Where a world's prompts and responses come from, and how its texts are embedded.

- ``synthetic_items``: generated how-to prompts over two prompt types (``everyday``,
  ``technical``) with two responses each, built from helpful and unhelpful sentences; the
  latent quality (helpful minus unhelpful sentences) is known exactly. The first sentence
  always carries the direct answer, so ``drop_answer`` really lowers quality.
- ``file_items``: any preference file ``collector.io.importers.parse_file`` reads (HH-RLHF,
  TRL, UltraFeedback, ...); the human-chosen response is the better one, and the quality gap
  is set so the simulated annotator follows the human label up to the world's flip rate.
- (``models.embeddings.BagOfWordsEmbedder`` is the hashed bag-of-words stand-in for MiniLM in tests, cheap and
  deterministic, which (unlike a random vector per text) lets a model generalise to unseen
  texts the way a sentence embedding does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acquisition.core.errors import ConfigError
from collector.jobs.simulate import quality_gap_for_flip_rate


@dataclass(frozen=True)
class Item:
    """One prompt with a truly better and a truly worse response (before any attribute)."""

    prompt: str
    task_type: str
    better: str
    worse: str
    quality_better: float
    quality_worse: float


_TOPICS = {
    "everyday": [
        "bake sourdough bread", "repot a houseplant", "fix a flat bicycle tyre", "train a puppy to sit",
        "plan a weekend trip on a budget", "get a red wine stain out of a carpet", "start running as a beginner",
        "keep basil alive indoors", "make a weekly meal plan", "unclog a kitchen sink", "sleep better at night",
        "write a thank-you letter", "paint a small bedroom", "save money on groceries", "sharpen a kitchen knife",
        "pack a suitcase for a long trip", "grow tomatoes on a balcony", "learn to swim as an adult",
        "organise a cluttered wardrobe", "brew good coffee at home", "prepare for a job interview",
        "change a car tyre", "make fresh pasta", "teach a child to ride a bike", "reduce food waste",
    ],
    "technical": [
        "set up a Python virtual environment", "speed up a slow SQL query", "fix a merge conflict in git",
        "write a unit test for a function", "parse a CSV file in Python", "find a memory leak in a service",
        "deploy a web app with Docker", "profile a slow Python script", "design a REST API endpoint",
        "back up a PostgreSQL database", "configure SSH keys for a server", "debug a failing CI pipeline",
        "add an index to a database table", "handle errors in asynchronous code", "reduce the size of a Docker image",
        "write a regular expression for email addresses", "migrate a database schema safely",
        "cache the results of an expensive function", "set up logging in an application",
        "read a large file without running out of memory", "secure a web form against injection",
        "schedule a nightly job with cron", "version a machine learning dataset", "review a pull request",
        "load test an HTTP service",
    ],
}
_PROMPTS = ("How do I {t}?", "Can you explain how to {t}?", "What is the best way to {t}?",
            "I need to {t}. Where should I start?", "Any advice on how to {t}?")
_ANSWERS = (
    "To {t}, start with the smallest working version and check the result after every step.",
    "The most reliable way to {t} is to prepare everything first and then follow a fixed order of steps.",
    "To {t}, first write down what you need, then do one step at a time and test each one.",
    "A good way to {t} is to copy a proven example and change one detail at a time.",
)
_HELPFUL = (
    "Measure the result after each change so you know which step actually helped.",
    "Keep notes of what you did, so you can repeat it or undo it later.",
    "If something fails, go back to the last step that worked and compare the two.",
    "Set aside enough time for preparation, because most problems come from skipping it.",
    "Check the official documentation or instructions for the exact amounts and settings.",
    "Once it works, repeat the whole process once more to make sure the result is stable.",
    "Ask someone experienced to look over your first attempt and point out mistakes.",
)
_UNHELPFUL = (
    "Honestly, nobody really knows, so just do whatever feels right.",
    "You could search the internet, someone has probably written about it somewhere.",
    "It does not matter much how you do it, the result is always about the same.",
    "I would not bother with it, most people give up anyway.",
    "There are many opinions about it and none of them is better than the others.",
    "Maybe ask a friend, they might know more than me.",
)
_EVASIVE_FIRST = (
    "Well, there are lots of ways to {t} and it is hard to say which one is right.",
    "It is difficult to explain how to {t} in a few words.",
    "People {t} in many different ways and it is mostly a matter of taste.",
)


def _response(rng: np.random.Generator, topic: str, helpful: int, unhelpful: int, answer: bool) -> tuple[str, float]:
    """A response with a direct answer (or an evasive opener) first, then ``helpful`` and
    ``unhelpful`` sentences shuffled; quality = answer (2) + helpful - unhelpful."""
    openers = _ANSWERS if answer else _EVASIVE_FIRST
    first = openers[int(rng.integers(len(openers)))]
    rest = list(rng.choice(_HELPFUL, size=helpful, replace=False)) + list(rng.choice(_UNHELPFUL, size=unhelpful, replace=False))
    rng.shuffle(rest)
    return " ".join([first.format(t=topic), *rest]), 2.0 * answer + helpful - unhelpful


def synthetic_items(n: int, seed: int, hidden_quality: float = 0.0) -> list[Item]:
    """``n`` generated prompts (half of each type), each with a better and a worse response.

    A response's true quality is what its text shows (answer, helpful and unhelpful sentences)
    plus a hidden part, normal with SD ``hidden_quality``, that no text feature reveals (as with
    human labels, not everything that decided a judgement is visible to a reward model)."""
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    seen: set[str] = set()
    types = sorted(_TOPICS)
    attempts = 0
    while len(items) < n:
        attempts += 1
        if attempts > 50 * n:
            raise ConfigError(f"source.train + source.test: cannot generate {n} distinct synthetic prompts.")
        task_type = types[len(items) % len(types)]
        topic = _TOPICS[task_type][int(rng.integers(len(_TOPICS[task_type])))]
        prompt = _PROMPTS[int(rng.integers(len(_PROMPTS)))].format(t=topic)
        prompt = f"{prompt} (question {len(items) + 1})" if prompt in seen else prompt
        seen.add(prompt)
        a = _response(rng, topic, int(rng.integers(1, 4)), int(rng.integers(0, 2)), True)
        b = _response(rng, topic, int(rng.integers(0, 2)), int(rng.integers(1, 3)), bool(rng.random() < 0.3))
        a, b = (a[0], a[1] + hidden_quality * rng.normal()), (b[0], b[1] + hidden_quality * rng.normal())
        (better, qb), (worse, qw) = (a, b) if a[1] >= b[1] else (b, a)
        if qb == qw or better == worse:
            continue
        items.append(Item(prompt, task_type, better, worse, qb, qw))
    return items


def file_items(path: str, flip_rate: float, noise: float) -> list[Item]:
    """Human preference pairs as items: chosen is better by the gap that makes the simulated
    annotator agree with the human with probability ``1 - flip_rate`` (ties aside)."""
    from collector.io.importers import parse_file

    parsed = parse_file(path)
    gap = quality_gap_for_flip_rate(flip_rate, noise)
    items, seen = [], set()
    for pref in parsed.preferences:
        if pref.outcome != "chosen" or pref.chosen == pref.rejected or not pref.chosen.strip() \
                or not pref.rejected.strip() or pref.prompt in seen:
            continue
        seen.add(pref.prompt)
        items.append(Item(pref.prompt, "general", pref.chosen, pref.rejected, gap, 0.0))
    if not items:
        raise ConfigError(f"{path}: no usable preference pairs (need distinct chosen and rejected texts).")
    return items


def split_items(items: list[Item], train: int, test: int, seed: int) -> tuple[list[Item], list[Item]]:
    """Shuffle and split into a training pool and held-out test prompts."""
    if len(items) < train + test:
        raise ConfigError(
            f"source: {len(items)} usable prompts, fewer than source.train + source.test = {train + test}; "
            "lower them in the world file."
        )
    order = np.random.default_rng(seed).permutation(len(items))
    chosen = [items[i] for i in order[: train + test]]
    return chosen[:train], chosen[train:]




@dataclass(frozen=True)
class MultiItem:
    """One prompt with several responses of known quality (every pair of them is a candidate)."""

    prompt: str
    task_type: str
    responses: tuple[str, ...]
    qualities: tuple[float, ...]


def synthetic_multi_items(n: int, k: int, seed: int, hidden_quality: float = 0.0) -> list[MultiItem]:
    """``n`` generated prompts with ``k`` responses each, for the active-acquisition protocol:
    the responses' visible quality ranges from an evasive opener with unhelpful sentences to a
    direct answer with three helpful ones, so the ``k (k - 1) / 2`` pairs of a prompt run from
    easy (a large quality gap) to nearly indistinguishable; plus a hidden part (SD
    ``hidden_quality``) no text shows."""
    if k < 2:
        raise ConfigError(f"responses per prompt: must be at least 2; got {k}.")
    rng = np.random.default_rng(seed)
    types = sorted(_TOPICS)
    out: list[MultiItem] = []
    seen: set[str] = set()
    while len(out) < n:
        task_type = types[len(out) % len(types)]
        topic = _TOPICS[task_type][int(rng.integers(len(_TOPICS[task_type])))]
        prompt = _PROMPTS[int(rng.integers(len(_PROMPTS)))].format(t=topic)
        prompt = f"{prompt} (question {len(out) + 1})" if prompt in seen else prompt
        seen.add(prompt)
        texts: list[str] = []
        qualities: list[float] = []
        while len(texts) < k:
            text, q = _response(rng, topic, int(rng.integers(0, 4)), int(rng.integers(0, 3)), bool(rng.random() < 0.6))
            if text in texts:
                continue
            texts.append(text)
            qualities.append(q + hidden_quality * float(rng.normal()))
        out.append(MultiItem(prompt, task_type, tuple(texts), tuple(qualities)))
    return out
