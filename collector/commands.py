"""What each ``python -m collector`` command does: one small function per command, named after
it. Commands that read or write the database get the opened ``Store``; the parser lives in
``collector.cli``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acquisition.core.config import to_dict
from acquisition.core.errors import ConfigError, DeconfoundError
from acquisition.policies import POLICIES, load_policy_file
from collector.app.annotator import login_base_url, personal_link
from collector.store import Store
from collector.store.create import init_db


def reads_only(command: Callable[..., None]) -> Callable[..., None]:
    """Mark a command that only reads the database: it is opened read-only."""
    command.reads_only = True  # type: ignore[attr-defined]
    return command


def cli_actor() -> str:
    """Who the audit log names for a command run from a shell: ``cli:<login name>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def emit(args: argparse.Namespace, data: Any, text: str | Callable[[], str]) -> None:
    """A command's result: one JSON document with ``--json``, else the text for a person."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        print(text() if callable(text) else text)


def _records(df: Any) -> list[dict[str, Any]]:
    """A frame's rows for JSON: NaN as null."""
    return json.loads(df.to_json(orient="records", date_format="iso"))


_open_line = [False]  # a progress line is on stderr without its newline yet


def _progress_line(text: str, last: bool) -> None:
    """One progress line on stderr, rewritten in place on a terminal (``progress_wanted``)."""
    if not progress_wanted():
        return
    print(text, end="\n" if last else "", file=sys.stderr, flush=True)
    _open_line[0] = not last


def end_progress_line() -> None:
    """Close an unfinished progress line, so what is printed next starts a line of its own."""
    if _open_line[0]:
        print(file=sys.stderr, flush=True)
        _open_line[0] = False


def progress_wanted() -> bool:
    """Progress lines for a person: on a terminal, or when ``DECONFOUND_PROGRESS=1`` asks for them."""
    import os

    return os.environ.get("DECONFOUND_PROGRESS") == "1" or sys.stderr.isatty()


