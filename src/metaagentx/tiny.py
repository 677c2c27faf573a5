"""Build the tiny Qwen3-architecture model and BPE tokenizer used by the quickstart and tests.

Nothing can be downloaded on CI or an offline laptop, so the library makes its own model. The
tokenizer follows what was measured on the quickstart task (shared notes): numbers are split into
single digits and a space before a number is a token of its own, so a number copied from the
task into code (`print(4821*37)`) has exactly the same tokens as in the task (`Compute 4821*37`).
Free BPE would give `Ġ48` in one place and `48` in the other, and a tiny model cannot learn to
copy across that. Everything is deterministic for a seed and saved with `save_pretrained`, so it
loads through the same code path as any local Hugging Face model directory.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from metaagentx.outputs import atomic_dir, check_output_dir, local_bars_hidden

# GPT-2's split pattern with two changes: `\p{N}` (one digit per piece, and no leading space:
# the space before a number falls to the `\s+` alternatives and stays a piece of its own).
SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

BOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Markup the workflow protocol uses; one token each makes it cheap to emit and easy to learn.
PROTOCOL_TOKENS = [
    "<delivery>",
    "</delivery>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "```python",
    "```",
    "\\boxed{",
]

# Qwen-style ChatML. `{% generation %}` marks assistant text so SFT can ask transformers for an
# assistant-token mask; tool results are wrapped the way Qwen3 wraps them.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- elif message['role'] == 'tool' -%}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] + '\\n</tool_response><|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


@dataclass(frozen=True)
class TinySize:
    """Shape of a tiny Qwen3 model."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    head_dim: int | None = None  # default hidden_size // num_heads (Qwen3-0.6B: 128, not 64)


# 128x2 learned the quickstart task's copying on a 2-core budget; 256x4 did not (shared notes).
SIZES: dict[str, TinySize] = {
    "nano": TinySize(
        hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256
    ),
    "tiny": TinySize(
        hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=512
    ),
    "small": TinySize(
        hidden_size=256, num_layers=4, num_heads=8, num_kv_heads=4, intermediate_size=1024
    ),
}


def tokenizer_corpus(
    extra: Iterable[str] = (), seed: int = 0, synthetic_lines: int = 4000
) -> list[str]:
    """Text the tokenizer is trained on: the workflow library, the example designs, task text.

    The workflow library source and the example designs cover the API, docstrings and Python
    that designs use; the generated lines cover arithmetic tasks, tool use and answer formats.
    """
    texts: list[str] = []
    package = resources.files("metaagentx")
    texts.extend(_read_sources(package / "mas"))
    texts.extend(_read_sources(package / "designs"))
    rng = random.Random(seed)
    ops = ["+", "-", "*"]
    for _ in range(synthetic_lines):
        terms = [str(rng.randint(1, 9999)) for _ in range(rng.randint(2, 4))]
        expr = terms[0] + "".join(rng.choice(ops) + t for t in terms[1:])
        texts.append(
            f"Compute {expr}.\n```python\nprint({expr})\n```\n<delivery>{expr}</delivery>\n"
            f"The answer is \\boxed{{{rng.randint(-99999, 999999)}}}."
        )
    texts.extend(extra)
    return texts


def _read_sources(root) -> list[str]:  # root: importlib.resources Traversable
    out: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.is_dir() and child.name != "__pycache__":
                stack.append(child)
            elif child.name.endswith((".py", ".md", ".yaml")):
                out.append(child.read_text(encoding="utf-8"))
    return out


def build_tokenizer(
    corpus: Iterable[str] | None = None, vocab_size: int = 2048
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (digits split, spaces kept apart) with a chat template."""
    if vocab_size < 512:
        raise ValueError(f"vocab_size must be >= 512 (256 bytes plus merges), got {vocab_size}")
    texts = list(corpus) if corpus is not None else tokenizer_corpus()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(PROTOCOL_TOKENS),
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )
    fast.add_tokens(PROTOCOL_TOKENS)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(
    tokenizer: PreTrainedTokenizerFast,
    size: str | TinySize = "tiny",
    seed: int = 0,
    max_positions: int = 4096,
    vocab_size: int | None = None,
) -> Qwen3ForCausalLM:
    """A randomly initialised Qwen3 causal LM sized for `tokenizer` (or a wider `vocab_size`,
    e.g. Qwen3's 151,936 for memory measurements), deterministic for `seed`."""
    shape = SIZES[size] if isinstance(size, str) else size
    if vocab_size is not None and vocab_size < len(tokenizer):
        raise ValueError(f"vocab_size {vocab_size} is below the tokenizer's {len(tokenizer)}")
    if shape.hidden_size % shape.num_heads:
        raise ValueError(
            f"hidden_size {shape.hidden_size} is not divisible by num_heads {shape.num_heads}"
        )
    config = Qwen3Config(
        vocab_size=vocab_size or len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        head_dim=shape.head_dim or shape.hidden_size // shape.num_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids(BOS_TOKEN),
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS_TOKEN),
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # CPU init only; leave the caller's RNG untouched
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    return model


def build_tiny(
    out_dir: str | Path,
    size: str | TinySize = "tiny",
    vocab_size: int = 2048,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Build tokenizer and model and save both with `save_pretrained` into `out_dir`; a
    non-empty `out_dir` (a trained model, say) is refused unless `overwrite`, and replaced only
    once the new model is written."""
    if isinstance(size, str) and size not in SIZES:
        raise ValueError(f"unknown tiny size '{size}'; choose one of {sorted(SIZES)}")
    out = Path(out_dir)
    check_output_dir(out, overwrite=overwrite, what="tiny model folder")
    tokenizer = build_tokenizer(
        corpus if corpus is not None else tokenizer_corpus(seed=seed), vocab_size
    )
    model = build_model(tokenizer, size, seed)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    with atomic_dir(out) as tmp, local_bars_hidden():
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out
