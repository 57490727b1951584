#!/usr/bin/env python3
"""Needle probe: hides one needle sentence in ordinary prose from ../shared/data and asks
`longctx ask` for it through each reading method, as a user would run it. Prints one line per
case and a summary per method; appends JSON lines to --out.

Fillers: Paul Graham essays (concatenated), an L-Eval meeting transcript, an L-Eval paper.
Needles: a numeric pass key, a made-up word, a natural-language fact. Depths in percent.

Usage: python3 tools/needle-probe/probe.py --bin target/release/longctx --chars 68000 \
           --depths 25,75 --methods rag,memagent --out /tmp/probe.jsonl [--threads 2]
"""

import argparse
import glob
import json
import os
import subprocess
import time

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")

NEEDLES = {
    "passkey": ("The pass key is 58213. Remember it.",
                "What is the pass key? Answer with the number only.", "58213"),
    "word": ("The secret code word for the vault is plimbrosk.",
             "What is the secret code word for the vault?", "plimbrosk"),
    "fact": ("Dr. Elena Vasquez keeps her spare keys inside a blue ceramic teapot in the garden shed.",
             "Where does Dr. Elena Vasquez keep her spare keys?", "teapot"),
}


def fillers():
    essays = "".join(open(f).read() + "\n" for f in sorted(glob.glob(os.path.join(ROOT, "paul-graham-essays/niah/*.txt"))))
    def longest(path):
        rows = [json.loads(l) for l in open(os.path.join(ROOT, path))]
        return max((r["input"] for r in rows), key=len)
    return {
        "essays": essays,
        "meeting": longest("leval/open-ended/meeting_summ.jsonl"),
        "paper": longest("leval/open-ended/paper_assistant.jsonl"),
    }


def build(text, chars, needle, depth):
    text = text[:chars]
    cut = text.rfind("\n", 0, chars)
    text = text[: cut if cut > chars // 2 else chars]
    at = int(len(text) * depth / 100)
    # Insert at the next sentence or line boundary.
    nxt = min([i for i in (text.find(". ", at), text.find("\n", at)) if i >= 0] or [at])
    at = nxt + 1
    return text[:at] + " " + needle + " " + text[at:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/longctx")
    ap.add_argument("--chars", type=int, default=68000)
    ap.add_argument("--depths", default="25,75")
    ap.add_argument("--methods", default="rag")
    ap.add_argument("--fillers", default="essays,meeting,paper")
    ap.add_argument("--needles", default="passkey,word,fact")
    ap.add_argument("--extra", default="", help="extra ask arguments, e.g. '--policy infllm'")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--out", default="/tmp/probe.jsonl")
    a = ap.parse_args()
    texts = fillers()
    os.makedirs("/tmp/probe-docs", exist_ok=True)
    score = {}
    for method in a.methods.split(","):
        for f in a.fillers.split(","):
            for n in a.needles.split(","):
                for d in map(int, a.depths.split(",")):
                    sentence, question, want = NEEDLES[n]
                    doc = build(texts[f], a.chars, sentence, d)
                    path = f"/tmp/probe-docs/{f}-{n}-{d}-{a.chars}.txt"
                    open(path, "w").write(doc)
                    cmd = [a.bin, "ask", "-t", a.threads, "-n", "40", "--method", method,
                           "--file", path, question] + a.extra.split()
                    t = time.time()
                    p = subprocess.run(cmd, capture_output=True, text=True)
                    secs = time.time() - t
                    ok = want.lower() in p.stdout.lower()
                    score.setdefault(method + a.extra, []).append(ok)
                    row = {"method": method, "extra": a.extra, "filler": f, "needle": n, "depth": d,
                           "chars": a.chars, "ok": ok, "seconds": round(secs, 1),
                           "answer": p.stdout.strip()[:200], "stderr_tail": p.stderr.strip()[-300:]}
                    print(json.dumps(row), flush=True)
                    with open(a.out, "a") as out:
                        out.write(json.dumps(row) + "\n")
    for m, oks in score.items():
        print(f"{m}: {sum(oks)}/{len(oks)}")


if __name__ == "__main__":
    main()