def counted_progress(job: str, unit: str) -> Callable[[int, int, float], None]:
    """``(done, total, seconds)`` -> one line on stderr, rewritten in place, with the rate and an ETA."""
    from models.embeddings import _duration

    def report(done: int, total: int, elapsed: float) -> None:
        rate = done / max(elapsed, 1e-9)
        tail = f"done in {_duration(elapsed)}" if done >= total else f"ETA {_duration((total - done) / max(rate, 1e-9))}"
        _progress_line(f"\r{job}: {done:,}/{total:,} {unit} ({100 * done / max(total, 1):.0f}%), {rate:,.1f}/s, {tail}",
                       done >= total)

    return report


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _training_started() -> None:
    print("training started", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- the database
def init(args: argparse.Namespace) -> None:
    print(json.dumps(init_db(args.db, demo=args.demo, checkpoints=args.checkpoints), indent=2))


@reads_only
def status(args: argparse.Namespace, store: Store) -> None:
    policy = store.active_policy()
    print(json.dumps({**store.counts(), "policy": policy and policy["name"],
                      "policy_version": policy and policy["version"]}, indent=2))


# ---------------------------------------------------------------------- annotators
def annotator_add(args: argparse.Namespace, store: Store) -> None:
    row, token = store.add_annotator(args.name, args.group, dict(args.covariate), args.objective)
    base, known = login_base_url(store, args.base_url)
    link = personal_link(base, token)
    emit(args, {"id": row["id"], "name": row["name"], "group": row["group_name"], "login_url": link},
         f"Added annotator {row['id']} ({row['name']}, group {row['group_name']}).\nLogin URL: {link}")
    if not known:
        print("(The app has not run for this database yet, so this address is a guess: start it with "
              "`make run`, or set DECONFOUND_BASE_URL to the address annotators use.)", file=sys.stderr)


@reads_only
def annotator_list(args: argparse.Namespace, store: Store) -> None:
    rows = [{"id": a["id"], "name": a["name"], "group": a["group_name"], "labels": store.label_count(a["id"]),
             "excluded": bool(a["excluded"]), "excluded_reason": a["excluded_reason"]} for a in store.annotators()]
    emit(args, rows, lambda: "\n".join(
        f"{a['id']}\t{a['name']}\t{a['group']}\t{a['labels']} labels"
        + (f"\texcluded: {a['excluded_reason']}" if a["excluded"] else "") for a in rows))


def annotator_exclude(args: argparse.Namespace, store: Store) -> None:
    from collector.jobs.annotator_quality import exclude_annotator

    row = exclude_annotator(store, args.id, args.reason)
    store.audit(cli_actor(), "annotator excluded", {"annotator": row["id"], "reason": row["excluded_reason"]})
    n = store.label_count(row["id"])
    emit(args, {"id": row["id"], "name": row["name"], "excluded_reason": row["excluded_reason"], "labels": n},
         f"Excluded annotator {row['id']} ({row['name']}): {row['excluded_reason']}. "
         f"Their {n} labels stay in the database, flagged.")


def annotator_include(args: argparse.Namespace, store: Store) -> None:
    from collector.jobs.annotator_quality import include_annotator

    row = include_annotator(store, args.id)
    store.audit(cli_actor(), "annotator included", {"annotator": row["id"]})
    emit(args, {"id": row["id"], "name": row["name"], "excluded": False},
         f"Included annotator {row['id']} ({row['name']}) again.")


# ---------------------------------------------------------------------- labelling
def simulate(args: argparse.Namespace, store: Store) -> None:
    from collector.jobs.simulate import SimulatedAnnotatorConfig
    from collector.jobs.simulate import simulate as run_simulation

    group_effects: dict[str, dict[str, float]] = {}
    for group, attribute, value in args.group_effect:
        group_effects.setdefault(group, {})[attribute] = value
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    if not groups:
        raise ConfigError(f"--groups: name at least one annotator group (comma-separated); got {args.groups!r}.")
    if len(set(groups)) < len(groups):
        twice = next(g for g in groups if groups.count(g) > 1)
        raise ConfigError(f"--groups: {twice!r} is named twice; name each annotator group once.")
    config = SimulatedAnnotatorConfig(noise=args.noise, attribute_effects=dict(args.effect),
                                      group_effects=group_effects, flip_rate=args.flip_rate)
    result = run_simulation(store, labels=args.labels, annotators=args.annotators, groups=groups,
                            seed=args.seed, config=config, progress=counted_progress("simulate", "labels"))
    print(result["truth"] + ".", file=sys.stderr)
    print(json.dumps(result, indent=2 if args.json else None))


@reads_only
def effects(args: argparse.Namespace, store: Store) -> None:
    """Each randomised attribute's AMCE, overall or within --by cells, naming its estimand."""

    from acquisition.effects import ESTIMANDS, amce
    from collector.io.frames import pairs_frame

    pairs = pairs_frame(store)
    by = [c.strip() for c in (args.by or "").split(",") if c.strip()]
    columns = {"policy": "policy", "group": "annotator_group", "objective": "objective", "prompt_type": "task_type"}
    unknown = [c for c in by if c not in columns]
    if unknown:
        raise ConfigError(f"--by: unknown column {unknown[0]!r}; one or more of {', '.join(columns)}.")
    table = amce(pairs, by=[columns[c] for c in by], estimand=args.estimand,
                 treatment=args.treatment).rename(columns={v: k for k, v in columns.items()})
    from acquisition.sequential import resolved

    table["resolved"] = [resolved(low, high) or "" for low, high in zip(table["cs_low"], table["cs_high"])]
    if args.json:
        rows = _records(table)
        print(json.dumps({"estimand": args.estimand, "description": ESTIMANDS[args.estimand],
                          "treatment": args.treatment, "by": by, "effects": rows}, indent=2, default=str))
        return
    print(f"Estimand: {ESTIMANDS[args.estimand]}; treatment {args.treatment}; ci: the fixed-sample 95% CI "
          "(clustered by served pair; se_annotator clusters by annotator); cs: the 95% confidence sequence, valid "
          "however often the study is looked at: the one that licenses stopping.")
    if table.empty:
        print("No randomised attribute has labels yet.")
        return
    print(table.drop(columns=["estimand"]).to_string(index=False, float_format="%.3f"))


@reads_only
def balance(args: argparse.Namespace, store: Store) -> None:
    from acquisition.balance import arm_balance, balance_report, chosen_rejected_smd
    from collector.io.frames import pairs_frame, trl_frame

    pairs = pairs_frame(store)
    chosen = chosen_rejected_smd(trl_frame(pairs))
    report = balance_report(pairs)
    arms = arm_balance(pairs, by=("annotator_group", "task_type"))
    if args.json:
        emit(args, {"chosen_vs_rejected": _records(chosen), "left_vs_right": _records(report),
                    "arms_vs_reference": _records(arms)}, "")
        return
    print("SMD between chosen and rejected (|SMD| < 0.1 is balanced):")
    print(chosen.to_string(index=False, float_format="%.3f"))
    print("\nSMD between left and right, by stratum:")
    print(report.pivot(index="attribute", columns="stratum", values="smd").to_string(float_format="%.3f"))
    if len(arms):
        print("\nSMD between each arm and the reference arm, by stratum:")
        print(arms.pivot_table(index=["arm", "covariate"], columns="stratum", values="smd")
              .to_string(float_format="%.3f"))


# ---------------------------------------------------------------------- data in and out
@reads_only
def export(args: argparse.Namespace, store: Store) -> None:
    from collector.io.export import card_path
    from collector.io.export import export as write_export

    if bool(args.out) == bool(args.hub):
        raise ConfigError("export: give --out FILE or --hub DIR (one of them).")
    if progress_wanted():  # a terminal (or DECONFOUND_PROGRESS=1): a failed run's stderr stays one error line
        print(f"export: reading the served-pair log and building the {args.format} rows and the card...",
              file=sys.stderr, flush=True)
    if args.hub:
        from collector.io.export import export_hub

        n = export_hub(store, args.format, args.hub, arena_models=args.arena_models,
                       include_imported=args.include_imported)
        emit(args, {"hub": str(args.hub), "rows": n, "format": args.format},
             f"Wrote a Hub-ready folder {args.hub}: README.md (card), data/train.parquet ({n} rows).")
        return
    n = write_export(store, args.format, args.out, arena_models=args.arena_models,
                     include_imported=args.include_imported)
    emit(args, {"out": str(args.out), "card": str(card_path(args.out)), "rows": n, "format": args.format},
         f"Wrote {n} rows to {args.out} and its dataset card to {card_path(args.out)}.")


def import_progress(phase: str, done: int, total: int | None, elapsed: float) -> None:
    """One line per phase on stderr, rewritten in place: lines checked (and their rate), then
    pairs written with an ETA."""
    from models.embeddings import _duration

    rate = done / max(elapsed, 1e-9)
    if total is None:
        line = f"checking: {done:,} lines read, {rate:,.0f} lines/s"
        line += f", done in {_duration(elapsed)}" if phase == "checked" else ""
    else:
        left = (total - done) / rate if rate > 0 else 0.0
        tail = f"done in {_duration(elapsed)}" if done >= total else f"ETA {_duration(left)}"
        line = f"writing: {done:,}/{total:,} pairs ({100 * done / max(total, 1):.0f}%), {rate:,.0f}/s, {tail}"
    last = phase == "checked" or (total is not None and done >= total)
    _progress_line("\r" + line, last)


def import_(args: argparse.Namespace, store: Store) -> None:
    from collector.io.importers import import_file
    from collector.jobs.worker import embed_new_texts

    result = import_file(store, args.path, args.format, args.task_type, progress=import_progress)
    store.audit(cli_actor(), "data imported", {"file": str(args.path), "new_preferences": result.new_preferences})
    if result.new_responses:
        from collector.serving.snapshots import build_snapshot

        build_snapshot(args.db)  # the server maps these columns instead of reading the pool itself
    pending = store.pending_texts()
    embedded = None
    if args.embed and pending:
        embedded = embed_new_texts(args.db, estimate=_embedding_estimate)
    note = (f"\nEmbedded {embedded:,} new texts into the cache beside the database." if embedded is not None else
            f"\n{pending:,} texts are not embedded yet: the trainer (started by `make run`, or `deconfound worker`) "
            "embeds them in the background, and the Research page shows its progress; `import --embed` does it "
            "now." if pending else "")
    emit(args, {**dataclasses.asdict(result), "embedded": embedded, "not_embedded": pending - (embedded or 0)},
         result.summary() + note)


def _embedding_estimate(total: int, rate: float) -> None:
    """Before the foreground embedding starts: how long it will take, from a measured sample."""
    from models.embeddings import _duration

    print(f"embedding {total:,} texts at about {rate:,.0f} texts/s (measured on the first ones): about "
          f"{_duration(total / max(rate, 1e-9))}. Ctrl-C stops it; what is embedded stays cached and the trainer "
          "embeds the rest.", file=sys.stderr, flush=True)


def _client(args: argparse.Namespace, model: str, local: dict[str, Any] | None = None):
    """The generation back-end the arguments name: ``--endpoint`` and its limits, else a local model."""
    from models.generation import make_generator

    http = {k: getattr(args, k) for k in ("concurrency", "timeout", "retries") if getattr(args, k, None) is not None}
    if args.endpoint:
        return make_generator(model, args.endpoint, **http)
    if http:
        raise ConfigError(f"--{sorted(http)[0]}: only with --endpoint.")
    return make_generator(model, None, **(local or {}))


def rewrite(args: argparse.Namespace, store: Store) -> None:
    from acquisition.rewriter import LLMRewriter, load_rewriter_config
    from collector.jobs.rewrite_job import run_rewrite_job
    from models.generation import GeneratorRewriter

    config = load_rewriter_config(args.config)
    config.model = args.model or config.model
    attributes = [a.strip() for a in (args.attributes or "").split(",") if a.strip()] or None
    config.check_attributes(attributes or config.attributes, "--attributes")
    if args.endpoint:
        if not config.model:
            raise ConfigError("--model: name the model the endpoint serves.")
        rewriter: Any = GeneratorRewriter(config, _client(args, config.model))
    else:
        if any(getattr(args, k, None) is not None for k in ("concurrency", "timeout", "retries")):
            raise ConfigError("--concurrency, --timeout and --retries: only with --endpoint.")
        rewriter = LLMRewriter(config, device=args.device or "cpu")
    from models.generation import GenerationError

    done_before = store.counts()["edited_responses"]
    try:
        result = run_rewrite_job(store, rewriter, attributes, args.limit, progress=_progress)
    except GenerationError as exc:
        stored = store.counts()["edited_responses"] - done_before
        raise GenerationError(f"{exc} The {stored} rewrites stored before it are whole pairs and stay; run the same "
                              "command again to resume (stored pairs are skipped).") from None
    emit(args, result, json.dumps(result))
    if result.get("refused"):
        raise DeconfoundError(f"rewrite: {result['refused']} rewrites failed the text checks and were not stored "
                              f"({result['refused_reason']}); the {result['stored']} pairs stored are whole; run "
                              "the same command again to resume (stored pairs are skipped).")


def generate(args: argparse.Namespace, store: Store) -> None:
    from collector.jobs.generate_job import read_prompts, run_generate_job

    prompts = read_prompts(args.prompts)
    local = {"device": args.device} if args.device else {}
    generators = [_client(args, model, local) for model in args.model]
    result = run_generate_job(store, prompts, generators, n=args.n, temperatures=args.temperatures,
                              max_new_tokens=args.max_new_tokens, top_p=args.top_p, seed=args.seed,
                              progress=_progress)
    print(json.dumps(result))
    if result["failed"]:
        raise DeconfoundError(f"generate: {result['failed']} responses failed ({result.get('error')}); "
                              "run the same command again to resume.")
    if result.get("refused"):
        raise DeconfoundError(f"generate: {result['refused']} responses failed the text checks and were not stored "
                              f"({result['refused_reason']}); the {result['stored']} stored are whole; run the same "
                              "command again to resume (stored responses are skipped).")


def judge(args: argparse.Namespace, store: Store) -> None:
    from collector.jobs.judge import run_judge
    from models.generation import Decoding

    if args.objective is not None:
        from collector.store.people import MAX_OBJECTIVE_CHARS, clean_text

        args.objective = clean_text(args.objective, "--objective", MAX_OBJECTIVE_CHARS)
    local = {"device": args.device} if args.device else {}
    decoding = Decoding(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    decoding.validate("--")
    result = run_judge(store, _client(args, args.model, local), args.labels, objective=args.objective,
                       decoding=decoding, attempts=args.attempts, concurrency=args.judges, seed=args.seed,
                       progress=_progress)
    print(json.dumps(result))
    if result["failed"]:
        raise DeconfoundError(f"judge: {result['failed']} requests failed ({result.get('error')}); the "
                              f"{result['labels']} labels given are stored, and each judge's open pair stays "
                              "reserved for it: run the same command again to resume.")
    if result["skipped_no_verdict"] and not result["labels"]:
        raise DeconfoundError(f"judge: no reply held a verdict in {result['skipped_no_verdict']} pairs "
                              f"({args.attempts} asks each); they are kept as this judge's skips, as a person's skip "
                              "is. Check the model and the judge template, then run the same command again to "
                              "resume with new pairs.")


# ---------------------------------------------------------------------- training
def _existing_database(path: str) -> None:
    """Refuse a missing or foreign database before a trainer opens it (the trainer opens its own)."""
    Store(path, create=False).close()


def train(args: argparse.Namespace) -> None:
    from collector.jobs.worker import make_trainer
    from models.online import load_training_config

    _existing_database(args.db)
    config = load_training_config(args.config)
    config.model = args.model or config.model
    config.validate()
    store = Store(args.db, create=False, readonly=True)  # the preconditions, before any folder or cache is made
    try:
        decisive = len(store.decisive_edit_vectors())
    finally:
        store.close()
    if decisive < config.min_labels:
        raise ConfigError(f"train: {decisive} labels with a winner; training starts at {config.min_labels} "
                          "(min_labels). Nothing was written.")
    result = make_trainer(args.db, config, progress=True).train_once(on_start=_training_started)
    emit(args, result, json.dumps(result, indent=2))


@reads_only
def train_rm(args: argparse.Namespace, store: Store) -> None:
    from collector.io.frames import pairs_frame, trl_frame
    from models.trl_reward import train_reward_model

    rows = trl_frame(pairs_frame(store), include_excluded=args.include_excluded)
    result = train_reward_model(rows, args.model, args.out, weighting=args.weighting, margin=args.margin,
                                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                max_length=args.max_length, max_steps=args.max_steps)
    overlong = result["overlong"]
    if overlong["dropped"]:
        print(f"note: {overlong['dropped']} of {result['pairs']} pairs are longer than --max-length "
              f"{args.max_length} tokens and were left out by TRL; the attribute rates of what was dropped "
              "and kept are in 'overlong'.", file=sys.stderr)
    print(json.dumps(result, indent=2))


def snapshot(args: argparse.Namespace) -> None:
    from collector.serving.snapshots import build_snapshot

    _existing_database(args.db)
    print(json.dumps(build_snapshot(args.db)))


def worker(args: argparse.Namespace) -> None:
    from collector.jobs.worker import exit_with_parent, make_trainer

    if args.parent_pid is not None:
        exit_with_parent(args.parent_pid)
    _existing_database(args.db)
    time.sleep(args.start_delay)  # before torch and the embedding model load: the app boots first
    from models.online import load_training_config, set_torch_threads
    from models.training import load_optimiser

    set_torch_threads(args.threads)
    load_optimiser()
    trainer = make_trainer(args.db, load_training_config(args.config), progress=True)
    if args.once:
        store = Store(args.db, create=False)
        try:
            due = trainer.due(store)
        finally:
            store.close()
        result = trainer.train_once(on_start=_training_started) if due else None
        emit(args, result, json.dumps(result) if result is not None else "No retraining due.")
        return
    try:
        from collector.jobs.worker import StopRuleCheck

        log = lambda line: print(line, flush=True)  # noqa: E731
        trainer.run(threading.Event(), poll_seconds=args.poll, log=log, on_poll=StopRuleCheck(args.db, log))
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------------- quality control
def gold_add(args: argparse.Namespace, store: Store) -> None:
    from collector.io.gold import add_gold_file

    added, present = add_gold_file(store, args.file)
    store.audit(cli_actor(), "gold added", {"file": str(args.file), "added": added})
    emit(args, {"added": added, "already_present": present}, f"Added {added} gold pairs ({present} already present).")


@reads_only
def gold_list(args: argparse.Namespace, store: Store) -> None:
    from collector.io.gold import gold_frame

    frame = gold_frame(store)
    emit(args, _records(frame), lambda: frame.to_string(index=False, max_colwidth=40))


@reads_only
def qc_show(args: argparse.Namespace, store: Store) -> None:
    from collector.serving.qc_settings import qc_config, qc_version

    print(json.dumps({**to_dict(qc_config(store)), "version": qc_version(store)}, indent=2))


def qc_set(args: argparse.Namespace, store: Store) -> None:
    from collector.serving.qc_settings import load_qc_file, parse_assignments, update_qc_config

    if not args.file and not args.assignments:
        raise ConfigError("qc set: give KEY=VALUE pairs or --file FILE.")
    changes = load_qc_file(args.file) if args.file else {}
    changes.update(parse_assignments(args.assignments))
    config = update_qc_config(store, changes, args.file or "qc")
    store.audit(cli_actor(), "QC changed", {"changes": changes})
    print(json.dumps(to_dict(config), indent=2))


@reads_only
def qc_report(args: argparse.Namespace, store: Store) -> None:
    from acquisition.agreement import agreement_labels, agreement_table
    from collector.app.panels import load_pairs
    from collector.jobs.annotator_quality import annotator_quality

    quality = annotator_quality(store)
    pairs = load_pairs(store.path, flags=False) if store.path != ":memory:" else None
    agreement = agreement_table(agreement_labels(pairs)) if pairs is not None and not pairs.empty else None
    if args.json:
        emit(args, {"annotators": _records(quality), "agreement": _records(agreement) if agreement is not None else []}, "")
        return
    print(quality.to_string(index=False, float_format="%.2f"))
    print("\nAgreement on items two or more annotators labelled (Krippendorff's alpha, nominal, coded by "
          "which response won; 95% bootstrap CI over items):")
    print("no labels yet" if agreement is None else agreement.to_string(index=False, float_format="%.3f"))


# ---------------------------------------------------------------------- policies
@reads_only
def policy_show(args: argparse.Namespace, store: Store) -> None:
    spec = store.active_policy()
    print(json.dumps(dataclasses.asdict(spec) if spec else None, indent=2))


def policy_list(args: argparse.Namespace) -> None:
    rows = [{"name": name, "family": cls.family or "per component", "description": cls.description}
            for name, cls in sorted(POLICIES.items())]
    emit(args, rows, lambda: "\n".join(f"{r['name']}\t{r['description']}" for r in rows))


def policy_apply(args: argparse.Namespace, store: Store) -> None:
    from collector.serving.service import Collector

    name, config = load_policy_file(args.file)
    row = Collector(store).activate_policy(name, to_dict(config))  # refused, with nothing written, if it cannot build
    store.audit(cli_actor(), "policy activated", {"policy": row["name"], "version": row["version"]})
    emit(args, {"policy": row["name"], "version": row["version"]}, f"Active policy: {row['name']} version {row['version']}.")


# ---------------------------------------------------------------------- the study
def editors_list(args: argparse.Namespace) -> None:
    from acquisition.editors import EDITORS

    rows = [{"name": name, "kind": "quality control" if e.quality_changing else "style" if e.randomisable
             else "rewrites only", "description": e.description} for name, e in sorted(EDITORS.items())]
    emit(args, rows, lambda: "\n".join(f"{r['name']}\t{r['kind']}\t{r['description']}" for r in rows))


def editors_audit(args: argparse.Namespace) -> None:
    """``editors audit``: the audit table of ``acquisition.editors.audit`` on a pool's responses."""
    import random

    from acquisition.editors import EDITORS
    from acquisition.editors.audit import audit_editors, format_audit
    from collector.io.importers import parse_file
    from collector.store.create import load_demo_pool

    names = [n.strip() for n in args.editors.split(",") if n.strip()] if args.editors else None
    for name in names or []:
        if name not in EDITORS:
            raise ConfigError(f"--editors: unknown editor {name!r}; known: {', '.join(sorted(EDITORS))}.")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit: must be a positive number of responses; got {args.limit}.")
    if args.json not in (None, "-"):  # the rows' file: never the file being read
        if not args.demo and Path(args.json).resolve() == Path(args.data).resolve():
            raise ConfigError(f"--json {args.json}: is the file being audited; choose another file "
                              "(nothing was written).")
        if Path(args.json).is_dir():
            raise ConfigError(f"--json {args.json}: is a folder; give a file name.")
    records = load_demo_pool() if args.demo else parse_file(args.data, args.format).records
    asked = {r["text"]: record["prompt"] for record in records for r in record["responses"]}  # each reply's request
    texts = list(asked)
    if not texts:
        raise ConfigError(f"{args.data}: no responses to audit.")
    if args.limit is not None and args.limit < len(texts):
        texts = random.Random(args.seed).sample(texts, args.limit)
    embed = None
    if not args.no_embed:
        from models.embeddings import Embedder

        embed = Embedder(max_length=256).embed
    rows = audit_editors(texts, names, embed=embed, seed=args.seed, prompts=[asked[t] for t in texts])
    if args.json == "-":  # --json alone: the rows on stdout
        print(json.dumps([r.as_row() for r in rows], indent=1, default=str))
        return
    print(f"{len(texts)} responses from {'the demo pool' if args.demo else args.data}")
    print(format_audit(rows))
    for row in rows:
        for example in row.artefact_examples:
            print(f"  {row.editor} artefact: {example}")
    if args.json:
        from collector.io.export import write_files

        write_files({Path(args.json): (json.dumps([r.as_row() for r in rows], indent=1, default=str) + "\n").encode()})


@reads_only
def plan(args: argparse.Namespace, store: Store) -> None:
    from collector.jobs.plan import plan as plan_study

    if args.effect is not None and (not math.isfinite(args.effect) or not 0 < abs(args.effect) < 1):
        raise ConfigError(f"--effect: must be a difference in choice probability between 0 and 1; got {args.effect}.")
    for name in ("power", "drop_rate", "tie_rate", "p_on"):  # NUMBERS lets 1 through; a certainty is no plan
        if getattr(args, name) is not None and getattr(args, name) >= 1:
            raise ConfigError(f"--{name.replace('_', '-')}: must be below 1; got {getattr(args, name)}.")
    policy = None
    if args.policy:
        from acquisition.core.config import to_dict
        from acquisition.policies import load_policy_file

        name, config = load_policy_file(args.policy)
        policy = (name, to_dict(config))
    attributes = [a.strip() for a in args.attributes.split(",") if a.strip()] if args.attributes else None
    table = plan_study(store, effect=args.effect, budget=args.budget, power=args.power, alpha=args.alpha,
                       attributes=attributes, policy=policy, icc=args.icc, annotators=args.annotators,
                       tie_rate=args.tie_rate, drop_rate=args.drop_rate, p_on=args.p_on, item_icc=args.item_icc)
    shown = [c for c in ("attribute", "p_on", "randomised_share", "icc", "labels_needed", "detectable_effect", "note")
             if c in table.columns]
    first = table.iloc[0]
    emit(args, _records(table), lambda: (
        f"Labels for a fixed-sample two-sided test at level {args.alpha:g} with power {args.power:g}"
        + (f" to detect an AMCE of {args.effect:g}" if args.effect is not None else "")
        + (f"; the smallest AMCE {args.budget:,} labels detect" if args.budget is not None else "")
        + ". A study stopped by its confidence sequence needs more: the sequence is 1.5-1.8 times as wide.\n"
        + table[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}") + "\n"
        + f"Inputs: ties {first['tie_rate']:.3f} ({first.get('tie_rate_source', 'stated')}), labels that do not "
          f"enter {first['drop_rate']:.3f} ({first.get('drop_rate_source', 'stated')}), ICC "
          f"({first['icc_source']}), overlap {first['overlap']} with item ICC {first['item_icc']:g} "
          f"({first['item_icc_source']}), "
          + (f"annotators {first['annotators']} ({first.get('annotators_source', 'stated')})"
             if first["annotators"] is not None else "annotators not given (clustering taken at 100 labels each)")
          + ", P(on) from "
          f"{first['p_on_source']}."))


def study_check(args: argparse.Namespace, store: Store) -> None:
    from collector.serving.stopping import check_stopping

    state = check_stopping(store)

    def text() -> str:
        if not state.rule:
            return "No stopping rule is set (study set stop_when_resolved=[...] and/or max_labels=N)."
        lines = [f"{a}: 95% confidence sequence [{low:.3f}, {high:.3f}], {state.resolved[a] or 'not resolved'}"
                 for a, (low, high) in state.sequences.items()]
        verdict = (f"Stopped by its rule at {state.labels:,} labels: {state.reason}." if state.stopped
                   else f"Running: {state.labels:,} labels; the rule is not met.")
        return "\n".join([*lines, verdict])

    emit(args, dataclasses.asdict(state), text)


@reads_only
def study_show(args: argparse.Namespace, store: Store) -> None:
    from collector.serving.study import study_config, study_version

    print(json.dumps({**to_dict(study_config(store)), "version": study_version(store)}, indent=2))


def study_set(args: argparse.Namespace, store: Store) -> None:
    from collector.serving.qc_settings import parse_assignments
    from collector.serving.study import load_study_file, update_study_config

    if not args.file and not args.assignments:
        raise ConfigError("study set: give KEY=VALUE pairs or --file FILE.")
    changes = load_study_file(args.file) if args.file else {}
    changes.update(parse_assignments(args.assignments, "study"))
    config, version = update_study_config(store, changes, args.file or "study")
    store.audit(cli_actor(), "study changed", {"version": version, "keys": sorted(changes)})
    print(json.dumps({**to_dict(config), "version": version}, indent=2))


# ---------------------------------------------------------------------- researchers
def researcher_add(args: argparse.Namespace, store: Store) -> None:
    import getpass

    from collector.store.people import clean_name

    clean_name(args.name, "researcher name")  # before the password is asked for
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            raise ConfigError("the two passwords differ; nothing was stored.")
    else:
        raise ConfigError("no terminal to ask for the password: pipe it in with --password-stdin.")
    row = store.add_researcher(args.name, password)
    store.audit(cli_actor(), "researcher added", {"researcher": row["name"]})
    emit(args, {"researcher": row["name"]}, f"Added researcher {row['name']}. With an account, the shared password "
                                            "no longer opens the researcher pages.")


@reads_only
def researcher_list(args: argparse.Namespace, store: Store) -> None:
    import time

    rows = store.researchers()
    if args.json:
        emit(args, [{"name": r["name"], "last_login": r["last_login"], "open_sessions": r["open_sessions"]}
                    for r in rows], "")
        return
    if not rows:
        print("no researcher accounts (the shared DECONFOUND_RESEARCHER_PASSWORD opens the researcher pages)")
    for r in rows:
        last = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["last_login"])) if r["last_login"] else "never"
        print(f"{r['name']}\tlast login {last}\t{r['open_sessions']} open sessions")


def researcher_remove(args: argparse.Namespace, store: Store) -> None:
    store.remove_researcher(args.name)
    store.audit(cli_actor(), "researcher removed", {"researcher": args.name})
    emit(args, {"removed": args.name}, f"Removed researcher {args.name}; their sessions are closed.")


@reads_only
def audit(args: argparse.Namespace, store: Store) -> None:
    import time

    rows = list(reversed(store.audit_log(args.limit)))
    if args.json:
        emit(args, [{**r, "detail": json.loads(r["detail"]) if isinstance(r["detail"], str) and r["detail"].startswith("{")
                     else r["detail"]} for r in rows], "")
        return
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["at"]))
        print(f"{when}\t{r['researcher']}\t{r['action']}\t{r['detail']}")


# ---------------------------------------------------------------------- benchmarks
def benchmark_causal(args: argparse.Namespace) -> None:
    from collector.benchmarks.causal import configure, run_causal

    world = configure(args.world, args.data, args.seeds, args.labels, args.quick, args.embedder,
                      sweeps=not args.no_sweeps)
    run_causal(world, Path(args.out), Path(args.cache), command=" ".join(["python -m collector", *sys.argv[1:]]))
