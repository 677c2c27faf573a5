import hashlib
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from metaagentx.llm.loading import load_model_and_tokenizer
from metaagentx.tiny import build_tiny


def _pieces(tokenizer, text: str) -> list[str]:
    return tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_numbers_tokenize_the_same_in_prose_and_code(tiny_model_dir: Path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prose = _pieces(tok, "Compute 4821*37-19.")
    code = _pieces(tok, "print(4821*37-19)")
    digits = ["4", "8", "2", "1", "*", "3", "7", "-", "1", "9"]
    assert prose[1] == "Ġ"  # the space before a number is a token of its own
    assert prose[2:12] == digits
    assert code[2:12] == digits


def test_protocol_markup_is_one_token_and_decodes_back(tiny_model_dir: Path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for piece in ["<delivery>", "</delivery>", "<tool_call>", "</tool_call>"]:
        assert len(tok(piece, add_special_tokens=False)["input_ids"]) == 1
    text = "x = 12 + 3\n<delivery>15</delivery> so \\boxed{15}"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_chat_template_roles_and_generation_prompt(tiny_model_dir: Path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"},
        {"role": "tool", "content": "T"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
        "<|im_start|>assistant\nA<|im_end|>\n"
        "<|im_start|>user\n<tool_response>\nT\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )
    encoded = tok.apply_chat_template(
        messages[:3], return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    assistant = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert assistant == "A<|im_end|>"


def test_loads_through_the_real_hf_path(tiny_model_dir: Path):
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir, device="cpu")
    assert model.config.model_type == "qwen3"
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (128, 2)
    assert tokenizer.padding_side == "left"
    assert (
        model.config.eos_token_id
        == tokenizer.eos_token_id
        == tokenizer.convert_tokens_to_ids("<|im_end|>")
    )
    assert (
        model.get_output_embeddings().weight.data_ptr()
        == model.get_input_embeddings().weight.data_ptr()
    )


def _digest(directory: Path) -> str:
    model = AutoModelForCausalLM.from_pretrained(directory)
    h = hashlib.sha256((directory / "tokenizer.json").read_bytes())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path: Path, tiny_model_dir: Path):
    again = build_tiny(tmp_path / "a", size="tiny", seed=0)
    other = build_tiny(tmp_path / "b", size="tiny", seed=1)
    assert _digest(again) == _digest(tiny_model_dir)
    assert _digest(other) != _digest(tiny_model_dir)


def test_build_leaves_global_rng_alone(tmp_path: Path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny(tmp_path / "m", size="nano", vocab_size=600)
    assert torch.equal(torch.rand(3), expected)
