"""``vaekit export RUN --format onnx``: a run's encoder and decoder as ONNX graphs (vaekit.export)."""
from __future__ import annotations


def register(commands) -> None:
    p = commands.add_parser("export", help="write a run's encoder and decoder as ONNX graphs",
                            description="Export a run's encoder (image -> posterior mean and log-variance, or the code) "
                                        "and decoder (code -> image in [0, 1]) for onnxruntime and other ONNX tools. "
                                        "Needs pip install 'vaekit[export]'.")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="the format to write (default onnx)")
    p.add_argument("--out", metavar="DIR", help="folder for encoder.onnx and decoder.onnx (default RUN/onnx)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"],
                   help="which weights to export (default best, what vaekit.load uses)")
    p.add_argument("--exporter", choices=["torchscript", "dynamo"],
                   help="torch's exporter to use (default torchscript while torch has it: about 10 times faster; "
                        "dynamo: the torch.export-based one)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip running the graphs with onnxruntime against vaekit's outputs")
    p.set_defaults(handler=_export)


def _export(args) -> int:
    from vaekit.export.onnx import TOLERANCE, export_run

    result = export_run(args.run, args.out, which=args.checkpoint, check=args.check, exporter=args.exporter)

    def signature(values: dict) -> str:
        return ", ".join(f"{name} ({', '.join(str(d) for d in shape)})" for name, shape in values.items())

    print(f"wrote {result.encoder}: {signature(result.encoder_inputs)} -> {signature(result.encoder_outputs)}")
    print(f"wrote {result.decoder}: {signature(result.decoder_inputs)} -> {signature(result.decoder_outputs)} in [0, 1]")
    for note in result.notes:
        print(note)
    if result.max_difference is None:
        print("not checked: onnxruntime is not installed")
    else:
        worst = max(result.max_difference.values())
        verdict = "matches" if worst <= TOLERANCE else "DIFFERS from"
        print(f"onnxruntime {verdict} vaekit: largest difference {worst:.1e} (tolerance {TOLERANCE:g}), B = any batch size")
    return 0
