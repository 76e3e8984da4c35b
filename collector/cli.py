"""``python -m collector``: every command opens the Store and calls the function of the same
name; library errors become CLI errors only here."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from acquisition.core.config import to_dict
from acquisition.policies import POLICIES, load_policy_file
from collector.app.annotator import login_base_url, personal_link
from acquisition.core.errors import ConfigError, DeconfoundError
from collector.io.frames import FORMATS
from collector.io.export import card_path, export
from collector.serving.quality_control import (
    add_gold_file,
    annotator_quality,
    exclude_annotator,
    gold_frame,
    include_annotator,
    load_qc_file,
    parse_assignments,
    qc_config,
    qc_version,
    update_qc_config,
)
from collector.io.importers import FORMATS as IMPORT_FORMATS
from collector.store.create import DEFAULT_DB, init_db
from collector.serving.simulate import SimulatedAnnotatorConfig, simulate
from collector.store import Store


def _key_value(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _attr_effect(text: str) -> tuple[str, float]:
    key, value = _key_value(text)
    try:
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected attribute=number, got {text!r}") from None


def _group_effect(text: str) -> tuple[str, str, float]:
    group, sep, rest = text.partition(":")
    if not sep or not group.strip():
        raise argparse.ArgumentTypeError(f"expected group:attribute=number, got {text!r}")
    attribute, value = _attr_effect(rest)
    return group.strip(), attribute, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m collector",
        description="Deconfound: collect interventional preference data for reward models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, parent=sub) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--db", default=str(DEFAULT_DB), help=f"SQLite database (default {DEFAULT_DB})")
        return p

    p = add("init", "Create the database (if missing) and activate the default randomised_attributes policy.")
    p.add_argument("--demo", action="store_true", help="also load the demo pool (36 prompts, 5 task types)")

    p = add("status", "Show row counts and the active policy.")

    annot = sub.add_parser("annotator", help="Add, list, exclude or include annotators.",
                           description="Add, list, exclude or include annotators.")
    asub = annot.add_subparsers(dest="annotator_command", required=True, metavar="ACTION")
    p = add("add", "Add an annotator and print their login URL (the token is shown once).", asub)
    p.add_argument("name", help="display name")
    p.add_argument("--group", default="default", help="annotator group (default: default)")
    p.add_argument("--objective", default=None, help="the objective they judge by, e.g. helpfulness")
    p.add_argument("--covariate", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="a covariate to record (repeatable)")
    p.add_argument("--base-url", default=None,
                   help="the app's address for the login URL (default: $DECONFOUND_BASE_URL, else the "
                        "address the app last ran at for this database)")
    add("list", "List annotators with their group and label counts.", asub)
    p = add("exclude", "Exclude an annotator's labels from training, effects and the TRL export "
                       "(kept in the database, flagged in the pairs export).", asub)
    p.add_argument("id", type=int, help="annotator id (see annotator list)")
    p.add_argument("--reason", required=True, help="why, e.g. 'gold accuracy 0.4' (goes into the dataset card)")
    p = add("include", "Undo an exclusion: the annotator's labels count again.", asub)
    p.add_argument("id", type=int, help="annotator id")

    p = add("simulate", "Scripted annotators label pairs through the same calls as the page.")
    p.add_argument("--labels", type=int, default=200, help="number of labels to give (default 200)")
    p.add_argument("--annotators", type=int, default=5, help="number of simulated annotators (default 5)")
    p.add_argument("--groups", default="default", help="comma-separated annotator groups")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--noise", type=float, default=1.0, help="Bradley-Terry noise scale (default 1.0)")
    p.add_argument("--effect", action="append", type=_attr_effect, default=[], metavar="ATTR=VALUE",
                   help="a true attribute effect in quality points (default: attributes ignored)")
    p.add_argument("--group-effect", action="append", type=_group_effect, default=[],
                   metavar="GROUP:ATTR=VALUE", help="a true effect for one annotator group only (repeatable)")

    p = add("export", "Export labels (trl, trl-conversational, arena) or the full served-pair log (pairs) "
                      "to .jsonl or .parquet, with a dataset card beside it (PATH.card.md).")
    p.add_argument("--format", choices=FORMATS, required=True,
                   help="trl: prompt/chosen/rejected; trl-conversational: the same as message lists; "
                        "arena: Chatbot Arena battles incl. ties; pairs: everything served")
    p.add_argument("--out", required=True, help="output path ending in .jsonl or .parquet")

    p = add("import", "Import preference data (HH-RLHF, TRL, UltraFeedback, Chatbot Arena, CSV) into the "
                      "pool with its human labels: the whole file or nothing.")
    p.add_argument("path", help="a .jsonl, .json, .csv or .parquet file, optionally gzipped")
    p.add_argument("--format", default="auto", choices=("auto", *IMPORT_FORMATS),
                   help="input format (default auto: detected from the content)")
    p.add_argument("--task-type", default=None, help="prompt type for rows without a task_type (default general)")
    p.add_argument("--no-embed", action="store_true", help="skip embedding the new texts (the worker embeds them later)")

    p = add("balance", "Print attribute balance: SMD chosen vs rejected, left vs right, and each arm vs the "
            "observational reference, by group and prompt type.")

    p = add("train", "Train the reward model on every label now, evaluate it, publish a checkpoint, print the metrics.")
    p.add_argument("--model", default=None, help="reward model name (default from --config, else bt_mlp)")
    p.add_argument("--config", default=None, help="TOML training config (see models/examples/training.toml)")

    p = add("worker", "Retrain the reward model whenever enough new labels arrived (runs until stopped).")
    p.add_argument("--config", default=None, help="TOML training config")
    p.add_argument("--poll", type=float, default=None,
                   help="seconds between checks for new labels (default: poll_seconds in --config, else 10)")
    p.add_argument("--once", action="store_true", help="train once if due, then exit")
    p.add_argument("--threads", type=int, default=1, help="torch threads for training and embedding (default 1)")
    p.add_argument("--parent-pid", type=int, default=None,
                   help="exit when this process ends (the app passes its own id when it starts the worker)")

    gold = sub.add_parser("gold", help="Gold pairs with known answers (quality control).",
                          description="Gold pairs with known answers (quality control).")
    gsub = gold.add_subparsers(dest="gold_command", required=True, metavar="ACTION")
    p = add("add", "Add gold pairs from JSONL (prompt, chosen, rejected [, expected]); all lines or none.", gsub)
    p.add_argument("file", help=".jsonl or .jsonl.gz, one gold pair per line")
    add("list", "List gold pairs with how often each was answered as expected.", gsub)

    qc = sub.add_parser("qc", help="Quality control: overlap, gold and attention rates, per-annotator quality.",
                        description="Quality control: overlap, gold and attention rates, per-annotator quality.")
    qsub = qc.add_subparsers(dest="qc_command", required=True, metavar="ACTION")
    add("show", "Show the quality-control config.", qsub)
    p = add("set", "Change the quality-control config: KEY=VALUE pairs (TOML values) and/or a TOML file.", qsub)
    p.add_argument("assignments", nargs="*", metavar="KEY=VALUE",
                   help='e.g. overlap=3 gold_rate=0.05 attention_kinds=["drop_answer"]')
    p.add_argument("--file", default=None, help="TOML file with the keys at the top level or under [qc]")
    add("report", "Per-annotator quality: gold accuracy, attention pass rate, latency, skips, exclusions.", qsub)

    p = add("rewrite", "Pre-generate LLM rewrite / rewrite-of-rewrite pairs for every base response "
                       "(resumable; counterfactual_pairs serves them with source = \"rewrites\").")
    p.add_argument("--model", default=None, help="local causal LM directory (default: model in --config)")
    p.add_argument("--attributes", default=None, help="comma-separated attributes (default: the config's)")
    p.add_argument("--limit", type=int, default=None, help="at most this many new pairs in this run")
    p.add_argument("--config", default=None, help="TOML rewriter config (see acquisition/examples/rewriter/)")
    p.add_argument("--device", default="cpu", help="torch device for the model (default cpu)")

    pol = sub.add_parser("policy", help="Show, list or apply acquisition policies.",
                         description="Show, list or apply acquisition policies.")
    psub = pol.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    add("show", "Show the active policy and its config.", psub)
    add("list", "List the registered policies.", psub)
    p = add("apply", "Validate a TOML policy file and make it the active policy (new version).", psub)
    p.add_argument("file", help="policy file, see acquisition/examples/")

    bench = sub.add_parser("benchmark", help="Run a benchmark.", description="Run a benchmark.")
    bsub = bench.add_subparsers(dest="benchmark_command", required=True, metavar="NAME")
    text = ("The causal benchmark: simulated annotators label under each policy; reward models are "
            "scored ID, OOD (spurious correlation flipped) and against an oracle, with AMCE coverage, "
            "labels-to-target curves and the rho_latent / rho_assignment sweeps.")
    p = bsub.add_parser("causal", help=text, description=text)
    p.add_argument("--world", default=None, help="world TOML file, or a built-in name: synthetic (default), hh_rlhf")
    p.add_argument("--data", default=None, help="a preference file (HH-RLHF, TRL, ...): use it as the world's source")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default from the world)")
    p.add_argument("--labels", type=int, default=None, help="labels per arm and seed (default from the world)")
    p.add_argument("--quick", action="store_true", help="small configuration (under 5 minutes on 2 cores)")
    p.add_argument("--no-sweeps", action="store_true", help="skip the rho_latent and rho_assignment sweeps")
    p.add_argument("--embedder", choices=["minilm", "bag_of_words"], default=None,
                   help="override the world's embedder (bag_of_words: the cheap stand-in used by tests)")
    p.add_argument("--out", default="data/benchmark", help="folder for the JSON, HTML and PNG (default data/benchmark)")
    p.add_argument("--cache", default="data/cache/benchmark-embeddings.sqlite", help="embedding cache (SQLite)")
    return parser


def run(args: argparse.Namespace) -> None:
    if args.command == "init":
        print(json.dumps(init_db(args.db, demo=args.demo), indent=2))
        return
    if args.command == "benchmark":
        from pathlib import Path

        from collector.benchmarks.causal import configure, run_causal

        world = configure(args.world, args.data, args.seeds, args.labels, args.quick, args.embedder,
                          sweeps=not args.no_sweeps)
        run_causal(world, Path(args.out), Path(args.cache), command=" ".join(["python -m collector", *sys.argv[1:]]))
        return
    if args.command in ("train", "worker"):
        from collector.serving.worker import make_trainer
        from models.online import load_training_config

        config = load_training_config(args.config)
        if args.command == "train":
            if args.model:
                config.model = args.model
            print(json.dumps(make_trainer(args.db, config, progress=True).train_once(
                on_start=lambda: print("training started", file=sys.stderr, flush=True)), indent=2))
        else:
            import threading

            from collector.serving.worker import exit_with_parent
            from models.online import set_torch_threads

            if args.parent_pid is not None:
                exit_with_parent(args.parent_pid)
            set_torch_threads(args.threads)
            trainer = make_trainer(args.db, config, progress=True)
            if args.once:
                store = Store(args.db)
                due = trainer.due(store)
                store.close()
                if due:
                    print(json.dumps(trainer.train_once(
                        on_start=lambda: print("training started", file=sys.stderr, flush=True))))
                else:
                    print("No retraining due.")
            else:
                try:
                    trainer.run(threading.Event(), poll_seconds=args.poll, log=lambda line: print(line, flush=True))
                except KeyboardInterrupt:
                    pass
        return
    store = Store(args.db)
    try:
        if args.command == "status":
            policy = store.active_policy()
            print(json.dumps({**store.counts(), "policy": policy and policy["name"],
                              "policy_version": policy and policy["version"]}, indent=2))
        elif args.command == "annotator" and args.annotator_command == "add":
            row, token = store.add_annotator(args.name, args.group, dict(args.covariate), args.objective)
            print(f"Added annotator {row['id']} ({row['name']}, group {row['group_name']}).")
            base, known = login_base_url(store, args.base_url)
            print(f"Login URL: {personal_link(base, token)}")
            if not known:
                print("(The app has not run for this database yet, so this address is a guess: start it with "
                      "`make run`, or set DECONFOUND_BASE_URL to the address annotators use.)", file=sys.stderr)
        elif args.command == "annotator" and args.annotator_command == "exclude":
            row = exclude_annotator(store, args.id, args.reason)
            print(f"Excluded annotator {row['id']} ({row['name']}): {row['excluded_reason']}. "
                  f"Their {store.label_count(row['id'])} labels stay in the database, flagged.")
        elif args.command == "annotator" and args.annotator_command == "include":
            row = include_annotator(store, args.id)
            print(f"Included annotator {row['id']} ({row['name']}) again.")
        elif args.command == "annotator":
            for a in store.annotators():
                excluded = f"\texcluded: {a['excluded_reason']}" if a["excluded"] else ""
                print(f"{a['id']}\t{a['name']}\t{a['group_name']}\t{store.label_count(a['id'])} labels{excluded}")
        elif args.command == "simulate":
            group_effects: dict[str, dict[str, float]] = {}
            for group, attribute, value in args.group_effect:
                group_effects.setdefault(group, {})[attribute] = value
            config = SimulatedAnnotatorConfig(noise=args.noise, attribute_effects=dict(args.effect),
                                              group_effects=group_effects)
            result = simulate(store, labels=args.labels, annotators=args.annotators,
                              groups=[g.strip() for g in args.groups.split(",") if g.strip()],
                              seed=args.seed, config=config)
            print(json.dumps(result))
        elif args.command == "balance":
            from acquisition.balance import arm_balance, balance_report, chosen_rejected_smd
            from collector.io.frames import pairs_frame, trl_frame

            print("SMD between chosen and rejected (|SMD| < 0.1 is balanced):")
            print(chosen_rejected_smd(trl_frame(pairs_frame(store))).to_string(index=False, float_format="%.3f"))
            print("\nSMD between left and right, by stratum:")
            pairs = pairs_frame(store)
            report = balance_report(pairs)
            print(report.pivot(index="attribute", columns="stratum", values="smd").to_string(float_format="%.3f"))
            arms = arm_balance(pairs, by=("annotator_group", "task_type"))
            if len(arms):
                print("\nSMD between each arm and the reference arm, by stratum:")
                print(arms.pivot_table(index=["arm", "covariate"], columns="stratum", values="smd")
                      .to_string(float_format="%.3f"))
        elif args.command == "import":
            from collector.io.importers import embed_new_texts, import_file

            result = import_file(store, args.path, args.format, args.task_type)
            print(result.summary())
            if not args.no_embed and (result.new_prompts or result.new_responses):
                print(f"Embedded {embed_new_texts(args.db)} new texts into the cache beside the database.")
        elif args.command == "rewrite":
            from acquisition.rewriter import LLMRewriter, load_rewriter_config
            from collector.serving.rewrite_job import run_rewrite_job

            config = load_rewriter_config(args.config)
            config.model = args.model or config.model
            attributes = [a.strip() for a in (args.attributes or "").split(",") if a.strip()] or None
            config.check_attributes(attributes or config.attributes, "--attributes")
            result = run_rewrite_job(store, LLMRewriter(config, device=args.device), attributes, args.limit,
                                     progress=lambda line: print(line, file=sys.stderr, flush=True))
            print(json.dumps(result))
        elif args.command == "export":
            n = export(store, args.format, args.out)
            print(f"Wrote {n} rows to {args.out} and its dataset card to {card_path(args.out)}.")
        elif args.command == "gold" and args.gold_command == "add":
            added, present = add_gold_file(store, args.file)
            print(f"Added {added} gold pairs ({present} already present).")
        elif args.command == "gold":
            print(gold_frame(store).to_string(index=False, max_colwidth=40))
        elif args.command == "qc" and args.qc_command == "set":
            if not args.file and not args.assignments:
                raise ConfigError("qc set: give KEY=VALUE pairs or --file FILE.")
            changes = load_qc_file(args.file) if args.file else {}
            changes.update(parse_assignments(args.assignments))
            print(json.dumps(to_dict(update_qc_config(store, changes, args.file or "qc")), indent=2))
        elif args.command == "qc" and args.qc_command == "show":
            print(json.dumps({**to_dict(qc_config(store)), "version": qc_version(store)}, indent=2))
        elif args.command == "qc":
            print(annotator_quality(store).to_string(index=False, float_format="%.2f"))
        elif args.command == "policy" and args.policy_command == "show":
            print(json.dumps(store.active_policy(), indent=2))
        elif args.command == "policy" and args.policy_command == "list":
            for name, cls in sorted(POLICIES.items()):
                print(f"{name}\t{cls.description}")
        elif args.command == "policy" and args.policy_command == "apply":
            name, config = load_policy_file(args.file)
            row = store.activate_policy(name, to_dict(config))
            print(f"Active policy: {row['name']} version {row['version']}.")
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except DeconfoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
