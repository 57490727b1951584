#!/usr/bin/env python3
"""Reports import cycles between the top-level modules of every crate under crates/*/src.

A node is a top-level module (`src/foo.rs` or `src/foo/`); an edge a -> b means some file of
module a names `crate::b...`, `super::...` resolving to b, or a name that the crate root
re-exports from b (`pub use b::Name;` in lib.rs/main.rs, reached as `crate::Name`). Group
imports (`use crate::{a::X, b::Y}`) count every member. Comments and string literals are
ignored, and so are `#[cfg(test)] mod ... { ... }` blocks: test-only helpers may reach into
other modules without tying the modules' production code together.

Prints each crate's cycles (strongly connected components with one example loop) and exits 1
if any crate has one. Usage: python3 scripts/module-cycles.py [REPO_ROOT]
"""

import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals, keeping line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and not re.match(r"\w", text[i - 1 : i]):
            # Raw string r#"..."#: ends at the quote followed by as many hashes.
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:  # a char literal such as '{' (lifetimes like 'a do not match)
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_test_modules(code):
    """Removes `#[cfg(test)] mod name { ... }` blocks (brace-balanced)."""
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{")
    while True:
        m = pattern.search(code)
        if not m:
            return code
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        code = code[: m.start()] + "\n" * code.count("\n", m.start(), j) + code[j:]


def group_heads(code, start):
    """First path segments of the members of a `{a::X, b, c::{..}}` group opened before `start`."""
    depth, j = 1, start
    while j < len(code) and depth:
        depth += {"{": 1, "}": -1}.get(code[j], 0)
        j += 1
    members, depth, piece = [], 0, ""
    for ch in code[start : j - 1]:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            members.append(piece)
            piece = ""
        else:
            piece += ch
    members.append(piece)
    return [m.group(0) for m in (re.search(IDENT, p) for p in members) if m]


def module_of(src, path):
    """Module path of a file: src/a/b.rs -> [a, b]; src/a/mod.rs -> [a]; lib.rs -> []."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod" or (len(parts) == 1 and parts[0] in ("lib", "main")):
        parts = parts[:-1]
    return parts


def crate_graph(src):
    """Top-level modules and the edges between them."""
    files = sorted(src.rglob("*.rs"))
    modules = {module_of(src, f)[0] for f in files if module_of(src, f)}
    # Names the crate root re-exports from a module: `pub use module::{A, B};`.
    reexports = {}
    for root in ("lib.rs", "main.rs"):
        if (src / root).exists():
            code = strip_comments_and_strings((src / root).read_text())
            for m in re.finditer(r"pub\s+use\s+(?:crate::|self::)?(" + IDENT + r")::([^;]*);", code):
                if m.group(1) in modules:
                    for name in re.findall(IDENT, m.group(2).split("::")[-1]):
                        reexports[name] = m.group(1)
    edges = {m: set() for m in modules}
    for f in files:
        path = module_of(src, f)
        if not path:
            continue  # the crate root declares modules; it is not a node
        code = strip_test_modules(strip_comments_and_strings(f.read_text()))
        targets = []
        for m in re.finditer(r"\bcrate::(\{|" + IDENT + ")", code):
            heads = group_heads(code, m.end()) if m.group(1) == "{" else [m.group(1)]
            targets += heads
        for m in re.finditer(r"\b((?:super::)+)(\{|" + IDENT + ")", code):
            ups = m.group(1).count("super")
            base = path[: len(path) - ups]
            if base:
                targets.append(base[0])
            else:
                heads = group_heads(code, m.end()) if m.group(2) == "{" else [m.group(2)]
                targets += heads
        for t in targets:
            t = reexports.get(t, t)
            if t in modules and t != path[0]:
                edges[path[0]].add(t)
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def example_loop(edges, comp):
    """One loop through the component's first module, found breadth-first."""
    start = comp[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v]):
            if w == start:
                return paths[v] + [start]
            if w in comp and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return comp


def main():
    sys.setrecursionlimit(10000)
    repo = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    found = False
    for src in sorted(repo.glob("crates/*/src")):
        crate = src.parent.name
        comps = cycles(crate_graph(src))
        if not comps:
            print(f"{crate}: no module cycles")
        for comp in comps:
            found = True
            loop = " -> ".join(example_loop(crate_graph(src), comp))
            print(f"{crate}: cycle among {{{', '.join(comp)}}}, e.g. {loop}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
