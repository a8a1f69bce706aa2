"""Bytecode compiler run by isapi-freeze with the build Python.

Serves requests until stdin ends (isapi-freeze starts it once per run): each request is
one line of JSON, {"files": [{"path", "text", "zip", "filename", "op", "check_factories"}]},
where op is "compile" (the default) or "scan" (list the imports). Each answer is binary
frames on stdout, each a tag byte, a little-endian u32 length and a payload: b"V" JSON
{"magic", "version"} first, then per file b"C" marshalled code, b"I" JSON imports or b"E"
JSON error (b"F" JSON factory names before b"C" when asked), and b"Z" (empty) last.
"""
import importlib._bootstrap_external
import json
import marshal
import opcode
import struct
import sys

# Imported at the first file (see `load_readers`): every freeze first asks only the version,
# and these take ~45 ms to import, longer than the rest of an unchanged rebuild's questions.
ast = dis = zipfile = None


def load_readers():
    global ast, dis, zipfile
    if ast is None:
        import ast
        import dis
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


# The target is Windows and the build Python's own version: what a condition on the platform
# or the version says there. Names that modules commonly compute from them (or import from a
# compat module) count too.
_TARGET = {"sys.platform": "win32", "os.name": "nt", "platform.system()": "Windows"}
_KNOWN_NAMES = {
    "WIN": True, "WINDOWS": True, "IS_WIN": True, "IS_WINDOWS": True, "ON_WINDOWS": True,
    "PY2": False, "PY3": True, "PY26": False, "PY27": False, "IS_PY2": False, "IS_PY3": True,
    "TYPE_CHECKING": False,
}
_UNKNOWN = object()
_VERSION_FIELDS = ("major", "minor", "micro")


