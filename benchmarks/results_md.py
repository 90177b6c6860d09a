"""Writing one section of benchmarks/RESULTS.md, shared by the benchmark scripts."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def write_section(lines, title):
    """Replace (or add at the end) the section ``## title`` of RESULTS.md with ``lines``."""
    path = os.path.join(HERE, "RESULTS.md")
    text = open(path).read()
    section = f"## {title}\n\n" + "\n".join(lines) + "\n"
    start = text.find(f"## {title}\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote the section '{title}' of {path}")
