"""``voltx think "<text>"``: run the inference pipeline on one input and print the answer."""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("think", help="answer a query through the Volt X pipeline (safety, strands, RAR, decode)",
                       description="Answer a query through the Volt X pipeline. Arithmetic (\"(17 * 3) - 5\", \"what is 2 plus 3\", "
                                   "\"7 / 2\") is computed exactly by the MathEngine strand, in integers and fractions.",
                       epilog="exit codes: 0 answered; 65 the strand refused the query (division by zero, a result over "
                              "the MathEngine's digit bound, a malformed expression: the message says which); "
                              "69 no answer: the strand the query needs is not in use (see --strands) or the translator "
                              "cannot render the frame (the stub renders only strand answers and its own words; see "
                              "--checkpoint); 64 the query is empty or too long for a frame; 66 a named checkpoint is missing.")
    p.add_argument("text", help='the query, e.g. "3 + 4"')
    p.add_argument("--checkpoint", metavar="DIR", help="a translator run (or folder) with code_tokenizer.json, code_encoder.safetensors, code_decoder.safetensors (default: the untrained stub translator)")
    p.add_argument("--f3", metavar="RUN", help="answer with a finished F3 run's stack instead (its encoder, VFN and renderer: "
                   "encode -> RAR -> render, e.g. a bAbI story and question); --json prints the RAR trace (default: none, the Hard Strands pipeline)")
    p.add_argument("--vfn", metavar="FILE", help="a trained small VFN (vfn_foundation.safetensors) for RAR (default: an untrained, seeded VFN)")
    p.add_argument("--calibration", metavar="FILE", help="an isotonic calibrator (calibration.safetensors); default: the one in --checkpoint, if any")
    p.add_argument("--strands", metavar="A,B", help="only these strands, in this order (see `voltx plugins`; default: every installed strand)")
    p.add_argument("--max-iterations", type=int, default=None, help="RAR iteration budget (default 50; with --f3, the run's own)")
    p.add_argument("--json", action="store_true", help="print the full trace as JSON: answer, the strand that answered, "
                   "why, whether exactly, routing, RAR, γ, safety verdicts")
    p.set_defaults(_run=run)


def run_f3(args) -> int:
    """``--f3 RUN``: the question through F3's encoder, RAR and renderer (voltx_phases.f3_infer)."""
    from voltx.errors import EXIT_USAGE
    from voltx_phases.f3_infer import F3Stack

    if not args.text.strip():
        print("voltx: error: the query is empty", file=sys.stderr)
        return EXIT_USAGE
    answer, trace = F3Stack.load(args.f3).answer(args.text, args.max_iterations)
    print(json.dumps(trace, indent=1) if args.json else answer)
    return 0


def run(args) -> int:
    if args.f3:
        return run_f3(args)
    from voltx.engine.pipeline import ThinkPipeline
    from voltx.engine.rar import RarConfig
    from voltx.engine.router import IntentRouter
    from voltx.plugins import load_plugins

    if args.checkpoint:
        from voltx.engine.learned_translator import LearnedTranslator

        translator = LearnedTranslator.load(args.checkpoint)
    else:
        from voltx.engine.stub_translator import StubTranslator

        translator = StubTranslator()
    names = [n.strip() for n in args.strands.split(",")] if args.strands else None
    router = IntentRouter.from_plugins(load_plugins(), names)
    vfn = ThinkPipeline.load_vfn(args.vfn) if args.vfn else None
    calibration = args.calibration
    if calibration is None and args.checkpoint:
        from pathlib import Path

        for candidate in (Path(args.checkpoint) / "calibration.safetensors", Path(args.checkpoint) / "artifacts" / "calibration.safetensors"):
            if candidate.exists():
                calibration = str(candidate)
    calibrator = None
    if calibration:
        from voltx.engine.calibration import IsotonicCalibrator

        calibrator = IsotonicCalibrator.load(calibration)
    pipeline = ThinkPipeline(translator, router, vfn=vfn, rar_config=RarConfig(max_iterations=args.max_iterations or 50),
                             vfn_source=args.vfn or "untrained (seeded; train phase F3 for a real VFN)", calibrator=calibrator)
    result = pipeline.think(args.text)
    if args.json:
        print(json.dumps(result.trace, indent=1))
    elif result.error is None:
        if result.trace["vetoed"]:
            print(f"[vetoed by the safety layer] {result.trace['veto_reason']}")
        else:
            print(result.answer.rstrip())
        for step in result.trace["routing"]:
            if step.get("failed") and not step.get("exit_code"):
                print(f"voltx: note: {step.get('strand')} could not answer: {step.get('error')}", file=sys.stderr)
    error = result.error
    if error is not None:  # refused or nothing could answer: say why, never print an answer made up from the frame
        what = f"{error['strand']} cannot answer" if error["kind"] == "refused" else "no answer to"
        print(f"voltx: error: {what} {args.text!r}: {error['message']}", file=sys.stderr)
        return error["exit_code"]
    return 0
