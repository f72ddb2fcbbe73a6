"""The README's flag reference is generated from the argument dataclasses and must be current."""

from __future__ import annotations

from conftest import REPO_ROOT

from training.docs import BEGIN, END, flag_reference_markdown, replace_block


def test_readme_flag_reference_is_current():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert replace_block(readme, flag_reference_markdown()) == readme, "run: python -m training.docs"


def test_every_seed_flag_is_documented():
    block = flag_reference_markdown()
    for flag in ("--freeze-strategy", "--unfreeze-schedule", "--use-uncertainty-weighting", "--task-weight",
                 "--epochs", "--batch-size", "--lr", "--scheduler", "--warmup-ratio", "--patience", "--word-dropout",
                 "--weighted-sampling", "--head-hidden-dims", "--layer-lr-decay"):
        assert f"`{flag}`" in block, flag


def test_replace_block_keeps_the_text_around_it():
    text = f"intro\n{BEGIN}\nold\n{END}\noutro\n"
    assert replace_block(text, "new\n") == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"
