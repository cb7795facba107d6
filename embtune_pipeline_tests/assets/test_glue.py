"""Assets stay glue: they read inputs, call lib, write outputs and metadata (issue 13's rule of about 30 lines)."""

import ast
from pathlib import Path

import embtune_pipeline.assets as assets

MAX_ASSET_LINES = 32  # the `def` line to the last, signature and docstring included


def _asset_functions():
    for module in sorted(Path(assets.__file__).parent.glob("*.py")):
        for node in ast.parse(module.read_text()).body:
            decorated = isinstance(node, ast.FunctionDef) and any(
                "asset" in ast.unparse(d).split("(")[0] for d in node.decorator_list)
            if decorated:
                yield f"{module.stem}.{node.name}", node.end_lineno - node.lineno + 1


def test_no_asset_function_is_longer_than_glue_needs():
    lengths = dict(_asset_functions())
    print(sorted(lengths.items(), key=lambda kv: -kv[1])[:5])
    assert len(lengths) >= 15  # every asset module was read
    assert {k: n for k, n in lengths.items() if n > MAX_ASSET_LINES} == {}
