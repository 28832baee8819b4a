"""Regenerates one generated block of benchmarks/RESULTS.md: the text between a begin and an
end marker (the GPU audit's table, the GPU performance model's predictions)."""
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def replace_block(begin: str, end: str, text: str, heading: str, path=None) -> None:
    """Puts `text` between the markers begin and end of the file (benchmarks/RESULTS.md by
    default); a file without them gets `## heading`, the markers and the text at its end."""
    path = Path(path) if path else RESULTS
    doc = path.read_text()
    block = f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc:
        doc = doc[: doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip("\n") + f"\n\n## {heading}\n\n" + block + "\n"
    path.write_text(doc)
