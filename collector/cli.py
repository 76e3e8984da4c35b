"""``python -m collector`` (also ``deconfound``): the parser; each command is one function of
``collector.commands``, called with the opened ``Store`` when it reads or writes the database.
Library errors become one ``error:`` line here (``--debug`` shows the traceback)."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from acquisition.core.errors import DeconfoundError
from collector import commands
from collector.io.frames import FORMATS
from collector.io.importers import FORMATS as IMPORT_FORMATS
from collector.store import Store
from collector.store.create import DEFAULT_DB


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


def _client_options(p: argparse.ArgumentParser) -> None:
    """The HTTP client's limits (``models.generation.HTTPGenerator``), for --endpoint."""
    p.add_argument("--concurrency", type=int, default=None, help="with --endpoint: requests in flight (default 8)")
    p.add_argument("--timeout", type=float, default=None, help="with --endpoint: seconds per request (default 120)")
    p.add_argument("--retries", type=int, default=None, help="with --endpoint: retries per request (default 5)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deconfound" if Path(sys.argv[0]).name == "deconfound" else "python -m collector",
        description="Deconfound: collect interventional preference data for reward models.",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, parent=sub, handler: Callable[..., None] | None = None) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--db", default=str(DEFAULT_DB), help=f"SQLite database (default {DEFAULT_DB})")
        if handler is not None:
            p.add_argument("--json", action="store_true", help="print the result as one JSON document")
        p.set_defaults(handler=handler)
        return p

    p = add("init", "Create the database (if missing) and activate the default randomised_attributes policy.",
            handler=commands.init)
    p.add_argument("--demo", action="store_true", help="also load the demo pool (48 prompts, 5 task types)")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="where the reward models are written, relative to the database's folder "
                        "(default models/ beside it)")

    p = add("status", "Show row counts and the active policy.", handler=commands.status)

    annot = sub.add_parser("annotator", help="Add, list, exclude or include annotators.",
                           description="Add, list, exclude or include annotators.")
    asub = annot.add_subparsers(dest="annotator_command", required=True, metavar="ACTION")
    p = add("add", "Add an annotator and print their login URL (the token is shown once).", asub,
            commands.annotator_add)
    p.add_argument("name", help="display name")
    p.add_argument("--group", default="default", help="annotator group (default: default)")
    p.add_argument("--objective", default=None, help="the objective they judge by, e.g. helpfulness")
    p.add_argument("--covariate", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="a covariate to record (repeatable)")
    p.add_argument("--base-url", default=None,
                   help="the app's address for the login URL (default: $DECONFOUND_BASE_URL, else the "
                        "address the app last ran at for this database)")
    add("list", "List annotators with their group and label counts.", asub, commands.annotator_list)
    p = add("exclude", "Exclude an annotator's labels from training, effects and the TRL export "
                       "(kept in the database, flagged in the pairs export).", asub, commands.annotator_exclude)
    p.add_argument("id", type=int, help="annotator id (see annotator list)")
    p.add_argument("--reason", required=True, help="why, e.g. 'gold accuracy 0.4' (goes into the dataset card)")
    p = add("include", "Undo an exclusion: the annotator's labels count again.", asub, commands.annotator_include)
    p.add_argument("id", type=int, help="annotator id")

    p = add("simulate", "Scripted annotators label pairs through the same calls as the page.", handler=commands.simulate)
    p.add_argument("--labels", type=int, default=200, help="number of labels to give (default 200)")
    p.add_argument("--annotators", type=int, default=5, help="number of simulated annotators (default 5)")
    p.add_argument("--groups", default="default", help="comma-separated annotator groups")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--noise", type=float, default=1.0, help="Bradley-Terry noise scale (default 1.0)")
    p.add_argument("--flip-rate", type=float, default=0.1,
                   help="on imported data with no known quality: how often a simulated annotator disagrees "
                        "with the human preference (default 0.1)")
    p.add_argument("--effect", action="append", type=_attr_effect, default=[], metavar="ATTR=VALUE",
                   help="a true attribute effect in quality points (default: attributes ignored)")
    p.add_argument("--group-effect", action="append", type=_group_effect, default=[],
                   metavar="GROUP:ATTR=VALUE", help="a true effect for one annotator group only (repeatable)")

    p = add("export", "Export labels (trl, trl-conversational, arena) or the full served-pair log (pairs) "
                      "to .jsonl or .parquet, with a dataset card beside it (PATH.card.md).", handler=commands.export)
    p.add_argument("--format", choices=FORMATS, required=True,
                   help="trl: prompt/chosen/rejected; trl-conversational: the same as message lists; "
                        "arena: Chatbot Arena battles incl. ties; pairs: everything served; effects: one row "
                        "per shown response with attribute flags and their marginal propensities (DoWhy, EconML)")
    p.add_argument("--out", help="output path ending in .jsonl or .parquet")
    p.add_argument("--hub", metavar="DIR", help="instead of --out: a Hub-ready folder (README.md card with YAML "
                                                "front matter, data/train.parquet)")
    p.add_argument("--include-imported", action="store_true",
                   help="trl formats: append the imported human preferences (policy imported:<file>, no propensity)")
    p.add_argument("--arena-models", default="source", choices=("source", "arm", "response"),
                   help="arena: what model_a/model_b name: the generating model where known, else the side's "
                        "arm (source, default), the arm only (arm), or each response copy (response)")

    p = add("import", "Import preference data (HH-RLHF, TRL, UltraFeedback raw or binarized, Chatbot Arena, LMArena, "
                      "the Kaggle Arena layout, PKU-SafeRLHF, SHP, Nectar, HelpSteer2/3, oasst2, PRISM, CSV) into the "
                      "pool with its human labels: the whole file or nothing.",
            handler=commands.import_)
    p.add_argument("path", help="a .jsonl, .json, .csv or .parquet file, optionally gzipped")
    p.add_argument("--format", default="auto", choices=("auto", *IMPORT_FORMATS),
                   help="input format (default auto: detected from the content)")
    p.add_argument("--task-type", default=None, help="prompt type for rows without a task_type (default general)")
    embed = p.add_mutually_exclusive_group()
    embed.add_argument("--embed", action="store_true",
                       help="embed the new texts now, in the foreground, after printing how long it will take "
                            "(default: return once the rows are stored; the trainer embeds them in the background)")
    embed.add_argument("--no-embed", action="store_true", help="the default: leave the embedding to the trainer")

    p = add("effects", "Print each randomised attribute's effect on the choice (AMCE) with its 95%% CI, naming "
                       "the estimand: under the study's own design (default) or a uniform one.", handler=commands.effects)
    p.add_argument("--by", default="", metavar="COLUMNS",
                   help="estimate within cells of these, comma-separated: policy, group, objective, prompt_type "
                        "(default: overall)")
    p.add_argument("--estimand", default="design", choices=("design", "uniform"),
                   help="design: the other attributes at the rates the study drew them (cregg's convention, what "
                        "the effects export's DoWhy/EconML recipe estimates); uniform: reweighted to equal arms")
    p.add_argument("--treatment", default="realised", choices=("realised", "assigned"),
                   help="realised: the treatment received, read on the text served (default); assigned: the "
                        "policy's draw (intention to treat)")

    p = add("plan", "Plan a study: the labels each attribute's AMCE needs to be detected (--effect) and the "
                    "smallest effect a budget detects (--budget), for the active policy or --policy FILE, with ties, "
                    "skips and annotator clustering read from the study so far.", handler=commands.plan)
    p.add_argument("--effect", type=float, default=None, help="the AMCE to detect, in choice probability (e.g. 0.05)")
    p.add_argument("--budget", type=int, default=None, help="labels you can pay for: the smallest effect they detect")
    p.add_argument("--power", type=float, default=0.8, help="the chance to detect it (default 0.8)")
    p.add_argument("--alpha", type=float, default=0.05, help="two-sided level of the test (default 0.05)")
    p.add_argument("--attributes", default=None, help="comma-separated (default: every attribute the policy randomises)")
    p.add_argument("--policy", default=None, metavar="FILE", help="a proposed policy TOML (default: the active one)")
    p.add_argument("--icc", type=float, default=None,
                   help="within-annotator intraclass correlation (default: from the study so far, else 0)")
    p.add_argument("--annotators", type=int, default=None,
                   help="annotators sharing the labels (default: clustering at 100 labels each)")
    p.add_argument("--tie-rate", type=float, default=None, help="share of ties (default: the study so far, else 0.1)")
    p.add_argument("--drop-rate", type=float, default=None,
                   help="share of labels that do not enter: skips, both bad (default: the study so far, else 0.05)")
    p.add_argument("--p-on", type=float, default=None, help="P(attribute on) per side, where the policy does not say")
    p.add_argument("--item-icc", type=float, default=None,
                   help="with quality control's overlap k: the correlation of one item's labels by different "
                        "annotators (default 0: repeats count as independent labels)")

    p = add("balance", "Print attribute balance: SMD chosen vs rejected, left vs right, and each arm vs the "
            "observational reference, by group and prompt type.", handler=commands.balance)

    p = add("train", "Train the reward model on every label now, evaluate it, publish a checkpoint, print the metrics.",
            handler=commands.train)
    p.add_argument("--model", default=None, help="reward model name (default from --config, else bt_mlp)")
    p.add_argument("--config", default=None, help="TOML training config (see models/examples/training.toml)")

    p = add("train-rm", "Fine-tune a local sequence-classification model as a reward model with TRL's RewardTrainer "
                        "on the collected labels, each pair weighted by its stabilised inverse arm propensity "
                        "(runs under `accelerate launch` unchanged).", handler=commands.train_rm)
    p.add_argument("--model", required=True, help="a local transformers model folder (config.json, tokenizer, weights)")
    p.add_argument("--out", required=True, help="folder for the fine-tuned model and its tokenizer")
    p.add_argument("--weighting", choices=("stabilised", "none"), default="stabilised",
                   help="stabilised: the export's weight, the inverse probability of what the design made depend "
                        "on covariates, 1 for designs of coin flips (default); none: every pair 1")
    p.add_argument("--margin", action="store_true", help="use each label's strength as TRL's margin")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the labelled pairs (default 1.0)")
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimiser steps (default: epochs)")
    p.add_argument("--batch-size", type=int, default=8, help="pairs per training step (default 8)")
    p.add_argument("--lr", type=float, default=5e-5, help="learning rate (default 5e-5)")
    p.add_argument("--max-length", type=int, default=512,
                   help="pairs longer than this many tokens are left out by TRL, and counted in the report (default 512)")
    p.add_argument("--include-excluded", action="store_true", help="also train on excluded annotators' labels")

    add("snapshot", "Save the pool's columns for the server (the app runs this itself when the pool moves).",
        handler=commands.snapshot)

    p = add("worker", "Retrain the reward model whenever enough new labels arrived (runs until stopped).",
            handler=commands.worker)
    p.add_argument("--config", default=None, help="TOML training config")
    p.add_argument("--poll", type=float, default=None,
                   help="seconds between checks for new labels (default: poll_seconds in --config, else 10)")
    p.add_argument("--once", action="store_true", help="train once if due, then exit")
    p.add_argument("--threads", type=int, default=1, help="torch threads for training and embedding (default 1)")
    p.add_argument("--parent-pid", type=int, default=None,
                   help="exit when this process ends (the app passes its own id when it starts the worker)")
    p.add_argument("--start-delay", type=float, default=0.0,
                   help="seconds to wait before loading torch and the embedding model (default 0; the app "
                        "passes 10, so its first pages are drawn before the trainer takes a core)")

    gold = sub.add_parser("gold", help="Gold pairs with known answers (quality control).",
                          description="Gold pairs with known answers (quality control).")
    gsub = gold.add_subparsers(dest="gold_command", required=True, metavar="ACTION")
    p = add("add", "Add gold pairs from JSONL (prompt, chosen, rejected [, expected]); all lines or none.", gsub,
            commands.gold_add)
    p.add_argument("file", help=".jsonl or .jsonl.gz, one gold pair per line")
    add("list", "List gold pairs with how often each was answered as expected.", gsub, commands.gold_list)

    qc = sub.add_parser("qc", help="Quality control: overlap, gold and attention rates, per-annotator quality.",
                        description="Quality control: overlap, gold and attention rates, per-annotator quality.")
    qsub = qc.add_subparsers(dest="qc_command", required=True, metavar="ACTION")
    add("show", "Show the quality-control config.", qsub, commands.qc_show)
    p = add("set", "Change the quality-control config: KEY=VALUE pairs (TOML values) and/or a TOML file.", qsub,
            commands.qc_set)
    p.add_argument("assignments", nargs="*", metavar="KEY=VALUE",
                   help='e.g. overlap=3 gold_rate=0.05 attention_kinds=["drop_answer"]')
    p.add_argument("--file", default=None, help="TOML file with the keys at the top level or under [qc]")
    add("report", "Per-annotator quality: gold accuracy, attention pass rate, latency, skips, exclusions.", qsub,
        commands.qc_report)

    p = add("rewrite", "Pre-generate LLM rewrite / rewrite-of-rewrite pairs for every base response "
                       "(resumable; counterfactual_pairs serves them with source = \"rewrites\").", handler=commands.rewrite)
    p.add_argument("--model", default=None, help="local causal LM directory (default: model in --config)")
    p.add_argument("--attributes", default=None, help="comma-separated attributes (default: the config's)")
    p.add_argument("--limit", type=int, default=None, help="at most this many new pairs in this run")
    p.add_argument("--config", default=None, help="TOML rewriter config (see acquisition/examples/rewriter/)")
    p.add_argument("--device", default=None, help="local model: torch device, cpu, cuda, cuda:N or mps (default cpu)")
    p.add_argument("--endpoint", default=None, help="an OpenAI-compatible API root (http://host:port/v1): "
                                                    "rewrite through it, --model naming the served model")
    _client_options(p)

    p = add("generate", "Generate responses to a prompts file with local or served models (resumable; stored "
                        "with each model's name and decoding settings).", handler=commands.generate)
    p.add_argument("--prompts", required=True, help=".txt (one prompt a line) or .jsonl ({\"prompt\", \"task_type\"?})")
    p.add_argument("--model", action="append", required=True,
                   help="a local causal LM directory, or with --endpoint the served model's name (repeatable)")
    p.add_argument("--endpoint", default=None, help="an OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--n", type=int, default=2, help="responses per prompt from each model (default 2)")
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.7],
                   help="sample k uses temperatures[k %% len] (default 0.7; 0 is greedy)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="the most tokens generated per response (default 256)")
    p.add_argument("--top-p", type=float, default=1.0,
                   help="nucleus sampling: keep the tokens that make up this much probability (default 1.0: all)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of each response's sampling (default 0; the same seed writes the same text)")
    p.add_argument("--device", default=None, help="local models: torch device, cpu, cuda, cuda:N or mps (default cpu)")
    _client_options(p)

    p = add("judge", "Label served pairs with an LLM judge through the same path as people, as annotators of "
                     "the group llm:<model>.", handler=commands.judge)
    p.add_argument("--model", required=True, help="a local causal LM directory, or with --endpoint the served model")
    p.add_argument("--endpoint", default=None, help="an OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--labels", type=int, required=True, help="how many pairs to judge")
    p.add_argument("--objective", default=None, help="the criterion to judge by (default: the study's for each pair)")
    p.add_argument("--attempts", type=int, default=3, help="asks per pair for a reply with a verdict (default 3)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="the most tokens of a judge's reply (default 512)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 (default) is greedy")
    p.add_argument("--judges", type=int, default=1, help="judge annotators working at once (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the judges' sampling and of the pairs served to them (default 0)")
    p.add_argument("--device", default=None, help="local models: torch device, cpu, cuda, cuda:N or mps (default cpu)")
    _client_options(p)

    pol = sub.add_parser("policy", help="Show, list or apply acquisition policies.",
                         description="Show, list or apply acquisition policies.")
    psub = pol.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    add("show", "Show the active policy and its config.", psub, commands.policy_show)
    add("list", "List the registered policies.", psub, commands.policy_list)
    p = add("apply", "Validate a TOML policy file and make it the active policy (new version).", psub,
            commands.policy_apply)
    p.add_argument("file", help="policy file, see acquisition/examples/")

    study = sub.add_parser("study", help="The study settings: title, guidelines, objectives, quota, completion.",
                           description="The study settings: title, guidelines, objectives, quota, completion.")
    ssub = study.add_subparsers(dest="study_command", required=True, metavar="ACTION")
    add("show", "Show the study settings and their version.", ssub, commands.study_show)
    p = add("set", "Change the study settings: KEY=VALUE pairs (TOML values) and/or a TOML file.", ssub,
            commands.study_set)
    p.add_argument("assignments", nargs="*", metavar="KEY=VALUE",
                   help='e.g. quota=50 objective="Judge which response is more harmless"')
    p.add_argument("--file", default=None, help="TOML file with the keys at the top level or under [study]")
    add("check", "Check the stopping rule (stop_when_resolved, stop_rope, max_labels) against the labels so far, "
                 "and record the stop if it is met (the worker does this every 50 labels).", ssub, commands.study_check)

    res = sub.add_parser("researcher", help="Researcher accounts for the researcher pages.",
                         description="Researcher accounts for the researcher pages (passwords hashed with argon2id).")
    rsub = res.add_subparsers(dest="researcher_command", required=True, metavar="ACTION")
    p = add("add", "Add a researcher account; asks for the password (at least 10 characters).", rsub,
            commands.researcher_add)
    p.add_argument("name", help="the name they log in with")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add("list", "List researcher accounts with their last login.", rsub, commands.researcher_list)
    p = add("remove", "Remove a researcher account and close its sessions.", rsub, commands.researcher_remove)
    p.add_argument("name", help="the researcher account to remove")
    p = add("audit", "Show the audit log: who activated a policy, changed QC, excluded an annotator, exported.",
            handler=commands.audit)
    p.add_argument("--limit", type=int, default=200, help="the most recent N entries (default 200)")

    eds = sub.add_parser("editors", help="List the attribute editors, or audit them on a pool before a study.",
                         description="List the attribute editors, or audit them on a pool before a study.")
    esub = eds.add_subparsers(dest="editors_command", required=True, metavar="ACTION")
    p = esub.add_parser("list", help="List the editors: style attributes, rewrite-only ones, quality controls.",
                        description="List the editors: style attributes, rewrite-only ones, quality controls.")
    p.set_defaults(handler=commands.editors_list)
    p.add_argument("--json", action="store_true", help="print the result as one JSON document")
    text = ("Audit the editors on a pool: where each applies, template reuse, artefacts, meaning kept "
            "(embedding cosine) and how well a classifier tells its edits from natural texts.")
    p = esub.add_parser("audit", help=text, description=text)
    p.set_defaults(handler=commands.editors_audit)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a preference or pool file, in any format `import` reads")
    source.add_argument("--demo", action="store_true", help="the built-in demo pool")
    p.add_argument("--format", default="auto", choices=["auto", *IMPORT_FORMATS], help="the file's format (default auto)")
    p.add_argument("--editors", default=None, help="comma-separated editors (default: every style editor)")
    p.add_argument("--limit", type=int, default=None, help="audit a seeded sample of this many responses")
    p.add_argument("--seed", type=int, default=0, help="seed for the edits and the sample (default 0)")
    p.add_argument("--no-embed", action="store_true", help="skip the meaning check (no embedding model)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="the rows as JSON: alone, on stdout instead of the table; with FILE, also written there")

    bench = sub.add_parser("benchmark", help="Run a benchmark.", description="Run a benchmark.")
    bsub = bench.add_subparsers(dest="benchmark_command", required=True, metavar="NAME")
    text = ("The causal benchmark: simulated annotators label under each policy; reward models are "
            "scored ID, OOD (spurious correlation flipped) and against an oracle, with AMCE coverage, "
            "labels-to-target curves and the rho_latent / rho_assignment sweeps.")
    p = bsub.add_parser("causal", help=text, description=text)
    p.set_defaults(handler=commands.benchmark_causal)
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


# Numeric options checked at the boundary, for every command that has them: (lowest, highest,
# whether the lowest is allowed, what it counts). A value outside is one error line naming the
# option, before anything is opened or written.
NUMBERS: dict[str, tuple[float | None, float | None, bool, str]] = {
    "epochs": (0, None, False, "passes"), "lr": (0, None, False, "learning rate"),
    "batch_size": (1, 65536, True, "pairs"), "max_length": (1, 1_000_000, True, "tokens"),
    "noise": (0, None, False, "quality points"), "flip_rate": (0, 0.5, True, "share"),
    "labels": (1, None, True, "labels"), "annotators": (1, 100_000, True, "annotators"),
    "threads": (1, 256, True, "threads"), "timeout": (0, 86_400, False, "seconds"),
    "poll": (0, 3600, False, "seconds"),
    "start_delay": (0, 3600, True, "seconds"), "concurrency": (1, 1024, True, "requests"),
    "retries": (0, 100, True, "retries"), "temperature": (0, 100, True, "temperature"),
    "top_p": (0, 1, False, "probability mass"), "max_new_tokens": (1, 1_000_000, True, "tokens"),
    "attempts": (1, 100, True, "asks"), "judges": (1, 1024, True, "judges"), "n": (1, 1000, True, "responses"),
    "seed": (0, 2**63 - 1, True, "seed"), "seeds": (1, 10_000, True, "seeds"),
    "limit": (1, None, True, "count"), "parent_pid": (1, 2**22, True, "process id"),
    "budget": (1, None, True, "labels"), "power": (0, 1, False, "probability"), "alpha": (0, 0.5, False, "level"),
    "icc": (0, 1, True, "correlation"), "tie_rate": (0, 1, True, "share"), "drop_rate": (0, 1, True, "share"),
    "p_on": (0, 1, False, "probability"), "item_icc": (0, 1, True, "correlation"),
}


def check_numbers(args: argparse.Namespace) -> None:
    """Every numeric option is finite and in its range (``NUMBERS``), simulated effects are finite,
    ``--max-steps`` is -1 or positive, and ``--device`` names a torch device for a local model."""
    import math

    for name, (low, high, closed, unit) in NUMBERS.items():
        values = getattr(args, name, None)
        for value in (values if isinstance(values, list) else [values]):
            if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            option = "--" + name.replace("_", "-")
            if not math.isfinite(value):
                raise DeconfoundError(f"{option}: must be a finite number ({unit}); got {value}.")
            if low is not None and (value < low or (value == low and not closed)):
                bound = f"at least {low:g}" if closed else f"above {low:g}"
                raise DeconfoundError(f"{option}: must be {bound} ({unit}); got {value:g}.")
            if high is not None and value > high:
                raise DeconfoundError(f"{option}: must be at most {high:g} ({unit}); got {value:g}.")
    for value in getattr(args, "temperatures", None) or []:
        if not math.isfinite(value) or value < 0:
            raise DeconfoundError(f"--temperatures: each must be a finite number, 0 or more; got {value}.")
    lists = [getattr(args, name, None) for name in ("effect", "group_effect")]
    simulated = [e for values in lists if isinstance(values, list) for e in values]  # plan's --effect is a number
    for effect in simulated:
        option = "--effect" if len(effect) == 2 else "--group-effect"
        if not math.isfinite(effect[-1]):
            raise DeconfoundError(f"{option}: {effect[-2]}'s effect must be a finite number (quality points); "
                                  f"got {effect[-1]}.")
    device = getattr(args, "device", None)
    if device is not None:
        import re

        if not re.fullmatch(r"cpu|mps|cuda(:[0-9]{1,3})?", device):
            raise DeconfoundError(f"--device: must be cpu, cuda, cuda:N or mps; got {device!r}.")
        if getattr(args, "endpoint", None):
            raise DeconfoundError("--device: only for a local model; with --endpoint the server chooses its device.")
    steps = getattr(args, "max_steps", None)
    if steps is not None and steps != -1 and steps < 1:
        raise DeconfoundError(f"--max-steps: must be -1 (train for --epochs) or at least 1; got {steps}.")


def run(args: argparse.Namespace) -> None:
    """Call the command's function, with the database opened when it takes one."""
    check_numbers(args)
    handler = args.handler
    if "store" not in inspect.signature(handler).parameters:
        handler(args)
        return
    store = Store(args.db, create=False, readonly=getattr(handler, "reads_only", False))
    try:
        handler(args, store)
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not valid UTF-8 is printed escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except DeconfoundError as exc:
        commands.end_progress_line()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing of the unfinished step was written.", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: one line unless --debug
        if args.debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)",
              file=sys.stderr)
        return 2
    return 0
