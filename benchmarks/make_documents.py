"""Write a deterministic folder of news-like documents of mixed size for the batch-extraction benchmark.

    python benchmarks/make_documents.py OUT_DIR [--documents 2000] [--seed 0]

The same arguments always give byte-identical files (a seeded ``random.Random``, no clock, no
hash randomisation), so figures measured on the folder can be reproduced anywhere. Sizes follow
the long tail of real collections: most documents are a paragraph, some are pages, a few are long
reports that exceed the encoder's window many times over. Formats are mixed like a shared drive:
mostly ``.txt``, some Markdown and HTML, each in nested sub-folders.
"""

from __future__ import annotations

import argparse
import html
import random
from pathlib import Path

PEOPLE = [
    "John Smith", "Maria Garcia", "Wei Chen", "Fatima Al-Sayed", "Pierre Dubois", "Anna Kowalska",
    "James O'Brien", "Yuki Tanaka", "Olga Petrova", "Carlos Mendes", "Sarah Johnson", "Ahmed Khan",
]  # fmt: skip
ORGANISATIONS = [
    "Acme Corp", "the United Nations", "General Electric", "the World Bank", "Siemens",
    "the Red Cross", "Harvard University", "NASA", "Reuters", "the European Commission",
]  # fmt: skip
PLACES = [
    "Boston", "Paris", "Nairobi", "Tokyo", "Buenos Aires", "Warsaw", "Chicago", "Mumbai",
    "Cairo", "Toronto", "Lisbon", "Sydney", "Texas", "Bavaria", "Ontario",
]  # fmt: skip
TEMPLATES = [
    "{p} works for {o} in {l}.",
    "{p}, a spokesman for {o}, said the talks in {l} would resume on Monday.",
    "{o} is based in {l}, where {p} has lived since 1998.",
    "{p} was born in {l} and later joined {o}.",
    "Officials in {l} said {p} had resigned from {o} after a long dispute.",
    "{l} is a city in {l2}, and {o} opened its first office there.",
    "{p} met {p2} in {l} to discuss the future of {o}.",
    "The board of {o} named {p} chief executive on Tuesday.",
]
FILLER = [
    "The announcement came after months of negotiations.",
    "Analysts expect the decision to affect markets for several quarters.",
    "No further details were given.",
    "The report was published late on Friday evening.",
    "Critics said the plan did not go far enough.",
    "Shares rose by three per cent in early trading.",
]
#: (share of documents, range of sentences): paragraphs, pages, long reports
SIZES = [(0.80, (2, 10)), (0.18, (10, 60)), (0.02, (150, 400))]
#: (suffix, share of documents)
FORMATS = [(".txt", 0.85), (".md", 0.10), (".html", 0.05)]


def sentence(rng: random.Random) -> str:
    if rng.random() < 0.35:
        return rng.choice(FILLER)
    p, p2 = rng.sample(PEOPLE, 2)
    place, place2 = rng.sample(PLACES, 2)
    return rng.choice(TEMPLATES).format(p=p, p2=p2, o=rng.choice(ORGANISATIONS), l=place, l2=place2)


def paragraphs(rng: random.Random) -> list[str]:
    low, high = _weighted(rng, SIZES)
    sentences = [sentence(rng) for _ in range(rng.randint(low, high))]
    cuts = sorted(rng.sample(range(1, len(sentences)), k=min(len(sentences) - 1, len(sentences) // 6)))
    return [" ".join(sentences[a:b]) for a, b in zip([0, *cuts], [*cuts, len(sentences)])]


def render(parts: list[str], suffix: str, title: str) -> str:
    if suffix == ".md":
        return f"# {title}\n\n" + "\n\n".join(parts) + "\n"
    if suffix == ".html":
        body = "\n".join(f"<p>{html.escape(p)}</p>" for p in parts)
        return f"<html><head><title>{title}</title></head><body><h1>{title}</h1>\n{body}\n</body></html>\n"
    return "\n\n".join(parts) + "\n"


def write_documents(out: Path, documents: int = 2000, seed: int = 0) -> list[Path]:
    """Write ``documents`` files under ``out`` (in 20 sub-folders) and return their paths."""
    rng = random.Random(seed)
    paths = []
    for number in range(documents):
        suffix = _weighted(rng, [(share, s) for s, share in FORMATS])
        path = out / f"batch_{number % 20:02d}" / f"doc_{number:05d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(paragraphs(rng), suffix, f"Report {number}"), encoding="utf-8")
        paths.append(path)
    return paths


def _weighted(rng: random.Random, choices: list[tuple[float, object]]):
    return rng.choices([value for _, value in choices], weights=[share for share, _ in choices])[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = write_documents(args.out, args.documents, args.seed)
    words = sum(len(p.read_text(encoding="utf-8").split()) for p in paths)
    print(f"{len(paths)} documents, {words:,} words (whitespace-split, markup included) -> {args.out}")


if __name__ == "__main__":
    main()