def _dotted(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return base and base + "." + node.attr
    return None


def _value(node, names):
    """What `node` is on the target, or _UNKNOWN."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        items = [_value(e, names) for e in node.elts]
        return _UNKNOWN if _UNKNOWN in items else tuple(items)
    dotted = _dotted(node)
    if dotted in _TARGET:
        return _TARGET[dotted]
    if dotted == "sys.version_info":
        return tuple(sys.version_info)
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Attribute) and node.attr in _VERSION_FIELDS:
        # `sys.version_info.major`, or `py.major` after `py = sys.version_info` (Bottle).
        base = _value(node.value, names)
        if base == tuple(sys.version_info):
            return base[_VERSION_FIELDS.index(node.attr)]
    if isinstance(node, ast.Attribute) and node.attr in _KNOWN_NAMES and _dotted(node.value) in ("six", "compat"):
        return _KNOWN_NAMES[node.attr]
    if isinstance(node, ast.Call) and not node.keywords:
        callee = _dotted(node.func)
        if callee in _TARGET and not node.args:
            return _TARGET[callee]
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("startswith", "endswith") and node.args:
            base, arg = _value(node.func.value, names), _value(node.args[0], names)
            if isinstance(base, str) and isinstance(arg, (str, tuple)):
                return getattr(base, node.func.attr)(arg)
    if isinstance(node, ast.Subscript):
        base, index = _value(node.value, names), node.slice
        if isinstance(base, tuple):
            if isinstance(index, ast.Slice):
                lower = 0 if index.lower is None else _value(index.lower, names)
                upper = None if index.upper is None else _value(index.upper, names)
                if isinstance(lower, int) and (upper is None or isinstance(upper, int)) and index.step is None:
                    return base[lower:upper]
            else:
                at = _value(index, names)
                if isinstance(at, int) and -len(base) <= at < len(base):
                    return base[at]
    return _UNKNOWN


# By the comparison node's class name.
_COMPARE = {
    "Eq": lambda a, b: a == b, "NotEq": lambda a, b: a != b, "Lt": lambda a, b: a < b,
    "LtE": lambda a, b: a <= b, "Gt": lambda a, b: a > b, "GtE": lambda a, b: a >= b,
    "In": lambda a, b: a in b, "NotIn": lambda a, b: a not in b,
}


def _truth(test, names):
    """True or False when a condition is decided by the target's platform or version, else
    None."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _truth(test.operand, names)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        values = [_truth(v, names) for v in test.values]
        if isinstance(test.op, ast.And):
            return False if False in values else (True if all(v is True for v in values) else None)
        return True if True in values else (False if all(v is False for v in values) else None)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, right = _value(test.left, names), _value(test.comparators[0], names)
        if _UNKNOWN in (left, right):
            return None
        try:
            return bool(_COMPARE[type(test.ops[0]).__name__](left, right))
        except (TypeError, KeyError):
            return None
    if isinstance(test, ast.Name) and test.id in _KNOWN_NAMES and test.id not in names:
        return _KNOWN_NAMES[test.id]
    # `PY314` and the like (Django's django.utils.version): this version or later.
    if isinstance(test, ast.Name) and test.id not in names and test.id[:3] == "PY3" and test.id[3:].isdigit():
        return sys.version_info[:2] >= (3, int(test.id[3:]))
    value = _value(test, names)
    return None if value is _UNKNOWN else bool(value)


def _module_names(tree):
    """Top-level names a module sets from the platform or the version: `WIN = sys.platform
    == "win32"`, `PY2 = sys.version_info[0] == 2`, `py = sys.version_info` (Bottle's, for
    `py3k = py.major > 2`)."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if _dotted(node.value) == "sys.version_info":
                names[node.targets[0].id] = tuple(sys.version_info)
                continue
            truth = _truth(node.value, names)
            if truth is not None:
                names[node.targets[0].id] = truth
    return names


def _catches_import_error(handler):
    kinds = handler.type
    if kinds is None:
        return True
    caught = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
    return any(_dotted(k) in ("ImportError", "ModuleNotFoundError", "Exception", "BaseException") for k in caught)


# The class names of the nodes whose bodies run later (when called), if ever.
_FUNCTIONS = ("FunctionDef", "AsyncFunctionDef", "Lambda")


def _imports_in(statements):
    """[name, level] of the import statements among `statements` and inside them (not inside
    functions they define)."""
    found, todo = [], list(statements)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            found.extend([alias.name, 0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append([node.module or "", node.level])
        elif type(node).__name__ not in _FUNCTIONS:
            todo.extend(ast.iter_child_nodes(node))
    return found


def _walk_runtime(tree):
    """(node, guarded, deferred, fallback_of) for every node, leaving out `if TYPE_CHECKING:`
    bodies (those imports never run). Guarded: inside a `try` that catches ImportError, or
    in a branch that the target's platform or version never takes: a failing import there is
    no error. Deferred: inside a function, so it runs only when that is called. fallback_of:
    inside an `except ImportError` handler, the [name, level] imports of its `try`, which
    the handler's imports replace: they run only if one of those fails."""
    names = _module_names(tree)
    todo = [(tree, False, False, None)]
    while todo:
        node, guarded, deferred, fallback_of = todo.pop()
        yield node, guarded, deferred, fallback_of
        deferred = deferred or type(node).__name__ in _FUNCTIONS
        if isinstance(node, ast.If):
            if _is_type_checking(node.test):
                todo.extend((n, guarded, deferred, fallback_of) for n in node.orelse)
                continue
            truth = _truth(node.test, names)
            todo.extend((n, guarded or truth is False, deferred, fallback_of) for n in node.body)
            todo.extend((n, guarded or truth is True, deferred, fallback_of) for n in node.orelse)
            continue
        if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            catches = any(_catches_import_error(h) for h in node.handlers)
            todo.extend((n, guarded or catches, deferred, fallback_of) for n in node.body)
            tried = _imports_in(node.body)
            for handler in node.handlers:
                replaces = tried if tried and _catches_import_error(handler) else fallback_of
                todo.extend((n, guarded, deferred, replaces) for n in ast.iter_child_nodes(handler))
            for rest in (node.orelse, node.finalbody):
                todo.extend((n, guarded, deferred, fallback_of) for n in rest)
            continue
        todo.extend((child, guarded, deferred, fallback_of) for child in ast.iter_child_nodes(node))


# What hashlib offers only with _hashlib (OpenSSL); from 3.12 pbkdf2_hmac has no fallback.
_OPENSSL_ONLY = ("pbkdf2_hmac", "scrypt")


def _needs_openssl(node):
    """`hashlib.pbkdf2_hmac` (Django's password hasher) or `from hashlib import scrypt`."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id == "hashlib" and node.attr in _OPENSSL_ONLY
    if isinstance(node, ast.ImportFrom) and node.module == "hashlib" and not node.level:
        return any(alias.name in _OPENSSL_ONLY for alias in node.names)
    return False


def _settings_module(node):
    """The module named by `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "x")` or
    `os.environ["DJANGO_SETTINGS_MODULE"] = "x"`, else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "setdefault" \
            and len(node.args) == 2 and all(isinstance(a, ast.Constant) for a in node.args) \
            and node.args[0].value == "DJANGO_SETTINGS_MODULE" and isinstance(node.args[1].value, str):
        return node.args[1].value
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript) \
            and isinstance(node.targets[0].slice, ast.Constant) \
            and node.targets[0].slice.value == "DJANGO_SETTINGS_MODULE" \
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return node.value.value
    return None


