from __future__ import annotations

import json

import pytest

from ramlico.zeroshot.descriptors import load_descriptors
from ramlico.zeroshot.generate_descriptors import (
    build_prompt,
    generate_descriptors,
    parse_descriptors,
)


def test_prompt_and_parsing():
    assert "distinguishing a great white shark in a photo" in build_prompt("great_white_shark")
    answer = (
        "Features:\n- a large grey body.\n2) a pointed snout\n* rows of teeth\n\n"
        "- a large grey body"
    )
    assert parse_descriptors(answer) == ["a large grey body", "a pointed snout", "rows of teeth"]
    assert parse_descriptors(answer, max_descriptors=1) == ["a large grey body"]


def test_generation_resumes_and_writes_a_loadable_file(tmp_path):
    out = tmp_path / "d.json"
    out.write_text(json.dumps({"cat": ["whiskers"]}))
    asked = []

    def ask(prompt):  # a stand-in for the LLM endpoint
        asked.append(prompt)
        return "- four legs\n- a tail"

    result = generate_descriptors(["cat", "dog"], ask, out)
    assert len(asked) == 1 and "dog" in asked[0]  # 'cat' was already there
    assert result == {"cat": ["whiskers"], "dog": ["four legs", "a tail"]}
    assert load_descriptors(out) == result
    with pytest.raises(ValueError, match="no usable descriptor for class 'fox'"):
        generate_descriptors(["fox"], lambda p: "\n\n", out)
