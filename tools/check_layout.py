#!/usr/bin/env python3
"""Checks the source tree's shape: no #include cycle among the files of src/, and no file of
src/ over the line limit. Run by ctest; exits 1 with the cycle or the long files.

    tools/check_layout.py [--max-lines N]      (default 500)
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources():
    for d, _, files in os.walk(SRC):
        for f in files:
            if f.endswith((".c", ".h", ".inc")):
                yield os.path.relpath(os.path.join(d, f), SRC)


def resolve(includer, name, known):
    """An include resolves against the includer's folder, then src/ (the include root)."""
    here = os.path.normpath(os.path.join(os.path.dirname(includer), name))
    if here in known:
        return here
    return name if name in known else None


def find_cycle(graph):
    state = {}

    def visit(n, path):
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state:
                c = visit(m, path + [m])
                if c:
                    return c
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n, [n])
            if c:
                return c
    return None


def main():
    limit = 500
    if len(sys.argv) == 3 and sys.argv[1] == "--max-lines":
        limit = int(sys.argv[2])
    files = sorted(sources())
    known = set(files)
    graph, long_files = {}, []
    for f in files:
        text = open(os.path.join(SRC, f), encoding="utf-8").read()
        graph[f] = [r for r in (resolve(f, n, known) for n in INCLUDE.findall(text)) if r]
        n = text.count("\n")
        if n > limit:
            long_files.append((f, n))
    ok = True
    cycle = find_cycle(graph)
    if cycle:
        print("include cycle: " + " -> ".join(cycle))
        ok = False
    for f, n in long_files:
        print("src/%s: %d lines (limit %d)" % (f, n, limit))
        ok = False
    if ok:
        print("layout: %d files of src/, no include cycle, none over %d lines" % (len(files), limit))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
