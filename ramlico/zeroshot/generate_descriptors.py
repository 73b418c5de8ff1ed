"""Write a ``{class: [descriptor, ...]}`` file with an LLM of your choice (OpenAI-compatible API).

Works with any server that speaks ``POST {base_url}/chat/completions`` (OpenAI, vLLM, llama.cpp
server, Ollama's OpenAI endpoint, ...). The prompt follows DCLIP's question ("What are useful
features for distinguishing a {c} in a photo?") and asks for one short feature per line::

    python -m ramlico.zeroshot.generate_descriptors --classes classnames.txt \\
        --out descriptors.json --base-url http://localhost:8000/v1 --model my-llm [--api-key ...]

Classes already in ``--out`` are kept (the run resumes); each answer is parsed into at most
``--max-descriptors`` lines with list markers stripped. Nothing here runs in the tests' network-free
environment except the parsing and prompt functions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["build_prompt", "parse_descriptors", "generate_descriptors", "main"]

PROMPT = (
    "Q: What are useful visual features for distinguishing a {name} in a photo?\n"
    "Answer with one short feature per line (a noun phrase, no full sentences), "
    "at most {n} lines, nothing else."
)
_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")


def build_prompt(class_name: str, max_descriptors: int = 8) -> str:
    """The question sent for one class (underscores read as spaces)."""
    return PROMPT.format(name=class_name.replace("_", " "), n=max_descriptors)


def parse_descriptors(answer: str, max_descriptors: int = 8) -> list[str]:
    """Lines of an LLM answer -> descriptors: list markers and trailing periods removed."""
    out = []
    for line in answer.splitlines():
        text = _MARKER.sub("", line).strip().rstrip(".").strip()
        if text and not text.endswith(":") and text not in out:
            out.append(text)
    return out[:max_descriptors]


def _chat(base_url: str, model: str, api_key: str | None, timeout: float) -> Callable[[str], str]:
    def ask(prompt: str) -> str:
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}],
                           "temperature": 0.0}).encode()  # fmt: skip
        req = urllib.request.Request(f"{base_url.rstrip('/')}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        if api_key:
            req.add_header("Authorization", f"Bearer {api_key}")
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (user's URL)
            return json.load(resp)["choices"][0]["message"]["content"]

    return ask


def generate_descriptors(
    class_names: Sequence[str],
    ask: Callable[[str], str],
    out: Path,
    max_descriptors: int = 8,
) -> dict[str, list[str]]:
    """Ask ``ask(prompt) -> answer`` for every class not yet in ``out``; save after each class."""
    result: dict[str, list[str]] = json.loads(out.read_text()) if out.is_file() else {}
    for name in class_names:
        if result.get(name):
            continue
        descriptors = parse_descriptors(ask(build_prompt(name, max_descriptors)), max_descriptors)
        if not descriptors:
            raise ValueError(f"the LLM gave no usable descriptor for class '{name}'")
        result[name] = descriptors
        out.write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=Path, required=True, help="one class name per line")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base-url", required=True, help="e.g. http://localhost:8000/v1")
    parser.add_argument("--model", required=True)
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    parser.add_argument("--max-descriptors", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=60.0)
    opts = parser.parse_args(argv)
    names = [ln.strip() for ln in opts.classes.read_text().splitlines() if ln.strip()]
    ask = _chat(opts.base_url, opts.model, opts.api_key, opts.timeout)
    generate_descriptors(names, ask, opts.out, opts.max_descriptors)


if __name__ == "__main__":
    main()
