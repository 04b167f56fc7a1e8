"""``vitcurate space``: run the Gradio app locally (the ``space`` extra).

Limits default to the ``VITCURATE_SPACE_*`` environment variables (see
:mod:`hf_vitcurate.space.limits`), then to the built-in values; a flag wins over both. The
closing summary (the URL and the limits) is printed once the server is up; Ctrl-C stops it.

Example:
    $ vitcurate space --port 7860 --max-rows 5000
"""

from __future__ import annotations

import argparse

from .common import print_summary


def register(sub) -> None:
    p = sub.add_parser("space", help="run the Gradio app (load, validate, tag, select, download, publish) locally")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=None, help="port (default: 7860, or the next free one)")
    p.add_argument("--max-upload-mb", dest="max_upload_mb", type=float, default=None,
                   help="largest upload, and largest Hub split that is not Parquet, in MB "
                        "(default: VITCURATE_SPACE_MAX_UPLOAD_MB, else 200)")
    p.add_argument("--max-rows", dest="max_rows", type=int, default=None,
                   help="most rows a loaded dataset may have (default: VITCURATE_SPACE_MAX_ROWS, else 20000)")
    p.add_argument("--max-model-mb", dest="max_model_mb", type=float, default=None,
                   help="most weights a checkpoint may have, in MB of weight files "
                        "(default: VITCURATE_SPACE_MAX_MODEL_MB, else 5000)")
    p.add_argument("--trust-remote-code", dest="trust_remote_code", action=argparse.BooleanOptionalAction, default=None,
                   help="allow checkpoints that run their own code (default: VITCURATE_SPACE_TRUST_REMOTE_CODE, else off)")
    p.add_argument("--work-dir", dest="work_dir", default=None,
                   help="where sessions keep their files (default: VITCURATE_SPACE_WORK_DIR, else a new temporary folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..space import Limits, launch

    limits = Limits.from_env(max_upload_mb=args.max_upload_mb, max_rows=args.max_rows, max_model_mb=args.max_model_mb,
                             trust_remote_code=args.trust_remote_code, work_dir=args.work_dir)
    demo, url = launch(limits, host=args.host, port=args.port, block=False)
    print_summary({"url": url, "max_upload_mb": limits.max_upload_mb, "max_rows": limits.max_rows,
                   "max_model_mb": limits.max_model_mb,
                   "trust_remote_code": limits.trust_remote_code, "work_dir": limits.work_dir})
    demo.block_thread()  # until Ctrl-C, then closes the server
    return 0
