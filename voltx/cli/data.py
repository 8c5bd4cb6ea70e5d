"""``voltx data stream|convert|generate|mix|list``: datasets to Volt JSONL records.

Import-light: ``add_parser`` only builds argparse; the streaming core (and ``datasets``)
load when a subcommand runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# One help text for every --output: where it is written and what happens to missing folders.
OUTPUT_HELP = ("JSONL output, written atomically (a temporary file beside it, renamed when complete); "
               "missing folders are created")


def _stream_args(p, *, files_required: bool) -> None:
    p.add_argument("--dataset", required=True, metavar="NAME", help="a registered converter (see `voltx data list`)")
    p.add_argument("--format", metavar="FORMAT", help="record format to write (default: the dataset's first)")
    p.add_argument("--output", "-o", required=True, metavar="FILE", help=OUTPUT_HELP)
    p.add_argument("--split", default="train", help="split to read (default train)")
    p.add_argument("--max-examples", type=int, metavar="N", help="stop after N records (default: all)")
    p.add_argument("--language", metavar="LANG", help="language, for multilingual datasets (e.g. en; default: the dataset's own)")
    p.add_argument("--data-files", nargs="+", required=files_required, metavar="PATH",
                   help="local files in the dataset's original format" + ("" if files_required else " (default: stream from the Hub)"))
    _common(p)


def _common(p) -> None:
    p.add_argument("--on-error", choices=("skip", "fail"), default="fail", help="bad rows (malformed, cut short, or not UTF-8): skip and count them, or stop at the first"
                        " with exit 65 naming its file:line (default)")
    p.add_argument("--allow-empty", action="store_true", help="write an empty file instead of failing when no records come out")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress")


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="convert, stream, generate and mix datasets into Volt JSONL records",
                       description="Datasets to Volt JSONL records (formats: docs/data-contracts.md).")
    p.set_defaults(_run=run, data_command=None, _data_parser=p)
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=type(p))

    s = dsub.add_parser("stream", help="stream a dataset (Hub, or --data-files) into JSONL records",
                        description="Stream a dataset from the Hub (or local --data-files) into Volt JSONL records.")
    _stream_args(s, files_required=False)
    c = dsub.add_parser("convert", help="convert local files in a dataset's original format (= stream with --data-files)",
                        description="Convert local files in a dataset's original format into Volt JSONL records.")
    _stream_args(c, files_required=True)

    g = dsub.add_parser("generate", help="write records from a registered generator (no input)",
                        description="Write Volt JSONL records from a registered generator (no input files).")
    g.add_argument("name", metavar="NAME", help="a generator (see `voltx data list`), or a family: scan, babi, kinship, stdlib_code")
    g.add_argument("--output", "-o", required=True, metavar="FILE", help=OUTPUT_HELP)
    g.add_argument("--format", metavar="FORMAT", help="record format to write (default: the generator's first)")
    g.add_argument("--split", default=None,
                   help="the generator's split (train/test; srl_gen, paraphrase_gen and concepts_gen also dev), or for a family the variant: scan --split length|simple|addprim_jump"
                        " (train repeats 'jump' as the published file: 1,467 of 14,670 lines)|addprim_jump_once (jump once),"
                        " babi --split qa1|qa2|qa3 (default: train)")
    g.add_argument("--part", default=None, help="with a family variant: train (default) or test")
    g.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    g.add_argument("--count", type=int, metavar="N", help="how many rows to generate (the generator's default otherwise)")
    g.add_argument("--max-examples", type=int, metavar="N", help="stop after N records (default: all)")
    _common(g)

    m = dsub.add_parser("mix", help="a deterministic weighted mix of JSONL files: a.jsonl:0.6 b.jsonl:0.4",
                        description="Mix JSONL files by weight, deterministically (the same seed gives the same file).")
    m.add_argument("sources", nargs="+", metavar="FILE:WEIGHT", help="a JSONL file and its share of the mix, e.g. a.jsonl:0.6")
    m.add_argument("--output", "-o", required=True, metavar="FILE", help=OUTPUT_HELP)
    m.add_argument("--total", type=int, metavar="N", help="records in the mix (default: the largest that keeps the weights without resampling); "
                        "a total beyond that is refused unless --replace is given, so the ratio never changes")
    m.add_argument("--seed", type=int, default=0, help="shuffle seed (default: %(default)s)")
    m.add_argument("--replace", action="store_true", help="sample with replacement (sources may repeat)")

    lst = dsub.add_parser("list", help="registered converters with their Hub name and formats",
                          description="List the registered converters and generators with their Hub name and record formats.")
    lst.add_argument("--json", action="store_true", help="machine-readable output (default: a table)")


def run(args) -> int:
    cmd = args.data_command
    if cmd is None:
        args._data_parser.print_help(sys.stderr)
        return 64
    return {"stream": _run_stream, "convert": _run_stream, "generate": _run_generate, "mix": _run_mix, "list": _run_list}[cmd](args)


def _missing_folder(output: str) -> Path | None:
    """The outermost folder above ``output`` that does not exist yet (the writer creates it), or None."""
    missing, folder = None, Path(output).resolve().parent
    while not folder.exists():
        missing, folder = folder, folder.parent
    return missing


def _finish(text: str, created: Path | None) -> int:
    """Print where the output went (an absolute path) and the folder made for it, if any."""
    print(text + (f"\ncreated folder {created} (it did not exist)" if created else ""), file=sys.stderr)
    return 0


def _run_stream(args) -> int:
    from voltx.data.stream import get_converter, stream, summary

    conv = get_converter(args.dataset)
    created = _missing_folder(args.output)
    result = stream(conv, args.format, args.output, split=args.split, data_files=args.data_files, language=args.language,
                    max_examples=args.max_examples, on_error=args.on_error, allow_empty=args.allow_empty,
                    progress=False if args.quiet else None)
    return _finish(summary(result), created)


def _run_generate(args) -> int:
    from voltx.data.stream import get_converter, stream, summary
    from voltx.errors import UsageError
    from voltx.plugins import load_plugins

    ps = load_plugins()
    name, split = _generator_name(args, ps)
    conv = get_converter(name, ps)
    if not getattr(conv, "generator", False):
        gens = [n for n, s in ps.specs("converters").items() if s.hub_name is None and _is_generator(s)]
        raise UsageError(f"{args.name!r} is a dataset, not a generator (use `voltx data stream`). Generators: {', '.join(gens) or 'none'}.")
    conv.seed = args.seed
    if args.count is not None:
        if args.count < 1:
            raise UsageError(f"--count must be at least 1, got {args.count}")
        conv.count = args.count
    created = _missing_folder(args.output)
    result = stream(conv, args.format, args.output, split=split, max_examples=args.max_examples,
                    on_error=args.on_error, allow_empty=args.allow_empty, progress=False if args.quiet else None)
    return _finish(summary(result), created)


def _generator_name(args, ps) -> tuple[str, str]:
    """`scan --split length --part test` -> (scan_length_gen, test); a generator's own name passes through."""
    registry = ps.registry["converters"]
    variant = (args.split or "").replace("-", "_")
    own = args.name in registry and _is_generator(registry[args.name].spec)
    if not own and variant and f"{args.name}_{variant}_gen" in registry:
        return f"{args.name}_{variant}_gen", args.part or "train"
    if not own and f"{args.name}_gen" in registry:
        return f"{args.name}_gen", args.split or args.part or "train"
    return args.name, args.split or args.part or "train"


