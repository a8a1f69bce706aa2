"""Bytecode compiler run by isapi-freeze with the build Python.

Serves requests until stdin ends (isapi-freeze starts it once per run): each request is
one line of JSON, {"files": [{"path", "text", "zip", "filename", "op", "check_factories"}]},
where op is "compile" (the default) or "scan" (list the imports). Each answer is binary
frames on stdout, each a tag byte, a little-endian u32 length and a payload: b"V" JSON
{"magic", "version"} first, then per file b"C" marshalled code, b"I" JSON imports or b"E"
JSON error (b"F" JSON factory names before b"C" when asked), and b"Z" (empty) last.
"""
import ast
import importlib.util
import json
import marshal
import dis
import struct
import sys
import zipfile


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


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk_runtime(tree):
    """ast.walk, leaving out `if TYPE_CHECKING:` bodies: those imports never run."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def imports_of_tree(tree):
    """[name, level, fromlist, dynamic] for every import statement anywhere in the module,
    and for __import__("x") / importlib.import_module("x") calls with a literal name."""
    found = []
    for node in _walk_runtime(tree):
        if isinstance(node, ast.Import):
            found.extend([alias.name, 0, [], False] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append([node.module or "", node.level, [a.name for a in node.names], False])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in ("__import__", "import_module"):
                target = node.args[0].value
                level = len(target) - len(target.lstrip("."))
                if level and name == "import_module":
                    # import_module(".x", package): relative to the package argument.
                    continue
                found.append([target.lstrip("."), level, [], True])
    return found


LOAD_CONST = dis.opmap["LOAD_CONST"]
IMPORT_NAME = dis.opmap["IMPORT_NAME"]
EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
CACHE = dis.opmap.get("CACHE", -1)


def imports_of_code(code):
    """The same from bytecode (the embeddable distribution's stdlib has no sources): each
    IMPORT_NAME with the level and fromlist loaded just before it. Walks the raw
    instructions, which is far quicker than dis.get_instructions."""
    found = []
    stack = [code]
    while stack:
        co = stack.pop()
        raw = co.co_code
        consts = []
        extended = 0
        for i in range(0, len(raw), 2):
            op, arg = raw[i], raw[i + 1] | extended
            if op == EXTENDED_ARG:
                extended = arg << 8
                continue
            extended = 0
            if op == CACHE:
                continue
            if op == LOAD_CONST:
                consts.append(co.co_consts[arg])
            elif op == IMPORT_NAME:
                level, fromlist = (consts[-2], consts[-1]) if len(consts) >= 2 else (0, None)
                fromlist = [n for n in (fromlist or ()) if isinstance(n, str)]
                found.append([co.co_names[arg], level if isinstance(level, int) else 0, fromlist, False])
                consts = []
            else:
                consts = []
        stack.extend(c for c in co.co_consts if hasattr(c, "co_code"))
    return found


# Zip files opened so far, by path: reading a zip's directory for every member (the stdlib
# zip has hundreds) would cost more than the scan itself. The worker lives for one run.
_zips = {}


def read_source(item):
    if item.get("text") is not None:
        return item["text"].encode("utf-8")
    if item.get("zip"):
        path, member = item["zip"]
        archive = _zips.get(path)
        if archive is None:
            archive = _zips[path] = zipfile.ZipFile(path)
        return archive.read(member)
    with open(item["path"], "rb") as f:
        return f.read()


def scan_one(item):
    data = read_source(item)
    if item.get("zip") and item["zip"][1].endswith(".pyc"):
        return imports_of_code(marshal.loads(data[16:]))
    tree = compile(data, item["filename"], "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    return imports_of_tree(tree)


def compile_one(item):
    source = read_source(item)
    tree = compile(source, item["filename"], "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    code = compile(tree, item["filename"], "exec", dont_inherit=True)
    result = {"code": marshal.dumps(code)}
    if item.get("check_factories"):
        result["factories"] = factories_of(tree)
    return result


def main():
    for line in sys.stdin.buffer:
        answer(json.loads(line))
        frame(b"Z", b"")
        sys.stdout.flush()


def answer(request):
    frame(b"V", json.dumps({
        "magic": importlib.util.MAGIC_NUMBER.hex(),
        "version": list(sys.version_info[:3]),
    }).encode())
    for item in request["files"]:
        try:
            if item.get("op") == "scan":
                frame(b"I", json.dumps(scan_one(item)).encode())
                continue
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


main()