def imports_of_tree(tree):
    """[name, level, fromlist, dynamic, guarded, deferred, fallback_of] for every import
    statement anywhere in the module, and for __import__("x") / importlib.import_module("x")
    calls with a literal name."""
    found = []
    for node, guarded, deferred, fallback_of in _walk_runtime(tree):
        flags = [guarded, deferred, fallback_of or []]
        if isinstance(node, ast.Import):
            found.extend([alias.name, 0, [], False, *flags] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append([node.module or "", node.level, [a.name for a in node.names], False, *flags])
        if _needs_openssl(node):
            # hashlib has these only from _hashlib (OpenSSL): name it, so that it ships; a
            # Python without it is no error of the app's.
            found.append(["_hashlib", 0, [], True, True, *flags[1:]])
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if _settings_module(node):
            # Django imports its settings by the name in DJANGO_SETTINGS_MODULE.
            found.append([_settings_module(node), 0, [], True, *flags])
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
                found.append([target.lstrip("."), level, [], True, *flags])
    # A module that guards a package's import once treats the package as optional: its
    # imports of it in functions run only after that one succeeded (werkzeug imports
    # `cryptography` in a try, then again in the functions that need it). An unguarded one
    # at module level runs regardless (ctypes imports `_ctypes` so, and one name in a try).
    optional = {name.split(".")[0] for name, level, _, _, guarded, _, _ in found if guarded and not level}
    for record in found:
        if not record[1] and record[5] and record[0].split(".")[0] in optional:
            record[4] = True
    return found


LOAD_CONST = opcode.opmap["LOAD_CONST"]
IMPORT_NAME = opcode.opmap["IMPORT_NAME"]
EXTENDED_ARG = opcode.opmap["EXTENDED_ARG"]
CACHE = opcode.opmap.get("CACHE", -1)


# The ranges a code object's try (and with) blocks cover, as (start, end) byte offsets;
# CPython 3.11 and later keep them in co_exceptiontable. Without the parser, nothing counts
# as guarded, which ships more, never less.
def _exception_table(code):
    parse = getattr(dis, "_parse_exception_table", None)
    return parse(code) if parse else []


def imports_of_code(code):
    """The same from bytecode (the embeddable distribution's stdlib has no sources): each
    IMPORT_NAME with the level and fromlist loaded just before it. Walks the raw
    instructions, which is far quicker than dis.get_instructions. Deferred: in a nested
    code object (a function's). Guarded: at module level inside a try (or with) block, as
    `try: import _ssl except ImportError:` is; bytecode cannot tell which exceptions a
    handler catches, nor platform checks."""
    found = []
    stack = [code]
    while stack:
        co = stack.pop()
        deferred = co is not code
        covered = [] if deferred else [(e.start, e.end) for e in _exception_table(co)]
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
                guarded = any(start <= i < end for start, end in covered)
                found.append(
                    [co.co_names[arg], level if isinstance(level, int) else 0, fromlist, False, guarded, deferred, []]
                )
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
        "magic": importlib._bootstrap_external.MAGIC_NUMBER.hex(),
        "version": list(sys.version_info[:3]),
    }).encode())
    if request["files"]:
        load_readers()
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