def _is_generator(spec) -> bool:
    try:
        from voltx.plugin_specs import resolve

        return bool(getattr(resolve(spec.factory), "generator", False))
    except Exception:
        return False


def _run_mix(args) -> int:
    from voltx.data.mix import mix, parse_source
    from voltx.data.stream import count_of

    created = _missing_folder(args.output)
    result = mix([parse_source(s) for s in args.sources], args.output, total=args.total, seed=args.seed, replace=args.replace)
    parts = ", ".join(f"{name}: {n:,} of its {result.sizes[name]:,}{' (resampled)' if n > result.sizes[name] else ''}"
                      for name, n in result.counts.items())
    return _finish(f"wrote {count_of(result.total, 'record')} to {result.output.resolve()} ({parts})", created)


def _run_list(args) -> int:
    from voltx.plugins import load_plugins

    ps = load_plugins()
    rows = [{"name": name, "summary": spec.summary, "hub_name": spec.hub_name, "formats": list(spec.formats),
             "plugin": ps.provider("converters", name)} for name, spec in ps.specs("converters").items()]
    if args.json:
        print(json.dumps({"converters": rows}, indent=1))
        return 0
    if not rows:
        print("no converters registered (see `voltx plugins`)")
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="voltx data converters")
    for col in ("name", "hub", "formats", "summary"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["hub_name"] or "-", ", ".join(r["formats"]), escape(r["summary"]))  # "[label]" is text, not markup
    Console().print(table)
    return 0
