"""``streamrec`` command line: broker | worker | trainer | wait-kafka | produce | consume | state |
forget | config | demo | train | evaluate | replay-eval.

Settings come from ``STREAMREC_*`` variables (or ``*_FILE`` files for secrets),
never from options: no option takes a password.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from models.datasets import FORMATS
from stream_app import logs
from stream_app.settings import SECRET_FIELDS, Settings

REDACTED = "**********"


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.kafka.broker import EmbeddedBroker, java_binary, resolve_jars

    if args.fetch_only:
        java_binary()
        print(f"broker jars in {resolve_jars(settings.home, settings.kafka_version)}")
        return 0
    broker = EmbeddedBroker(settings, data_dir=args.data_dir, secure=args.secure).start()
    if args.secure:
        _print_secure_clients(settings)
    print(f"Kafka ready on {broker.bootstrap} (Ctrl-C to stop)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        assert broker.proc is not None
        broker.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def _print_secure_clients(settings: Settings) -> None:
    from stream_app.kafka.secure_broker import CLIENT_PRINCIPALS, client_env, secrets_dir

    print(f"SASL_SSL (SCRAM-SHA-512) with ACLs; CA, passwords: {secrets_dir(settings)}")
    for user in CLIENT_PRINCIPALS:
        env = " ".join(f"{k}={v}" for k, v in client_env(settings, user).items())
        print(f"  as {user}: {env}")


def _wait_kafka(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.kafka.wait import wait_for_kafka

    asyncio.run(wait_for_kafka(settings))
    print(f"Kafka at {settings.bootstrap} answers", file=sys.stderr)
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.app import run_worker

    run_worker(settings)
    return 0


def _trainer(args: argparse.Namespace, settings: Settings) -> int:
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")  # read when tqdm is imported: no progress bars
    from stream_app.trainer.run import run_trainer

    if settings.model_dir is None:
        print("streamrec: the trainer needs STREAMREC_MODEL_DIR", file=sys.stderr)
        return 2
    run_trainer(settings)
    return 0


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.kafka.admin import TopicsNotAuthorized, ensure_topics
    from stream_app.kafka.producer import produce
    from stream_app.kafka.wait import wait_for_kafka

    async def go() -> int:
        await wait_for_kafka(settings)
        await ensure_topics(settings)
        return await produce(
            settings, args.dataset, args.rate, args.limit, args.format, args.seed, args.log_format
        )

    try:
        print(f"sent {asyncio.run(go())} events", file=sys.stderr)
    except TopicsNotAuthorized as exc:
        print(f"streamrec: {exc}", file=sys.stderr)
        return 1
    return 0


def _consume(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.kafka.consumer import recommendations
    from stream_app.kafka.wait import wait_for_kafka

    async def go() -> None:
        await wait_for_kafka(settings)
        async for rec in recommendations(
            settings, args.limit, args.from_beginning, args.idle_timeout
        ):
            print(json.dumps(rec), flush=True)

    asyncio.run(go())
    return 0


def _state(args: argparse.Namespace, settings: Settings) -> int:
    import urllib.error

    from stream_app.query import fetch_state_waiting, render

    url = args.url or f"http://{settings.web_host}:{settings.web_port}"
    try:
        doc = asyncio.run(fetch_state_waiting(url, args.user_id, settings))
    except (urllib.error.URLError, OSError) as exc:
        print(f"streamrec: cannot query a worker at {url}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(doc) if args.json else render(doc))
    return 0


def _forget(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.erasure import ForgetRequest
    from stream_app.kafka.admin import ensure_topics
    from stream_app.kafka.producer import request_erasure
    from stream_app.kafka.wait import wait_for_kafka

    request = ForgetRequest.new(args.user_id)

    async def go() -> None:
        await wait_for_kafka(settings)
        await ensure_topics(settings)
        await request_erasure(settings, request)

    asyncio.run(go())
    print(
        f"erasure request {request.request_id} sent to {settings.control_topic}; "
        f"the owning worker confirms it on {settings.audit_topic}",
        file=sys.stderr,
    )
    return 0


def effective_settings(settings: Settings) -> dict[str, Any]:
    """Every setting as JSON values, with each secret that is set shown as REDACTED."""
    values: dict[str, Any] = settings.model_dump(mode="json")
    for name in SECRET_FIELDS:
        if values[name] is not None:
            values[name] = REDACTED
    return values


def _config(args: argparse.Namespace, settings: Settings) -> int:
    values = effective_settings(settings)
    if args.json:
        print(json.dumps(values, indent=2))
        return 0
    width = max(len(n) for n in values) + len("STREAMREC_")
    for name, value in values.items():
        shown = "unset" if value is None else value
        print(f"{'STREAMREC_' + name.upper():<{width}}  {shown}")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.demo import run_demo

    return run_demo(settings, args.dataset, args.rate, args.limit)


# Model commands keep their own parsers (models/training/train.py, models/evaluation/evaluate.py).
MODEL_COMMANDS = {
    "train": ("models.training.train", "train a Transformer or LSTM on a sequences file"),
    "evaluate": (
        "models.evaluation.evaluate",
        "leave-one-out, full-ranking evaluation with baselines",
    ),
    "replay-eval": ("stream_app.replay.runner", "replay an event log, prequential quality"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streamrec",
        description="Real-time sequence recommendations on Kafka. "
        "Configuration comes from STREAMREC_* environment variables (see docs/configuration.md).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("broker", help="run the embedded single-node Apache Kafka (KRaft)")
    b.add_argument("--data-dir", type=Path, help="keep storage here (default: fresh temp dir)")
    b.add_argument("--fetch-only", action="store_true", help="only resolve the jars, then exit")
    b.add_argument(
        "--secure",
        action="store_true",
        help="SASL_SSL listener (SCRAM-SHA-512), generated certificates and passwords, "
        "ACLs for the worker, producer and reader principals (docs/privacy-and-security.md)",
    )
    b.set_defaults(func=_broker)

    w = sub.add_parser("worker", help="run one stream worker")
    w.set_defaults(func=_worker)

    trainer_help = "fine-tune the served model on the stream; promote it through a gate"
    sub.add_parser("trainer", help=trainer_help).set_defaults(func=_trainer)

    wk = sub.add_parser(
        "wait-kafka",
        help="wait until Kafka answers (backoff and limit as every command: "
        "STREAMREC_KAFKA_WAIT_S); exit 69 if it never does",
    )
    wk.set_defaults(func=_wait_kafka)

    pr = sub.add_parser("produce", help="replay a dataset into the input topic")
    pr.add_argument(
        "--dataset",
        type=Path,
        help="event log, in time order (default: a generated stream)",
    )
    pr.add_argument(
        "--log-format",
        choices=FORMATS,
        help="the dataset's format, as in replay-eval (default: guessed from the path)",
    )
    pr.add_argument("--rate", type=float, default=1000.0, help="events/s; 0 = as fast as possible")
    pr.add_argument("--limit", type=int, help="stop after N events")
    pr.add_argument("--format", choices=["msgpack", "json"], default="msgpack")
    pr.add_argument("--seed", type=int, default=0)
    pr.set_defaults(func=_produce)

    c = sub.add_parser("consume", help="print recommendations as JSON lines")
    c.add_argument("--limit", type=int)
    c.add_argument("--from-beginning", action="store_true")
    c.add_argument("--idle-timeout", type=float, help="stop after this many quiet seconds")
    c.set_defaults(func=_consume)

    st = sub.add_parser("state", help="print a user's current state, from the worker owning it")
    st.add_argument("user_id")
    st.add_argument("--json", action="store_true", help="print JSON instead of a table")
    st.add_argument("--url", help="any worker's web URL (default: STREAMREC_WEB_HOST/_PORT)")
    st.set_defaults(func=_state)

    f = sub.add_parser("forget", help="erase a user: state, feedback lists; audited")
    f.add_argument("user_id", help="the user's raw id, as in the events")
    f.set_defaults(func=_forget)

    cf = sub.add_parser("config", help="print the effective settings (secrets redacted)")
    cf.add_argument("--json", action="store_true", help="print JSON instead of a table")
    cf.set_defaults(func=_config)

    for name, (_, helptext) in MODEL_COMMANDS.items():
        sub.add_parser(name, help=f"{helptext} (see streamrec {name} --help)", add_help=False)

    d = sub.add_parser("demo", help="broker + worker + replay + printed recommendations")
    d.add_argument("--dataset", type=Path, help="default: ../shared/datasets/amazon-beauty")
    d.add_argument("--rate", type=float, default=50.0, help="events/s")
    d.add_argument("--limit", type=int)
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in MODEL_COMMANDS:
        import importlib

        module = importlib.import_module(MODEL_COMMANDS[argv[0]][0])
        return int(module.main(argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's message names the bad variable
        print(f"streamrec: bad configuration: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings)  # the worker's Faust re-applies the same configuration
    from stream_app.kafka.wait import EXIT_UNAVAILABLE, Unavailable

    try:
        return int(args.func(args, settings))
    except Unavailable as exc:
        print(f"streamrec: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130
