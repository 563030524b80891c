"""The `odradek` command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import trio

from broker.config import BrokerConfig, ConfigError
from broker.server import Broker

log = logging.getLogger("odradek")


async def _serve_until_signalled(broker: Broker) -> None:
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            await nursery.start(broker.serve)
            async for signum in signals:
                log.info("stopping signal=%s", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def _serve(args: argparse.Namespace) -> int:
    try:
        config = BrokerConfig.load(args.config, args.override)
    except (ConfigError, OSError) as exc:
        print(f"odradek: {exc}", file=sys.stderr)
        return 2
    for name in config.unknown_names():
        log.warning("unknown config name=%s (kept, not used)", name)
    broker = Broker(config)
    log.info("starting node.id=%d cluster.id=%s log.dirs=%s", broker.node_id, broker.cluster_id,
             ",".join(config.log_dirs))
    trio.run(_serve_until_signalled, broker)
    log.info("stopped cleanly")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="odradek", description="A Kafka-compatible broker.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the broker")
    serve.add_argument("--config", help="a server.properties-style file")
    serve.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                       help="set a config (may be repeated); wins over the file and environment")
    serve.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if args.command == "serve":
        return _serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
