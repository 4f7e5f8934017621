"""Holds the workspace to what ARCHITECTURE.md says of its house: inside each crate, no circle of
imports between files and no file importing from one above it (its parent module, or a table of
contents it is listed in), and no Rust file over 400 lines of code outside its tests.

It reads Rust as text: each crate's module tree from its `mod` declarations, and every path that starts
with `crate::`, `super::` or `self::` (in `use` lines and in code alike), resolved to the deepest module
file it names. A path that stops at a module's file takes an item that file defines or re-exports:
from an ancestor's file (a `lib.rs` or `mod.rs` the importer sits below, or any parent module), that is
an import running upward. Test modules (`#[cfg(test)]`, from that line to the end of a file, and files
declared under it) are left out: tests may reach anywhere.

    python tests/house_check.py            # the workspace: prints what is wrong, exits 1 if anything is
    python tests/house_check.py --self-test  # plants an upward import, a circle and a long file in a
                                             # copy of a tiny crate and fails unless each is caught
"""
import pathlib
import re
import sys
import tempfile

MAX_LINES = 400
CRATES = ["shared", "ingress", "worker", "authorizer", "local", "loadtest", "testkit"]

MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", re.M)
PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")
USE_GROUP = re.compile(r"\buse\s+((?:crate|super|self)(?:::\w+)*)::\{([^;]*)\}\s*;", re.S)


def code_of(text):
    """The file's code before its tests, without comments: what its imports are read from."""
    lines = []
    for line in text.splitlines():
        if line.strip().startswith("#[cfg(test)]"):
            break
        stripped = line.split("//", 1)[0] if "//" in line and '"' not in line.split("//", 1)[0] else line
        if stripped.strip().startswith("//"):
            continue
        lines.append(stripped)
    return "\n".join(lines)


def lines_of_code(text):
    """Lines of code before the tests: neither blank nor only a comment."""
    count = 0
    for line in text.splitlines():
        if line.strip().startswith("#[cfg(test)]"):
            break
        stripped = line.strip()
        if stripped and not stripped.startswith("//"):
            count += 1
    return count


class Crate:
    """A crate's module tree: each module path (a tuple of names) and its file."""

    def __init__(self, root):
        self.root = root
        self.files = {}  # module path -> file
        self.modules = {}  # file -> module path
        for entry in ("lib.rs", "main.rs"):
            top = root / "src" / entry
            if top.is_file():
                self._walk(top, (entry[:-3],))
        for binary in sorted((root / "src" / "bin").glob("*.rs")) if (root / "src" / "bin").is_dir() else []:
            self._walk(binary, ("bin", binary.stem))

    def _walk(self, path, module):
        self.files[module] = path
        self.modules[path] = module
        text = path.read_text()
        code = text
        cut = re.search(r"^\s*#\[cfg\(test\)\]\s*$", text, re.M)
        for found in MOD.finditer(code):
            if cut and found.start() > cut.start():
                continue
            # A `mod x;` right under `#[cfg(test)]` is a test module.
            before = code[: found.start()].rstrip().splitlines()
            if before and before[-1].strip() == "#[cfg(test)]":
                continue
            name = found.group(1)
            root = len(module) == 1 or module[0] == "bin" and len(module) == 2
            base = path.parent if root or path.name == "mod.rs" else path.with_suffix("")
            for child in (base / f"{name}.rs", base / name / "mod.rs"):
                if child.is_file():
                    self._walk(child, module + (name,))
                    break

    def resolve(self, module, head, rest):
        """The module a path `head::rest…` written in `module` names: the deepest module reached."""
        if head == "crate":
            at = module[:1] if module[0] != "bin" else module[:2]
        elif head == "self":
            at = module
        else:  # super, possibly repeated
            at = module[:-1]
            while rest and rest[0] == "super":
                at, rest = at[:-1], rest[1:]
        for name in rest:
            if name in ("self",):
                continue
            if at + (name,) in self.files:
                at = at + (name,)
            else:
                break
        return at

    def imports(self, path):
        """Each module the file at `path` takes something from, with the path written."""
        module = self.modules[path]
        code = code_of(path.read_text())
        found = []
        for group in USE_GROUP.finditer(code):
            head, *rest = group.group(1).split("::")
            for item in re.split(r",", group.group(2)):
                item = item.strip().split(" as ")[0].strip()
                if not item or item in ("self", "*"):
                    item = ""
                names = rest + [n for n in item.replace("{", "").replace("}", "").split("::") if n]
                found.append((self.resolve(module, head, names), f"{group.group(1)}::{item}"))
        code = USE_GROUP.sub("", code)
        for path_found in PATH.finditer(code):
            head = path_found.group(1)
            rest = [n for n in path_found.group(2).split("::") if n]
            found.append((self.resolve(module, head, rest), path_found.group(0)))
        return found


