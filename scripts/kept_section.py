"""One home for the sections of BENCHMARKS.md that a measuring script owns.

A section sits between `<!-- kept:NAME -->` and `<!-- /kept:NAME -->`; `scripts/bench` keeps every such
section when it rewrites the file, and the script that measured it replaces its own with `write`.
"""
import pathlib
import re


def write(name, lines, path="BENCHMARKS.md"):
    """Prints the section `lines` (without markers) and puts it in place of NAME's, or at the end."""
    section = "\n".join([f"<!-- kept:{name} -->", *lines, f"<!-- /kept:{name} -->"])
    print(section)
    bench = pathlib.Path(path)
    text = bench.read_text()
    marked = re.compile(rf"<!-- kept:{name} -->.*?<!-- /kept:{name} -->", re.S)
    text = marked.sub(lambda _: section, text) if marked.search(text) else text.rstrip() + "\n\n" + section + "\n"
    bench.write_text(text)


def goals_table(rows):
    """The table every measuring script states its goals in: one row per (goal, measured, beside it
    in the same run, met)."""
    return [
        "| goal | measured | beside it, same run | met |",
        "|---|---|---|---|",
        *(f"| {goal} | {measured} | {beside} | {met} |" for goal, measured, beside, met in rows),
    ]
