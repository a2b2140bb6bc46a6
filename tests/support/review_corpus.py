"""A small corpus for the review-queue tests: tweets and news captions with two to four entities each,
turned into an `mmre extract` output folder by the real command (text only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CAPTIONS = (
    "Kim Jong Un met Donald Trump in Singapore on Tuesday.",
    "Astronaut Eileen Collins of NASA poses at the Johnson Space Center in Houston.",
    "Lionel Messi and his wife Antonela Roccuzzo arrive in Barcelona.",
    "Angela Merkel speaks at the Bundestag in Berlin.",
    "Taylor Swift performs with Ed Sheeran at Wembley Stadium in London.",
    "Daniel Ek , the founder of Spotify , visits Stockholm.",
    "Pope Francis greets pilgrims in St. Peter 's Square in Rome.",
    "Barack Obama and Michelle Obama visit the Lincoln Memorial in Washington.",
    "Cristiano Ronaldo scores for Juventus against Napoli in Turin.",
    "Elon Musk unveils the new Tesla factory in Shanghai.",
    "Serena Williams wins at Wimbledon , her sister Venus Williams watching.",
    "Emmanuel Macron welcomes Justin Trudeau to the Elysee Palace in Paris.",
)


def mmre(*args: str, stdin: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "mmre_demo", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


def make_extract_folder(root: Path) -> Path:
    """`mmre extract` on the corpus: the folder a researcher would review."""
    corpus = root / "posts.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"post{i}", "caption": c}) + "\n" for i, c in enumerate(CAPTIONS)),
                      encoding="utf-8")
    out = root / "extracted"
    done = mmre("extract", str(corpus), "--out", str(out), "--no-progress", "--no-read-text")
    assert done.returncode == 0, done.stderr[-2000:]
    return out