def check(workspace):
    """What is wrong with the house: a list of sentences."""
    wrong = []
    for name in CRATES:
        root = workspace / name
        if not (root / "src").is_dir():
            continue
        crate = Crate(root)
        edges = {}
        for path, module in crate.modules.items():
            text = path.read_text()
            loc = lines_of_code(text)
            if loc > MAX_LINES:
                wrong.append(f"{path.relative_to(workspace)}: {loc} lines of code outside its tests (at most {MAX_LINES})")
            for target, written in crate.imports(path):
                if target == module or target not in crate.files:
                    continue
                if module[: len(target)] == target:
                    wrong.append(
                        f"{path.relative_to(workspace)}: `{written}` imports upward, from "
                        f"{crate.files[target].relative_to(workspace)}"
                    )
                    continue
                edges.setdefault(path, set()).add(crate.files[target])
        for circle in circles(edges):
            names = " -> ".join(str(p.relative_to(workspace)) for p in circle + [circle[0]])
            wrong.append(f"a circle of imports: {names}")
    return wrong


def circles(edges):
    """The strongly connected groups of two or more files (Tarjan), each as a list of files."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def self_test():
    """A tiny crate that is sound, then each fault planted in turn: each must be caught."""
    sound = {
        "src/lib.rs": "//! A table of contents.\npub mod a;\npub mod b;\npub mod c;\npub use a::Thing;\n",
        "src/a.rs": "//! A leaf.\npub struct Thing;\n",
        "src/b.rs": "//! Takes from a sibling.\nuse crate::a::Thing;\npub fn f(_: Thing) {}\n",
        "src/c/mod.rs": "//! A room.\nmod d;\npub use d::g;\n",
        "src/c/d.rs": "//! Takes from a cousin.\nuse crate::b::f;\npub fn g() { f(crate::a::Thing) }\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    }
    faults = {
        "an import through the crate's table of contents": ("src/b.rs", "use crate::Thing;\n"),
        "an import from the parent module": ("src/c/d.rs", "use super::g;\n"),
        "a circle of two files": ("src/a.rs", "use crate::b::f;\n"),
        "a long file": ("src/a.rs", "const X: u8 = 0;\n" * (MAX_LINES + 1)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        base = pathlib.Path(tmp)

        def plant(extra=None):
            for name, text in sound.items():
                path = base / "shared" / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            if extra:
                path = base / "shared" / extra[0]
                path.write_text(extra[1] + path.read_text())

        plant()
        clean = check(base)
        if clean:
            sys.exit(f"self-test: the sound crate was found wanting: {clean}")
        for what, extra in faults.items():
            plant(extra)
            if not check(base):
                sys.exit(f"self-test: {what} was not caught")
    print(f"house check self-test: a sound crate passes, {len(faults)} planted faults caught")


def main():
    if "--self-test" in sys.argv:
        self_test()
        return
    workspace = pathlib.Path(__file__).resolve().parent.parent
    wrong = check(workspace)
    for line in wrong:
        print(line)
    if wrong:
        sys.exit(f"house check: {len(wrong)} things contradict ARCHITECTURE.md's invariants")
    print("house check: no circle of imports, no upward import, no file over 400 lines of code")


if __name__ == "__main__":
    main()
