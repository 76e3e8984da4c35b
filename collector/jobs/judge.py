"""LLM judges as annotators (``python -m collector judge``): a model labels served pairs through
the same ``Collector`` path as people, as annotators of a group of their own, ``llm:<model>``.

Each judge annotator is served pairs by the active policy exactly as a person is (the same
propensities, edits and display order), is shown the study's objective for it (or
``--objective``), and answers with a verdict parsed from its reply. The label stores the
judgement: model, back-end, decoding, the template, the messages sent and the raw reply. A reply
with no verdict is asked again with another seed, up to ``attempts`` times, then the pair is
skipped (kept in the log as skipped, like a person's skip) and counted.

The default template follows MT-Bench's pairwise judge (Zheng et al., 2023): the verdict is
``[[A]]``, ``[[B]]`` or ``[[C]]`` for a tie; A is the left (displayed first) response.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acquisition.core.errors import ConfigError, StudyComplete
from collector.io.importers import text_problem
from collector.serving.service import Collector, PairView
from collector.store import Store
from models.generation import Decoding, GenerationError, Generator

SYSTEM = ("Please act as an impartial judge and evaluate the two responses an AI assistant gave to the user "
          "request below. {objective}Do not let the order of the responses, their length or the assistants' "
          "names influence you. Output your final verdict strictly in this format: \"[[A]]\" if response A "
          "is better, \"[[B]]\" if response B is better, and \"[[C]]\" for a tie.")
USER = ("[User request]\n{prompt}\n\n[The start of response A]\n{response_a}\n[The end of response A]\n\n"
        "[The start of response B]\n{response_b}\n[The end of response B]")
VERDICTS = {"A": "left", "B": "right", "C": "tie"}
_BRACKETED = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_LEADING = re.compile(r"^\W*(?:response\s+)?([AB])\b", re.IGNORECASE)


@dataclass(frozen=True)
class JudgeTemplate:
    system: str = SYSTEM
    user: str = USER

    def validate(self) -> None:
        for key, names in (("system", ("objective",)), ("user", ("prompt", "response_a", "response_b"))):
            try:
                getattr(self, key).format(**{n: "" for n in names})
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(f"judge template {key}: bad placeholder ({exc}); allowed: "
                                  f"{', '.join('{' + n + '}' for n in names)}.") from None

    def messages(self, view: PairView, objective: str | None) -> list[dict[str, str]]:
        goal = f"Judge by this criterion: {objective.strip()} " if objective and objective.strip() else ""
        return [{"role": "system", "content": self.system.format(objective=goal)},
                {"role": "user", "content": self.user.format(prompt=view.prompt, response_a=view.left_text,
                                                             response_b=view.right_text)}]


def parse_verdict(reply: str) -> str | None:
    """``left``, ``right`` or ``tie`` from a judge's reply (the last ``[[A]]``/``[[B]]``/``[[C]]``,
    else a reply that starts with A or B); ``None`` when it gives none."""
    bracketed = _BRACKETED.findall(reply)
    if bracketed:
        return VERDICTS[bracketed[-1].upper()]
    lead = _LEADING.match(reply.strip())
    return VERDICTS[lead.group(1).upper()] if lead else None


def judge_group(generator: Generator) -> str:
    return f"llm:{generator.name}"


def judge_annotators(store: Store, generator: Generator, count: int) -> list[dict[str, Any]]:
    """``count`` annotators of the judge's group (made once, reused by later runs)."""
    group = judge_group(generator)
    existing = {a["name"]: a for a in store.annotators() if a["group_name"] == group}
    out = []
    for k in range(count):
        name = f"{group}#{k + 1}"
        if name not in existing:
            existing[name] = store.add_annotator(name, group=group, covariates={
                "judge_model": generator.name, "judge_backend": generator.backend})[0]
        out.append(existing[name])
    return out


def run_judge(store: Store, generator: Generator, labels: int, objective: str | None = None,
              template: JudgeTemplate | None = None, decoding: Decoding | None = None, attempts: int = 3,
              concurrency: int = 1, seed: int = 0, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Label ``labels`` served pairs with ``generator`` as judge annotators; returns a summary."""
    if labels < 1:
        raise ConfigError(f"--labels: must be at least 1; got {labels}.")
    if attempts < 1 or concurrency < 1:
        raise ConfigError("--attempts and --concurrency: must be at least 1.")
    template = template or JudgeTemplate()
    template.validate()
    decoding = decoding or Decoding(max_new_tokens=512, temperature=0.0)
    collector = Collector(store, seed=seed)
    collector.active_policy()  # a policy that cannot serve fails here, before anything is made
    # one short request first: a server that does not answer creates no judge and serves no pair
    # (GenerationError; nothing written). Failures after it leave each judge's open pair reserved
    # for the next run, which answers it first (the command says so).
    generator.chat([[{"role": "user", "content": "Reply with OK."}]], Decoding(max_new_tokens=2), [seed])
    annotators = judge_annotators(store, generator, concurrency)
    lock = threading.Lock()
    counts: dict[str, Any] = {"group": judge_group(generator), "labels": 0, "skipped_no_verdict": 0,
                              "attempts": 0, "failed": 0, "verdicts": {"left": 0, "right": 0, "tie": 0}}
    start = time.perf_counter()
    claimed = [0]

    def claim() -> bool:
        with lock:
            if claimed[0] >= labels:
                return False
            claimed[0] += 1
            return True

    def work(annotator: dict[str, Any]) -> None:
        k = 0
        while claim():
            try:
                view = collector.next_pair(annotator["id"])
            except StudyComplete:
                return
            shown_at = time.time()
            messages = template.messages(view, objective if objective is not None else view.objective)
            verdict, raw, tries = None, "", 0
            try:
                for tries in range(1, attempts + 1):
                    k += 1
                    raw = generator.chat([messages], decoding, [seed * 1_000_003 + annotator["id"] * 10_007 + k])[0]
                    if (problem := text_problem(raw)) is not None:  # stored with the label: the import's checks
                        raise GenerationError(f"{generator.name}: a reply failed the text checks ({problem})")
                    if (verdict := parse_verdict(raw)) is not None:
                        break
            except GenerationError as exc:
                with lock:
                    counts["failed"] += 1
                    counts.setdefault("error", str(exc))
                    claimed[0] -= 1  # not labelled: the pair stays open for this judge's next run
                return
            with lock:
                counts["attempts"] += tries
            judgement = {"model": generator.name, "backend": generator.backend, "decoding": decoding.as_dict(),
                         "template": {"system": template.system, "user": template.user},
                         "objective": objective if objective is not None else view.objective,
                         "messages": messages, "raw": raw, "attempts": tries}
            if verdict is None:
                collector.skip(annotator["id"], view.served_pair_id)
                with lock:
                    counts["skipped_no_verdict"] += 1
            else:
                collector.submit(annotator["id"], view.served_pair_id, verdict, shown_at=shown_at,
                                 judgement=judgement)
                with lock:
                    counts["labels"] += 1
                    counts["verdicts"][verdict] += 1
            if progress:
                with lock:
                    done = counts["labels"] + counts["skipped_no_verdict"]
                elapsed = time.perf_counter() - start
                progress(f"judge: {done}/{labels} pairs  {done / elapsed:.2f}/s  "
                         f"ETA {elapsed / max(done, 1) * (labels - done):.0f}s")

    threads = [threading.Thread(target=work, args=(a,), daemon=True) for a in annotators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts["seconds"] = round(time.perf_counter() - start, 3)
    if hasattr(generator, "stats"):
        counts["http"] = dict(generator.stats)
    return counts
