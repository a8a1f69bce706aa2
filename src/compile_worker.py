"""Bytecode compiler run by isapi-freeze with the build Python.

Reads one JSON request from stdin: {"files": [{"path", "text", "filename", "check_factories"}]}.
Writes binary frames to stdout, each a tag byte, a little-endian u32 length and a payload:
b"V" JSON {"magic", "version"} first, then per file b"C" marshalled code or b"E" JSON error.
"""
import ast
import importlib.util
import json
import marshal
import struct
import sys


def frame(tag, payload):
    sys.stdout.buffer.write(tag + struct.pack("<I", len(payload)) + payload)


def factories_of(tree):
    """Which factory names the module binds at top level; None if it cannot tell."""
    found = set()
    wanted = {"__ExtensionFactory__", "__FilterFactory__"}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.Assign):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            names = [alias.asname or alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n in wanted)
    return sorted(found)


def compile_one(item):
    if item.get("text") is not None:
        source = item["text"].encode("utf-8")
    else:
        with open(item["path"], "rb") as f:
            source = f.read()
    tree = compile(source, item["filename"], "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    code = compile(tree, item["filename"], "exec", dont_inherit=True)
    result = {"code": marshal.dumps(code)}
    if item.get("check_factories"):
        result["factories"] = factories_of(tree)
    return result


def main():
    request = json.load(sys.stdin)
    frame(b"V", json.dumps({
        "magic": importlib.util.MAGIC_NUMBER.hex(),
        "version": list(sys.version_info[:3]),
    }).encode())
    for item in request["files"]:
        try:
            result = compile_one(item)
        except SyntaxError as e:
            frame(b"E", json.dumps({
                "kind": type(e).__name__, "msg": e.msg, "lineno": e.lineno, "offset": e.offset,
            }).encode())
            continue
        except (OSError, ValueError) as e:
            frame(b"E", json.dumps({"kind": type(e).__name__, "msg": str(e)}).encode())
            continue
        if "factories" in result:
            frame(b"F", json.dumps(result["factories"]).encode())
        frame(b"C", result["code"])
    sys.stdout.flush()


main()
