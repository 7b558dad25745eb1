"""``nyanops code push``: upload ml_code as a content-addressed bundle (``code/<sha256>/``)."""

from __future__ import annotations

import argparse

from nyanops.backends import Backend, add_aws_arguments, open_backend
from nyanops.cli.common import EXIT_OK
from nyanops.code_bundle import build_bundle, push_bundle
from nyanops.core import layout
from nyanops.local.project import ML_CODE, project_root


def push_code(backend: Backend) -> str:
    """Push ml_code; identical code already there is marked the newest again (as a re-upload would)."""
    bundle = build_bundle(project_root() / ML_CODE)
    if not push_bundle(backend.store, bundle):
        backend.store.touch(layout.code_bundle_key(bundle.hash))
    return bundle.hash


def cmd_code_push(args: argparse.Namespace) -> int:
    backend = open_backend(args)
    code_hash = push_code(backend)
    print(f"code/{code_hash} in {backend.where()}")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    code = sub.add_parser("code", help="push ml_code as a content-addressed bundle (code push)").add_subparsers(
        dest="code_command", required=True, metavar="SUBCOMMAND"
    )
    sp = code.add_parser("push", help="upload ml_code as code/<sha256>/ (local root, or a deployed bucket)")
    sp.set_defaults(func=cmd_code_push)
    add_aws_arguments(sp, state_machine=False)
